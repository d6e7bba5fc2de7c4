"""``remora registry serve`` as a real process: it serves, and a restart loses nothing that was
acknowledged. The process is stopped by its pid."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import Publisher, free_port

LAUNCH = (
    "import sys, typer\n"
    "from remora_lsp.cli import packs, registry\n"
    "app = typer.Typer()\n"
    "@app.callback()\n"
    "def root() -> None: pass\n"
    "packs.register(app)\n"
    "registry.register(app)\n"
    "app(sys.argv[1:])\n"
)


def start(storage: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    args = ["registry", "serve", "--storage", str(storage), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--publish-token", token, "--max-upload-bytes", "1000000"]
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "registry serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("registry serve did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(15)


def test_serve_and_restart(tmp_path: Path, publisher: Publisher) -> None:
    port, token, storage = free_port(), "serve-test-token", tmp_path / "reg"
    url = f"http://127.0.0.1:{port}"
    pack = publisher.pack("1.0.0")
    proc = start(storage, port, token)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        put = httpx.put(f"{url}/v1/packs/demo/1.0.0", content=pack.read_bytes(), headers=headers)
        assert put.status_code == 201
    finally:
        stop(proc)
    proc = start(storage, port, token)
    try:
        assert httpx.get(f"{url}/v1/packs/demo/1.0.0/download").content == pack.read_bytes()
    finally:
        stop(proc)
    assert proc.stdout is not None and token not in proc.stdout.read().decode()
