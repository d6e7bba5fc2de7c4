"""LineIndex: LSP (UTF-16) positions, byte offsets and tree-sitter points agree exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remora_lsp.core.positions import LineIndex
from tests.core.reference import byte_offset as reference_offset

EMOJI = "😀"  # U+1F600: 2 UTF-16 units, 4 UTF-8 bytes
CJK = "中文"  # 1 unit, 3 bytes each


@pytest.mark.parametrize(
    ("text", "position", "offset"),
    [
        ("hello\nworld", (0, 0), 0),
        ("hello\nworld", (0, 5), 5),
        ("hello\nworld", (1, 3), 9),
        ("hello\nworld", (0, 99), 5),  # character past the line end: line end
        ("hello\nworld", (7, 0), 11),  # line past the end: end of document
        ("hello\nworld", (-1, 4), 0),
        ("hello\nworld", (1, -3), 6),
        (f"a{CJK}b", (0, 1), 1),
        (f"a{CJK}b", (0, 2), 4),
        (f"a{CJK}b", (0, 3), 7),
        (f"a{EMOJI}b", (0, 1), 1),
        (f"a{EMOJI}b", (0, 2), 1),  # inside the surrogate pair: snap to the emoji's start
        (f"a{EMOJI}b", (0, 3), 5),
        (f"a{EMOJI}b", (0, 4), 6),
        (f"{EMOJI}{EMOJI}\n{EMOJI}", (1, 2), 13),
        ("ab\r\ncd", (0, 2), 2),
        ("ab\r\ncd", (0, 3), 2),  # never lands inside "\r\n"
        ("ab\r\ncd", (1, 1), 5),
        ("ab\rcd", (1, 0), 3),  # a lone "\r" ends a line for LSP
        ("ab\n", (1, 0), 3),
        ("ab\n", (1, 5), 3),
        ("", (0, 0), 0),
        ("", (3, 3), 0),
    ],
)
def test_offset_at(text: str, position: tuple[int, int], offset: int) -> None:
    index = LineIndex(text.encode())
    assert index.offset_at(*position) == offset
    assert reference_offset(text, *position) == offset


@pytest.mark.parametrize(
    ("text", "offset", "position"),
    [
        ("hello\nworld", 9, (1, 3)),
        (f"a{EMOJI}b", 5, (0, 3)),
        (f"a{EMOJI}b", 3, (0, 1)),  # inside the emoji's bytes: its start
        (f"a{CJK}", 2, (0, 1)),
        ("ab\r\ncd", 3, (0, 2)),  # between "\r" and "\n": the line's end
        ("ab\r\ncd", 4, (1, 0)),
        ("ab\rcd", 3, (1, 0)),
        ("ab", 99, (0, 2)),
        ("ab", -5, (0, 0)),
    ],
)
def test_position_at(text: str, offset: int, position: tuple[int, int]) -> None:
    assert LineIndex(text.encode()).position_at(offset) == position


def test_points_follow_tree_sitter_rows() -> None:
    # tree-sitter counts rows by "\n" only and columns in bytes.
    data = f"a{EMOJI}\rb\r\nc".encode()
    index = LineIndex(data)
    assert index.line_count == 3
    assert index.point_at(data.index(b"b")) == (0, 6)
    assert index.position_at(data.index(b"b")) == (1, 0)
    assert index.point_at(data.index(b"c")) == (1, 0)
    assert index.offset_of_point(0, 6) == data.index(b"b")


def test_invalid_utf8_counts_one_unit_per_byte() -> None:
    index = LineIndex(b"a\xffb\xed\xa0\x80c")
    assert index.offset_at(0, 2) == 2
    assert index.position_at(3) == (0, 3)


text_alphabet = st.sampled_from(["a", "Z", " ", "\n", "\r", "\r\n", "é", "中", EMOJI, "\t"])
texts = st.lists(text_alphabet, max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(-1, 12), st.integers(-1, 40))
def test_offset_at_matches_reference(text: str, line: int, character: int) -> None:
    index = LineIndex(text.encode())
    offset = index.offset_at(line, character)
    assert offset == reference_offset(text, line, character)
    # A snapped position converts back to itself.
    back = index.position_at(offset)
    assert index.offset_at(*back) == offset


@settings(max_examples=300, deadline=None)
@given(texts, texts, st.data())
def test_edited_index_equals_rebuilt(text: str, inserted: str, data: st.DataObject) -> None:
    old = text.encode()
    start = data.draw(st.integers(0, len(old)))
    end = data.draw(st.integers(start, len(old)))
    new = old[:start] + inserted.encode() + old[end:]
    edited = LineIndex(old).edited(new, start, end, start + len(inserted.encode()))
    rebuilt = LineIndex(new)
    assert edited.line_starts == rebuilt.line_starts
    assert edited.row_starts == rebuilt.row_starts
