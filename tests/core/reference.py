"""Slow, obviously-correct reference models the core is checked against."""

from __future__ import annotations

import re

from remora_lsp.core.documents import TextChange

_BREAK = re.compile(r"(\r\n|\r|\n)")


def char_index(text: str, line: int, character: int) -> int:
    """Index into ``text`` of an LSP position, with LSP clamping and snapping rules."""
    if line < 0:
        return 0
    parts = _BREAK.split(text)
    lines = parts[0::2]
    if line >= len(lines):
        return len(text)
    before = len("".join(parts[: 2 * line]))
    units = 0
    taken = 0
    for ch in lines[line]:
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > character:
            break
        units += width
        taken += 1
    return before + taken


def byte_offset(text: str, line: int, character: int) -> int:
    """Byte offset into ``text.encode()`` of an LSP position."""
    return len(text[: char_index(text, line, character)].encode())


def apply_change(text: str, change: TextChange) -> str:
    """``text`` after one LSP content change."""
    if change.range is None:
        return change.text
    (l1, c1), (l2, c2) = change.range
    start, end = sorted((char_index(text, l1, c1), char_index(text, l2, c2)))
    return text[:start] + change.text + text[end:]
