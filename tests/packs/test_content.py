"""Payload rules: only safetensors tensors, no pickle, sane safetensors headers."""

from __future__ import annotations

import json
import pickle
import struct

import pytest

from remora_lsp.errors import ArchiveError
from remora_lsp.packs.content import PayloadCheck, check_member_path

from .factory import safetensors_bytes


def check(path: str, data: bytes, chunk: int = 7) -> None:
    payload = PayloadCheck(path)
    for i in range(0, len(data), chunk):
        payload.feed(data[i : i + chunk])
    payload.finish(len(data))


def header(obj: object, data_len: int) -> bytes:
    raw = json.dumps(obj).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data_len)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_valid_safetensors_pass_in_any_chunking(chunk: int) -> None:
    check("adapters/g/adapter_model.safetensors", safetensors_bytes(), chunk)
    check("adapters/g/empty.safetensors", header({}, 0), chunk)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x02", "shorter than the 8-byte header length"),
        (struct.pack("<Q", 1 << 40), "over the 16777216-byte limit"),
        (struct.pack("<Q", 50) + b"{}", "does not fit"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 3) + b"{\xff}", "not valid UTF-8 JSON"),
        (
            header({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "x": 1}, 8),
            "tensor 'x' must have",
        ),
        (header({"t": {"dtype": "OBJ", "shape": [2], "data_offsets": [0, 8]}}, 8), "unknown dtype"),
        (header({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8), "shape"),
        (header({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, 8), "leave the"),
        (header({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8), "does not fill"),
        (header({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 16), "cover 8"),
        (
            header(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                12,
            ),
            "overlaps or leaves holes",
        ),
        (header({"__metadata__": {"a": 1}}, 0), "__metadata__ must map strings"),
    ],
)
def test_insane_safetensors_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        check("adapters/g/w.safetensors", data)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_is_refused_under_adapters_and_embeddings(protocol: int) -> None:
    blob = pickle.dumps([1, 2, 3], protocol=protocol)
    for path in ("adapters/g/adapter_model.safetensors", "embeddings/meta.json", "adapters/x"):
        with pytest.raises(ArchiveError, match=f"pickle header \\(protocol {protocol}\\)"):
            check(path, blob)
    check("docs/notes.md", blob)  # outside tensor folders a .md is just bytes


@pytest.mark.parametrize(
    "path",
    [
        "a/x.bin",
        "a/x.PT",
        "a/x.pth",
        "a/x.pkl",
        "a/x.pickle",
        "a/x.ckpt",
        "a/x.joblib",
        "a/x.npy",
        "a/x.npz",
        "a/x.so",
        "a/x.pyc",
    ],
)
def test_refused_suffixes(path: str) -> None:
    with pytest.raises(ArchiveError, match="are refused"):
        check_member_path(path)


def test_allowed_names() -> None:
    for path in (
        "templates/a.pym",
        "embeddings/index.faiss",
        "adapters/g/adapter_config.json",
        "docs/binary",
    ):
        check_member_path(path)
