"""Architecture invariants, checked by walking every module's imports with ``ast``.

1. Only ``remora_lsp/server/`` imports pygls or lsprotocol.
2. Nothing below the server (everything but ``server/`` and ``cli/``) imports ``remora_lsp.server``.
3. ``remora_lsp/core/`` depends only on the standard library, tree-sitter, config and errors.
4. Heavy libraries are imported lazily (inside functions), never at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "remora_lsp"
HEAVY = {"torch", "vllm", "faiss", "transformers", "peft", "sentence_transformers", "numpy"}
CORE_ALLOWED_REMORA = {"remora_lsp.core", "remora_lsp.config", "remora_lsp.errors"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_there_are_modules_to_check() -> None:
    assert len(modules()) > 10


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_only_server_speaks_lsp(path: Path) -> None:
    if rel(path).startswith("server/"):
        return
    for name, _ in imports(path):
        assert name.split(".")[0] not in {"pygls", "lsprotocol"}, f"{rel(path)} imports {name}"


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_nothing_below_imports_the_server(path: Path) -> None:
    if rel(path).startswith(("server/", "cli/")):
        return
    for name, _ in imports(path):
        assert not name.startswith("remora_lsp.server"), f"{rel(path)} imports {name}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").rglob("*.py")), ids=rel)
def test_core_is_pure(path: Path) -> None:
    for name, _ in imports(path):
        if name.startswith("remora_lsp"):
            assert any(name.startswith(p) for p in CORE_ALLOWED_REMORA), f"{rel(path)}: {name}"


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_heavy_libraries_are_lazy(path: Path) -> None:
    for name, top_level in imports(path):
        if name.split(".")[0] in HEAVY:
            assert not top_level, f"{rel(path)} imports {name} at module level"
