#!/usr/bin/env bash
# Builds the VS Code extension: type-checks and unit-tests the TypeScript, bundles the client
# library into dist/extension.js (so the .vsix needs no node_modules), and packages
# editors/vscode/remora.vsix. Needs Node >= 20 and npm; only `npm ci` touches the network, and
# `--no-install` skips it (offline rebuild with the node_modules already present).
set -euo pipefail
install=1
if [ "${1:-}" = "--no-install" ]; then
  install=0
fi
cd "$(dirname "$0")/../editors/vscode"

if ! command -v npm >/dev/null; then
  echo "build-vscode: npm is not installed; install Node.js >= 20 to build the extension" >&2
  exit 1
fi

if [ "$install" = 1 ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
elif [ ! -d node_modules ]; then
  echo "build-vscode: --no-install given but editors/vscode/node_modules is missing" >&2
  exit 1
fi
echo "==> tsc + unit tests"
npx --no-install tsc -p .
node --test --test-reporter=spec out/test/
echo "==> bundle"
npx --no-install esbuild src/extension.ts --bundle --platform=node --format=cjs --target=node20 \
  --external:vscode --log-level=warning --outfile=dist/extension.js
echo "==> package"
rm -f remora.vsix
npx --no-install vsce package --no-dependencies --skip-license -o remora.vsix
echo "built $(pwd)/remora.vsix"
