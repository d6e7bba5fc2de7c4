"""An all-zero copy of a LoRA adapter, used to serve base-model requests on vLLM-CPU.

On vLLM's CPU backend a request without an adapter that is batched next to LoRA requests can
get another adapter's output (upstream vllm#48421, #49656). Routing base-model requests through
an adapter whose weights are all zero gives the base model's output exactly and sidesteps the
bug. :func:`write_zero_adapter` derives one from any adapter for the same base model, without
loading tensors: the safetensors header is kept and every data byte is zero (0.0 in every
float format).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

from remora_lsp.inference.errors import AdapterError

__all__ = ["ZERO_ADAPTER_NAME", "write_zero_adapter"]

ZERO_ADAPTER_NAME = "__remora_zero__"
_WEIGHTS = "adapter_model.safetensors"
_MAX_HEADER = 100 * 1024 * 1024


def _zeroed_safetensors(source: Path, dest: Path) -> None:
    with source.open("rb") as fh:
        raw_len = fh.read(8)
        if len(raw_len) != 8:
            raise AdapterError(f"{source} is not a safetensors file (too short)")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > _MAX_HEADER:
            raise AdapterError(f"{source}: safetensors header of {header_len} bytes refused")
        header_bytes = fh.read(header_len)
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise AdapterError(f"{source}: unreadable safetensors header: {exc}") from exc
    end = max(
        (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0
    )
    tmp = dest.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(raw_len)
        out.write(header_bytes)
        out.truncate(8 + header_len + end)  # a sparse run of zero bytes
    os.replace(tmp, dest)


def write_zero_adapter(source: Path, dest: Path) -> Path:
    """Write an all-zero copy of the PEFT adapter folder ``source`` into ``dest``; return dest.

    Reuses ``dest`` when it already holds a zero copy made from the same source config.
    """
    config = source / "adapter_config.json"
    weights = source / _WEIGHTS
    if not config.is_file() or not weights.is_file():
        raise AdapterError(
            f"{source} is not a PEFT adapter folder (needs adapter_config.json and {_WEIGHTS})"
        )
    marker = dest / "source.txt"
    stamp = f"{config.stat().st_size}:{weights.stat().st_size}:{config.read_text('utf-8')}"
    if marker.is_file() and marker.read_text("utf-8") == stamp:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config, dest / "adapter_config.json")
    _zeroed_safetensors(weights, dest / _WEIGHTS)
    marker.write_text(stamp, "utf-8")
    return dest
