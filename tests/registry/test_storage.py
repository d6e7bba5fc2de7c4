"""The storage contract, run for real on both backends (a folder and S3 on a moto process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from remora_lsp.registry.errors import RegistryError
from remora_lsp.registry.storage import Storage, check_key, open_storage


def test_put_get_range_list_delete(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: several chunks
    src = tmp_path / "blob"
    src.write_bytes(data)
    assert storage.put_file("blobs/abc.remorapack", src) is True
    assert storage.size("blobs/abc.remorapack") == len(data)
    assert b"".join(storage.open_range("blobs/abc.remorapack")) == data
    assert b"".join(storage.open_range("blobs/abc.remorapack", 1000, 1999)) == data[1000:2000]
    assert b"".join(storage.open_range("blobs/abc.remorapack", len(data) - 3)) == data[-3:]
    storage.put_bytes("packs/demo/1.0.0.json", b"{}")
    storage.put_bytes("packs/demo/_pack.json", b"{}")
    storage.put_bytes("packs/demonic/_pack.json", b"{}")
    assert storage.list("packs/demo/") == ["packs/demo/1.0.0.json", "packs/demo/_pack.json"]
    assert len(storage.list("packs/")) == 3
    assert storage.exists("packs/demo/1.0.0.json") and not storage.exists("packs/none.json")
    assert storage.get_bytes("packs/none.json") is None and storage.size("nothing") is None
    storage.delete("packs/demo/1.0.0.json")
    storage.delete("packs/demo/1.0.0.json")  # absent: no error
    assert not storage.exists("packs/demo/1.0.0.json")
    assert storage.put_bytes("packs/demo/_pack.json", b"new") is True  # overwrite
    assert storage.get_bytes("packs/demo/_pack.json") == b"new"


def test_create_only_has_one_winner(storage: Storage) -> None:
    def create(i: int) -> bool:
        return storage.put_bytes("packs/race/1.0.0.json", f"{i}".encode(), create_only=True)

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(create, range(8)))
    assert wins.count(True) == 1
    assert storage.get_bytes("packs/race/1.0.0.json") == str(wins.index(True)).encode()


@pytest.mark.parametrize(
    "key", ["../x", "a/../b", "/abs", "a//b", "a/./b", "", "a\\b", "x\0y", ".hidden/x", "a b"]
)
def test_keys_cannot_escape(key: str, local_storage: Storage) -> None:
    with pytest.raises(RegistryError):
        check_key(key)
    with pytest.raises(RegistryError):
        local_storage.put_bytes(key, b"x")


def test_local_temp_files_never_listed(tmp_path: Path) -> None:
    store = open_storage(f"file://{tmp_path / 'r'}")
    store.put_bytes("packs/a/_pack.json", b"{}")
    assert store.list("") == ["packs/a/_pack.json"]
    assert not list((tmp_path / "r" / ".tmp").iterdir())


def test_unknown_storage_url() -> None:
    with pytest.raises(RegistryError, match="unknown storage"):
        open_storage("ftp://x")
