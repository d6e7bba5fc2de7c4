"""Documents with a cursor marker, for data-driven completion tests."""

from __future__ import annotations

from remora_lsp.core.documents import Document, DocumentStore

CURSOR = "█"


def document(source: str, uri: str = "file:///proj/app/main.py") -> tuple[Document, int]:
    """A parsed document from ``source`` with one ``█`` marking the cursor (byte offset)."""
    assert source.count(CURSOR) == 1, "mark the cursor with exactly one █"
    before, after = source.split(CURSOR)
    doc = DocumentStore().open(uri, None, 1, before + after)
    return doc, len(before.encode("utf-8"))
