"""Exact conversion between the three coordinate systems a document is addressed in.

LSP clients speak in ``(line, character)`` positions where ``character`` counts UTF-16 code
units and a line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r``. Remora keeps documents as UTF-8
bytes, so edits and spans are byte offsets. tree-sitter wants ``(row, column)`` points where the
column is a byte count and, unlike LSP, only ``\\n`` starts a new row. :class:`LineIndex` is
built once from a document's bytes (and updated cheaply after an edit) and converts between all
three; out-of-range positions clamp the way the LSP specification says, and a position that
falls inside a multi-byte character or a surrogate pair snaps back to the character's start.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

__all__ = ["LineIndex"]

# A line terminator as LSP sees it: "\r\n" counts once, a lone "\r" counts too.
_LSP_BREAK = re.compile(rb"\r\n?|\n")
# tree-sitter's lexer advances a row only on "\n".
_TS_BREAK = re.compile(rb"\n")


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


def _char_width(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(bytes, UTF-16 units) of the character starting at ``pos``, never reading past ``end``.

    Well-formed UTF-8 gives the true widths. Anything else (a stray continuation byte, a
    truncated sequence, a byte that never starts a character) counts as one byte and one
    unit, as a decoder that substitutes U+FFFD would.
    """
    lead = data[pos]
    if lead < 0x80:
        return 1, 1
    if 0xC0 <= lead <= 0xDF:
        size, units = 2, 1
    elif 0xE0 <= lead <= 0xEF:
        size, units = 3, 1
    elif 0xF0 <= lead <= 0xF7:
        size, units = 4, 2
    else:
        return 1, 1
    if pos + size > end or not all(_is_continuation(b) for b in data[pos + 1 : pos + size]):
        return 1, 1
    return size, units


def _walk_to_units(data: bytes, start: int, end: int, units: int) -> int:
    """Byte offset of the last character start in ``data[start:end]`` at or before ``units``."""
    pos, seen = start, 0
    while pos < end:
        size, width = _char_width(data, pos, end)
        if seen + width > units:
            return pos
        pos += size
        seen += width
    return end


def _walk_to_offset(data: bytes, start: int, offset: int, end: int) -> int:
    """UTF-16 units from ``start`` to the last character start at or before ``offset``."""
    pos, seen = start, 0
    while pos < end:
        size, width = _char_width(data, pos, end)
        if pos + size > offset:
            return seen
        pos += size
        seen += width
    return seen


def _starts(pattern: re.Pattern[bytes], data: bytes) -> list[int]:
    return [0, *(m.end() for m in pattern.finditer(data))]


def _edited_starts(
    pattern: re.Pattern[bytes],
    old: list[int],
    new_data: bytes,
    start: int,
    old_end: int,
    new_end: int,
) -> list[int]:
    """Line starts of ``new_data`` given ``old``'s and one replaced byte range.

    A start strictly before ``start`` cannot change: its terminator and the byte that decides
    whether a ``\\r`` stands alone both lie before the edit. A start after ``old_end`` cannot
    change either, it only moves by the edit's length. Only ``[start, new_end]`` is rescanned,
    from one byte early (to see the ``\\n`` of a ``\\r\\n`` that ends right before the edit) to
    one byte late (to see whether a ``\\r`` at the end is followed by ``\\n``).
    """
    delta = new_end - old_end
    keep = old[: bisect_left(old, start)]
    lo = max(0, start - 1)
    window = new_data[lo : new_end + 1]
    fresh = [lo + m.end() for m in pattern.finditer(window)]
    fresh = [s for s in fresh if start <= s <= new_end]
    tail = old[bisect_left(old, old_end + 1) :]
    if start == 0:
        keep = [0]
        fresh = [s for s in fresh if s != 0]
    return [*keep, *fresh, *(s + delta for s in tail)]


