"""tree-sitter query sources (``<language>-imports.scm``) read by :mod:`remora_lsp.core.imports`."""
