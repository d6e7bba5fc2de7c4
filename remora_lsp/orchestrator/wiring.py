"""Edits to existing files that connect newly scaffolded code to the application.

A new file is only useful once the application uses it. :func:`wiring_edits` applies a small
table of rules to the scaffold's new files and proposes insertions into files that already
exist; today one rule: a new Python module that defines ``router = APIRouter(...)`` is
imported into the module that creates the ``FastAPI()`` application (the current file if it
does, else ``app/main.py``, ``main.py``, ``src/main.py``) and registered with
``app.include_router(...)``. Each proposal is checked by parsing the edited file with
tree-sitter; a rule that does not apply, or whose result would not parse, proposes nothing.
The edits are values (:class:`TextInsert`); the server turns them into LSP text edits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from remora_lsp.core.languages import new_parser
from remora_lsp.orchestrator.symbols import module_for

__all__ = ["TextInsert", "apply_inserts", "wiring_edits"]

_ROUTER_RE = re.compile(r"^router\s*=\s*APIRouter\(", re.MULTILINE)
_APP_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*FastAPI\(", re.MULTILINE)
APP_FILES = ("app/main.py", "main.py", "src/main.py", "app/__init__.py")


@dataclass(frozen=True)
class TextInsert:
    """Insert ``text`` at the start of 0-based ``line`` of the existing file ``path``.

    ``line`` may equal the file's line count: the text is then appended at the end.
    """

    path: str
    line: int
    text: str
    reason: str = ""


def apply_inserts(content: str, inserts: Sequence[TextInsert]) -> str:
    """``content`` with the inserts applied (bottom first, so line numbers hold)."""
    lines = content.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for insert in sorted(inserts, key=lambda i: -i.line):
        lines.insert(min(insert.line, len(lines)), insert.text)
    return "".join(lines)


def _import_line(content: str) -> int:
    """The line after the last top-level import (or after the module docstring)."""
    tree = new_parser("python").parse(content.encode("utf-8"))
    after = 0
    imports = ("import_statement", "import_from_statement", "future_import_statement")
    for index, node in enumerate(tree.root_node.children):
        docstring = (
            index == 0
            and node.type == "expression_statement"
            and bool(node.children)
            and node.children[0].type == "string"
        )
        if node.type in imports or docstring:
            after = node.end_point[0] + 1
    return after


def _parses(content: str) -> bool:
    return not new_parser("python").parse(content.encode("utf-8")).root_node.has_error


def wiring_edits(
    new_files: Sequence[tuple[str, str]],
    read: Callable[[str], str | None],
    *,
    current_path: str | None = None,
) -> list[TextInsert]:
    """Insertions into existing files for the new files ``(path, content)``.

    ``read(relpath)`` returns an existing file's text or None; ``current_path`` is the file
    the request came from (workspace-relative), tried first as the application module.
    """
    edits: list[TextInsert] = []
    new_paths = {path for path, _ in new_files}
    candidates = [p for p in (current_path, *APP_FILES) if p and p.endswith(".py")]
    for path, content in new_files:
        if not path.endswith(".py") or not _ROUTER_RE.search(content):
            continue
        for app_path in dict.fromkeys(candidates):
            if app_path in new_paths:
                continue
            app_text = read(app_path)
            if app_text is None:
                continue
            found = _APP_RE.search(app_text)
            if found is None:
                continue
            module = module_for(path, "python")
            parent, _, stem = module.rpartition(".")
            alias = f"{stem}_router"
            if module in app_text or f"{alias}.router" in app_text:
                break
            import_text = (
                f"from {parent} import {stem} as {alias}\n"
                if parent
                else f"import {stem} as {alias}\n"
            )
            app = found.group(1)
            lines = app_text.splitlines()
            proposed = [
                TextInsert(app_path, _import_line(app_text), import_text, f"import {module}"),
                TextInsert(
                    app_path,
                    len(lines),
                    f"\n{app}.include_router({alias}.router)\n",
                    f"register the {stem} router with {app}",
                ),
            ]
            if _parses(apply_inserts(app_text, proposed)):
                edits.extend(proposed)
            break
    return edits
