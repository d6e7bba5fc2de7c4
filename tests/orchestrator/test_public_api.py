"""The package's public names all resolve, and importing it pulls in no LSP or model library."""

from __future__ import annotations

import subprocess
import sys

import remora_lsp.orchestrator as orchestrator


def test_every_exported_name_exists() -> None:
    assert sorted(orchestrator.__all__) == orchestrator.__all__
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, remora_lsp.orchestrator\n"
        "heavy = {'pygls', 'lsprotocol', 'torch', 'vllm', 'transformers', 'numpy', 'faiss'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
