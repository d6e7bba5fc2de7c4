"""DocumentStore: applying LSP changes to bytes and trees, and documents that are not parsed."""

from __future__ import annotations

import logging

import pytest

from remora_lsp.core.documents import (
    BINARY,
    UNSUPPORTED_LANGUAGE,
    ByteEdit,
    DocumentStore,
    TextChange,
    UnknownDocumentError,
)
from remora_lsp.core.languages import language_for, new_parser

URI = "file:///w/a.py"


def at(line: int, character: int) -> tuple[int, int]:
    return (line, character)


def test_open_parses_and_indexes() -> None:
    store = DocumentStore()
    doc = store.open(URI, "python", 1, "import os\nx = 1\n")
    assert doc.parsed and doc.skip_reason is None
    assert doc.language == "python" and doc.version == 1
    assert doc.text == b"import os\nx = 1\n"
    assert doc.line_index.line_count == 3
    assert store.get(URI) is doc
    assert URI in store and len(store) == 1 and list(store) == [doc]


def test_incremental_change_matches_fresh_parse() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "import os\n\ndef f():\n    return 1\n")
    result = store.change(URI, 2, [TextChange((at(3, 11), at(3, 12)), "😀 + 2")])
    doc = result.document
    assert doc.text == "import os\n\ndef f():\n    return 😀 + 2\n".encode()
    assert doc.version == 2
    assert result.incremental
    assert result.edits == (ByteEdit(31, 32, 39),)
    assert result.edited_ranges == ((31, 39),)
    fresh = new_parser("python").parse(doc.text)
    assert doc.tree is not None
    assert str(doc.tree.root_node) == str(fresh.root_node)


def test_batch_edits_apply_in_order_and_ranges_merge() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "abc\ndef\n")
    changes = [
        TextChange((at(1, 0), at(1, 0)), "XY"),  # "abc\nXYdef\n"
        TextChange((at(0, 1), at(0, 2)), ""),  # "ac\nXYdef\n"
        TextChange((at(1, 2), at(1, 2)), "中"),  # "ac\nXY中def\n"
    ]
    result = store.change(URI, 2, changes)
    assert result.document.text == "ac\nXY中def\n".encode()
    assert result.edits == (ByteEdit(4, 4, 6), ByteEdit(1, 2, 1), ByteEdit(5, 5, 8))
    # The deletion is an empty span; the two insertions touch and merge.
    assert result.edited_ranges == ((1, 1), (3, 8))


def test_snapshots_are_not_mutated_by_later_changes() -> None:
    store = DocumentStore()
    old = store.open(URI, "python", 1, "import os\n")
    assert old.tree is not None
    before = str(old.tree.root_node)
    store.change(URI, 2, [TextChange((at(0, 0), at(0, 0)), "x = (\n")])
    assert old.text == b"import os\n"
    assert str(old.tree.root_node) == before
    assert not old.tree.root_node.has_changes


def test_bad_client_ranges_clamp() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "ab\ncd")
    # Past the end of the document: appends.
    doc = store.change(URI, 2, [TextChange((at(9, 9), at(12, 0)), "!")]).document
    assert doc.text == b"ab\ncd!"
    # Reversed range: swapped.
    doc = store.change(URI, 3, [TextChange((at(1, 1), at(0, 1)), "")]).document
    assert doc.text == b"ad!"
    # Negative numbers: the start of the document.
    doc = store.change(URI, 4, [TextChange((at(-4, -1), at(0, 0)), ">")]).document
    assert doc.text == b">ad!"


def test_full_replacement() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "import os\n")
    result = store.change(URI, 2, [TextChange(None, "import re\nimport sys\n")])
    assert result.document.text == b"import re\nimport sys\n"
    assert not result.incremental
    assert result.changed_ranges == ((0, 21),)
    assert result.edited_ranges == ((0, 21),)


def test_empty_change_keeps_the_tree() -> None:
    store = DocumentStore()
    doc = store.open(URI, "python", 1, "x = 1\n")
    result = store.change(URI, 2, [TextChange((at(0, 1), at(0, 1)), "")])
    assert result.edits == ()
    assert result.document.tree is doc.tree
    assert result.document.version == 2


