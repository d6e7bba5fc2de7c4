"""Remora's own store of open documents: their bytes, line tables and syntax trees.

pygls applies ``didChange`` to its workspace before a handler runs, which leaves no chance to
tell tree-sitter what changed; so the server feeds every open/change/close to a
:class:`DocumentStore` as well. It applies each :class:`TextChange` to the UTF-8 bytes,
describes it to the old tree with ``Tree.edit`` and reparses incrementally once per batch,
returning a :class:`ChangeResult` that says which bytes moved (for
:class:`~remora_lsp.core.imports.ImportTracker`). Documents are immutable snapshots: a change
replaces the stored :class:`Document` and never mutates a tree someone may still hold. A
document that is binary, too large or in a language Remora does not parse is still tracked,
only not parsed (``tree is None`` and ``skip_reason`` says why). Client input never raises:
positions clamp, reversed ranges are swapped; only :meth:`DocumentStore.change` on a URI that
is not open raises :class:`UnknownDocumentError` (a ``KeyError``), while :meth:`get` returns
None and :meth:`close` ignores it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tree_sitter import Parser, Tree

from remora_lsp.core.languages import LanguageName, language_for, new_parser
from remora_lsp.core.positions import LineIndex

__all__ = [
    "BINARY",
    "UNSUPPORTED_LANGUAGE",
    "ByteEdit",
    "ChangeResult",
    "Document",
    "DocumentStore",
    "LspRange",
    "TextChange",
    "UnknownDocumentError",
]

log = logging.getLogger(__name__)

BINARY = "binary"
UNSUPPORTED_LANGUAGE = "unsupported language"

LspRange = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class TextChange:
    """One LSP content change: replace ``range`` (LSP line/UTF-16 coordinates) with ``text``.

    ``range=None`` replaces the whole document.
    """

    range: LspRange | None
    text: str


@dataclass(frozen=True, slots=True)
class ByteEdit:
    """One applied edit in bytes: ``[start, old_end)`` of the text before it became
    ``[start, new_end)`` of the text after it."""

    start: int
    old_end: int
    new_end: int

    @property
    def delta(self) -> int:
        """How far the bytes after the edit moved."""
        return self.new_end - self.old_end


@dataclass(frozen=True, slots=True, eq=False)
class Document:
    """An immutable snapshot of one open document.

    ``tree`` is None exactly when ``skip_reason`` is set: ``"binary"`` (NUL bytes or text that
    is not valid UTF-8), ``"too large (N bytes > LIMIT)"`` or ``"unsupported language"``.
    """

    uri: str
    language: LanguageName | None
    version: int
    text: bytes
    line_index: LineIndex
    tree: Tree | None
    skip_reason: str | None

    @property
    def parsed(self) -> bool:
        """True when the document has a syntax tree."""
        return self.tree is not None

    def source(self) -> str:
        """The text as a string (bytes that are not UTF-8 come back as U+FFFD)."""
        return self.text.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What one ``didChange`` batch did to a document.

    ``edits`` are the byte edits in the order applied, each in the coordinates of the text
    left by the edits before it. ``edited_ranges`` are the merged, sorted ``[start, end)``
    spans of the final text that hold inserted bytes (an empty span marks a deletion).
    ``changed_ranges`` are the spans where the new tree's structure differs from the old one
    (the whole text when the tree was not reused). ``incremental`` says whether the old tree
    was reused; ``reparsed`` whether the document has a tree now.
    """

    document: Document
    previous: Document
    edits: tuple[ByteEdit, ...]
    edited_ranges: tuple[tuple[int, int], ...]
    changed_ranges: tuple[tuple[int, int], ...]
    incremental: bool

    @property
    def reparsed(self) -> bool:
        """True when the new document has a syntax tree."""
        return self.document.tree is not None


class UnknownDocumentError(KeyError):
    """A change arrived for a URI that is not open."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri

    def __str__(self) -> str:
        return f"document {self.uri} is not open"


def _encode(text: str) -> tuple[bytes, bool]:
    """UTF-8 bytes of ``text`` and whether they are valid UTF-8 (lone surrogates are not)."""
    try:
        return text.encode("utf-8"), True
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass"), False


def _merge_edit(ranges: list[tuple[int, int]], edit: ByteEdit) -> list[tuple[int, int]]:
    """Move spans of the text before ``edit`` to the text after it, and add the edit's span."""
    lo, hi = edit.start, edit.new_end
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if b < edit.start:
            out.append((a, b))
        elif a > edit.old_end:
            out.append((a + edit.delta, b + edit.delta))
        else:
            lo = min(lo, a)
            hi = max(hi, b + edit.delta if b > edit.old_end else edit.new_end)
    out.append((lo, hi))
    out.sort()
    return out


@dataclass(slots=True)
class _Entry:
    document: Document
    valid_utf8: bool
    logged_reason: str | None = field(default=None)


