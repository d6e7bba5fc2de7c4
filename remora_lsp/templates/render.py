"""Validates template arguments against the declared schema and renders them in the sandbox.

Rendering happens in the sandboxed child (:mod:`remora_lsp.templates.sandbox`), not in the
server: Jinja2 compiles templates to Python, so a looping or huge template must be stoppable by
the child's CPU, memory and wall-clock limits, and the known Jinja2 escapes meet two walls — the
``SandboxedEnvironment`` (Jinja2 >= 3.1.6, ``StrictUndefined``) and the process sandbox behind
it. The parent validates arguments before the child starts and checks the rendered paths after
(relative, no ``..``), then finds the ``# remora: fill`` markers the code model fills later.
"""

from __future__ import annotations

import keyword
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remora_lsp.templates.errors import ParameterError, TemplateSecurityError
from remora_lsp.templates.pym import FILL_COMMENT, ParamSpec, TemplateSpec
from remora_lsp.templates.sandbox import SandboxLimits, run_job

__all__ = ["FillMarker", "RenderResult", "RenderedFile", "render_spec", "validate_args"]

_PATH_PART_RE = re.compile(r"^[A-Za-z0-9_.@+-]+$")
MAX_ARG_CHARS = 10_000
MAX_LIST_ITEMS = 200


@dataclass(frozen=True)
class RenderedFile:
    """One output file: a relative POSIX path and its text."""

    path: str
    content: str


@dataclass(frozen=True)
class FillMarker:
    """A body the code model should fill: file, 0-based line of the marker, name, indentation."""

    path: str
    line: int
    name: str
    indent: str


@dataclass(frozen=True)
class RenderResult:
    """What a template produced."""

    template: str
    files: tuple[RenderedFile, ...]
    fills: tuple[FillMarker, ...]

    def to_data(self) -> dict[str, Any]:
        """JSON-able form, as the ``render_template`` tool returns it."""
        return {
            "template": self.template,
            "files": [{"path": f.path, "content": f.content} for f in self.files],
            "fills": [
                {"path": m.path, "line": m.line, "name": m.name, "indent": m.indent}
                for m in self.fills
            ],
        }


def _is_identifier(value: str) -> bool:
    return value.isidentifier() and value.isascii() and not keyword.iskeyword(value)


def _safe_relpath(value: str) -> bool:
    if not value or value.startswith("/") or "\\" in value or len(value) > 255:
        return False
    return all(
        part not in ("", ".", "..") and _PATH_PART_RE.match(part) for part in value.split("/")
    )


def _coerce(param: ParamSpec, value: Any, template: str) -> Any:
    where = f"{template}: parameter `{param.name}` ({param.type})"
    kind = param.type
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no"}:
            return value.lower() in {"true", "yes"}
        raise ParameterError(f"{where} = {value!r}: must be true or false")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ParameterError(f"{where} = {value!r}: must be an integer")
        try:
            return int(value)
        except ValueError as exc:
            raise ParameterError(f"{where} = {value!r}: must be an integer") from exc
    if kind == "list[str]":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ParameterError(f"{where} = {value!r}: must be a list of strings")
        if len(value) > MAX_LIST_ITEMS:
            raise ParameterError(f"{where}: more than {MAX_LIST_ITEMS} items")
        for item in value:
            if param.pattern and not re.fullmatch(param.pattern, item):
                raise ParameterError(
                    f"{where}: item {item!r} does not match the pattern {param.pattern}"
                )
        return list(value)
    if not isinstance(value, str):
        raise ParameterError(f"{where} = {value!r}: must be a string")
    if len(value) > MAX_ARG_CHARS:
        raise ParameterError(f"{where}: longer than {MAX_ARG_CHARS} characters")
    if kind == "identifier" and not _is_identifier(value):
        raise ParameterError(f"{where} = {value!r}: must be a Python identifier such as user_id")
    if kind == "path" and not _safe_relpath(value):
        raise ParameterError(
            f"{where} = {value!r}: must be a relative path without '..' (letters, digits, _.@+-)"
        )
    if kind == "str" and ("\n" in value or "\r" in value):
        raise ParameterError(f"{where} = {value!r}: must be one line")
    if param.pattern and not re.fullmatch(param.pattern, value):
        raise ParameterError(f"{where} = {value!r}: does not match the pattern {param.pattern}")
    return value


def validate_args(spec: TemplateSpec, args: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments checked and coerced against ``spec.params``, defaults filled in.

    Raises :class:`ParameterError` naming the template and the parameter.
    """
    if not isinstance(args, Mapping):
        raise ParameterError(f"{spec.name}: arguments must be an object of name -> value")
    declared = {p.name for p in spec.params}
    unknown = sorted(set(args) - declared)
    if unknown:
        raise ParameterError(
            f"{spec.name}: unknown parameter `{unknown[0]}`; it takes "
            f"{', '.join(sorted(declared)) or 'no parameters'}"
        )
    result: dict[str, Any] = {}
    for param in spec.params:
        if param.name in args and args[param.name] is not None:
            result[param.name] = _coerce(param, args[param.name], spec.name)
        elif param.required:
            hint = f" ({param.description})" if param.description else ""
            raise ParameterError(f"{spec.name}: parameter `{param.name}` is required{hint}")
        else:
            result[param.name] = param.default
    return result


def find_fills(files: tuple[RenderedFile, ...]) -> tuple[FillMarker, ...]:
    """Every ``# remora: fill NAME`` comment in the rendered files."""
    markers = []
    for item in files:
        for number, line in enumerate(item.content.splitlines()):
            stripped = line.lstrip()
            if stripped.startswith(FILL_COMMENT):
                name = stripped[len(FILL_COMMENT) :].strip()
                markers.append(
                    FillMarker(item.path, number, name, line[: len(line) - len(stripped)])
                )
    return tuple(markers)


def render_spec(
    spec: TemplateSpec, args: Mapping[str, Any], *, limits: SandboxLimits | None = None
) -> RenderResult:
    """Validate ``args``, render every file of ``spec`` in the sandbox and check the paths."""
    values = validate_args(spec, args)
    answer = run_job(
        {"kind": "render", "files": [list(f) for f in spec.files], "args": values}, limits
    )
    if not isinstance(answer, list) or len(answer) != len(spec.files):
        raise TemplateSecurityError(f"{spec.name}: the sandbox answered malformed data")
    files = []
    seen: set[str] = set()
    for item in answer:
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item)
        ):
            raise TemplateSecurityError(f"{spec.name}: the sandbox answered malformed data")
        path = posixpath.normpath(item[0].strip()) if item[0].strip() else ""
        if not _safe_relpath(path) or path != item[0].strip():
            raise TemplateSecurityError(
                f"{spec.name}: output path {item[0]!r} is not a safe relative path"
            )
        if path in seen:
            raise TemplateSecurityError(f"{spec.name}: output path {path!r} appears twice")
        seen.add(path)
        files.append(RenderedFile(path, item[1]))
    rendered = tuple(files)
    return RenderResult(spec.name, rendered, find_fills(rendered))
