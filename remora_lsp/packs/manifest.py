"""The pack manifest (``manifest.yaml``, format 1): its schema, parsing and canonical form.

A manifest describes one version of one pack: what library it targets, which imports trigger
it, the adapters and index it carries, its templates and tools, the sha256 and size of every
file, and the signature over all of that. :func:`parse_manifest` turns YAML text into a frozen
:class:`Manifest` or raises :class:`~remora_lsp.errors.ManifestError` whose message names the
field, the value and the rule. :func:`canonical_manifest_bytes` is the exact byte string a
signature covers. The full specification lives in ``docs/pack-format.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from remora_lsp.errors import ManifestError

__all__ = [
    "ADAPTER_ROLES",
    "FORMAT_VERSION",
    "LAYOUT_DIRS",
    "LAYOUT_TOP_FILES",
    "MANIFEST_NAME",
    "MAX_MANIFEST_BYTES",
    "Adapter",
    "BaseModelRef",
    "Embeddings",
    "FileEntry",
    "Library",
    "Manifest",
    "Signature",
    "Tool",
    "Triggers",
    "canonical_manifest_bytes",
    "load_manifest",
    "parse_manifest",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.yaml"
MAX_MANIFEST_BYTES = 1024 * 1024
ADAPTER_ROLES = ("generation", "embedding", "transform", "orchestrator")

# Pack names are path components and registry keys: lower-case, no separators, no dots first.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Semantic Versioning 2.0.0, the official regular expression.
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
PY_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
JS_PACKAGE_RE = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$", re.IGNORECASE)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PATH_RE = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9_.@+-]+(/[A-Za-z0-9_.@+-]+)*$")
MAX_PATH_LENGTH = 255
# Where a pack's files may live (docs/pack-format.md, "Layout").
LAYOUT_DIRS = ("adapters/", "embeddings/", "templates/", "docs/")
LAYOUT_TOP_FILES = ("README.md", "LICENSE", "NOTICE", "CHANGELOG.md")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_path(value: str) -> str:
    if not PATH_RE.match(value) or "\\" in value or len(value) > MAX_PATH_LENGTH:
        raise ValueError(
            "must be a relative POSIX path (at most 255 characters) of letters, digits, '_.@+-' "
            "without '..' or '.' parts"
        )
    return value


def _check_layout(value: str) -> str:
    if value in LAYOUT_TOP_FILES or value.startswith(LAYOUT_DIRS):
        return value
    raise ValueError(
        f"{value!r} is outside the pack layout: files live under "
        f"{', '.join(LAYOUT_DIRS)} or are one of {', '.join(LAYOUT_TOP_FILES)}"
    )


class Library(_Frozen):
    """The library a pack targets."""

    name: str = Field(min_length=1, max_length=214)
    ecosystem: Literal["pypi", "npm"]
    versions: str = Field(default="", max_length=200)

    @field_validator("versions")
    @classmethod
    def _versions_is_range(cls, value: str) -> str:
        if value.strip() in {"", "*"}:
            return value
        try:
            SpecifierSet(value)
        except InvalidSpecifier as exc:
            raise ValueError("must be a version range such as '>=0.100,<1'") from exc
        return value


class Triggers(_Frozen):
    """Imports that activate the pack: a trigger matches the module or any submodule of it."""

    python_imports: tuple[str, ...] = Field(default=(), max_length=256)
    js_imports: tuple[str, ...] = Field(default=(), max_length=256)

    @field_validator("python_imports")
    @classmethod
    def _python_modules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not PY_MODULE_RE.match(item):
                raise ValueError(f"{item!r} is not a dotted Python module name")
        return value

    @field_validator("js_imports")
    @classmethod
    def _js_packages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not JS_PACKAGE_RE.match(item):
                raise ValueError(f"{item!r} is not an npm package name such as 'react' or '@x/y'")
        return value


class BaseModelRef(_Frozen):
    """The base model an adapter was trained for."""

    id: str = Field(min_length=1, max_length=200)
    config_sha256: str = Field(pattern=SHA256_RE.pattern)


class Adapter(_Frozen):
    """One PEFT LoRA adapter folder inside the pack."""

    role: Literal["generation", "embedding", "transform", "orchestrator"]
    path: str
    base_model: BaseModelRef
    rank: int = Field(ge=1, le=1024)
    alpha: float = Field(gt=0, le=4096)
    target_modules: tuple[str, ...] = Field(min_length=1, max_length=64)

    _path = field_validator("path")(classmethod(lambda cls, v: _check_path(v)))


class Embeddings(_Frozen):
    """The pack's vector index."""

    model: str = Field(min_length=1, max_length=200)
    dims: int = Field(ge=1, le=16384)
    mrl_dims: tuple[int, ...] = Field(default=(), max_length=16)
    chunks: int = Field(ge=0)
    files: tuple[str, ...] = Field(min_length=1, max_length=64)

    @field_validator("files")
    @classmethod
    def _files(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_path(v) for v in value)


