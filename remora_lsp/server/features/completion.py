"""Inline completion (LSP 3.18 ``textDocument/inlineCompletion``) and a plain
``textDocument/completion`` fallback for clients without it, plus the engine's life in the
server (``remora/engineStatus`` is folded into the pack status through adapter fields).

The handler is thin: debounce per document, snapshot, pick the adapter of the pack the
buffer's imports activate (:meth:`GenerativeService.adapter_for`), optionally fetch pack context
from the semantic layer, call :func:`remora_lsp.completion.complete.complete`, and drop the
answer if the document changed meanwhile (no stale suggestions). A client's cancel cancels the
generation in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lsprotocol import types

from remora_lsp.completion.cache import SuggestionCache
from remora_lsp.completion.complete import Completion, complete
from remora_lsp.completion.prompt import ContextSnippet
from remora_lsp.inference.config import load_engine_config
from remora_lsp.inference.engine import CancelToken
from remora_lsp.inference.service import GenerativeService
from remora_lsp.server.app import RemoraServer, guarded

__all__ = ["register"]

log = logging.getLogger(__name__)

CONTEXT_SNIPPETS = 2
ENGINE_STATUS = "remora/engineStatus"


def register(ls: RemoraServer) -> None:
    """Register completion handlers and the generative service on ``ls``."""
    engine_config, problems = load_engine_config(ls.session.config, ls.init_options)
    ls.pending_problems.extend(problems)
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}

    def changed() -> None:
        loop = loop_box.get("loop")
        if loop is not None:
            loop.call_soon_threadsafe(ls.session.publish)

    service = GenerativeService(engine_config, on_change=changed)
    ls.generative = service
    ls.session.add_listener(service)
    cache = SuggestionCache()
    latest: dict[str, int] = {}
    # What happened to completion requests (benchmarks/completion_trace.py reads these).
    stats = {"requests": 0, "superseded": 0, "no_engine": 0, "generated": 0, "cached": 0}

    async def start_engine() -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        # initializationOptions are known only now: settle the engine settings before it starts.
        config, problems = load_engine_config(ls.session.config, ls.init_options)
        for problem in problems:
            ls.show("warning", f"Remora: {problem}")
        service.config = config
        if ls.session.config.generative:
            await service.start()
        else:
            log.info("code model disabled (generative: false); completions answer empty")

    def stop_engine() -> None:
        loop = loop_box.get("loop")
        if loop is not None:
            loop.create_task(service.stop())

    ls.startup_tasks.append(start_engine)
    ls.shutdown_hooks.append(stop_engine)

    async def suggest(uri: str, position: types.Position) -> Completion | None:
        doc = ls.session.document(uri)
        if doc is None or doc.tree is None:
            return None
        stats["requests"] += 1
        ticket = latest[uri] = latest.get(uri, 0) + 1
        await asyncio.sleep(ls.session.config.debounce_ms / 1000)
        if latest.get(uri) != ticket:
            stats["superseded"] += 1
            return None  # a newer request for this document superseded this one
        doc = ls.session.document(uri)
        engine = service.ready_engine()
        if doc is None or engine is None:
            stats["no_engine"] += 1
            return None
        version = doc.version
        offset = doc.line_index.offset_at(position.line, position.character)
        imports = ls.session.imports_of(uri)
        adapter = service.adapter_for(imports, doc.text, offset)
        snippets = await _pack_context(ls, doc.text[:offset])
        token = CancelToken()
        try:
            result = await complete(
                doc, offset, engine, adapter=adapter, snippets=snippets, cache=cache, cancel=token
            )
        except asyncio.CancelledError:
            token.cancel()
            raise
        if result is not None:
            stats["cached" if result.source == "cache" else "generated"] += 1
        current = ls.session.document(uri)
        if result is None or current is None or current.version != version:
            return None
        return result

    @ls.feature(ENGINE_STATUS)
    @guarded(ls, request=True)
    def on_engine_status(ls: RemoraServer, params: Any = None) -> dict[str, Any]:
        """``remora/engineStatus``: what ``remora doctor`` says, for the running server."""
        info = service.doctor()
        info["completion"] = {**stats, "cacheHits": cache.hits, "cacheMisses": cache.misses}
        if not ls.session.config.generative:
            info["state"], info["reason"] = "disabled", "generative: false in the settings"
        return info

    def _range(position: types.Position) -> types.Range:
        return types.Range(position, position)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    @guarded(ls, request=True)
    async def on_inline_completion(
        ls: RemoraServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        result = await suggest(params.text_document.uri, params.position)
        if result is None or not result.text:
            return types.InlineCompletionList(items=[])
        item = types.InlineCompletionItem(insert_text=result.text, range=_range(params.position))
        return types.InlineCompletionList(items=[item])

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    @guarded(ls, request=True)
    async def on_completion(
        ls: RemoraServer, params: types.CompletionParams
    ) -> types.CompletionList:
        result = await suggest(params.text_document.uri, params.position)
        if result is None or not result.text.strip():
            return types.CompletionList(is_incomplete=True, items=[])
        first = result.text.strip().splitlines()[0]
        item = types.CompletionItem(
            label=first[:60] + ("…" if len(first) > 60 else ""),
            kind=types.CompletionItemKind.Snippet,
            detail=f"Remora ({result.adapter or 'base model'})",
            text_edit=types.TextEdit(_range(params.position), result.text),
            insert_text_format=types.InsertTextFormat.PlainText,
            sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])


async def _pack_context(ls: RemoraServer, prefix: bytes) -> list[ContextSnippet]:
    """Top code chunks of the active packs for the last lines before the cursor."""
    service: Any = ls.semantic
    if service is None or not service.loaded_packs():
        return []
    tail = prefix[-400:].decode("utf-8", errors="ignore").strip()
    if not tail:
        return []
    from remora_lsp.retrieval.index import ChunkFilter

    flt = ChunkFilter(kinds=frozenset({"function", "method", "class"}))
    hits: list[Any] = []
    with contextlib.suppress(Exception):  # context is a bonus, never a failure
        hits = await asyncio.to_thread(service.search, tail, flt, CONTEXT_SNIPPETS)
    return [ContextSnippet(text=h.chunk.text, source=h.chunk.location) for h in hits]
