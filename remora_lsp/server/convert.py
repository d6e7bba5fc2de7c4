"""Translation between lsprotocol types and Remora's pure core types (no logic lives here)."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types

from remora_lsp.core.documents import TextChange

__all__ = ["to_text_changes"]


def to_text_changes(
    changes: Sequence[types.TextDocumentContentChangeEvent],
) -> list[TextChange]:
    """LSP content changes (partial or whole-document) to core ``TextChange`` values."""
    out: list[TextChange] = []
    for change in changes:
        rng = getattr(change, "range", None)
        if rng is None:
            out.append(TextChange(None, change.text))
        else:
            out.append(
                TextChange(
                    ((rng.start.line, rng.start.character), (rng.end.line, rng.end.character)),
                    change.text,
                )
            )
    return out
