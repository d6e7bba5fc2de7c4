"""ImportGenie: find the third-party modules a document imports, from its syntax tree.

:func:`detect_imports` runs the tree-sitter queries in ``queries/<language>-imports.scm`` over a
tree and turns each match into an :class:`ImportRef`: Python ``import``/``from`` statements
anywhere in the file, ``__import__`` and ``importlib.import_module`` with a literal name;
JavaScript/TypeScript ``import``/``export ... from``, ``require`` and dynamic ``import()``
with a literal specifier. Relative imports are local code and are left out; text that merely
looks like an import (strings, comments, docstrings) never is one because only the tree is
read. :class:`ImportTracker` keeps one document's imports current after an edit by shifting the
refs the edit did not touch and re-querying only the top-level statements it did, and always
agrees with a full :func:`detect_imports` on the new tree.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal

from tree_sitter import Node, Query, QueryCursor, Tree

from remora_lsp.core.documents import ByteEdit, ChangeResult, Document
from remora_lsp.core.languages import Ecosystem, get_language
from remora_lsp.core.positions import LineIndex

__all__ = [
    "NODE_BUILTINS",
    "ImportKind",
    "ImportRef",
    "ImportTracker",
    "ScanInfo",
    "detect_imports",
    "imports_query",
    "normalize_js_specifier",
    "normalize_python_module",
    "update_imports",
]

ImportKind = Literal["import", "from", "export", "require", "dynamic"]

_QUERY_DIR = Path(__file__).with_name("queries")

# Node's core modules that may be imported without the "node:" prefix. ("test", "sqlite" and
# "sea" exist only as "node:..." and are ordinary npm names without it.)
NODE_BUILTINS = frozenset(
    {
        "assert", "async_hooks", "buffer", "child_process", "cluster", "console", "constants",
        "crypto", "dgram", "diagnostics_channel", "dns", "domain", "events", "fs", "http",
        "http2", "https", "inspector", "module", "net", "os", "path", "perf_hooks", "process",
        "punycode", "querystring", "readline", "repl", "stream", "string_decoder", "sys",
        "timers", "tls", "trace_events", "tty", "url", "util", "v8", "vm", "wasi",
        "worker_threads", "zlib",
    }
)  # fmt: skip
_BUILTIN_SCHEMES = ("node", "bun")
_EMPTY_STRING = ["string_start", "string_end"]
_PLAIN_STRING = ["string_start", "string_content", "string_end"]

_PY_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_NPM_NAME = re.compile(r"(?:@[\w.~-]+/)?[\w~-][\w.~-]*", re.ASCII)
_LINE_CONTINUATION = re.compile(rb"\\(?:\r\n|\r|\n)")


@dataclass(frozen=True, slots=True)
class ImportRef:
    """One import site.

    ``module`` is what the code asks for, normalised: a Python dotted module (``"pandas"``,
    ``"fastapi.routing"``; for ``from a.b import c`` it is ``"a.b"`` with ``names=("c",)``) or
    a JS package name with the deep path cut off (``"lodash"``, ``"@scope/pkg"``,
    ``"node:fs"``). ``alias`` is the local name bound to the module itself (``import numpy as
    np``, ``import React from 'react'``, ``const x = require('x')``), ``names`` the names taken
    from it (``"*"`` for a star import). ``start_byte``/``end_byte`` span the module name as
    written (a JS specifier with its quotes); ``line`` is its 0-based LSP line. ``builtin``
    marks the standard library (Python) and Node/Bun core modules; ``type_only`` marks
    TypeScript ``import type``/``export type``.
    """

    module: str
    alias: str | None
    ecosystem: Ecosystem
    start_byte: int
    end_byte: int
    line: int
    names: tuple[str, ...] = ()
    kind: ImportKind = "import"
    builtin: bool = False
    type_only: bool = False

    @property
    def package(self) -> str:
        """The top-level name a library is known by: ``"fastapi"`` for ``fastapi.routing``."""
        if self.ecosystem == "python":
            return self.module.split(".", 1)[0]
        return self.module


@dataclass(frozen=True, slots=True)
class ScanInfo:
    """How the last import update ran: ``"full"`` (the whole tree), ``"incremental"`` (only
    some top-level statements, ``scanned_bytes`` of them) or ``"none"`` (no tree)."""

    mode: Literal["full", "incremental", "none"]
    scanned_bytes: int


# -- normalisation --------------------------------------------------------------------------


def normalize_python_module(name: str) -> str | None:
    """``name`` if it is an absolute dotted module name, else None (relative, empty, junk)."""
    return name if _PY_MODULE.fullmatch(name) else None


def normalize_js_specifier(specifier: str) -> tuple[str, bool] | None:
    """The package a JS module specifier names and whether it is a runtime built-in.

    ``'lodash/fp'`` → ``("lodash", False)``, ``'@scope/pkg/sub'`` → ``("@scope/pkg", False)``,
    ``'node:fs/promises'`` → ``("node:fs", True)``, ``'fs'`` → ``("fs", True)``. Relative and
    absolute paths (``./x``, ``../y``, ``/abs``), package-internal ``#imports``, URLs and
    anything that is not a valid package name give None.
    """
    if not specifier or specifier.startswith((".", "/", "#", "~")):
        return None
    if ":" in specifier:
        scheme, _, rest = specifier.partition(":")
        head = rest.split("/", 1)[0]
        if scheme in _BUILTIN_SCHEMES and _NPM_NAME.fullmatch(head):
            return f"{scheme}:{head}", True
        return None
    parts = specifier.split("/")
    name = "/".join(parts[:2]) if specifier.startswith("@") else parts[0]
    if specifier.startswith("@") and (len(parts) < 2 or not parts[1]):
        return None
    if not _NPM_NAME.fullmatch(name):
        return None
    return name, name in NODE_BUILTINS


# -- queries --------------------------------------------------------------------------------


@cache
def imports_query(language: str) -> Query:
    """The compiled import query for ``language`` (loaded once from ``queries/``)."""
    if language == "python":
        names = ["python-imports.scm"]
    elif language == "javascript":
        names = ["javascript-imports.scm"]
    elif language in ("typescript", "tsx"):
        names = ["javascript-imports.scm", "typescript-imports.scm"]
    else:
        raise ValueError(f"no import query for language {language!r}")
    source = "\n".join((_QUERY_DIR / name).read_text(encoding="utf-8") for name in names)
    return Query(get_language(language), source)


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _python_string_value(node: Node) -> str | None:
    """The value of a plain Python string literal; None for f-strings, bytes, escapes."""
    kinds = [child.type for child in node.children]
    if kinds not in (
        ["string_start", "string_end"],
        ["string_start", "string_content", "string_end"],
    ):
        return None
    prefix = _text(node.children[0]).rstrip("'\"").lower()
    if prefix not in ("", "r", "u"):
        return None
    return _text(node.children[1]) if len(kinds) == 3 else ""


def _js_string_value(node: Node) -> str | None:
    """The value of a JS string or substitution-free template literal without escapes."""
    inner = node.children[1:-1]
    if any(child.type != "string_fragment" for child in inner):
        return None
    return "".join(_text(child) for child in inner)


def _newline_between(source: bytes, start: int, end: int) -> bool:
    """True when an unescaped line break separates ``start`` from ``end``."""
    gap = _LINE_CONTINUATION.sub(b"", source[start:end])
    return b"\n" in gap or b"\r" in gap


def _python_ref(
    captures: dict[str, list[Node]], source: bytes, line_of: Callable[[Node], int]
) -> ImportRef | None:
    alias: str | None = None
    names: tuple[str, ...] = ()
    kind: ImportKind
    if "dynamic" in captures:
        module_node = captures["module.string"][0]
        value = _python_string_value(module_node)
        module = normalize_python_module(value) if value is not None else None
        kind = "dynamic"
    else:
        module_node = captures["module"][0]
        module = normalize_python_module(_text(module_node))
        statement = captures["import"][0] if "import" in captures else captures["from"][0]
        keyword = statement.children[0] if statement.child_count else None
        # `import` alone on a line followed by code on the next is a half-typed statement that
        # tree-sitter glues to the next line; Python never continues a line that way.
        if keyword is not None and _newline_between(
            source, keyword.end_byte, module_node.start_byte
        ):
            return None
        if "import" in captures:
            kind = "import"
            alias = _text(captures["alias"][0]) if "alias" in captures else None
        else:
            kind = "from"
            names = _python_from_names(statement)
    if module is None:
        return None
    top = module.split(".", 1)[0]
    return ImportRef(
        module=module,
        alias=alias,
        ecosystem="python",
        start_byte=module_node.start_byte,
        end_byte=module_node.end_byte,
        line=line_of(module_node),
        names=names,
        kind=kind,
        builtin=top in sys.stdlib_module_names,
    )


def _python_from_names(statement: Node) -> tuple[str, ...]:
    names: list[str] = []
    for child in statement.children_by_field_name("name"):
        target = child.child_by_field_name("name") if child.type == "aliased_import" else child
        text = _text(target)
        if text:
            names.append(text)
    if any(child.type == "wildcard_import" for child in statement.children):
        names.append("*")
    return tuple(names)


def _js_bound_name(call: Node) -> tuple[str | None, tuple[str, ...]]:
    """What ``const <here> = require('x')`` / ``await import('x')`` binds the module to."""
    node = call
    parent = node.parent
    while parent is not None and parent.type in ("await_expression", "parenthesized_expression"):
        node, parent = parent, parent.parent
    if parent is None or parent.type != "variable_declarator":
        return None, ()
    if parent.child_by_field_name("value") != node:
        return None, ()
    target = parent.child_by_field_name("name")
    if target is None:
        return None, ()
    if target.type == "identifier":
        return _text(target), ()
    if target.type == "object_pattern":
        names: list[str] = []
        for child in target.named_children:
            if child.type == "shorthand_property_identifier_pattern":
                names.append(_text(child))
            elif child.type == "pair_pattern":
                names.append(_text(child.child_by_field_name("key")))
        return None, tuple(names)
    return None, ()


def _js_clause_names(clause: Node) -> tuple[str | None, tuple[str, ...]]:
    """Alias and names of an ``import_clause``, ``export_clause`` or ``namespace_export``."""
    alias: str | None = None
    names: list[str] = []
    for child in clause.named_children:
        if child.type == "identifier":
            alias = _text(child)
        elif child.type in ("namespace_import", "namespace_export"):
            bound = [c for c in child.named_children if c.type in ("identifier", "string")]
            alias = _text(bound[-1]) if bound else None
            names.append("*")
        elif child.type in ("named_imports", "export_clause"):
            for spec in child.named_children:
                if spec.type in ("import_specifier", "export_specifier"):
                    name = _text(spec.child_by_field_name("name"))
                    if name:
                        names.append(name)
    return alias, tuple(names)


def _js_ref(captures: dict[str, list[Node]], line_of: Callable[[Node], int]) -> ImportRef | None:
    module_node = captures["module.string"][0]
    value = _js_string_value(module_node)
    normalized = normalize_js_specifier(value) if value is not None else None
    if normalized is None:
        return None
    module, builtin = normalized
    alias: str | None = None
    names: tuple[str, ...] = ()
    type_only = False
    kind: ImportKind
    if "import" in captures or "export" in captures:
        kind = "import" if "import" in captures else "export"
        statement = captures[kind][0]
        type_only = any(child.type == "type" for child in statement.children)
        for child in statement.named_children:
            if child.type in ("import_clause", "export_clause", "namespace_export"):
                clause = child if child.type == "import_clause" else statement
                alias, names = _js_clause_names(clause)
                break
            if child.type == "import_require_clause":
                bound = child.named_children
                alias = _text(bound[0]) if bound and bound[0].type == "identifier" else None
                break
        if kind == "export" and not names and any(c.type == "*" for c in statement.children):
            names = ("*",)
    else:
        kind = "require" if "require" in captures else "dynamic"
        alias, names = _js_bound_name(captures[kind][0])
    return ImportRef(
        module=module,
        alias=alias,
        ecosystem="js",
        start_byte=module_node.start_byte,
        end_byte=module_node.end_byte,
        line=line_of(module_node),
        names=names,
        kind=kind,
        builtin=builtin,
        type_only=type_only,
    )


def _line_resolver(source: bytes, line_index: LineIndex | None) -> Callable[[Node], int]:
    if line_index is not None:
        index = line_index
        return lambda node: index.line_of(node.start_byte)
    if b"\r" not in source:
        # Without "\r", tree-sitter rows and LSP lines are the same thing.
        return lambda node: node.start_point.row
    built = LineIndex(source)
    return lambda node: built.line_of(node.start_byte)


def _run_query(
    tree: Tree,
    source: bytes,
    language: str,
    spans: Sequence[tuple[int, int]] | None,
    line_index: LineIndex | None,
) -> list[ImportRef]:
    """Refs whose module name starts inside one of ``spans`` (the whole tree when None)."""
    query = imports_query(language)
    line_of = _line_resolver(source, line_index)
    python = language == "python"
    root = tree.root_node
    found: dict[tuple[int, int], ImportRef] = {}
    for span in spans if spans is not None else [None]:
        cursor = QueryCursor(query)
        if span is not None:
            cursor.set_byte_range(span[0], span[1])
        for _, captures in cursor.matches(root):
            ref = _python_ref(captures, source, line_of) if python else _js_ref(captures, line_of)
            if ref is None:
                continue
            if span is not None and not span[0] <= ref.start_byte < span[1]:
                continue
            found.setdefault((ref.start_byte, ref.end_byte), ref)
    return sorted(found.values(), key=lambda ref: (ref.start_byte, ref.end_byte))


def detect_imports(
    tree: Tree, source: bytes, language: str, *, line_index: LineIndex | None = None
) -> list[ImportRef]:
    """Every import site in ``tree``, in document order, one ref per module-name position.

    ``source`` must be the bytes ``tree`` was parsed from and ``language`` its grammar name
    (``python``, ``javascript``, ``typescript``, ``tsx``). Pass the document's ``line_index``
    to skip rebuilding one when the text contains ``\\r``.
    """
    return _run_query(tree, source, language, None, line_index)


# -- incremental update ---------------------------------------------------------------------


def _shift(refs: Iterable[ImportRef], edit: ByteEdit) -> list[ImportRef]:
    """Move refs across one edit; refs the edit overlaps are gone."""
    out: list[ImportRef] = []
    for ref in refs:
        if ref.end_byte <= edit.start:
            out.append(ref)
        elif ref.start_byte >= edit.old_end:
            out.append(
                replace(
                    ref,
                    start_byte=ref.start_byte + edit.delta,
                    end_byte=ref.end_byte + edit.delta,
                )
            )
    return out


def _statement_spans(root: Node, regions: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merged spans of the top-level statements that overlap or touch any region."""
    spans: list[tuple[int, int]] = []
    for start, end in regions:
        # A cursor, not Node.first_child_for_byte: on a childless root that one hands back a
        # null node that crashes the interpreter when touched (tree-sitter 0.25/0.26 binding).
        cursor = root.walk()
        if cursor.goto_first_child_for_byte(max(start - 1, 0)) is None:
            continue
        while True:
            child = cursor.node
            if child is None or child.start_byte > end:
                break
            if child.end_byte >= start:
                spans.append((child.start_byte, child.end_byte))
            if not cursor.goto_next_sibling():
                break
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def update_imports(
    old: Sequence[ImportRef],
    edits: Sequence[ByteEdit],
    regions: Sequence[tuple[int, int]],
    tree: Tree,
    source: bytes,
    language: str,
    *,
    line_index: LineIndex | None = None,
    full_scan_fraction: float = 0.5,
) -> tuple[list[ImportRef], ScanInfo]:
    """The imports of ``tree`` computed from the imports before ``edits``.

    ``old`` are the refs of the text before the edits, ``edits`` the byte edits in the order
    applied and ``regions`` every span of the new text that may differ (inserted bytes and
    the tree's changed ranges). Refs outside the edits are shifted; the top-level statements
    that overlap a region are queried again (``QueryCursor.set_byte_range``). When those
    statements cover more than ``full_scan_fraction`` of the text, the whole tree is queried.
    """
    refs: list[ImportRef] = list(old)
    for edit in edits:
        refs = _shift(refs, edit)
    spans = _statement_spans(tree.root_node, regions)
    scanned = sum(end - start for start, end in spans)
    if scanned > full_scan_fraction * max(len(source), 1):
        return detect_imports(tree, source, language, line_index=line_index), ScanInfo(
            "full", len(source)
        )
    starts = [start for start, _ in spans]

    def untouched(ref: ImportRef) -> bool:
        i = bisect_left(starts, ref.start_byte + 1) - 1
        return i < 0 or not spans[i][0] <= ref.start_byte < spans[i][1]

    index = line_index if line_index is not None else LineIndex(source)
    kept = []
    for ref in refs:
        if untouched(ref):
            line = index.line_of(ref.start_byte)
            kept.append(ref if ref.line == line else replace(ref, line=line))
    fresh = _run_query(tree, source, language, spans, index) if spans else []
    merged = sorted([*kept, *fresh], key=lambda ref: (ref.start_byte, ref.end_byte))
    return merged, ScanInfo("incremental", scanned)


