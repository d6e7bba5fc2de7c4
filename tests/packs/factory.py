"""Builds pack archives for tests byte by byte, including broken and hostile ones.

The honest path goes through the real builder; hostile archives are written with ``zipfile``
and, where ``zipfile`` refuses to produce something (shared member data, a flipped byte), by
editing the bytes afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from remora_lsp.packs.archive import manifest_yaml
from remora_lsp.packs.manifest import Manifest
from remora_lsp.packs.signing import sign_manifest

BASE_CONFIG_SHA = "ab" * 32


def safetensors_bytes(
    tensors: Mapping[str, tuple[str, list[int]]] | None = None, *, random: bool = False
) -> bytes:
    """A valid safetensors file (``name -> (dtype, shape)``), zero-filled or random."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}
    tensors = tensors or {"lora_A": ("F32", [4, 8]), "lora_B": ("F32", [8, 4])}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    body = os.urandom(offset) if random else bytes(offset)
    return struct.pack("<Q", len(raw)) + raw + body


def good_files() -> dict[str, bytes]:
    """The files of a small but complete pack: adapter, index files, a template, a doc."""
    return {
        "adapters/generation/adapter_config.json": b'{"r": 4, "lora_alpha": 8}\n',
        "adapters/generation/adapter_model.safetensors": safetensors_bytes(),
        "embeddings/chunks.jsonl": b'{"id": 0, "text": "app = FastAPI()"}\n',
        "embeddings/index.faiss": b"IxFI" + bytes(60),
        "templates/router.pym": b'TEMPLATE = "router"\nPARAMS = {}\nINTENTS = ["add router"]\n',
        "docs/README.md": b"# demo pack\n",
    }


