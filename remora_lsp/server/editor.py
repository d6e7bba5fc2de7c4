"""A scripted editor: a real LSP client that drives ``remora serve`` over stdio.

Used by ``remora demo`` and the benchmarks to exercise the server exactly as an editor would
(a separate process, JSON-RPC over pipes), and to observe what the editor would show: every
``remora/packStatus`` notification is recorded with its arrival time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

__all__ = ["ScriptedEditor", "apply_workspace_edit", "plain", "status_bar_text"]

LANGUAGE_IDS = {
    ".py": "python",
    ".js": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
}
ICONS = {"ready": "✓", "loading": "…", "error": "⚠"}


def plain(value: Any) -> Any:
    """Notification params arrive as attribute objects; turn them back into plain data."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "_asdict"):  # pygls hands custom params over as named tuples
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value


def status_bar_text(payload: Mapping[str, Any]) -> str:
    """What a status bar shows for a pack-status payload: ``Packs: fastapi ✓ pydantic …``."""
    shown = [
        f"{p['name']} {ICONS[p['state']]}"
        for p in payload.get("packs", [])
        if p.get("state") in ICONS
    ]
    return "Packs: " + (" ".join(shown) if shown else "none active")


def _file(uri: str) -> Path:
    from urllib.parse import unquote, urlsplit

    return Path(unquote(urlsplit(uri).path))


def apply_workspace_edit(edit: types.WorkspaceEdit) -> list[Path]:
    """Apply an edit to disk as an editor would: create files (never overwrite), insert text."""
    touched: list[Path] = []
    for change in edit.document_changes or []:
        if isinstance(change, types.CreateFile):
            path = _file(change.uri)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("", encoding="utf-8")
            touched.append(path)
        elif isinstance(change, types.TextDocumentEdit):
            path = _file(change.text_document.uri)
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            for text_edit in sorted(change.edits, key=lambda e: -e.range.start.line):
                start, end = text_edit.range.start, text_edit.range.end
                if (start.line, start.character) != (end.line, end.character) or start.character:
                    raise OSError("only insertions at a line start are supported here")
                new_text = getattr(text_edit, "new_text", None)
                if not isinstance(new_text, str):
                    raise OSError("snippet edits are not supported here")
                lines[start.line : start.line] = [new_text]
            path.write_text("".join(lines), encoding="utf-8")
            touched.append(path)
    return touched


