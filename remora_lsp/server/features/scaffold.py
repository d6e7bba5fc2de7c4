"""Scaffolding in the editor: the ``remora.scaffold`` command, scaffold code actions resolved on
demand, and ``remora/trace`` notifications for every orchestrator step.

Templates are a pack part: when a trusted pack activates, :class:`TemplateLayer` loads its
``.pym`` templates (in the sandbox, in a worker thread); an untrusted pack's templates are never
run and its status says so. A scaffold runs :func:`remora_lsp.orchestrator.scaffold` and turns
its result into a ``WorkspaceEdit``: new files are created (never over an existing file), the
wiring edits are inserted, and the edit is applied through ``workspace/applyEdit`` — or returned
in ``codeAction/resolve`` for the lightbulb.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lsprotocol import types

from remora_lsp.errors import RemoraError
from remora_lsp.orchestrator import scaffold
from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.server.app import RemoraServer, guarded
from remora_lsp.templates import TemplateCatalog
from remora_lsp.templates.errors import TemplateError
from remora_lsp.templates.pym import TemplateSpec, load_pack_templates

__all__ = ["SCAFFOLD_COMMAND", "TRACE", "TemplateLayer", "register", "workspace_edit"]

log = logging.getLogger(__name__)

SCAFFOLD_COMMAND = "remora.scaffold"
TRACE = "remora/trace"
FILL_TOKENS = 128  # per marked body: enough for a CRUD handler, bounded on a CPU


class TemplateLayer:
    """Pack listener that loads trusted packs' templates and forms the live catalog."""

    def __init__(self, *, allow_untrusted: bool = False) -> None:
        self.allow_untrusted = allow_untrusted
        self._specs: dict[str, list[TemplateSpec]] = {}
        self._notes: dict[str, str] = {}
        self._lock = threading.Lock()

    def pack_loaded(self, pack: VerifiedPack) -> str | None:
        if not pack.manifest.templates:
            return None
        try:
            specs, failed = load_pack_templates(
                pack, allow_untrusted_templates=self.allow_untrusted
            )
        except TemplateError as exc:
            note = f"templates not run: {exc}"
            with self._lock:
                self._specs.pop(pack.manifest.name, None)
                self._notes[pack.manifest.name] = note
            return note
        failures = "; ".join(str(e) for e in failed)
        with self._lock:
            self._specs[pack.manifest.name] = specs
            self._notes.pop(pack.manifest.name, None)
        return f"some templates failed: {failures}" if failures else None

    def pack_unloaded(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)
            self._notes.pop(name, None)

    def status_fields(self, name: str) -> dict[str, Any]:
        with self._lock:
            specs = self._specs.get(name)
        return {"templates": len(specs)} if specs else {}

    def catalog(self) -> TemplateCatalog:
        """The templates of every active trusted pack."""
        with self._lock:
            specs = [s for group in self._specs.values() for s in group]
        return TemplateCatalog(specs)


def _path_of(uri: str) -> Path | None:
    parts = urlsplit(uri)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def workspace_edit(root: Path, result: Any) -> types.WorkspaceEdit:
    """Files to create (``ignoreIfExists``: never overwrite) and inserts into existing files."""
    changes: list[Any] = []
    for file in result.new_files:
        uri = (root / file.path).as_uri()
        changes.append(
            types.CreateFile(
                uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=True)
            )
        )
        start = types.Position(0, 0)
        changes.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                edits=[types.TextEdit(types.Range(start, start), file.content)],
            )
        )
    by_file: dict[str, list[types.TextEdit]] = {}
    for insert in result.edits:
        pos = types.Position(insert.line, 0)
        by_file.setdefault((root / insert.path).as_uri(), []).append(
            types.TextEdit(types.Range(pos, pos), insert.text)
        )
    for uri, edits in by_file.items():
        changes.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                edits=edits,
            )
        )
    return types.WorkspaceEdit(document_changes=changes)


