"""The orchestrator: tools, the tool-calling loop, decision backends and feature scaffolding.

Pure library: nothing here imports pygls, lsprotocol or :mod:`remora_lsp.server`. See
``docs/orchestrator.md``.
"""