class ScriptedEditor:
    """Start ``remora serve``, then open/edit/hover like an editor and watch pack status."""

    def __init__(self, root: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.root = root.resolve()
        self.env = {**os.environ, **(env or {})}
        self.client = LanguageClient("remora-scripted-editor", "1")
        self.statuses: list[tuple[float, dict[str, Any]]] = []
        self.messages: list[str] = []
        self._versions: dict[str, int] = {}
        self._texts: dict[str, str] = {}
        self._changed = asyncio.Event()
        self.applied: list[list[Path]] = []
        self.traces: list[dict[str, Any]] = []

        @self.client.feature("remora/packStatus")
        def _on_status(params: Any) -> None:
            self.statuses.append((time.perf_counter(), plain(params)))
            self._changed.set()

        @self.client.feature(types.WORKSPACE_APPLY_EDIT)
        def _on_apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            try:
                self.applied.append(apply_workspace_edit(params.edit))
            except OSError as exc:
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason=str(exc))
            return types.ApplyWorkspaceEditResult(applied=True)

        @self.client.feature("remora/trace")
        def _on_trace(params: Any) -> None:
            self.traces.append(plain(params))

        @self.client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _on_progress_create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @self.client.feature(types.PROGRESS)
        def _on_progress(params: Any) -> None:
            return None

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def _on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

    async def start(self, settings: Mapping[str, Any] | None = None) -> types.InitializeResult:
        """Launch the server and complete the initialize handshake."""
        await self.client.start_io(sys.executable, "-m", "remora_lsp", "serve", env=self.env)
        result = await self.client.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                root_uri=self.root.as_uri(),
                capabilities=types.ClientCapabilities(
                    window=types.WindowClientCapabilities(work_done_progress=True)
                ),
                initialization_options=dict(settings or {}),
            )
        )
        self.client.initialized(types.InitializedParams())
        return result

    async def stop(self) -> None:
        """Shut the server down politely, then make sure the process is gone."""
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 10)
            self.client.exit(None)
        except Exception:
            pass
        await self.client.stop()

    def uri(self, relpath: str) -> str:
        """The file URI of a path relative to the project root."""
        return (self.root / relpath).as_uri()

    def open(self, relpath: str, text: str | None = None) -> str:
        """didOpen a file of the project (its text from disk unless given)."""
        path = self.root / relpath
        uri = path.as_uri()
        body = path.read_text(encoding="utf-8") if text is None else text
        self._versions[uri] = 1
        self._texts[uri] = body
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri, LANGUAGE_IDS.get(path.suffix, "plaintext"), 1, body)
            )
        )
        return uri

    def change(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        """didChange with one incremental edit (LSP line/UTF-16 positions)."""
        self._versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=self._versions[uri], uri=uri),
                [
                    types.TextDocumentContentChangePartial(
                        types.Range(types.Position(*start), types.Position(*end)), text
                    )
                ],
            )
        )

    def close(self, uri: str) -> None:
        """didClose."""
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
        )

    async def hover(self, uri: str, line: int, character: int) -> str | None:
        """The hover text at a position, or None."""
        result = await self.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(line, character))
        )
        if result is None:
            return None
        contents = result.contents
        return contents.value if isinstance(contents, types.MarkupContent) else str(contents)

    async def code_actions(self, uri: str, line: int, character: int) -> list[Any]:
        """The code actions offered at a position (resolved when the server defers edits)."""
        pos = types.Position(line, character)
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                types.TextDocumentIdentifier(uri),
                types.Range(pos, pos),
                types.CodeActionContext(diagnostics=[]),
            )
        )
        actions = [a for a in result or [] if isinstance(a, types.CodeAction)]
        out = []
        for action in actions:
            if action.edit is None and action.data is not None:
                action = await self.client.code_action_resolve_async(action)
            out.append(action)
        return out

    async def inline_completion(self, uri: str, line: int, character: int) -> list[str]:
        """The texts of the inline completion items at a position."""
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
                text_document=types.TextDocumentIdentifier(uri),
                position=types.Position(line, character),
            )
        )
        if result is None:
            return []
        items = result.items if isinstance(result, types.InlineCompletionList) else result
        return [str(i.insert_text) for i in items]

    async def wait_engine(self, timeout: float = 120.0) -> bool:
        """Wait until the server's engine is ready (``remora/engineStatus``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = await self.client.protocol.send_request_async("remora/engineStatus", None)
            if plain(state).get("state") == "ready":
                return True
            await asyncio.sleep(0.25)
        return False

    async def command(self, name: str, *args: Any) -> Any:
        """workspace/executeCommand."""
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        )

    async def list_packs(self) -> dict[str, Any]:
        """The ``remora/listPacks`` request."""
        result = await self.client.protocol.send_request_async("remora/listPacks", None)
        return dict(plain(result))

    def latest(self) -> dict[str, Any]:
        """The last pack-status payload received (empty before the first)."""
        return self.statuses[-1][1] if self.statuses else {"packs": []}

    def pack_state(self, name: str) -> str | None:
        """The state of one pack in the latest status."""
        for pack in self.latest().get("packs", []):
            if pack["name"] == name:
                return str(pack["state"])
        return None

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until the latest pack status satisfies ``predicate``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            if self.statuses and predicate(self.latest()):
                return self.latest()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"pack status never matched; last: {self.latest()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_state(self, name: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until pack ``name`` reaches ``state``."""
        return await self.wait_for(
            lambda p: any(x["name"] == name and x["state"] == state for x in p["packs"]), timeout
        )
