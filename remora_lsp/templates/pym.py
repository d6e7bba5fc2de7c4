"""Loads ``.pym`` templates: runs a trusted pack's code in the sandbox, checks its declarations.

A ``.pym`` file is Python that defines plain data (see ``docs/templates.md``): ``TEMPLATE``
(Jinja2 text) with ``OUTPUT`` (a Jinja2 path pattern), or ``FILES`` (path pattern → Jinja2
text) for several files; ``PARAMS`` (the parameter schema); ``INTENTS`` (phrases) and
``KEYWORDS``; optionally ``DESCRIPTION`` (else the module docstring). Jinja2 comments of the form
``{# fill: name #}`` mark bodies the code model fills later; they become ``# remora: fill name``
comments in the rendered code.

Because a ``.pym`` is code, :func:`load_pack_templates` executes it only for a trusted pack —
``VerifiedPack.signed_by`` is not None — or when the caller passes
``allow_untrusted_templates=True`` (a development flag). Otherwise it raises
:class:`UntrustedTemplateError` without running anything. Execution always happens in the
restricted child process of :mod:`remora_lsp.templates.sandbox`; the parent reads the files
(never writing into the pack folder) and validates the child's answer as untrusted data.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.templates.errors import TemplateLoadError, UntrustedTemplateError
from remora_lsp.templates.sandbox import SandboxLimits, run_job

__all__ = [
    "FILL_COMMENT",
    "PARAM_TYPES",
    "ParamSpec",
    "TemplateSpec",
    "load_pack_templates",
    "load_pym_sources",
    "spec_from_data",
]

PARAM_TYPES = ("str", "int", "bool", "list[str]", "identifier", "path")
EXTRACT_HINTS = (
    "class",
    "noun",
    "fields",
    "quoted",
    "module",
    "name",
    "field",
    "prefix",
    "path",
    "flag",
    "list",
)
FILL_COMMENT = "# remora: fill"
_FILL_RE = re.compile(r"\{#-?[ \t]*fill:[ \t]*([A-Za-z_{][^\n#]*?)[ \t]*-?#\}")
_PARAM_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_PYM_BYTES = 256 * 1024


@dataclass(frozen=True)
class ParamSpec:
    """One declared template parameter.

    ``extract`` tells the deterministic router where to look for a value in a request
    (``class``: a CamelCase class name, ``noun``: a snake_case resource noun, ``fields``: "with
    fields a, b", ``quoted``: a quoted string, ``name``/``path``/``number``/``flag``/``list``).
    """

    name: str
    type: str = "str"
    description: str = ""
    required: bool = True
    default: Any = None
    extract: str = ""
    pattern: str = ""
    cues: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def to_data(self) -> dict[str, Any]:
        """JSON-able form, as the orchestrator's tools return it."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "required": self.required,
        }
        if not self.required:
            data["default"] = self.default
        return data


@dataclass(frozen=True)
class TemplateSpec:
    """A loaded template: what it renders, the parameters it takes and the intents it serves."""

    name: str
    pack: str
    source: str
    description: str
    params: tuple[ParamSpec, ...]
    intents: tuple[str, ...]
    keywords: tuple[str, ...]
    files: tuple[tuple[str, str], ...]
    fills: tuple[str, ...] = field(default=())

    def parameters_schema(self) -> dict[str, Any]:
        """The parameters as a JSON Schema object, as tool declarations use."""
        props: dict[str, Any] = {}
        for p in self.params:
            if p.type == "list[str]":
                prop: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
                if p.pattern:
                    prop["items"]["pattern"] = p.pattern
            else:
                prop = {"type": {"int": "integer", "bool": "boolean"}.get(p.type, "string")}
                if p.type in ("identifier", "path"):
                    prop["format"] = p.type
                if p.pattern:
                    prop["pattern"] = p.pattern
            if p.description:
                prop["description"] = p.description
            if not p.required:
                prop["default"] = p.default
            props[p.name] = prop
        return {
            "type": "object",
            "properties": props,
            "required": [p.name for p in self.params if p.required],
        }

    def param(self, name: str) -> ParamSpec | None:
        """The parameter with this name, if declared."""
        return next((p for p in self.params if p.name == name), None)

    def to_data(self) -> dict[str, Any]:
        """JSON-able summary for ``list_templates``."""
        return {
            "name": self.name,
            "pack": self.pack,
            "description": self.description,
            "intents": list(self.intents),
            "keywords": list(self.keywords),
            "params": [p.to_data() for p in self.params],
            "parameters": self.parameters_schema(),
            "outputs": [path for path, _ in self.files],
            "fills": list(self.fills),
        }


def _fail(source: str, message: str) -> TemplateLoadError:
    return TemplateLoadError(f"{source}: {message}")


