#!/usr/bin/env bash
# Builds the shipped packs with `remora train`: each pack source in packs/<name> is trained on
# the installed distribution of the same name. Output: dist/packs/<name>.remorapack and the run
# report in dist/packs/<name>/report.{json,md}.
#   PACKS="fastapi httpx click"   which packs (default: these three)
#   PACK_BUDGET=12m               training time per pack (remora train --time-budget)
#   PACK_KEY=path/to/key          sign the packs with this ed25519 key
#   PACK_ARGS="..."               any further remora train options
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/remora models fetch
mkdir -p dist/packs
for name in ${PACKS:-fastapi httpx click}; do
  echo "==> training the $name pack"
  args=(--pack-dir "packs/$name" --out "dist/packs/$name.remorapack" --report-dir "dist/packs/$name"
        --time-budget "${PACK_BUDGET:-12m}")
  if [ -n "${PACK_KEY:-}" ]; then args+=(--sign "$PACK_KEY"); fi
  # shellcheck disable=SC2086
  .venv/bin/remora train "$name" "${args[@]}" ${PACK_ARGS:-}
done
