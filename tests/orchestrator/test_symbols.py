"""read_symbol: tree-sitter lookup of definitions across the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.orchestrator.symbols import find_symbol, module_for
from tests.orchestrator.conftest import SAMPLE


def test_finds_the_user_model_in_the_sample_project() -> None:
    [match] = find_symbol(SAMPLE, "User")
    assert (match.kind, match.file, match.line, match.module) == (
        "class",
        "app/models.py",
        5,
        "app.models",
    )
    assert match.import_line == "from app.models import User"
    assert match.excerpt.startswith("class User(BaseModel):")
    assert "email: EmailStr" in match.excerpt


def test_functions_and_unknown_names() -> None:
    [match] = find_symbol(SAMPLE, "display_name")
    assert match.kind == "function"
    assert find_symbol(SAMPLE, "Nothing") == []
    assert find_symbol(SAMPLE, "not a name") == []


def test_skips_vendored_folders_and_big_files(workspace: Path) -> None:
    for folder in (".venv/lib", "node_modules/pkg", ".git"):
        (workspace / folder).mkdir(parents=True)
        (workspace / folder / "models.py").write_text("class User:\n    pass\n")
    (workspace / "huge.py").write_text("class User:\n    pass\n" + "#" * 600_000)
    assert [m.file for m in find_symbol(workspace, "User")] == ["app/models.py"]


def test_methods_js_and_ts(workspace: Path) -> None:
    (workspace / "app" / "service.py").write_text(
        "class Service:\n    def User(self):\n        return 1\n"
    )
    (workspace / "web").mkdir()
    (workspace / "web" / "user.ts").write_text("export interface User { id: number }\n")
    (workspace / "web" / "api.js").write_text("export class User {}\n")
    found = {(m.file, m.kind, m.module) for m in find_symbol(workspace, "User")}
    assert found == {
        ("app/models.py", "class", "app.models"),
        ("app/service.py", "method", "app.service"),
        ("web/user.ts", "interface", "./web/user"),
        ("web/api.js", "class", "./web/api"),
    }
    assert find_symbol(workspace, "User")[0].file == "app/models.py"


@pytest.mark.parametrize(
    ("path", "language", "module"),
    [
        ("app/models.py", "python", "app.models"),
        ("src/shop/models.py", "python", "shop.models"),
        ("shop/__init__.py", "python", "shop"),
        ("web/user.ts", "typescript", "./web/user"),
    ],
)
def test_module_for(path: str, language: str, module: str) -> None:
    assert module_for(path, language) == module
