"""Lifecycle and document sync: initialize, settings, didOpen/didChange/didClose, shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from remora_lsp.server.app import RemoraServer, guarded
from remora_lsp.server.convert import to_text_changes

__all__ = ["register"]


def _settings(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _preload_model_libraries() -> None:
    # transformers resolves its names lazily, and two threads doing that at once (the engine
    # and the embedding model starting side by side) can fail with "cannot import name";
    # importing them once, first, in one thread avoids the race.
    import importlib

    for name in ("torch", "transformers", "sentence_transformers"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if name == "transformers":
            for attr in ("AutoModelForCausalLM", "AutoTokenizer", "AutoModel", "AutoConfig"):
                getattr(module, attr, None)


async def _run_startup_tasks(ls: RemoraServer) -> None:
    """Background start of the heavy layers (engine, workspace index), after the packs."""
    if ls.session.config.generative or getattr(ls.semantic, "settings", None) is not None:
        wants_models = ls.session.config.generative or ls.semantic.settings.workspace_index
        if wants_models:
            await asyncio.to_thread(_preload_model_libraries)
    for task in ls.startup_tasks:
        ls.session.spawn(task())


def register(ls: RemoraServer) -> None:
    """Register the document-sync handlers on ``ls``."""

    @ls.feature(types.INITIALIZE)
    @guarded(ls, request=True)
    def on_initialize(ls: RemoraServer, params: types.InitializeParams) -> None:
        ls.init_options = _settings(params.initialization_options)
        ls.session.config = ls.reload_config()

    @ls.feature(types.INITIALIZED)
    @guarded(ls, request=False)
    async def on_initialized(ls: RemoraServer, params: types.InitializedParams) -> None:
        ls.session.apply_config(ls.session.config)
        for problem in ls.pending_problems:
            ls.show("warning", f"Remora: {problem}")
        ls.pending_problems.clear()
        await ls.session.start()
        ls.session.spawn(_run_startup_tasks(ls))

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded(ls, request=False)
    def on_did_change_configuration(
        ls: RemoraServer, params: types.DidChangeConfigurationParams
    ) -> None:
        ls.client_settings = _settings(params.settings)
        ls.session.apply_config(ls.reload_config())

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guarded(ls, request=False)
    def on_did_open(ls: RemoraServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.session.open_document(doc.uri, doc.language_id, doc.version, doc.text)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guarded(ls, request=False)
    def on_did_change(ls: RemoraServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = params.text_document
        ls.session.change_document(doc.uri, doc.version, to_text_changes(params.content_changes))

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guarded(ls, request=False)
    def on_did_close(ls: RemoraServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.session.close_document(params.text_document.uri)

    @ls.feature(types.SHUTDOWN)
    @guarded(ls, request=True)
    def on_shutdown(ls: RemoraServer, params: Any = None) -> None:
        for hook in ls.shutdown_hooks:
            hook()
        ls.session.stop()