def test_unknown_uri() -> None:
    store = DocumentStore()
    with pytest.raises(UnknownDocumentError) as info:
        store.change("file:///nope.py", 1, [])
    assert isinstance(info.value, KeyError)
    assert "not open" in str(info.value)
    assert store.get("file:///nope.py") is None
    assert store.close("file:///nope.py") is None


def test_close() -> None:
    store = DocumentStore()
    doc = store.open(URI, "python", 1, "x\n")
    assert store.close(URI) is doc
    assert store.get(URI) is None and len(store) == 0


@pytest.mark.parametrize("text", ["a\x00b = 1\n", "x = '\ud800'\n"])
def test_binary_is_tracked_not_parsed(text: str) -> None:
    store = DocumentStore()
    doc = store.open(URI, "python", 1, text)
    assert doc.tree is None and doc.skip_reason == BINARY
    # Still tracked: changes apply to the bytes.
    doc = store.change(URI, 2, [TextChange((at(0, 0), at(0, 0)), "# ")]).document
    assert doc.text.startswith(b"# ") and doc.skip_reason == BINARY


def test_removing_the_nul_byte_parses_again() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "a\x00b\n")
    result = store.change(URI, 2, [TextChange((at(0, 1), at(0, 2)), "")])
    assert result.document.skip_reason is None and result.document.parsed
    assert not result.incremental


def test_too_large_then_shrink_back() -> None:
    store = DocumentStore(max_bytes=64)
    doc = store.open(URI, "python", 1, "import os\n")
    assert doc.parsed
    grown = store.change(URI, 2, [TextChange((at(1, 0), at(1, 0)), "x = 1\n" * 20)])
    assert grown.document.tree is None
    assert grown.document.skip_reason == f"too large ({10 + 120} bytes > 64)"
    assert grown.changed_ranges == ()
    shrunk = store.change(URI, 3, [TextChange((at(1, 0), at(21, 0)), "")])
    assert shrunk.document.text == b"import os\n"
    assert shrunk.document.parsed and shrunk.document.skip_reason is None
    assert not shrunk.incremental


def test_unsupported_language() -> None:
    store = DocumentStore()
    doc = store.open("file:///w/notes.md", "markdown", 1, "# import os\n")
    assert doc.language is None and doc.tree is None
    assert doc.skip_reason == UNSUPPORTED_LANGUAGE


def test_skipped_documents_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    store = DocumentStore(max_bytes=16)
    caplog.set_level(logging.DEBUG, logger="remora_lsp.core.documents")
    store.open(URI, "python", 1, "x" * 40)
    for version in range(2, 6):
        store.change(URI, version, [TextChange((at(0, 0), at(0, 0)), "y")])
    too_large = [r for r in caplog.records if "too large" in r.getMessage()]
    assert len(too_large) == 1 and too_large[0].levelno == logging.INFO


def test_tree_points_agree_with_line_index() -> None:
    store = DocumentStore()
    doc = store.open(URI, "python", 1, "a = '😀'\rb = '中'\r\nc = 3\n")
    assert doc.tree is not None
    stack = [doc.tree.root_node]
    while stack:
        node = stack.pop()
        assert doc.line_index.point_at(node.start_byte) == tuple(node.start_point)
        assert doc.line_index.point_at(node.end_byte) == tuple(node.end_point)
        stack.extend(node.children)


@pytest.mark.parametrize(
    ("uri", "language_id", "expected"),
    [
        ("file:///a.py", None, "python"),
        ("file:///a.pyi", None, "python"),
        ("file:///a.PY", None, "python"),
        ("file:///a.mjs", None, "javascript"),
        ("file:///a.cjs", None, "javascript"),
        ("file:///a.jsx", None, "javascript"),
        ("file:///a.mts", None, "typescript"),
        ("file:///a.cts", None, "typescript"),
        ("file:///a.tsx", None, "tsx"),
        ("untitled:Untitled-1", "typescriptreact", "tsx"),
        ("untitled:Untitled-1", "javascriptreact", "javascript"),
        ("file:///a.txt", "python", "python"),
        ("file:///a.py", "plaintext", "python"),
        ("file:///my%20dir/a.ts", None, "typescript"),
        ("file:///a.md", None, None),
        ("file:///Makefile", None, None),
    ],
)
def test_language_for(uri: str, language_id: str | None, expected: str | None) -> None:
    assert language_for(uri, language_id) == expected
