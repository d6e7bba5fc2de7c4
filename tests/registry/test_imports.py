"""The registry keeps heavy libraries out of module level (``remora --help`` stays fast) and
never imports the language server package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "remora_lsp"
MODULES = [*sorted((ROOT / "registry").glob("*.py")), ROOT / "cli" / "registry.py"]
HEAVY = {"fastapi", "starlette", "uvicorn", "httpx", "boto3", "botocore", "anyio"}


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks do not run
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_heavy_imports_at_module_level(path: Path) -> None:
    imported = top_level_imports(path)
    assert not {n for n in imported if n.split(".")[0] in HEAVY}
    assert not {n for n in imported if n.startswith(("remora_lsp.server", "pygls", "lsprotocol"))}