def _str_list(value: Any, source: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, f"{what} must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _param(item: Any, source: str) -> ParamSpec:
    if not isinstance(item, dict):
        raise _fail(source, "each PARAMS entry must be a dict with at least `name`")
    unknown = set(item) - {
        "name",
        "type",
        "description",
        "required",
        "default",
        "extract",
        "pattern",
        "cues",
    }
    if unknown:
        raise _fail(source, f"PARAMS entry has unknown keys {sorted(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not _PARAM_NAME_RE.match(name) or keyword.iskeyword(name):
        raise _fail(source, f"PARAMS name {name!r} must be a lower-case Python identifier")
    kind = item.get("type", "str")
    if kind not in PARAM_TYPES:
        raise _fail(source, f"param `{name}`: type {kind!r} is not one of {', '.join(PARAM_TYPES)}")
    extract = item.get("extract", "")
    if extract and extract not in EXTRACT_HINTS:
        raise _fail(source, f"param `{name}`: extract {extract!r} is not one of {EXTRACT_HINTS}")
    pattern = item.get("pattern", "")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(
                source, f"param `{name}`: pattern {pattern!r} is not a regex: {exc}"
            ) from exc
    raw_cues = item.get("cues", {})
    if not isinstance(raw_cues, dict) or set(raw_cues) - {"yes", "no"}:
        raise _fail(source, f"param `{name}`: cues must be {{'yes': [...], 'no': [...]}}")
    cues = (
        _str_list(raw_cues.get("yes"), source, f"param `{name}` cues.yes"),
        _str_list(raw_cues.get("no"), source, f"param `{name}` cues.no"),
    )
    required = item.get("required", "default" not in item)
    if not isinstance(required, bool):
        raise _fail(source, f"param `{name}`: required must be true or false")
    return ParamSpec(
        name=name,
        type=kind,
        description=str(item.get("description", "")),
        required=required,
        default=item.get("default"),
        extract=str(extract),
        pattern=str(pattern),
        cues=cues,
    )


_JSON_TYPES = {"string": "str", "integer": "int", "boolean": "bool"}
_SCHEMA_KEYS = {
    "type",
    "description",
    "default",
    "pattern",
    "items",
    "format",
    "title",
    "examples",
    "x-extract",
    "x-cues",
}


def _params_from_schema(schema: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The JSON-Schema form of PARAMS → the internal list of parameter dicts."""
    if schema.get("type") != "object" or not isinstance(schema.get("properties", {}), dict):
        raise _fail(source, "PARAMS must be a JSON Schema object: {type: object, properties}")
    required = schema.get("required", [])
    if not isinstance(required, list):
        raise _fail(source, "PARAMS.required must be a list of parameter names")
    unknown_required = set(required) - set(schema.get("properties", {}))
    if unknown_required:
        raise _fail(source, f"PARAMS.required names undeclared {sorted(unknown_required)}")
    items: list[dict[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            raise _fail(source, f"param `{name}` must be a JSON Schema object")
        unknown = set(prop) - _SCHEMA_KEYS
        if unknown:
            raise _fail(source, f"param `{name}` has unsupported schema keys {sorted(unknown)}")
        kind, fmt = prop.get("type", "string"), prop.get("format")
        item: dict[str, Any] = {"name": name}
        if kind == "array":
            sub = prop.get("items", {})
            if not isinstance(sub, dict) or sub.get("type", "string") != "string":
                raise _fail(source, f"param `{name}`: only arrays of strings are supported")
            item["type"] = "list[str]"
            if sub.get("pattern"):
                item["pattern"] = sub["pattern"]
        elif kind == "string" and fmt in ("identifier", "path"):
            item["type"] = fmt
        elif kind in _JSON_TYPES and fmt is None:
            item["type"] = _JSON_TYPES[kind]
        else:
            raise _fail(
                source,
                f"param `{name}`: type {kind!r} (format {fmt!r}) is not supported; use string "
                "(format identifier|path), integer, boolean or array of strings",
            )
        if prop.get("pattern") and kind != "array":
            item["pattern"] = prop["pattern"]
        for key, target in (
            ("description", "description"),
            ("default", "default"),
            ("x-extract", "extract"),
            ("x-cues", "cues"),
        ):
            if key in prop:
                item[target] = prop[key]
        item["required"] = name in required
        if not item["required"] and "default" not in item:
            item["default"] = None
        items.append(item)
    return items


def spec_from_data(data: Mapping[str, Any], *, name: str, pack: str, source: str) -> TemplateSpec:
    """Check what a ``.pym`` defined and build its :class:`TemplateSpec`."""
    files: list[tuple[str, str]] = []
    if "FILES" in data:
        raw = data["FILES"]
        if not isinstance(raw, dict) or not raw:
            raise _fail(source, "FILES must be a non-empty dict of path pattern -> template text")
        for path, text in raw.items():
            if not isinstance(text, str):
                raise _fail(source, f"FILES[{path!r}] must be template text")
            files.append((path, text))
    elif "TEMPLATE" in data:
        text, output = data["TEMPLATE"], data.get("OUTPUT")
        if not isinstance(text, str):
            raise _fail(source, "TEMPLATE must be a string of Jinja2 text")
        if not isinstance(output, str) or not output.strip():
            raise _fail(source, "OUTPUT (the path pattern of the rendered file) is required")
        files.append((output, text))
    else:
        raise _fail(source, "defines neither TEMPLATE (+ OUTPUT) nor FILES")
    raw_params = data.get("PARAMS", [])
    if isinstance(raw_params, dict):
        raw_params = _params_from_schema(raw_params, source)
    if not isinstance(raw_params, list):
        raise _fail(source, "PARAMS must be a JSON Schema object (or a list of parameter dicts)")
    params = tuple(_param(item, source) for item in raw_params)
    names = [p.name for p in params]
    for dup in {n for n in names if names.count(n) > 1}:
        raise _fail(source, f"param `{dup}` is declared twice")
    fills: list[str] = []
    converted = []
    for path, text in files:
        fills.extend(_FILL_RE.findall(text))
        converted.append((path, _FILL_RE.sub(lambda m: f"{FILL_COMMENT} {m.group(1)}", text)))
    description = data.get("DESCRIPTION", "")
    if not isinstance(description, str):
        raise _fail(source, "DESCRIPTION must be a string")
    return TemplateSpec(
        name=name,
        pack=pack,
        source=source,
        description=" ".join(description.split()),
        params=params,
        intents=_str_list(data.get("INTENTS"), source, "INTENTS"),
        keywords=_str_list(data.get("KEYWORDS"), source, "KEYWORDS"),
        files=tuple(converted),
        fills=tuple(dict.fromkeys(fills)),
    )


def _template_name(pack: str, rel: str) -> str:
    stem = rel.removeprefix("templates/").removesuffix(".pym")
    return f"{pack}/{stem}"


def load_pym_sources(
    sources: Mapping[str, str], *, pack: str, limits: SandboxLimits | None = None
) -> tuple[list[TemplateSpec], list[TemplateLoadError]]:
    """Run ``.pym`` sources (relative path → text) in one sandboxed child; no trust check.

    Callers must have decided that the code may run: :func:`load_pack_templates` is the gate.
    Returns the specs that loaded and one error per file that did not.
    """
    if not sources:
        return [], []
    files = [{"name": rel, "source": text} for rel, text in sorted(sources.items())]
    answer = run_job({"kind": "load", "files": files}, limits)
    specs: list[TemplateSpec] = []
    errors: list[TemplateLoadError] = []
    if not isinstance(answer, dict):
        raise TemplateLoadError(f"pack {pack}: the sandbox answered malformed data")
    for rel in sorted(sources):
        entry = answer.get(rel)
        source = f"{pack}:{rel}"
        if not isinstance(entry, dict):
            errors.append(_fail(source, "no answer from the sandbox"))
        elif not entry.get("ok"):
            errors.append(_fail(source, str(entry.get("error", "failed"))))
        else:
            try:
                specs.append(
                    spec_from_data(
                        entry.get("data") or {},
                        name=_template_name(pack, rel),
                        pack=pack,
                        source=source,
                    )
                )
            except TemplateLoadError as exc:
                errors.append(exc)
    return specs, errors


def is_trusted(pack: VerifiedPack) -> bool:
    """A pack's code may run when a trusted key signed it."""
    return pack.signed_by is not None


def load_pack_templates(
    pack: VerifiedPack,
    *,
    allow_untrusted_templates: bool = False,
    limits: SandboxLimits | None = None,
) -> tuple[list[TemplateSpec], list[TemplateLoadError]]:
    """Load every template a verified pack lists; raise for an untrusted pack without running it.

    ``allow_untrusted_templates`` is a development flag for unsigned local packs; it does not
    lift the sandbox. Files are read by this (parent) process and passed to the child as text.
    """
    manifest = pack.manifest
    if not is_trusted(pack) and not allow_untrusted_templates:
        raise UntrustedTemplateError(
            f"pack {manifest.key} is not signed by a trusted key, so its .pym templates were "
            "not executed; trust its signer (remora trust add) or, for local development only, "
            "enable allow_untrusted_templates"
        )
    sources: dict[str, str] = {}
    errors: list[TemplateLoadError] = []
    for rel in manifest.templates:
        path = Path(pack.path).joinpath(*rel.split("/"))
        try:
            raw = path.read_bytes()
            if len(raw) > MAX_PYM_BYTES:
                raise TemplateLoadError(f"{manifest.name}:{rel}: over {MAX_PYM_BYTES} bytes")
            sources[rel] = raw.decode("utf-8")
        except TemplateLoadError as exc:
            errors.append(exc)
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(TemplateLoadError(f"{manifest.name}:{rel}: cannot read: {exc}"))
    specs, load_errors = load_pym_sources(sources, pack=manifest.name, limits=limits)
    return specs, errors + load_errors


def param_names(params: Sequence[ParamSpec]) -> list[str]:
    """Names of the parameters, in declaration order."""
    return [p.name for p in params]
