"""``textDocument/hover``: what Remora knows about the name under the cursor.

Hovering anywhere in an import (the module or a name it imports) shows which pack it triggers
and that pack's state. Anywhere else the registered hover providers are asked in turn (the
semantic layer's type inference); the first answer wins.
"""

from __future__ import annotations

from lsprotocol import types

from remora_lsp.core.documents import Document
from remora_lsp.core.imports import ImportRef
from remora_lsp.server.app import RemoraServer, guarded
from remora_lsp.server.session import Session

__all__ = ["import_at", "register"]

# Syntax nodes that hold one import: Python statements, JS/TS declarations and require/import().
IMPORT_NODES = {
    "import_statement",
    "import_from_statement",
    "future_import_statement",
    "export_statement",
    "call_expression",
    "lexical_declaration",
    "variable_declaration",
}


def import_at(session: Session, doc: Document, offset: int) -> ImportRef | None:
    """The import whose statement covers ``offset`` (the module name or an imported name)."""
    refs = session.imports_of(doc.uri)
    for ref in refs:
        if ref.start_byte <= offset <= ref.end_byte:
            return ref
    if doc.tree is None or not refs:
        return None
    node = doc.tree.root_node.descendant_for_byte_range(offset, offset)
    while node is not None and node.type != "module" and node.type != "program":
        if node.type in IMPORT_NODES:
            inside = [r for r in refs if node.start_byte <= r.start_byte < node.end_byte]
            if inside:
                return inside[0]
        node = node.parent
    return None


def register(ls: RemoraServer) -> None:
    """Register the hover handler on ``ls``."""

    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded(ls, request=True)
    async def on_hover(ls: RemoraServer, params: types.HoverParams) -> types.Hover | None:
        session = ls.session
        doc = session.document(params.text_document.uri)
        if doc is None:
            return None
        offset = doc.line_index.offset_at(params.position.line, params.position.character)
        ref = import_at(session, doc, offset)
        if ref is None:
            for provider in ls.hover_providers:
                text = await provider(doc, offset)
                if text:
                    return types.Hover(
                        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
                    )
            return None
        if ref.builtin:  # the standard library has no pack to talk about
            return None
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
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))
