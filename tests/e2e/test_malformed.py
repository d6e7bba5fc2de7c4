"""Garbage on the wire: the server answers what it can, skips the rest, and keeps serving.

These tests speak raw JSON-RPC framing to a real ``remora serve`` process, because a proper LSP
client library refuses to send malformed messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import server_env


class RawClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.received: list[dict[str, Any]] = []

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps({"jsonrpc": "2.0", **message}).encode())

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise EOFError("server closed its output")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif line in (b"\r\n", b"\n") and length:
                break
        return json.loads(await self.proc.stdout.readexactly(length))

    async def response(self, msg_id: int, timeout: float = 20) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                msg = await self.read()
                self.received.append(msg)
                if msg.get("id") == msg_id and "method" not in msg:
                    return msg

        return await asyncio.wait_for(find(), timeout)


@pytest.fixture
async def raw(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    (home / "packs").mkdir(parents=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "remora_lsp",
        "serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=server_env(home),
    )
    client = RawClient(proc)
    client.send({"id": 1, "method": "initialize", "params": {"capabilities": {}}})
    assert "result" in await client.response(1)
    client.send({"method": "initialized", "params": {}})
    yield client
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_request_with_invalid_params_gets_an_error_answer(raw: RawClient) -> None:
    raw.send({"id": 2, "method": "textDocument/hover", "params": {"textDocument": 42}})
    answer = await raw.response(2)
    assert answer["error"]["code"] == -32602
    assert "textDocument/hover" in answer["error"]["message"]
    raw.send({"id": 3, "method": "remora/listPacks"})
    assert (await raw.response(3))["result"] == {"packs": []}


async def test_garbage_is_skipped_and_the_next_request_served(raw: RawClient) -> None:
    for body in (b"{this is not json", b"[1, 2, 3]", b'{"jsonrpc": "2.0"}', b"\xff\xfe\x00"):
        raw.send_bytes(body)
    raw.proc.stdin.write(b"X-Nonsense: yes\r\n")  # a stray header line
    raw.send({"id": 4, "method": "remora/listPacks"})
    assert (await raw.response(4))["result"] == {"packs": []}


async def test_unknown_method_and_bad_command_args(raw: RawClient) -> None:
    raw.send({"id": 5, "method": "remora/noSuchThing", "params": {}})
    assert (await raw.response(5))["error"]["code"] == -32601
    raw.send(
        {
            "id": 6,
            "method": "workspace/executeCommand",
            "params": {"command": "remora.activatePack", "arguments": [{"oops": 1}]},
        }
    )
    answer = await raw.response(6)
    assert "pack name" in answer["error"]["message"]
    raw.send({"id": 7, "method": "remora/listPacks"})
    assert "result" in await raw.response(7)


async def test_notifications_with_bad_params_do_not_kill_the_server(raw: RawClient) -> None:
    raw.send({"method": "textDocument/didOpen", "params": {"textDocument": {"uri": 5}}})
    raw.send({"method": "textDocument/didChange", "params": None})
    raw.send({"method": "workspace/didChangeConfiguration", "params": {"settings": [1, 2]}})
    raw.send({"id": 8, "method": "remora/listPacks"})
    assert "result" in await raw.response(8)
