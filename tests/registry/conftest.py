"""Fixtures for the registry tests: storages (a folder, and S3 on a real moto server process),
a registry served by uvicorn on loopback in a thread, signed packs, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from remora_lsp.cli import packs as packs_cli
from remora_lsp.cli import registry as registry_cli
from remora_lsp.packs import signing, trust
from remora_lsp.registry.storage import LocalStorage, S3Storage, Storage
from tests.packs.factory import good_files, pack_zip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible server process on loopback, stopped by its pid at the end."""
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(exe).exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("REMORA_S3_ENDPOINT", moto_endpoint)
    return moto_endpoint


_bucket_counter = iter(range(1_000_000))


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh storage of each backend, as a --storage URL."""
    if request.param == "local":
        return str(tmp_path / "registry")
    request.getfixturevalue("s3_env")
    return f"s3://remora-test-{os.getpid()}-{next(_bucket_counter)}/packs"


def open_url(url: str) -> Storage:
    from remora_lsp.registry.storage import open_storage

    return open_storage(url)


@pytest.fixture
def storage(storage_url: str) -> Storage:
    return open_url(storage_url)


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "registry")


@pytest.fixture
def s3_storage(s3_env: str) -> S3Storage:
    store = S3Storage(f"s3://remora-s3-{os.getpid()}-{next(_bucket_counter)}/prefix")
    store.ensure_bucket()
    return store


@contextmanager
def serve_registry(storage: Storage, **options: Any) -> Iterator[str]:
    """Run the registry with uvicorn on a loopback port in a thread; yield its URL."""
    import uvicorn

    from remora_lsp.registry.server import create_app

    app = create_app(storage, **options)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("registry did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


PUBLISH_TOKEN = "admin-publish-token-for-tests"


@pytest.fixture
def registry_url(storage: Storage) -> Iterator[str]:
    with serve_registry(storage, publish_token=PUBLISH_TOKEN) as url:
        yield url


@dataclass
class Publisher:
    """A signing key and a factory of signed pack archives."""

    key_file: Path
    out: Path

    def pack(self, version: str, name: str = "demo", **extra: Any) -> Path:
        key = signing.load_private_key(self.key_file)
        path = self.out / f"{name}-{version}-{len(list(self.out.iterdir()))}.remorapack"
        path.write_bytes(pack_zip(good_files(), key=key, name=name, version=version, **extra))
        return path


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    keys = tmp_path / "keys"
    keys.mkdir()
    key_file = keys / "publisher.key"
    signing.generate_keypair(key_file)
    out = tmp_path / "built"
    out.mkdir()
    return Publisher(key_file, out)


def make_home(root: Path, publisher: Publisher | None) -> Path:
    """A REMORA_HOME trusting the publisher's key."""
    root.mkdir(parents=True, exist_ok=True)
    if publisher is not None:
        pub = Path(f"{publisher.key_file}.pub")
        trust.add_trusted_key(root / "trust", pub, name="publisher")
    return root


@pytest.fixture
def cli_app() -> typer.Typer:
    """A fresh ``remora`` app with the pack and registry commands."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """remora (test app)"""

    packs_cli.register(app)
    registry_cli.register(app)
    return app


@dataclass
class Cli:
    app: typer.Typer
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *args: str, code: int = 0, home: Path | None = None) -> str:
        if home is not None:
            self.monkeypatch.setenv("REMORA_HOME", str(home))
        result = CliRunner().invoke(self.app, list(args))
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        if code:
            assert result.stderr.startswith("error: "), result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            return result.stderr
        return result.stdout


@pytest.fixture
def cli(cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    for var in ("REMORA_REGISTRY", "REMORA_REGISTRY_TOKEN", "REMORA_ALLOW_UNSIGNED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REMORA_HOME", str(tmp_path / "default-home"))
    return Cli(cli_app, monkeypatch)
