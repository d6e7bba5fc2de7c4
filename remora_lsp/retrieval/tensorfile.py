"""Reading and writing plain arrays as safetensors files, memory-mapped, without pickle.

Packs carry tensors only as safetensors (``remora_lsp.packs.content`` refuses ``.npy`` and
pickles), and an index must open without reading its vectors into memory. This module writes a
dict of numpy arrays in the safetensors layout (8-byte little-endian header length, a JSON
header, the raw little-endian data, each tensor 8-byte aligned) and opens one with every tensor
as a read-only ``numpy.memmap`` view. The header is validated strictly before any byte is
mapped, so a truncated or tampered file raises :class:`IndexCorruptError` instead of reading
garbage.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remora_lsp.retrieval.errors import IndexCorruptError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_tensors", "write_tensors"]

MAX_HEADER = 16 * 1024 * 1024
# safetensors dtype name ↔ numpy dtype string (little-endian).
_DTYPES = {"F32": "<f4", "F16": "<f2", "U8": "|u1", "I8": "|i1", "I32": "<i4", "I64": "<i8"}
_BY_NUMPY = {v.lstrip("<|"): k for k, v in _DTYPES.items()}


def write_tensors(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` to ``path`` atomically (a temporary file beside it, then rename)."""
    import numpy as np

    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    arrays: list[np.ndarray] = []
    offset = 0
    for name, array in tensors.items():
        arr = np.ascontiguousarray(array)
        key = arr.dtype.str.lstrip("<|=")
        dtype = _BY_NUMPY.get(key)
        if dtype is None:
            raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored")
        arr = arr.astype(_DTYPES[dtype], copy=False)
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        arrays.append(arr)
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(len(raw) + 8) % 8)  # keep the data area 8-byte aligned
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for arr in arrays:
            fh.write(arr.tobytes(order="C"))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_tensors(path: Path, *, mmap: bool = True) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors of a safetensors file (read-only memmaps when ``mmap``) and its metadata.

    Raises :class:`IndexCorruptError` naming the file when it is missing, truncated, or its
    header does not describe exactly the bytes that follow it.
    """
    import numpy as np

    bad = f"{path}: not a valid tensor file: "
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise IndexCorruptError(bad + f"{size} bytes, shorter than the 8-byte header")
            (length,) = struct.unpack("<Q", head)
            if length < 2 or length > MAX_HEADER or 8 + length > size:
                raise IndexCorruptError(
                    bad + f"header length {length} does not fit in a {size}-byte file"
                )
            raw = fh.read(length)
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path}: missing; rebuild the index") from exc
    except OSError as exc:
        raise IndexCorruptError(f"{path}: cannot read: {exc}") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IndexCorruptError(bad + f"header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise IndexCorruptError(bad + "header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict):
        raise IndexCorruptError(bad + "__metadata__ is not an object")
    base = 8 + length
    data_len = size - base
    out: dict[str, np.ndarray] = {}
    spans: list[tuple[int, int]] = []
    for name, entry in header.items():
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(bad + f"tensor {name!r} has a malformed entry") from exc
        count = 1
        for dim in shape:
            if dim < 0:
                raise IndexCorruptError(bad + f"tensor {name!r} has a negative dimension")
            count *= dim
        itemsize = np.dtype(dtype).itemsize
        if not 0 <= begin <= end <= data_len or (end - begin) != count * itemsize:
            raise IndexCorruptError(
                bad + f"tensor {name!r} ({entry['dtype']} {list(shape)}) does not match its "
                f"data offsets [{begin}, {end}) in a {data_len}-byte data area (truncated file?)"
            )
        spans.append((begin, end))
        if count == 0:
            out[name] = np.zeros(shape, dtype=dtype)
        elif mmap:
            out[name] = np.memmap(path, dtype=dtype, mode="r", offset=base + begin, shape=shape)
        else:
            with path.open("rb") as fh:
                fh.seek(base + begin)
                out[name] = np.frombuffer(fh.read(end - begin), dtype=dtype).reshape(shape)
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise IndexCorruptError(bad + "tensor data overlaps or leaves holes")
        position = end
    if position != data_len:
        raise IndexCorruptError(
            bad + f"tensors cover {position} bytes but the file holds {data_len} (truncated "
            "or extended file)"
        )
    return out, {str(k): str(v) for k, v in metadata.items()}
