"""Workspace symbol lookup with tree-sitter: where is ``User`` defined and how is it imported?

:func:`find_symbol` walks a workspace's Python, JavaScript and TypeScript files (skipping
``.git``, ``node_modules``, virtual environments, caches and files over a size limit), parses
only the files whose text mentions the name, and returns each class or function definition with
its file, line, kind, a source excerpt and the module to import it from (``app.models`` for
``app/models.py``; ``./app/models`` for a JS/TS file). It is the ``read_symbol`` tool's engine
and the scaffold's source of correct imports. The walk is bounded (files, bytes, matches) so a
huge workspace costs a bounded amount of time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tree_sitter import Node

from remora_lsp.core.languages import language_for, new_parser

__all__ = ["SKIP_DIRS", "SymbolMatch", "find_symbol", "module_for"]

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".nox",
        "dist",
        "build",
        "site-packages",
    }
)
MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 5000
MAX_EXCERPT_LINES = 20

_DEFINITIONS = {
    "class_definition": "class",
    "function_definition": "function",
    "class_declaration": "class",
    "abstract_class_declaration": "class",
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "method_definition": "method",
}
_CLASS_NODES = frozenset({"class_definition", "class_declaration", "abstract_class_declaration"})


@dataclass(frozen=True)
class SymbolMatch:
    """One definition of the looked-up name. ``line`` is 0-based."""

    name: str
    kind: str
    file: str
    line: int
    module: str
    language: str
    excerpt: str

    @property
    def import_line(self) -> str:
        """The statement that imports the symbol from a sibling module of the workspace."""
        if self.language == "python":
            return f"from {self.module} import {self.name}"
        return f"import {{ {self.name} }} from '{self.module}';"

    def to_data(self) -> dict[str, Any]:
        """JSON-able form, as the ``read_symbol`` tool returns it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "module": self.module,
            "language": self.language,
            "import": self.import_line,
            "excerpt": self.excerpt,
        }


def module_for(relpath: str, language: str) -> str:
    """The import path of a workspace file: ``app/models.py`` → ``app.models``.

    A leading ``src/`` folder (the src layout) is not part of the module; ``__init__.py`` names
    its package. JS/TS files get a relative specifier without extension (``./app/models``).
    """
    path = PurePosixPath(relpath)
    if language != "python":
        stem = path.with_suffix("").as_posix()
        return stem if stem.startswith(".") else f"./{stem}"
    parts = list(path.with_suffix("").parts)
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _walk(root: Path, max_files: int) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if language_for(name, None) is not None:
                found.append(Path(current) / name)
                if len(found) >= max_files:
                    return found
    return found


def _name_of(node: Node) -> str | None:
    name = node.child_by_field_name("name")
    if name is None or name.text is None:
        return None
    return name.text.decode("utf-8", "replace")


def _definitions(root: Node, name: str) -> list[tuple[Node, str]]:
    found: list[tuple[Node, str]] = []
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, in_class = stack.pop()
        kind = _DEFINITIONS.get(node.type)
        if kind is not None and _name_of(node) == name:
            if kind == "function" and in_class:
                kind = "method"
            found.append((node, kind))
        inner = in_class or node.type in _CLASS_NODES
        if node.type in ("function_definition", "function_declaration"):
            inner = False  # a function nested in a method is not a method
        stack.extend((child, inner) for child in reversed(node.children))
    return found


def find_symbol(
    root: Path,
    name: str,
    *,
    max_matches: int = 10,
    max_files: int = MAX_FILES,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> list[SymbolMatch]:
    """Every class/function/interface definition called ``name`` under ``root``.

    Classes come first, then shallower files, then by path; test files last.
    """
    if not name or not name.replace("_", "a").replace("$", "a").isalnum():
        return []
    needle = name.encode("utf-8")
    matches: list[SymbolMatch] = []
    parsers: dict[str, Any] = {}
    for path in _walk(root, max_files):
        try:
            if path.stat().st_size > max_file_bytes:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if needle not in data:
            continue
        language = language_for(path.name, None)
        if language is None:
            continue
        parser = parsers.get(language) or parsers.setdefault(language, new_parser(language))
        tree = parser.parse(data)
        rel = path.relative_to(root).as_posix()
        lines = data.decode("utf-8", "replace").splitlines()
        for node, kind in _definitions(tree.root_node, name):
            start = node.start_point[0]
            if node.parent is not None and node.parent.type == "decorated_definition":
                start = node.parent.start_point[0]
            end = min(node.end_point[0], start + MAX_EXCERPT_LINES - 1)
            matches.append(
                SymbolMatch(
                    name=name,
                    kind=kind,
                    file=rel,
                    line=node.start_point[0],
                    module=module_for(rel, language),
                    language=language,
                    excerpt="\n".join(lines[start : end + 1]),
                )
            )
    matches.sort(
        key=lambda m: (
            m.kind not in ("class", "interface"),
            "test" in m.file.lower(),
            m.file.count("/"),
            m.file,
            m.line,
        )
    )
    return matches[:max_matches]
