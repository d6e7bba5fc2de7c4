"""The pure core: documents, positions, tree-sitter parsing and import detection.

Nothing here knows about LSP transport or JSON (no pygls, no lsprotocol) or about models;
modules take and return plain values. ``positions`` converts LSP/UTF-16 positions, byte
offsets and tree-sitter points; ``languages`` picks and loads grammars; ``documents`` keeps
each open document's bytes and incrementally reparsed tree; ``imports`` finds imports in a
tree and keeps them current edit by edit.
"""
