"""Decides whether a file may be part of a pack, from its path and from its bytes.

Packs carry data, never code that runs on load: tensors are accepted only as safetensors,
because pickle-based formats execute code when loaded and pickle scanners have known bypasses.
:func:`check_member_path` refuses file types by name; :class:`PayloadCheck` is fed a file's
bytes as they stream past (from a zip member or a file on disk, never buffering more than a
safetensors header) and refuses pickle, zip and numpy containers under ``adapters/`` and
``embeddings/`` and any ``*.safetensors`` file whose header is not sane. The rules are listed in
``docs/pack-format.md`` ("What is refused").
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from remora_lsp.errors import ArchiveError

__all__ = [
    "MAX_SAFETENSORS_HEADER",
    "REFUSED_SUFFIXES",
    "SAFETENSORS_DTYPES",
    "PayloadCheck",
    "check_member_path",
]

# Suffix → what it is. Checked case-insensitively on the last suffix of every file.
REFUSED_SUFFIXES: dict[str, str] = {
    ".bin": "PyTorch pickle weights",
    ".pt": "PyTorch pickle weights",
    ".pth": "PyTorch pickle weights",
    ".ckpt": "pickle checkpoint",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".dill": "pickle",
    ".joblib": "joblib pickle",
    ".npy": "numpy array (may hold pickled objects)",
    ".npz": "numpy archive (may hold pickled objects)",
    ".pyc": "compiled Python",
    ".pyo": "compiled Python",
    ".so": "native library",
    ".pyd": "native library",
    ".dylib": "native library",
    ".dll": "native library",
    ".exe": "executable",
}
# Bytes per element of every safetensors dtype accepted (sub-byte float types are not).
SAFETENSORS_DTYPES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}
MAX_SAFETENSORS_HEADER = 16 * 1024 * 1024
_SNIFFED_DIRS = ("adapters/", "embeddings/")
_PICKLE_PROTOCOLS = frozenset(range(2, 6))


def check_member_path(path: str) -> None:
    """Refuse a pack file by its name alone (tensor formats other than safetensors, code)."""
    dot = path.rfind(".")
    suffix = path[dot:].lower() if dot > path.rfind("/") else ""
    what = REFUSED_SUFFIXES.get(suffix)
    if what is not None:
        raise ArchiveError(
            f"{path}: {suffix} files ({what}) are refused; a pack carries tensors only as "
            ".safetensors and no compiled code"
        )


class PayloadCheck:
    """Checks one file's content as it streams past; call :meth:`feed` then :meth:`finish`."""

    __slots__ = ("_head", "_header_len", "_path", "_safetensors", "_sniff")

    def __init__(self, path: str) -> None:
        self._path = path
        self._safetensors = path.lower().endswith(".safetensors")
        self._sniff = self._safetensors or path.startswith(_SNIFFED_DIRS)
        self._head = bytearray()
        self._header_len: int | None = None

    def _wanted(self) -> int:
        if self._safetensors:
            return 8 + (self._header_len if self._header_len is not None else 0)
        return 8 if self._sniff else 0

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the file; raises ArchiveError as soon as they are refused."""
        need = self._wanted() - len(self._head)
        if need <= 0 or not chunk:
            return
        self._head += chunk[:need]
        self._sniff_magic()
        if self._safetensors and self._header_len is None and len(self._head) >= 8:
            (length,) = struct.unpack("<Q", bytes(self._head[:8]))
            if length > MAX_SAFETENSORS_HEADER:
                raise ArchiveError(
                    f"{self._path}: not a valid safetensors file: header length {length} is over "
                    f"the {MAX_SAFETENSORS_HEADER}-byte limit"
                )
            self._header_len = length
            rest = chunk[need:]
            if rest:
                self.feed(rest)

    def _sniff_magic(self) -> None:
        head = bytes(self._head[:8])
        if len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
            raise ArchiveError(
                f"{self._path}: file starts with a pickle header (protocol {head[1]}); pickled "
                "data can run code when loaded and is refused, tensors must be safetensors"
            )
        if head.startswith(b"PK\x03\x04"):
            raise ArchiveError(
                f"{self._path}: file is a zip container (the PyTorch pickle format); refused, "
                "tensors must be safetensors"
            )
        if head.startswith(b"\x93NUMPY"):
            raise ArchiveError(
                f"{self._path}: file is a numpy array (may hold pickled objects); refused, "
                "tensors must be safetensors"
            )

    def finish(self, total_size: int) -> None:
        """Called once every byte was fed; ``total_size`` is the number of bytes fed."""
        if not self._safetensors:
            return
        bad = f"{self._path}: not a valid safetensors file: "
        if total_size < 8 or self._header_len is None:
            raise ArchiveError(bad + f"{total_size} bytes, shorter than the 8-byte header length")
        length = self._header_len
        if length < 2 or 8 + length > total_size:
            raise ArchiveError(
                bad + f"header length {length} does not fit in a {total_size}-byte file"
            )
        raw = bytes(self._head[8 : 8 + length])
        if not raw.startswith(b"{"):
            raise ArchiveError(bad + "header is not a JSON object")
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchiveError(bad + f"header is not valid UTF-8 JSON ({exc})") from exc
        if not isinstance(header, dict):
            raise ArchiveError(bad + "header is not a JSON object")
        _check_tensors(header, total_size - 8 - length, bad)


def _check_tensors(header: dict[str, Any], data_len: int, bad: str) -> None:
    spans: list[tuple[int, int]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
            ):
                raise ArchiveError(bad + "__metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ArchiveError(bad + f"tensor {name!r} must have dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise ArchiveError(bad + f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or len(shape) > 32 or not all(_is_count(d) for d in shape):
            raise ArchiveError(bad + f"tensor {name!r} has an invalid shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets)):
            raise ArchiveError(bad + f"tensor {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not begin <= end <= data_len:
            raise ArchiveError(
                bad + f"tensor {name!r} data_offsets {offsets} leave the {data_len}-byte data area"
            )
        if math.prod(shape) * SAFETENSORS_DTYPES[dtype] != end - begin:
            raise ArchiveError(
                bad + f"tensor {name!r}: shape {shape} of {dtype} does not fill {end - begin} bytes"
            )
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise ArchiveError(bad + "tensor data overlaps or leaves holes in the data area")
        position = end
    if position != data_len:
        raise ArchiveError(
            bad + f"tensors cover {position} bytes but the data area has {data_len} bytes"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
