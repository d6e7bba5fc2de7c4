"""The `remora` console script: --help, --version, and `serve --tcp`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from remora_lsp import __version__

from .conftest import server_env, write_pack

REMORA = [sys.executable, "-m", "remora_lsp"]


def test_help_and_version() -> None:
    out = subprocess.run([*REMORA, "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in out
    out = subprocess.run([*REMORA, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"remora {__version__}"
    bad = subprocess.run([*REMORA, "serve", "--tcp", "nonsense"], capture_output=True, text=True)
    assert bad.returncode != 0 and "HOST:PORT" in bad.stderr
    both = [*REMORA, "serve", "--stdio", "--tcp", "127.0.0.1:1"]
    bad = subprocess.run(both, capture_output=True, text=True)
    assert bad.returncode != 0 and "--stdio" in bad.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_over_tcp(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_pack(home, "fastapi", python=("fastapi",))
    port = free_port()
    proc = subprocess.Popen(
        [*REMORA, "serve", "--tcp", f"127.0.0.1:{port}"],
        env=server_env(home),
        stderr=subprocess.DEVNULL,
    )
    client = LanguageClient("tcp-test", "1")

    try:
        for _ in range(100):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await client.initialize_async(
            types.InitializeParams(capabilities=types.ClientCapabilities())
        )
        client.initialized(types.InitializedParams())
        uri = (tmp_path / "main.py").as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri, "python", 1, "import fastapi\n")
            )
        )
        for _ in range(100):
            listed = await asyncio.wait_for(
                client.protocol.send_request_async("remora/listPacks", None), 20
            )
            if listed.packs and listed.packs[0].state == "ready":
                break
            await asyncio.sleep(0.1)
        assert listed.packs[0].name == "fastapi" and listed.packs[0].state == "ready"
        await asyncio.wait_for(client.shutdown_async(None), 20)
        client.exit(None)
    finally:
        proc.kill()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(client.stop(), 5)
        proc.kill()
        proc.wait()
