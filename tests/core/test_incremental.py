"""Incremental updates equal fresh work: random LSP edit sequences against a reference model.

After every change batch, the store's bytes must equal the reference text, its line tables and
tree must equal ones built from scratch, and every ImportTracker must equal a fresh
``detect_imports``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_sitter import Node, Tree

from remora_lsp.core.documents import DocumentStore, TextChange
from remora_lsp.core.imports import ImportTracker, detect_imports
from remora_lsp.core.languages import new_parser
from remora_lsp.core.positions import LineIndex
from tests.core.reference import apply_change

URIS = {
    "python": "file:///w/m.py",
    "javascript": "file:///w/m.js",
    "typescript": "file:///w/m.ts",
    "tsx": "file:///w/m.tsx",
}

TOKENS = [
    "a", "Z", "_", "1", " ", "    ", "\n", "\r\n", "\r", ".", ",", ":", ";", "=",
    "(", ")", "{", "}", "<", ">", "'", '"', "'''", "`", "#", "//", "/*", "*/", "\\",
    "import pandas\n", "import numpy as np\n", "from a.b import c\n", "from . import x\n",
    "import ", "from ", "os", "def f(:\n", "class A:\n", "x = 1\n", "try:\n",
    "except ImportError:\n",
    "__import__('yaml')\n", "importlib.import_module('rich')\n",
    "require('lodash/fp')\n", "const m = require('x');\n", "import('y');\n",
    "import z from '@s/p/q';\n", "export * from 'e';\n", "import type {T} from 't';\n",
    "<div>", "</div>", "中文", "日本", "😀", "🎉", "é",
]  # fmt: skip

token_text = st.lists(st.sampled_from(TOKENS), max_size=24).map("".join)
position = st.tuples(st.integers(0, 16), st.integers(0, 40))
ranged_change = st.builds(
    lambda start, end, text: TextChange((start, end), text), position, position, token_text
)
full_change = st.builds(lambda text: TextChange(None, text), token_text)
# Mostly ranged edits (insert: start == end, delete: empty text, replace), rarely a full text.
changes = st.lists(
    st.one_of(ranged_change, ranged_change, ranged_change, ranged_change, full_change),
    min_size=1,
    max_size=4,
)


def shape(tree: Tree) -> list[tuple[Any, ...]]:
    """Every node with its kind and exact byte and point span, in pre-order."""
    out: list[tuple[Any, ...]] = []
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        start, end = tuple(node.start_point), tuple(node.end_point)
        out.append((node.type, node.is_missing, node.start_byte, node.end_byte, start, end))
        stack.extend(reversed(node.children))
    return out


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    language=st.sampled_from(sorted(URIS)),
    initial=token_text,
    batches=st.lists(changes, min_size=1, max_size=8),
)
def test_incremental_equals_fresh(
    language: str, initial: str, batches: list[list[TextChange]]
) -> None:
    uri = URIS[language]
    store = DocumentStore()
    parser = new_parser(language)
    document = store.open(uri, None, 1, initial)
    default = ImportTracker()
    forced = ImportTracker(full_scan_fraction=float("inf"))  # never falls back to a full scan
    default.reset(document)
    forced.reset(document)
    expected_text = initial
    for version, batch in enumerate(batches, start=2):
        for item in batch:
            expected_text = apply_change(expected_text, item)
        result = store.change(uri, version, batch)
        document = result.document
        assert document.text == expected_text.encode()

        rebuilt = LineIndex(document.text)
        assert document.line_index.line_starts == rebuilt.line_starts
        assert document.line_index.row_starts == rebuilt.row_starts

        fresh = parser.parse(document.text)
        assert document.tree is not None
        assert str(document.tree.root_node) == str(fresh.root_node)
        assert shape(document.tree) == shape(fresh)

        expected_imports = tuple(detect_imports(fresh, document.text, language))
        assert default.update(result) == expected_imports
        assert forced.update(result) == expected_imports


def big_module(functions: int = 400) -> str:
    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(functions))
    return "import os\nimport numpy as np\n\n" + body + "import pandas\n"


def test_tracker_rescans_only_the_edited_statement() -> None:
    store = DocumentStore()
    tracker = ImportTracker()
    tracker.reset(store.open(URIS["python"], "python", 1, big_module()))
    assert [r.module for r in tracker.imports] == ["os", "numpy", "pandas"]
    # Add an import inside f200's body: the lines after it move down by one.
    line = 3 + 200 * 3 + 1
    result = store.change(
        URIS["python"], 2, [TextChange(((line, 0), (line, 0)), "    import rich\n")]
    )
    refs = tracker.update(result)
    assert tracker.last_scan.mode == "incremental"
    assert 0 < tracker.last_scan.scanned_bytes < 100
    assert [(r.module, r.line) for r in refs] == [
        ("os", 0),
        ("numpy", 1),
        ("rich", line),
        ("pandas", 3 + 400 * 3 + 1),
    ]
    document = result.document
    assert document.tree is not None
    assert refs == tuple(detect_imports(document.tree, document.text, "python"))


def test_tracker_falls_back_to_a_full_scan_for_large_edits() -> None:
    store = DocumentStore()
    tracker = ImportTracker()
    tracker.reset(store.open(URIS["python"], "python", 1, big_module()))
    # Pasting two more copies of the module in the middle is most of the new text.
    paste = big_module() * 2
    result = store.change(URIS["python"], 2, [TextChange(((2, 0), (2, 0)), paste)])
    modules = [r.module for r in tracker.update(result)]
    assert modules == ["os", "numpy", *["os", "numpy", "pandas"] * 2, "pandas"]
    assert tracker.last_scan.mode == "full"


def test_tracker_follows_unparsed_documents() -> None:
    store = DocumentStore(max_bytes=64)
    tracker = ImportTracker()
    tracker.reset(store.open(URIS["javascript"], None, 1, "import a from 'a';\n"))
    assert [r.module for r in tracker.imports] == ["a"]
    grown = store.change(URIS["javascript"], 2, [TextChange(((1, 0), (1, 0)), "//" * 40)])
    assert tracker.update(grown) == ()
    assert tracker.last_scan.mode == "none"
    shrunk = store.change(URIS["javascript"], 3, [TextChange(((1, 0), (1, 80)), "")])
    assert [r.module for r in tracker.update(shrunk)] == ["a"]
    assert tracker.last_scan.mode == "full"


def test_tracker_keeps_refs_when_nothing_changed() -> None:
    store = DocumentStore()
    tracker = ImportTracker()
    before = tracker.reset(store.open(URIS["tsx"], None, 1, "import r from 'react';\n"))
    result = store.change(URIS["tsx"], 2, [])
    assert tracker.update(result) == before
