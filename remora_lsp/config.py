"""Remora's settings: one frozen, validated object merged from every source.

Sources, lowest precedence first (a later source overrides an earlier one key by key):

1. built-in defaults (the fields below);
2. ``$REMORA_HOME/config.yaml`` (``REMORA_HOME`` defaults to ``~/.remora``);
3. the client's ``initializationOptions``;
4. the client's ``workspace/didChangeConfiguration`` settings;
5. environment variables ``REMORA_<FIELD>`` (``REMORA_ALLOW_UNSIGNED=1``,
   ``REMORA_MAX_ACTIVE_PACKS=4``).

Client settings may be given flat or under a ``remora`` key. A bad value never stops the server:
:func:`merge_config` drops it, keeps the default and returns one message per problem naming the
field, the value and the rule, which the server shows once to the user.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from remora_lsp.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "Config",
    "config_from_env",
    "default_remora_home",
    "load_config_file",
    "merge_config",
]

ENV_PREFIX = "REMORA_"


def default_remora_home() -> Path:
    """``$REMORA_HOME`` if set, else ``~/.remora``."""
    env = os.environ.get("REMORA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".remora"


class Config(BaseModel):
    """Validated, immutable settings. Build it with :func:`merge_config`, never mutate it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    remora_home: Path = Field(
        default_factory=default_remora_home,
        description="Root of Remora's state: packs/, trust/, config.yaml.",
    )
    allow_unsigned: bool = Field(
        default=False, description="Load packs that carry no signature (local development only)."
    )
    max_active_packs: int = Field(
        default=8, ge=1, le=256, description="Most packs active at once; LRU beyond it."
    )
    deactivate_grace_seconds: float = Field(
        default=10.0,
        ge=0.0,
        le=3600.0,
        description="How long a pack stays active after the last buffer importing it stops.",
    )
    debounce_ms: int = Field(
        default=150, ge=0, le=10_000, description="Quiet time after an edit before re-analysis."
    )
    max_document_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Documents larger than this are tracked but not parsed.",
    )
    watch_packs: bool = Field(
        default=True, description="Watch the pack store and pick up changes without restart."
    )
    generative: bool = Field(
        default=True,
        description="Start the code model (completion, scaffold bodies); engine settings are "
        "read by remora_lsp.inference.config.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Server log verbosity (logs go to stderr)."
    )

    @property
    def packs_dir(self) -> Path:
        """Where installed packs live: ``<remora_home>/packs``."""
        return self.remora_home / "packs"

    @property
    def trust_dir(self) -> Path:
        """Where trusted public keys live: ``<remora_home>/trust``."""
        return self.remora_home / "trust"


_FIELDS = tuple(Config.model_fields)


def _unwrap(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    if not settings:
        return {}
    if not isinstance(settings, Mapping):
        return {"__invalid__": settings}
    inner = settings.get("remora")
    if isinstance(inner, Mapping):
        return dict(inner)
    return dict(settings)


def _coerce_env(name: str, raw: str) -> Any:
    annotation = Config.model_fields[name].annotation
    if annotation is bool:
        low = raw.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off", ""}:
            return False
    return raw


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings given as ``REMORA_<FIELD>`` environment variables (``REMORA_HOME`` included)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name in _FIELDS:
        key = "REMORA_HOME" if name == "remora_home" else ENV_PREFIX + name.upper()
        if key in env:
            out[name] = _coerce_env(name, env[key])
    return out


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file; a missing file is empty, an unreadable one raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def merge_config(
    *layers: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None = None,
    foreign_keys: Collection[str] = (),
) -> tuple[Config, list[str]]:
    """Merge setting layers (lowest precedence first), then the environment, into a Config.

    Returns the config and a list of human-readable problems; each bad or unknown key is
    dropped so its default applies. ``config.yaml`` under the resulting home is read first.
    ``foreign_keys`` are keys other layers own (engine, semantic settings): not reported.
    """
    problems: list[str] = []
    env_layer = config_from_env(environ)
    client: dict[str, Any] = {}
    for layer in layers:
        data = _unwrap(layer)
        if "__invalid__" in data:
            problems.append(f"settings must be an object, got {data['__invalid__']!r}; ignored")
            continue
        client.update(data)
    home_raw = env_layer.get("remora_home", client.get("remora_home"))
    home = Path(str(home_raw)).expanduser() if home_raw else default_remora_home()
    try:
        file_layer = load_config_file(home / "config.yaml")
    except ConfigError as exc:
        problems.append(str(exc))
        file_layer = {}
    merged: dict[str, Any] = {}
    for source in (file_layer, client, env_layer):
        for key, value in source.items():
            if key not in _FIELDS:
                # Other packages (engines, registries) own their own keys in the same file.
                if source is not file_layer and key not in foreign_keys:
                    problems.append(f"unknown setting `{key}` ignored")
                continue
            merged[key] = value
    while True:
        try:
            return Config(**merged), problems
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            for err in exc.errors():
                if not err["loc"]:
                    continue
                field = str(err["loc"][0])
                if field in merged:
                    default = Config.model_fields[field].get_default(call_default_factory=True)
                    problems.append(
                        f"setting `{field}` = {merged[field]!r} is invalid ({err['msg']}); "
                        f"using the default {default!r}"
                    )
            if not bad & merged.keys():
                raise ConfigError(str(exc)) from exc
            for field in bad:
                merged.pop(field, None)
