#!/usr/bin/env bash
# The main job on the embedded defaults: set up .venv, then run the scripted editor session.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/remora demo "$@"