class DocumentStore:
    """Open documents by URI, each with bytes, line index and (when parseable) a syntax tree.

    Not thread-safe: call it from one thread (the server's event loop); hand the immutable
    :class:`Document` snapshots to other threads.
    """

    def __init__(self, max_bytes: int = 2 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[str, _Entry] = {}
        self._parsers: dict[str, Parser] = {}

    # -- queries -----------------------------------------------------------------------------

    def get(self, uri: str) -> Document | None:
        """The current snapshot of ``uri``, or None when it is not open."""
        entry = self._entries.get(uri)
        return entry.document if entry is not None else None

    def __contains__(self, uri: object) -> bool:
        return uri in self._entries

    def __iter__(self) -> Iterator[Document]:
        return iter([entry.document for entry in self._entries.values()])

    def __len__(self) -> int:
        return len(self._entries)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, uri: str, language_id: str | None, version: int, text: str) -> Document:
        """Track ``uri`` with its full text (re-opening replaces it) and parse it if possible."""
        data, valid = _encode(text)
        language = language_for(uri, language_id)
        reason = self._skip_reason(language, data, valid)
        tree = self._parser(language).parse(data) if reason is None and language else None
        document = Document(uri, language, version, data, LineIndex(data), tree, reason)
        entry = _Entry(document, valid)
        self._entries[uri] = entry
        self._note_skip(entry)
        return document

    def close(self, uri: str) -> Document | None:
        """Stop tracking ``uri``; returns its last snapshot (None if it was not open)."""
        entry = self._entries.pop(uri, None)
        return entry.document if entry is not None else None

    def change(self, uri: str, version: int, changes: Sequence[TextChange]) -> ChangeResult:
        """Apply ``changes`` in order, then reparse once, reusing the old tree when possible.

        Raises :class:`UnknownDocumentError` when ``uri`` is not open. Ranges past the end
        clamp, reversed ranges are swapped.
        """
        entry = self._entries.get(uri)
        if entry is None:
            raise UnknownDocumentError(uri)
        previous = entry.document
        data, index = previous.text, previous.line_index
        valid = entry.valid_utf8
        # Never edit a tree a snapshot holds: copying is cheap (shared, reference counted).
        tree = previous.tree.copy() if previous.tree is not None else None
        edits: list[ByteEdit] = []
        ranges: list[tuple[int, int]] = []
        for change in changes:
            inserted, ok = _encode(change.text)
            valid = valid and ok
            if change.range is None:
                start, old_end = 0, len(data)
            else:
                (l1, c1), (l2, c2) = change.range
                start, old_end = index.offset_at(l1, c1), index.offset_at(l2, c2)
                if old_end < start:
                    start, old_end = old_end, start
            if start == old_end and not inserted:
                continue
            new_end = start + len(inserted)
            new_data = b"".join((data[:start], inserted, data[old_end:]))
            if change.range is None:
                new_index = LineIndex(new_data)
                tree = None  # nothing to reuse from a whole-text replacement
            else:
                new_index = index.edited(new_data, start, old_end, new_end)
            if tree is not None:
                tree.edit(
                    start_byte=start,
                    old_end_byte=old_end,
                    new_end_byte=new_end,
                    start_point=index.point_at(start),
                    old_end_point=index.point_at(old_end),
                    new_end_point=new_index.point_at(new_end),
                )
            edit = ByteEdit(start, old_end, new_end)
            edits.append(edit)
            ranges = _merge_edit(ranges, edit)
            data, index = new_data, new_index

        language = previous.language
        reason = self._skip_reason(language, data, valid)
        new_tree: Tree | None = None
        changed: tuple[tuple[int, int], ...] = ()
        incremental = False
        if reason is None and language is not None:
            parser = self._parser(language)
            if tree is not None and not edits:
                new_tree = previous.tree
            elif tree is not None:
                new_tree = parser.parse(data, tree)
                changed = tuple((r.start_byte, r.end_byte) for r in tree.changed_ranges(new_tree))
                incremental = True
            else:
                new_tree = parser.parse(data)
                changed = ((0, len(data)),)
        document = Document(uri, language, version, data, index, new_tree, reason)
        entry.document = document
        entry.valid_utf8 = valid
        self._note_skip(entry)
        return ChangeResult(document, previous, tuple(edits), tuple(ranges), changed, incremental)

    # -- internals ---------------------------------------------------------------------------

    def _parser(self, language: LanguageName) -> Parser:
        parser = self._parsers.get(language)
        if parser is None:
            parser = self._parsers[language] = new_parser(language)
        return parser

    def _skip_reason(self, language: LanguageName | None, data: bytes, valid: bool) -> str | None:
        if language is None:
            return UNSUPPORTED_LANGUAGE
        if not valid or b"\x00" in data:
            return BINARY
        if len(data) > self.max_bytes:
            return f"too large ({len(data)} bytes > {self.max_bytes})"
        return None

    def _note_skip(self, entry: _Entry) -> None:
        """Log once when a document stops being parsed (or is skipped for a new reason)."""
        document = entry.document
        reason = document.skip_reason
        # "too large (N bytes ...)" changes with every keystroke; log the kind once.
        kind = reason.split(" (", 1)[0] if reason is not None else None
        if kind == entry.logged_reason:
            return
        entry.logged_reason = kind
        if reason is None:
            log.debug("parsing %s again", document.uri)
        elif reason == UNSUPPORTED_LANGUAGE:
            log.debug("not parsing %s: %s", document.uri, reason)
        else:
            log.info("not parsing %s: %s", document.uri, reason)
