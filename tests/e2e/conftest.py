"""Fixtures that run the real ``remora serve`` over stdio through pytest-lsp.

Each test gets a fresh server process with its own ``REMORA_HOME`` and is run twice, once with
VS Code's and once with Neovim's client capabilities.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from remora_lsp.server.editor import plain

CLIENTS = ["visual-studio-code", "neovim"]


def write_pack(
    home: Path,
    name: str,
    version: str = "0.1.0",
    *,
    python: tuple[str, ...] = (),
    js: tuple[str, ...] = (),
    extra: str = "",
) -> Path:
    """An unsigned development pack folder in the store."""
    folder = home / "packs" / name / version
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "format: 1",
        f"name: {name}",
        f"version: {version}",
        "triggers:",
        f"  python_imports: [{', '.join(python)}]",
        f"  js_imports: [{', '.join(repr(j) for j in js)}]",
    ]
    (folder / "manifest.yaml").write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return folder


class Editor:
    """A pytest-lsp client plus the pack statuses and messages it received."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.statuses: list[dict[str, Any]] = []
        self._event = asyncio.Event()
        self._versions: dict[str, int] = {}

        @client.feature("remora/packStatus")
        def _status(params: Any) -> None:
            self.statuses.append(plain(params))
            self._event.set()

    @property
    def messages(self) -> list[str]:
        """Texts of the window/showMessage notifications received (pytest-lsp records them)."""
        return [m.message for m in self.client.messages]

    def latest(self) -> dict[str, Any]:
        return self.statuses[-1] if self.statuses else {"packs": []}

    def pack(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.latest()["packs"] if p["name"] == name), None)

    async def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"condition not met; last status {self.latest()}, messages {self.messages}"
                )
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), min(remaining, 0.5))

    async def wait_state(self, name: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        await self.wait(lambda: (self.pack(name) or {}).get("state") == state, timeout)
        pack = self.pack(name)
        assert pack is not None
        return pack

    def open(self, relpath: str, text: str, language: str = "python") -> str:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        self._versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language, 1, text))
        )
        return uri

    def edit(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
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
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
        )

    async def hover(self, uri: str, line: int, character: int) -> types.Hover | None:
        return await self.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(line, character))
        )

    async def list_packs(self) -> dict[str, Any]:
        return plain(await self.client.protocol.send_request_async("remora/listPacks", None))

    async def command(self, name: str, *args: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with four development packs: fastapi, pydantic (Python), react, mui (JS)."""
    folder = tmp_path / "home"
    (folder / "packs").mkdir(parents=True)
    # The workspace index loads an embedding model; only the semantic tests want it.
    (folder / "config.yaml").write_text("semantic:\n  workspace_index: false\n")
    write_pack(folder, "fastapi", python=("fastapi",))
    write_pack(folder, "pydantic", python=("pydantic",))
    write_pack(folder, "react", js=("react",))
    write_pack(folder, "mui", js=("@mui/material",))
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMORA_")}
    env.update(
        {
            "REMORA_HOME": str(home),
            "REMORA_ALLOW_UNSIGNED": "1",
            "REMORA_DEACTIVATE_GRACE_SECONDS": "0.5",
            "REMORA_DEBOUNCE_MS": "50",
            "REMORA_GENERATIVE": "0",  # the code model has its own end-to-end tests
            "REMORA_LOG_LEVEL": os.environ.get("REMORA_TEST_LOG_LEVEL", "INFO"),
            "REMORA_LOG_FILE": os.environ.get("REMORA_TEST_LOG_FILE", ""),
        }
    )
    env.update(extra)
    return env


async def start_editor(
    home: Path,
    project: Path,
    client_name: str,
    *,
    init_options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Editor:
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "remora_lsp", "serve"],
        server_env=env or server_env(home),
    )
    client = await config.start()
    editor = Editor(client, project)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(client_name),
            root_uri=project.as_uri(),
            initialization_options=init_options,
        )
    )
    return editor


@pytest_asyncio.fixture(params=CLIENTS)
async def editor(
    request: pytest.FixtureRequest, home: Path, project: Path
) -> AsyncIterator[Editor]:
    ed = await start_editor(home, project, request.param)
    yield ed
    await ed.client.shutdown_session()