def register(ls: RemoraServer) -> None:
    """Register the template layer, the scaffold command, code actions and resolve."""
    layer = TemplateLayer()
    ls.templates = layer
    ls.session.add_listener(layer)

    def root_for(uri: str) -> Path:
        try:
            root = ls.workspace.root_path
        except RuntimeError:
            root = None
        if root:
            return Path(root)
        path = _path_of(uri)
        if path is None:
            raise RemoraError("scaffolding needs a workspace folder or a file:// document")
        return path.parent

    async def run_scaffold(request: str, uri: str) -> tuple[Any, Path]:
        root = root_for(uri)
        loop = asyncio.get_running_loop()

        def on_step(step: Any) -> None:
            data = step.to_data()
            log.info("trace %s", data)
            loop.call_soon_threadsafe(ls.protocol.notify, TRACE, {"uri": uri, **data})

        engine = ls.generative.ready_engine() if ls.generative is not None else None
        adapter = None
        doc = ls.session.document(uri)
        if engine is not None and doc is not None:
            adapter = ls.generative.adapter_for(ls.session.imports_of(uri), doc.text, len(doc.text))
        search = None
        if ls.semantic is not None:
            from remora_lsp.orchestrator import search_adapter

            search = search_adapter(ls.semantic)
        packs = [p.loaded.manifest for p in ls.session.active_packs().values() if p.loaded]
        result = await scaffold(
            request,
            uri,
            root,
            layer.catalog(),
            engine=engine,
            adapter=adapter,
            search=search,
            packs=packs,
            on_step=on_step,
            max_fill_tokens=FILL_TOKENS,
        )
        return result, root

    @ls.command(SCAFFOLD_COMMAND)
    @guarded(ls, request=True)
    async def on_scaffold(ls: RemoraServer, *args: Any) -> dict[str, Any]:
        params = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        spec = params[0] if params else None
        if not isinstance(spec, dict) or not isinstance(spec.get("request"), str):
            raise RemoraError('remora.scaffold expects [{"request": TEXT, "uri": CURRENT_FILE}]')
        uri = str(spec.get("uri") or "")
        result, root = await run_scaffold(spec["request"], uri)
        answer = result.to_data()
        if result.new_files or result.edits:
            applied = await ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(
                    edit=workspace_edit(root, result), label=f"Remora: {spec['request']}"
                )
            )
            answer["applied"] = bool(applied and applied.applied)
        else:
            answer["applied"] = False
        for message in (*result.messages, *result.problems):
            log.info("scaffold: %s", message)
        if not result.ok:
            ls.show("warning", "Remora: " + "; ".join(result.problems or result.messages))
        return answer

    async def scaffold_actions(params: types.CodeActionParams) -> list[types.CodeAction]:
        doc = ls.session.document(params.text_document.uri)
        catalog = layer.catalog()
        if doc is None or doc.tree is None or not len(catalog):
            return []
        offset = doc.line_index.offset_at(params.range.start.line, params.range.start.character)
        node = doc.tree.root_node.descendant_for_byte_range(offset, offset)
        while node is not None and node.type not in {"class_definition", "module"}:
            node = node.parent
        if node is None or node.type != "class_definition":
            return []
        name_node = node.child_by_field_name("name")
        if name_node is None or name_node.text is None:
            return []
        model = name_node.text.decode()
        requests = []
        if any(s.name.endswith("/router") for s in catalog.specs):
            requests.append(f"Add CRUD endpoints for {model}")
        if any(s.name.endswith("/test_router") for s in catalog.specs):
            requests.append(f"Add tests for the {model} endpoints")
        return [
            types.CodeAction(
                title=f"Remora: {text}",
                kind=types.CodeActionKind.Refactor,
                data={"kind": "scaffold", "request": text, "uri": doc.uri},
            )
            for text in requests
        ]

    async def resolve_scaffold(action: types.CodeAction) -> types.CodeAction | None:
        data = action.data if isinstance(action.data, dict) else None
        if data is None and action.data is not None and hasattr(action.data, "_asdict"):
            data = dict(action.data._asdict())
        if not data or data.get("kind") != "scaffold":
            return None
        result, root = await run_scaffold(str(data["request"]), str(data["uri"]))
        if result.new_files or result.edits:
            action.edit = workspace_edit(root, result)
        if not result.ok:
            action.disabled = types.CodeActionDisabled(
                reason="; ".join(result.problems or result.messages)[:300]
            )
        return action

    ls.code_action_providers.append(scaffold_actions)
    ls.code_action_resolvers.append(resolve_scaffold)
