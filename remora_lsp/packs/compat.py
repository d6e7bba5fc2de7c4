"""Whether a pack's adapter fits the base model the engine runs, and if not, exactly why.

An adapter names the base model it was trained for by id and by a fingerprint of the base
model's ``config.json`` (:func:`config_fingerprint`). The server asks
:func:`adapter_compatibility` before loading an adapter; a non-None answer is the reason shown
in the pack status while the pack's other parts (index, templates, tools) still load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remora_lsp.errors import PackError
from remora_lsp.packs.manifest import ADAPTER_ROLES, Manifest

__all__ = ["FINGERPRINT_IGNORED_KEYS", "adapter_compatibility", "config_fingerprint"]

# Keys of a Hugging Face config.json that do not change which weights an adapter fits.
FINGERPRINT_IGNORED_KEYS = frozenset(
    {
        "_name_or_path",
        "transformers_version",
        "torch_dtype",
        "dtype",
        "use_cache",
        "quantization_config",
        "_attn_implementation",
        "attn_implementation",
        "_commit_hash",
    }
)


def config_fingerprint(config: Mapping[str, Any] | Path) -> str:
    """sha256 of a base model's ``config.json``, canonicalised so cosmetic keys do not count.

    The config (a mapping, or the path of ``config.json`` or of its model folder) loses the keys
    in :data:`FINGERPRINT_IGNORED_KEYS` and is written as JSON with sorted keys and ``,``/``:``
    separators; the hex sha256 of those UTF-8 bytes is the fingerprint an adapter's
    ``base_model.config_sha256`` must equal.
    """
    if isinstance(config, Path):
        path = config / "config.json" if config.is_dir() else config
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PackError(f"cannot read base model config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise PackError(f"base model config {path} is not a JSON object")
        config = data
    kept = {k: v for k, v in config.items() if k not in FINGERPRINT_IGNORED_KEYS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def adapter_compatibility(
    manifest: Manifest, role: str, base_model_id: str, base_config_sha256: str | None
) -> str | None:
    """None if the pack's ``role`` adapter fits the engine's base model, else why it is skipped.

    ``base_config_sha256`` is the engine's :func:`config_fingerprint`; None skips that check
    (an engine that cannot read its config compares ids only).
    """
    if role not in ADAPTER_ROLES:
        return f"unknown adapter role {role!r}; roles are {', '.join(ADAPTER_ROLES)}"
    adapter = manifest.adapter(role)
    if adapter is None:
        return f"{manifest.key} has no {role} adapter"
    wanted = adapter.base_model
    if wanted.id != base_model_id:
        return (
            f"the {role} adapter of {manifest.key} was trained for base model {wanted.id!r}, "
            f"but the engine runs {base_model_id!r}; the adapter is skipped, the rest of the "
            "pack is loaded"
        )
    if base_config_sha256 is not None and wanted.config_sha256 != base_config_sha256.lower():
        return (
            f"the {role} adapter of {manifest.key} was trained for {wanted.id!r} with config "
            f"sha256 {wanted.config_sha256[:12]}…, but the engine's {base_model_id!r} has config "
            f"sha256 {base_config_sha256[:12]}… (a different variant); the adapter is skipped, "
            "the rest of the pack is loaded"
        )
    return None