class Tool(_Frozen):
    """A tool the pack adds to the orchestrator (e.g. ``fastapi_search``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = Field(min_length=1, max_length=1000)
    kind: Literal["search", "template"] = "search"
    parameters: dict[str, Any] = Field(default_factory=dict)


class FileEntry(_Frozen):
    """Digest and size of one file in the pack."""

    sha256: str = Field(pattern=SHA256_RE.pattern)
    size: int = Field(ge=0)


class Signature(_Frozen):
    """An ed25519 signature over :func:`canonical_manifest_bytes`."""

    algorithm: Literal["ed25519"]
    key_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    value: str = Field(min_length=1, max_length=200)


class Manifest(_Frozen):
    """A validated pack manifest. ``format``, ``name`` and ``version`` are always present."""

    format: int
    name: str
    version: str
    description: str = Field(default="", max_length=2000)
    license: str = Field(default="", max_length=200)
    library: Library | None = None
    triggers: Triggers = Field(default_factory=Triggers)
    adapters: tuple[Adapter, ...] = Field(default=(), max_length=16)
    embeddings: Embeddings | None = None
    templates: tuple[str, ...] = Field(default=(), max_length=256)
    tools: tuple[Tool, ...] = Field(default=(), max_length=64)
    card: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, FileEntry] = Field(default_factory=dict, max_length=10_000)
    signature: Signature | None = None

    @field_validator("format")
    @classmethod
    def _format(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(
                f"this pack needs format {value} but this Remora reads format {FORMAT_VERSION}; "
                "upgrade Remora (pip install -U remora-lsp)"
            )
        if value < 1:
            raise ValueError("must be 1")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be 1-64 of a-z, 0-9, '_' or '-', starting with a letter/digit")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ValueError("must be a semantic version such as 1.2.3, written as a quoted string")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not SEMVER_RE.match(value):
            raise ValueError("must be a semantic version such as 1.2.3")
        return value

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            _check_path(item)
            if not item.endswith(".pym"):
                raise ValueError(f"{item!r} must be a .pym file")
        return value

    @field_validator("files")
    @classmethod
    def _files(cls, value: dict[str, FileEntry]) -> dict[str, FileEntry]:
        folded: dict[str, str] = {}
        for path in value:
            _check_path(path)
            if path == MANIFEST_NAME:
                raise ValueError("must not list manifest.yaml itself")
            _check_layout(path)
            other = folded.setdefault(path.casefold(), path)
            if other != path:
                raise ValueError(f"{other!r} and {path!r} differ only in case")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        """Cross-field rules; they apply once ``files`` pins the content (built packs)."""
        roles = [a.role for a in self.adapters]
        for role in roles:
            if roles.count(role) > 1:
                raise ValueError(f"adapter role {role!r} appears more than once; one per role")
        if not self.files:
            return self
        listed = self.files.keys()
        for template in self.templates:
            if template not in listed:
                raise ValueError(f"template {template!r} is not listed in `files`")
        if self.embeddings is not None:
            for item in self.embeddings.files:
                if item not in listed:
                    raise ValueError(f"embeddings file {item!r} is not listed in `files`")
        for adapter in self.adapters:
            folder = adapter.path.rstrip("/") + "/"
            if not folder.startswith("adapters/"):
                raise ValueError(f"adapter path {adapter.path!r} must be under adapters/")
            if folder + "adapter_config.json" not in listed:
                raise ValueError(
                    f"adapter {adapter.role!r}: {folder}adapter_config.json is not listed "
                    "in `files`"
                )
            if not any(p.startswith(folder) and p.endswith(".safetensors") for p in listed):
                raise ValueError(
                    f"adapter {adapter.role!r}: no {folder}*.safetensors weights in `files`"
                )
        return self

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def signed(self) -> bool:
        """Whether the manifest carries a signature block (not whether it is valid)."""
        return self.signature is not None

    def adapter(self, role: str) -> Adapter | None:
        """The adapter with this role, if the pack has one."""
        return next((a for a in self.adapters if a.role == role), None)

    def to_data(self) -> dict[str, Any]:
        """Plain data for YAML/JSON, without unset optional blocks."""
        return self.model_dump(mode="json", exclude_none=True)


class _ManifestYamlError(Exception):
    """A construct the manifest reader refuses although YAML allows it."""


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases (billion-laughs) and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _ManifestYamlError(
                f"YAML aliases (*name) are not allowed in a manifest (line {mark.line + 1})"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: let the base class report it
                break
            if duplicate:
                raise _ManifestYamlError(
                    f"key {key!r} appears twice in one mapping "
                    f"(line {key_node.start_mark.line + 1})"
                )
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str | bytes, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except _ManifestYamlError as exc:
        raise ManifestError(f"{source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ManifestError(f"{source}: nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal with too many digits
        raise ManifestError(f"{source}: unreadable value: {exc}") from exc


def _format_error(exc: ValidationError, data: Mapping[str, Any]) -> str:
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        field = ""
        for part in loc:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        value: Any = data
        for part in loc:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not loc:
            lines.append(msg)
        elif err["type"] == "missing":
            lines.append(f"manifest field `{field}` is required")
        elif err["type"] == "extra_forbidden":
            lines.append(f"manifest field `{field}` is not part of format {FORMAT_VERSION}")
        else:
            lines.append(f"manifest field `{field}` = {shown}: {msg}")
    return "; ".join(lines)


def parse_manifest(text: str | bytes, *, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest YAML. Raises ManifestError naming field, value and rule."""
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{source}: manifest is {len(text)} bytes, over the {MAX_MANIFEST_BYTES}-byte limit"
        )
    data = _load_yaml(text, source)
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: must be a YAML mapping, got {type(data).__name__}")
    fmt = data.get("format")
    if isinstance(fmt, int) and fmt > FORMAT_VERSION:
        raise ManifestError(
            f"{source}: pack format {fmt} is newer than this Remora supports "
            f"(format {FORMAT_VERSION}); upgrade Remora: pip install -U remora-lsp"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{source}: {_format_error(exc, data)}") from exc
    except RecursionError as exc:
        raise ManifestError(f"{source}: nested too deeply") from exc
    canonical_manifest_bytes(manifest, source=source)  # refuses NaN and unserialisable values
    return manifest


def load_manifest(pack_dir: Path) -> Manifest:
    """Read ``pack_dir/manifest.yaml``."""
    path = pack_dir / MANIFEST_NAME
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: over the {MAX_MANIFEST_BYTES}-byte manifest limit")
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: no manifest.yaml in {pack_dir}") from exc
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from exc
    return parse_manifest(text, source=str(path))


def canonical_manifest_bytes(
    manifest: Manifest | Mapping[str, Any], *, source: str = MANIFEST_NAME
) -> bytes:
    """The bytes a signature covers: the validated manifest without ``signature``, as JSON.

    The manifest is first validated (a mapping is validated into a :class:`Manifest`), then
    dumped with every field that equals its default left out (so a later format-1 release that
    adds an optional field does not invalidate existing signatures), then written as UTF-8 JSON
    with keys sorted, ``,``/``:`` separators, no other white space and no NaN/Infinity. Because
    ``files`` pins every file's sha256 and size, signing these bytes covers the whole pack.
    """
    if not isinstance(manifest, Manifest):
        try:
            manifest = Manifest.model_validate(dict(manifest))
        except ValidationError as exc:
            raise ManifestError(f"{source}: {_format_error(exc, dict(manifest))}") from exc
    try:
        data = manifest.model_dump(mode="json", exclude_defaults=True, exclude={"signature"})
        text = json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (ValueError, TypeError) as exc:
        raise ManifestError(
            f"{source}: holds a value that has no canonical JSON form "
            f"(NaN, Infinity or binary data): {exc}"
        ) from exc
    return text.encode("utf-8")
