"""What a local model folder is: its id, config fingerprint, architecture and FIM tokens.

:func:`read_identity` reads only small JSON files (``config.json``, the tokenizer files and
Remora's own ``remora-model.json`` when the folder was provisioned by ``remora models fetch``),
so it is cheap enough to call before an engine has loaded a single weight. FIM tokens count
only when the tokenizer has each of them as one added token; otherwise a FIM prompt would be
split into pieces the model never saw in training, and completion stays prefix-only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remora_lsp.inference.engine import FimTokens, ModelIdentity
from remora_lsp.inference.errors import ModelNotFoundError
from remora_lsp.packs.compat import config_fingerprint

__all__ = ["MODEL_RECORD", "added_tokens", "find_fim_tokens", "read_identity", "read_json"]

MODEL_RECORD = "remora-model.json"

# (prefix, suffix, middle) spellings of known code-model families.
_FIM_FAMILIES = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # CodeGemma, Qwen2.5-Coder
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, SantaCoder
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),  # DeepSeek-Coder
    ("▁<PRE>", "▁<SUF>", "▁<MID>"),  # CodeLlama
)
_FILE_SEPARATORS = ("<|file_separator|>", "<file_sep>")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` ({} when the file is missing)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{path} is unreadable: {exc}") from exc
    return data if isinstance(data, dict) else {}


def added_tokens(folder: Path) -> set[str]:
    """Every token the tokenizer treats as one added/special token."""
    found: set[str] = set()
    tokenizer = read_json(folder / "tokenizer.json")
    for item in tokenizer.get("added_tokens", []) or []:
        if isinstance(item, dict) and isinstance(item.get("content"), str):
            found.add(item["content"])
    config = read_json(folder / "tokenizer_config.json")
    decoder = config.get("added_tokens_decoder") or {}
    if isinstance(decoder, dict):
        for item in decoder.values():
            if isinstance(item, dict) and isinstance(item.get("content"), str):
                found.add(item["content"])
    extra = config.get("additional_special_tokens") or []
    found.update(t for t in extra if isinstance(t, str))
    return found


def find_fim_tokens(tokens: set[str]) -> FimTokens | None:
    """The FIM triple present in ``tokens`` (all three as single tokens), else None."""
    separator = next((t for t in _FILE_SEPARATORS if t in tokens), None)
    for prefix, suffix, middle in _FIM_FAMILIES:
        if {prefix, suffix, middle} <= tokens:
            return FimTokens(prefix, suffix, middle, separator)
    return None


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def read_identity(folder: Path, model_id: str | None = None) -> ModelIdentity:
    """The identity of the Hugging Face model folder ``folder``.

    The id is ``model_id`` when given, else the ``id`` recorded by ``remora models fetch``,
    else the folder name. Raises :class:`ModelNotFoundError` when ``config.json`` is missing.
    """
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(
            f"{folder} is not a model folder (no config.json); point `model` at a Hugging Face "
            "model folder or run `remora models fetch` for the default model"
        )
    config = read_json(config_path)
    record = read_json(folder / MODEL_RECORD)
    architectures = config.get("architectures") or [str(config.get("model_type", "unknown"))]
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    max_context = config.get("max_position_embeddings") or (text_config or {}).get(
        "max_position_embeddings"
    )
    eos = _token_text(read_json(folder / "tokenizer_config.json").get("eos_token"))
    return ModelIdentity(
        model_id=model_id or str(record.get("id") or folder.name),
        config_sha256=config_fingerprint(config),
        architecture=str(architectures[0]),
        is_encoder_decoder=bool(config.get("is_encoder_decoder", False)),
        fim=find_fim_tokens(added_tokens(folder)),
        path=folder,
        max_context=int(max_context) if isinstance(max_context, int) else None,
        vocab_size=config.get("vocab_size") if isinstance(config.get("vocab_size"), int) else None,
        eos_token=eos,
    )
