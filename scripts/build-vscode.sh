#!/usr/bin/env bash
# Builds the VS Code extension: type-checks and unit-tests the TypeScript, bundles the client
# library into dist/extension.js (so the .vsix needs no node_modules), and packages
# editors/vscode/remora.vsix. Needs Node >= 20 and npm; only `npm ci` touches the network.
set -euo pipefail
cd "$(dirname "$0")/../editors/vscode"

if ! command -v npm >/dev/null; then
  echo "build-vscode: npm is not installed; install Node.js >= 20 to build the extension" >&2
  exit 1
fi

echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error
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