class ImportTracker:
    """The imports of one open document, kept current edit by edit.

    Call :meth:`reset` with the opened document, then :meth:`update` with every
    :class:`~remora_lsp.core.documents.ChangeResult` of that document, in order. A document
    without a tree (binary, too large, unsupported) has no imports.
    """

    def __init__(self, *, full_scan_fraction: float = 0.5) -> None:
        self.full_scan_fraction = full_scan_fraction
        self._imports: tuple[ImportRef, ...] = ()
        self._last = ScanInfo("none", 0)

    @property
    def imports(self) -> tuple[ImportRef, ...]:
        """The current refs, in document order."""
        return self._imports

    @property
    def last_scan(self) -> ScanInfo:
        """How the last :meth:`reset` or :meth:`update` computed the refs."""
        return self._last

    def reset(self, document: Document) -> tuple[ImportRef, ...]:
        """Scan ``document`` fully and remember its imports."""
        if document.tree is None or document.language is None:
            self._imports, self._last = (), ScanInfo("none", 0)
        else:
            self._imports = tuple(
                detect_imports(
                    document.tree,
                    document.text,
                    document.language,
                    line_index=document.line_index,
                )
            )
            self._last = ScanInfo("full", len(document.text))
        return self._imports

    def update(self, result: ChangeResult) -> tuple[ImportRef, ...]:
        """Bring the imports up to date with one change batch of the tracked document."""
        document = result.document
        if document.tree is None or document.language is None:
            self._imports, self._last = (), ScanInfo("none", 0)
            return self._imports
        if not result.edits and document.tree is result.previous.tree:
            self._last = ScanInfo("incremental", 0)
            return self._imports
        if not result.incremental:
            return self.reset(document)
        refs, self._last = update_imports(
            self._imports,
            result.edits,
            [*result.edited_ranges, *result.changed_ranges],
            document.tree,
            document.text,
            document.language,
            line_index=document.line_index,
            full_scan_fraction=self.full_scan_fraction,
        )
        self._imports = tuple(refs)
        return self._imports