def entry(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def manifest_data(
    files: Mapping[str, bytes], *, name: str = "demo", version: str = "1.0.0", **extra: Any
) -> dict[str, Any]:
    """A manifest mapping pinning ``files``; adapter/embeddings blocks when their files exist."""
    data: dict[str, Any] = {
        "format": 1,
        "name": name,
        "version": version,
        "description": "a test pack",
        "license": "MIT",
        "library": {"name": "fastapi", "ecosystem": "pypi", "versions": ">=0.100,<1"},
        "triggers": {"python_imports": ["fastapi"]},
    }
    if "adapters/generation/adapter_config.json" in files:
        data["adapters"] = [
            {
                "role": "generation",
                "path": "adapters/generation",
                "base_model": {"id": "smollm2-135m", "config_sha256": BASE_CONFIG_SHA},
                "rank": 4,
                "alpha": 8,
                "target_modules": ["q_proj", "v_proj"],
            }
        ]
    if "embeddings/index.faiss" in files:
        data["embeddings"] = {
            "model": "minilm",
            "dims": 16,
            "mrl_dims": [8],
            "chunks": 1,
            "files": ["embeddings/index.faiss", "embeddings/chunks.jsonl"],
        }
    templates = sorted(p for p in files if p.startswith("templates/") and p.endswith(".pym"))
    if templates:
        data["templates"] = templates
    data["files"] = {path: entry(blob) for path, blob in sorted(files.items())}
    data.update(extra)
    return data


def manifest_bytes(data: Mapping[str, Any], key: Ed25519PrivateKey | None = None) -> bytes:
    """Validated, optionally signed, dumped like the real builder does."""
    manifest = Manifest.model_validate(dict(data))
    if key is not None:
        manifest = sign_manifest(manifest, key)
    return manifest_yaml(manifest)


def raw_yaml(data: Mapping[str, Any]) -> bytes:
    """Dump without validation (for manifests that must stay invalid)."""
    return yaml.safe_dump(dict(data), sort_keys=False).encode()


@dataclass
class Member:
    """One zip member as a hostile archive wants it."""

    name: str
    data: bytes
    mode: int | None = stat.S_IFREG | 0o644
    compress: int = zipfile.ZIP_DEFLATED
    flag_bits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def zip_bytes(members: list[Member]) -> bytes:
    """Write members exactly as given (names, modes, compression) into a zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for m in members:
            info = zipfile.ZipInfo(m.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = m.compress
            info.create_system = 3
            if m.mode is not None:
                info.external_attr = m.mode << 16
            zf.writestr(info, m.data)
    data = buf.getvalue()
    for m in members:
        if m.flag_bits:
            data = set_flag_bits(data, m.name, m.flag_bits)
    return data


def pack_zip(
    files: Mapping[str, bytes] | None = None,
    *,
    key: Ed25519PrivateKey | None = None,
    manifest: bytes | None = None,
    extra: list[Member] | None = None,
    **manifest_extra: Any,
) -> bytes:
    """An archive of ``files`` (default :func:`good_files`) with a matching manifest."""
    files = good_files() if files is None else dict(files)
    text = (
        manifest
        if manifest is not None
        else manifest_bytes(manifest_data(files, **manifest_extra), key)
    )
    members = [Member("manifest.yaml", text)]
    members += [Member(name, blob) for name, blob in sorted(files.items())]
    members += extra or []
    return zip_bytes(members)


# -- byte surgery ---------------------------------------------------------------------------


def _eocd(data: bytes) -> int:
    pos = data.rfind(b"PK\x05\x06")
    assert pos >= 0
    return pos


def _central_entries(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, name) of each central directory record."""
    eocd = _eocd(data)
    count, cd_size, cd_offset = struct.unpack("<HLL", data[eocd + 10 : eocd + 20])
    out = []
    pos = cd_offset
    for _ in range(count):
        n, m, k = struct.unpack("<HHH", data[pos + 28 : pos + 34])
        name = data[pos + 46 : pos + 46 + n].decode()
        length = 46 + n + m + k
        out.append((pos, length, name))
        pos += length
    assert pos == cd_offset + cd_size
    return out


def share_member_data(data: bytes, source: str, alias: str) -> bytes:
    """Add a central directory entry named ``alias`` that points at ``source``'s data."""
    assert len(alias) == len(source)
    eocd = _eocd(data)
    count, cd_size, cd_offset = struct.unpack("<HLL", data[eocd + 10 : eocd + 20])
    pos, length, _ = next(e for e in _central_entries(data) if e[2] == source)
    record = bytearray(data[pos : pos + length])
    record[46 : 46 + len(alias)] = alias.encode()
    end = cd_offset + cd_size
    new_eocd = bytearray(data[eocd:])
    struct.pack_into("<HHLL", new_eocd, 8, count + 1, count + 1, cd_size + length, cd_offset)
    return data[:end] + bytes(record) + bytes(new_eocd)


def set_flag_bits(data: bytes, name: str, bits: int) -> bytes:
    """OR ``bits`` into a member's general-purpose flags, in both headers."""
    out = bytearray(data)
    for pos, _, entry_name in _central_entries(data):
        if entry_name == name:
            (flags,) = struct.unpack("<H", out[pos + 8 : pos + 10])
            struct.pack_into("<H", out, pos + 8, flags | bits)
            (local,) = struct.unpack("<L", out[pos + 42 : pos + 46])
            (lflags,) = struct.unpack("<H", out[local + 6 : local + 8])
            struct.pack_into("<H", out, local + 6, lflags | bits)
    return bytes(out)


def member_data_offset(data: bytes, name: str) -> tuple[int, int]:
    """(offset, compressed length) of a member's data."""
    for pos, _, entry_name in _central_entries(data):
        if entry_name == name:
            (csize,) = struct.unpack("<L", data[pos + 20 : pos + 24])
            (local,) = struct.unpack("<L", data[pos + 42 : pos + 46])
            n, m = struct.unpack("<HH", data[local + 26 : local + 30])
            return local + 30 + n + m, csize
    raise KeyError(name)


def flip_byte(data: bytes, name: str, index: int = 0) -> bytes:
    """Corrupt one byte of a member's compressed data (its CRC is left as it was)."""
    offset, size = member_data_offset(data, name)
    assert size > index
    out = bytearray(data)
    out[offset + index] ^= 0xFF
    return bytes(out)


def tree_snapshot(root: Path) -> dict[str, tuple[bool, int]]:
    """Every path under ``root`` with (is_dir, size), to compare before/after."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = (path.is_dir(), 0 if path.is_dir() else path.lstat().st_size)
    return out


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
