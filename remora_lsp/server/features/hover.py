"""``textDocument/hover``: what Remora knows about the name under the cursor.

For now: hovering an import shows which pack it triggers and that pack's state. The semantic
layer extends this with type inference for untyped names.
"""

from __future__ import annotations

from lsprotocol import types

from remora_lsp.server.app import RemoraServer, guarded

__all__ = ["register"]


def register(ls: RemoraServer) -> None:
    """Register the hover handler on ``ls``."""

    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded(ls, request=True)
    def on_hover(ls: RemoraServer, params: types.HoverParams) -> types.Hover | None:
        session = ls.session
        doc = session.document(params.text_document.uri)
        if doc is None:
            return None
        offset = doc.line_index.offset_at(params.position.line, params.position.character)
        for ref in session.imports_of(doc.uri):
            if ref.start_byte <= offset <= ref.end_byte:
                pack = session.pack_for_import(ref)
                if pack is None:
                    text = f"`{ref.module}`: no Remora pack installed for this import."
                else:
                    status = pack.to_status()
                    text = (
                        f"`{ref.module}` activates the Remora pack **{pack.name}** "
                        f"{status['version']}: {status['state']}"
                    )
                    if status["reason"]:
                        text += f" ({status['reason']})"
                return types.Hover(
                    contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
                )
        return None
