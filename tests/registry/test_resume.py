"""Downloads survive a cut connection: the client resumes with Range/If-Range and the bytes that
arrive are exactly the published ones; a corrupted transfer is refused before install."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from remora_lsp.config import merge_config
from remora_lsp.packs.archive import SILENT_PROGRESS
from remora_lsp.registry.client import (
    RegistryClient,
    RegistryRef,
    install_from_registries,
    parse_pack_spec,
)
from remora_lsp.registry.storage import LocalStorage

from .conftest import PUBLISH_TOKEN, Publisher, make_home, serve_registry


class CuttingStorage(LocalStorage):
    """Serves the first ``cut`` bytes of the first ``cuts`` blob downloads, then drops the
    connection (the stream raises), like a network failure half-way."""

    def __init__(self, root: Path, cut: int, cuts: int) -> None:
        super().__init__(root)
        self.cut = cut
        self.cuts = cuts
        self.starts: list[int] = []

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        inner = super().open_range(key, start, end)
        if not key.startswith("blobs/"):
            return inner
        self.starts.append(start)
        if self.cuts <= 0:
            return inner
        self.cuts -= 1

        def cut() -> Iterator[bytes]:
            sent = 0
            for chunk in inner:
                room = self.cut - sent
                if room <= 0:
                    break
                yield chunk[:room]
                sent += min(room, len(chunk))
            raise ConnectionResetError("cut by the test")

        return cut()


class Recorder:
    def __init__(self) -> None:
        self.total = 0
        self.phases: list[str] = []

    def begin(self, label: str, total_bytes: int) -> None:
        self.phases.append(label)

    def advance(self, nbytes: int) -> None:
        self.total += nbytes

    def end(self) -> None:
        pass


def test_resume_after_cut_connection(tmp_path: Path, publisher: Publisher) -> None:
    storage = CuttingStorage(tmp_path / "reg", cut=700, cuts=2)
    pack = publisher.pack("1.0.0")
    data = pack.read_bytes()
    with serve_registry(storage, publish_token=PUBLISH_TOKEN) as url:
        put = httpx.put(
            f"{url}/v1/packs/demo/1.0.0", content=data,
            headers={"Authorization": f"Bearer {PUBLISH_TOKEN}"},
        )  # fmt: skip
        assert put.status_code == 201
        home = make_home(tmp_path / "user", publisher)
        config, _ = merge_config({"remora_home": str(home)})
        recorder = Recorder()
        result, _ = install_from_registries(
            parse_pack_spec("pack:demo@1.0.0"),
            [RegistryRef(url)],
            config,
            progress=recorder,
            make_client=lambda ref: RegistryClient(ref, backoff=0.01),
        )
    assert result.pack.key == "demo@1.0.0" and result.action == "installed"
    assert storage.starts == [0, 700, 1400]  # two cuts, two resumes from where it stopped
    assert recorder.phases[0] == "downloading demo@1.0.0"
    assert not list((home / "cache" / "registry").iterdir())  # the .part file is gone


def test_partial_file_resumes_and_bad_bytes_are_refused(
    tmp_path: Path, publisher: Publisher
) -> None:
    storage = CuttingStorage(tmp_path / "reg", cut=0, cuts=0)
    pack = publisher.pack("1.0.0")
    data = pack.read_bytes()
    with serve_registry(storage, publish_token=PUBLISH_TOKEN) as url:
        httpx.put(
            f"{url}/v1/packs/demo/1.0.0", content=data,
            headers={"Authorization": f"Bearer {PUBLISH_TOKEN}"},
        )  # fmt: skip
        with RegistryClient(RegistryRef(url)) as client:
            meta: dict[str, Any] = client.versions("demo")[0]
            part = tmp_path / "dl.part"
            part.write_bytes(data[:500])  # left by an earlier, interrupted run
            assert client.download(meta, part, SILENT_PROGRESS).read_bytes() == data
            assert storage.starts == [500]
            part.write_bytes(b"\0" * 500)  # a corrupted partial file
            try:
                client.download(meta, part, SILENT_PROGRESS)
            except Exception as exc:
                assert "sha256" in str(exc)
            else:
                raise AssertionError("corrupted download accepted")
            assert not part.exists()
            assert json.dumps(meta)  # metadata is plain JSON