class LineIndex:
    """Line tables of one immutable byte string, converting LSP, byte and tree-sitter coordinates.

    Lines and characters follow LSP: a line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r``;
    characters are UTF-16 code units. Rows follow tree-sitter: only ``\\n`` ends a row; columns
    are bytes. Bytes that are not valid UTF-8 count as one unit each.
    """

    __slots__ = ("_data", "_line_starts", "_row_starts")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._line_starts = _starts(_LSP_BREAK, data)
        # Without any "\r" both tables are equal; share the list instead of scanning twice.
        self._row_starts = self._line_starts if b"\r" not in data else _starts(_TS_BREAK, data)

    @classmethod
    def _from_tables(cls, data: bytes, line_starts: list[int], row_starts: list[int]) -> LineIndex:
        index = cls.__new__(cls)
        index._data = data
        index._line_starts = line_starts
        index._row_starts = row_starts
        return index

    def edited(self, new_data: bytes, start: int, old_end: int, new_end: int) -> LineIndex:
        """The index of ``new_data``, which is this index's bytes with ``[start, old_end)``
        replaced by ``new_data[start:new_end]``. Costs a rescan of the replaced text only
        (plus shifting the later line starts)."""
        lines = _edited_starts(_LSP_BREAK, self._line_starts, new_data, start, old_end, new_end)
        if b"\r" not in new_data:
            rows = lines
        else:
            rows = _edited_starts(_TS_BREAK, self._row_starts, new_data, start, old_end, new_end)
        return LineIndex._from_tables(new_data, lines, rows)

    @property
    def data(self) -> bytes:
        """The bytes this index describes."""
        return self._data

    @property
    def line_count(self) -> int:
        """Number of LSP lines; a trailing terminator opens one last, empty line."""
        return len(self._line_starts)

    @property
    def line_starts(self) -> tuple[int, ...]:
        """Byte offset where each LSP line starts."""
        return tuple(self._line_starts)

    @property
    def row_starts(self) -> tuple[int, ...]:
        """Byte offset where each tree-sitter row starts."""
        return tuple(self._row_starts)

    def line_start(self, line: int) -> int:
        """Byte offset of the first byte of ``line`` (clamped to the document)."""
        if line < 0:
            return 0
        if line >= len(self._line_starts):
            return len(self._data)
        return self._line_starts[line]

    def line_end(self, line: int) -> int:
        """Byte offset where ``line``'s content ends, before its terminator."""
        if line < 0:
            line = 0
        if line + 1 >= len(self._line_starts):
            return len(self._data)
        nxt = self._line_starts[line + 1]
        if nxt >= 2 and self._data[nxt - 2 : nxt] == b"\r\n":
            return nxt - 2
        return nxt - 1

    def line_of(self, offset: int) -> int:
        """The LSP line holding byte ``offset`` (clamped to the document)."""
        offset = min(max(offset, 0), len(self._data))
        return bisect_right(self._line_starts, offset) - 1

    def offset_at(self, line: int, character: int) -> int:
        """Byte offset of the LSP position ``(line, character)``.

        A negative line or character counts as 0; a line past the last one means the end of
        the document; a character past the line's end means the line's end (before its
        terminator); a character inside a surrogate pair or a multi-byte character snaps to
        the character's first byte.
        """
        if line < 0:
            return 0
        if line >= len(self._line_starts):
            return len(self._data)
        start = self._line_starts[line]
        if character <= 0:
            return start
        end = self.line_end(line)
        segment = self._data[start:end]
        if segment.isascii():
            return start + min(character, len(segment))
        try:
            text = segment.decode("utf-8")
        except UnicodeDecodeError:
            return _walk_to_units(self._data, start, end, character)
        units = text.encode("utf-16-le")
        if 2 * character >= len(units):
            return end
        cut = 2 * character
        # Cutting between the halves of a surrogate pair: snap to the pair's start.
        if 0xD800 <= int.from_bytes(units[cut - 2 : cut], "little") <= 0xDBFF:
            cut -= 2
        return start + len(units[:cut].decode("utf-16-le").encode("utf-8"))

    def position_at(self, offset: int) -> tuple[int, int]:
        """LSP ``(line, character)`` of byte ``offset``.

        The offset is clamped to the document; inside a line terminator it means the line's
        end; inside a multi-byte character it snaps to the character's start.
        """
        offset = min(max(offset, 0), len(self._data))
        line = bisect_right(self._line_starts, offset) - 1
        start = self._line_starts[line]
        end = self.line_end(line)
        offset = min(offset, end)
        segment = self._data[start:offset]
        if segment.isascii():
            return line, offset - start
        data = self._data
        snapped = offset
        while snapped > start and snapped < end and _is_continuation(data[snapped]):
            snapped -= 1
        try:
            text = data[start:snapped].decode("utf-8")
        except UnicodeDecodeError:
            return line, _walk_to_offset(data, start, offset, end)
        return line, len(text.encode("utf-16-le")) // 2

    def point_at(self, offset: int) -> tuple[int, int]:
        """tree-sitter ``(row, byte column)`` of byte ``offset`` (clamped to the document)."""
        offset = min(max(offset, 0), len(self._data))
        row = bisect_right(self._row_starts, offset) - 1
        return row, offset - self._row_starts[row]

    def offset_of_point(self, row: int, column: int) -> int:
        """Byte offset of a tree-sitter point (clamped to the document)."""
        if row < 0:
            return 0
        if row >= len(self._row_starts):
            return len(self._data)
        start = self._row_starts[row]
        end = self._row_starts[row + 1] if row + 1 < len(self._row_starts) else len(self._data)
        return min(start + max(column, 0), end)

    def __repr__(self) -> str:
        return f"LineIndex(bytes={len(self._data)}, lines={len(self._line_starts)})"
