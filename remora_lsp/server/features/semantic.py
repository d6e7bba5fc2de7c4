"""The semantic layer in the editor: type hovers, the type-hint code action, ``remora.search``,
and the background workspace index.

Handlers stay thin: they take a document snapshot and call
:class:`~remora_lsp.retrieval.service.SemanticService` in a worker thread (models and indexes
never run on the event loop). The service is also a pack listener: it opens a pack's index when
the pack activates.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lsprotocol import types

from remora_lsp.config import load_config_file
from remora_lsp.core.documents import Document
from remora_lsp.errors import RemoraError
from remora_lsp.retrieval.service import SemanticService, load_settings
from remora_lsp.retrieval.types import TypeInference
from remora_lsp.server.app import RemoraServer, guarded

__all__ = ["SEARCH_COMMAND", "hover_markdown", "register"]

log = logging.getLogger(__name__)

SEARCH_COMMAND = "remora.search"
ADD_TYPE_HINT = "remora.addTypeHint"


def _path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def hover_markdown(result: TypeInference) -> str:
    """The hover text for one inference: type, confidence, evidence — or a brief 'not sure'."""
    if result.source == "syntax":
        return f"`{result.name}: {result.display}` ({result.how})"
    percent = round(result.confidence * 100)
    if not result.above_threshold:
        return (
            f"Remora is not sure about the type of `{result.name}` "
            f"(best guess `{result.display}`, {percent}% — below the threshold)."
        )
    lines = [f"`{result.name}: {result.display}` — inferred from usages, {percent}% confident"]
    if result.alternatives:
        others = ", ".join(f"`{t}` {round(s * 100)}%" for t, s in result.alternatives[:2])
        lines.append(f"\nalso possible: {others}")
    if result.evidence:
        lines.append("\n**Evidence**")
        for ev in result.evidence[:3]:
            origin = f"{ev.pack}: " if ev.pack else ""
            lines.append(f"\n{origin}`{ev.location}` (similarity {ev.score:.2f})")
            excerpt = "\n".join(ev.text.strip("\n").splitlines()[:4])
            lines.append(f"```python\n{excerpt}\n```")
    return "\n".join(lines)


def _to_lsp_edits(doc: Document, edits: list[Any]) -> list[types.TextEdit]:
    out = []
    for edit in edits:
        start = types.Position(*doc.line_index.position_at(edit.start))
        end = types.Position(*doc.line_index.position_at(edit.end))
        out.append(types.TextEdit(types.Range(start, end), edit.text))
    return out


def create_service(ls: RemoraServer) -> SemanticService:
    """A SemanticService configured from the ``semantic:`` block of ``config.yaml``."""
    config = ls.session.config
    try:
        raw = load_config_file(config.remora_home / "config.yaml").get("semantic")
    except RemoraError:
        raw = None
    settings, problems = load_settings(raw)
    for problem in problems:
        ls.pending_problems.append(problem)
    return SemanticService(settings, remora_home=config.remora_home)


def register(ls: RemoraServer) -> None:
    """Register hover inference, the type-hint action, search and workspace indexing."""
    service = create_service(ls)
    ls.semantic = service
    ls.session.add_listener(service)
    ls.hover_providers.append(lambda doc, offset: _hover(ls, service, doc, offset))
    index_cancel = threading.Event()

    async def _hover(
        ls: RemoraServer, service: SemanticService, doc: Document, offset: int
    ) -> str | None:
        active = list(ls.session.active_packs())
        result = await asyncio.to_thread(service.hover, doc, offset, active)
        return hover_markdown(result) if result is not None else None

    @ls.command(SEARCH_COMMAND)
    @guarded(ls, request=True)
    async def on_search(ls: RemoraServer, *args: Any) -> list[dict[str, Any]]:
        from remora_lsp.retrieval.index import ChunkFilter

        params = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        spec = params[0] if params else None
        if isinstance(spec, str):
            spec = {"query": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("query"), str):
            raise RemoraError('remora.search expects [{"query": TEXT, "pack"?, "kind"?, "k"?}]')
        packs = spec.get("pack")
        kinds = spec.get("kind")
        flt = ChunkFilter(
            packs=frozenset([packs] if isinstance(packs, str) else packs) if packs else None,
            kinds=frozenset([kinds] if isinstance(kinds, str) else kinds) if kinds else None,
        )
        k = max(1, min(int(spec.get("k", 10)), 100))
        hits = await asyncio.to_thread(service.search, spec["query"], flt, k)
        return [
            {
                "pack": hit.chunk.pack or hit.index,
                "file": hit.chunk.file,
                "line": hit.chunk.start_line,
                "endLine": hit.chunk.end_line,
                "kind": hit.chunk.kind,
                "label": hit.chunk.label,
                "name": hit.chunk.name,
                "score": round(float(hit.score), 4),
                "text": hit.chunk.text,
            }
            for hit in hits
        ]

    @ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.Refactor],
            resolve_provider=True,
        ),
    )
    @guarded(ls, request=True)
    async def on_code_action(
        ls: RemoraServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        actions: list[types.CodeAction] = []
        for provider in ls.code_action_providers:
            actions.extend(await provider(params))
        return actions or None

    async def type_hint_actions(params: types.CodeActionParams) -> list[types.CodeAction]:
        doc = ls.session.document(params.text_document.uri)
        if doc is None or doc.tree is None:
            return []
        pos = params.range.start
        offset = doc.line_index.offset_at(pos.line, pos.character)
        active = list(ls.session.active_packs())
        result = await asyncio.to_thread(service.hover, doc, offset, active)
        if (
            result is None
            or result.annotated
            or result.binding_span is None
            or not result.above_threshold
            or result.type in {"None", "NoneType"}
        ):
            return []
        edits = await asyncio.to_thread(service.type_hint_edit, doc, result)
        if not edits:
            return []
        return [
            types.CodeAction(
                title=f"Add type hint `{result.name}: {result.display}`",
                kind=types.CodeActionKind.QuickFix,
                edit=types.WorkspaceEdit(changes={doc.uri: _to_lsp_edits(doc, edits)}),
            )
        ]

    ls.code_action_providers.append(type_hint_actions)

    @ls.feature(types.CODE_ACTION_RESOLVE)
    @guarded(ls, request=True)
    async def on_code_action_resolve(
        ls: RemoraServer, action: types.CodeAction
    ) -> types.CodeAction:
        for resolver in ls.code_action_resolvers:
            resolved = await resolver(action)
            if resolved is not None:
                return resolved
        return action

    async def index_workspace() -> None:
        root = _root_of(ls)
        if root is None or not service.settings.workspace_index:
            return
        token = "remora/workspace-index"
        progress = ls.work_done_progress
        window = ls.client_capabilities.window
        if window is None or not window.work_done_progress:
            token = ""  # the client cannot show progress: index quietly
        else:
            try:
                await progress.create_async(token)
                progress.begin(
                    token,
                    types.WorkDoneProgressBegin(title="Remora: indexing workspace", percentage=0),
                )
            except Exception:
                token = ""
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            if token and total:
                pct = int(done * 100 / total)
                loop.call_soon_threadsafe(
                    progress.report,
                    token,
                    types.WorkDoneProgressReport(message=f"{done}/{total} files", percentage=pct),
                )

        try:
            counts = await asyncio.to_thread(service.index_workspace, root, report, index_cancel)
            log.info("workspace index of %s: %s", root, counts)
            message = f"indexed {counts.get('files', 0)} files"
        except Exception as exc:  # the index is a bonus: never let it disturb the session
            log.exception("workspace indexing failed")
            message = f"workspace index failed: {exc}"
        if token:
            progress.end(token, types.WorkDoneProgressEnd(message=message))

    ls.startup_tasks.append(index_workspace)
    ls.shutdown_hooks.append(index_cancel.set)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @guarded(ls, request=False)
    async def on_did_save(ls: RemoraServer, params: types.DidSaveTextDocumentParams) -> None:
        doc = ls.session.document(params.text_document.uri)
        path = _path(params.text_document.uri)
        if doc is None or path is None or not service.settings.workspace_index:
            return
        if service.workspace_status().get("root") is None:
            return
        await asyncio.to_thread(service.update_file, path, doc.source())


def _root_of(ls: RemoraServer) -> Path | None:
    try:
        root = ls.workspace.root_path
    except RuntimeError:
        return None
    return Path(root) if root else None
