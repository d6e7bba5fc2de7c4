"""The orchestrator's tools: JSON-Schema-described functions the decision step may call.

A :class:`ToolRegistry` holds :class:`Tool` values (a :class:`ToolSpec` — name, description,
JSON Schema parameters, where it came from, whether it is available — and a plain function,
sync or async). :func:`build_tools` assembles the built-in tools over the injected services
(``search_embeddings``, ``list_templates``, ``render_template``, ``generate_code``,
``read_symbol``) and the tools the active packs' manifests contribute (``fastapi_search`` →
a search restricted to that pack; a ``template`` tool → that pack's templates). A service that
is absent leaves its tool registered but unavailable: calling it answers a value saying what is
missing, never an exception. :func:`system_prompt` is the context injection: the prompt that
tells the decision model which packs are active and what their tools do.

Tool functions answer JSON-able dicts with ``"ok"``; :meth:`ToolRegistry.call` raises
:class:`ToolError` only for a call that cannot be made (unknown tool, bad arguments), which the
loop turns into a trace entry and feedback for the decider.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from remora_lsp.inference.engine import CancelToken, Engine, GenerationRequest
from remora_lsp.orchestrator.symbols import find_symbol
from remora_lsp.packs.manifest import Manifest
from remora_lsp.templates.catalog import TemplateCatalog

__all__ = [
    "SearchFn",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "build_tools",
    "code_prompt",
    "search_adapter",
    "system_prompt",
]

DEFAULT_CODE_TOKENS = 256


class SearchFn(Protocol):
    """The semantic layer as the tools see it: ``(query, pack, kind, k)`` → hits as dicts."""

    def __call__(
        self, query: str, pack: str | None, kind: str | None, k: int
    ) -> Sequence[Mapping[str, Any]]: ...


class _Searchable(Protocol):
    def search(self, query: str, filters: Any = None, k: int = 10) -> Sequence[Any]: ...


def search_adapter(service: _Searchable) -> SearchFn:
    """A :class:`SearchFn` over a semantic service (``SemanticService.search(query, filters,
    k)`` returning ``SearchHit`` values): ``pack``/``kind`` become a ``ChunkFilter``, hits dicts."""
    from remora_lsp.retrieval.index import ChunkFilter

    def search(query: str, pack: str | None, kind: str | None, k: int) -> list[dict[str, Any]]:
        flt = ChunkFilter(
            packs=frozenset({pack}) if pack else None,
            kinds=frozenset({kind}) if kind else None,
        )
        hits = service.search(query, None if flt.is_empty() else flt, k)
        out = []
        for hit in hits:
            chunk = hit.chunk
            out.append(
                {
                    "pack": chunk.pack,
                    "file": chunk.file,
                    "line": chunk.start_line,
                    "kind": chunk.kind,
                    "label": chunk.label,
                    "text": chunk.text[:1500],
                    "score": round(float(hit.score), 4),
                }
            )
        return out

    return search


class ToolError(Exception):
    """A tool call that could not be made: unknown tool or arguments that break its schema."""


@dataclass(frozen=True)
class ToolSpec:
    """What the decision step sees of a tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    source: str = "remora"
    available: bool = True

    def declaration(self) -> dict[str, Any]:
        """``{name, description, parameters}``, the form function-calling models take."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Tool:
    """A spec and the function that runs it (keyword arguments, sync or async)."""

    spec: ToolSpec
    fn: Callable[..., Any] = field(repr=False)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
}


def _check_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(arguments, Mapping):
        raise ToolError(f"{spec.name}: arguments must be an object, got {type(arguments).__name__}")
    props: dict[str, Any] = spec.parameters.get("properties", {}) or {}
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise ToolError(
            f"{spec.name}: unknown argument `{unknown[0]}`; it takes "
            f"{', '.join(sorted(props)) or 'no arguments'}"
        )
    for name in spec.parameters.get("required", []) or []:
        if name not in arguments or arguments[name] is None:
            raise ToolError(f"{spec.name}: argument `{name}` is required")
    for name, value in arguments.items():
        expected = props[name].get("type") if isinstance(props[name], Mapping) else None
        if value is None or expected not in _JSON_TYPES:
            continue
        ok = isinstance(value, _JSON_TYPES[expected])
        if expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            raise ToolError(
                f"{spec.name}: argument `{name}` = {value!r} must be of type {expected}"
            )
        enum = props[name].get("enum")
        if enum is not None and value not in enum:
            raise ToolError(f"{spec.name}: argument `{name}` = {value!r} must be one of {enum}")
    return dict(arguments)


class ToolRegistry:
    """Tools by name, in registration order."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add a tool; a second tool with the same name replaces the first."""
        self._tools[tool.spec.name] = tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """Every tool name."""
        return list(self._tools)

    def spec(self, name: str) -> ToolSpec:
        """A tool's spec; raises :class:`ToolError` for an unknown name."""
        if name not in self._tools:
            raise ToolError(f"unknown tool {name!r}; known tools: {', '.join(self._tools)}")
        return self._tools[name].spec

    def specs(self, *, available_only: bool = False) -> list[ToolSpec]:
        """Every spec (optionally only the available ones)."""
        return [t.spec for t in self._tools.values() if t.spec.available or not available_only]

    def available(self, name: str) -> bool:
        """Whether ``name`` is registered and its service is present."""
        return name in self._tools and self._tools[name].spec.available

    async def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run a tool with checked arguments. Sync functions run in a worker thread."""
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool {name!r}; known tools: {', '.join(self._tools)}")
        args = _check_arguments(tool.spec, arguments)
        if inspect.iscoroutinefunction(tool.fn):
            return await tool.fn(**args)
        result = await asyncio.to_thread(tool.fn, **args)
        if inspect.isawaitable(result):
            return await result
        return result


# -- built-in tools ----------------------------------------------------------------------------


def _search_tool(search: SearchFn | None) -> Tool:
    spec = ToolSpec(
        "search_embeddings",
        "Search the active packs' indexes and the workspace for code and documentation "
        "similar to a query.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for."},
                "pack": {"type": "string", "description": "Only this pack (or `workspace`)."},
                "kind": {
                    "type": "string",
                    "description": "Only chunks of this kind: function, class, method, section.",
                },
                "k": {"type": "integer", "description": "How many hits (1-20).", "default": 5},
            },
            "required": ["query"],
        },
        available=search is not None,
    )

    def run(
        query: str, pack: str | None = None, kind: str | None = None, k: int | None = 5
    ) -> dict[str, Any]:
        if search is None:
            return {
                "ok": False,
                "kind": "unavailable",
                "error": "semantic layer not available: no embedding index is loaded",
            }
        limit = max(1, min(int(k or 5), 20))
        hits = [dict(h) for h in search(query, pack, kind, limit)]
        return {"ok": True, "hits": hits[:limit]}

    return Tool(spec, run)


def code_prompt(instruction: str, context: str) -> str:
    """The prompt ``generate_code`` sends: the instruction as a comment, then the code so far."""
    lines = [f"# {line}".rstrip() for line in instruction.strip().splitlines() or [""]]
    return "\n".join(lines) + "\n" + context


def _generate_tool(
    engine: Engine | None, adapter: str | None, cancel: CancelToken | None, max_tokens: int
) -> Tool:
    spec = ToolSpec(
        "generate_code",
        "Ask the code model to continue `context` (code up to the insertion point) following "
        "`instruction`; answers the generated code.",
        {
            "type": "object",
            "properties": {
                "instruction": {"type": "string", "description": "What the code should do."},
                "context": {"type": "string", "description": "The code before the insertion."},
                "adapter": {"type": "string", "description": "Pack adapter to generate with."},
                "max_tokens": {"type": "integer", "description": "Upper bound on tokens."},
            },
            "required": ["instruction", "context"],
        },
        available=engine is not None,
    )

    async def run(
        instruction: str,
        context: str,
        adapter: str | None = adapter,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        if engine is None:
            return {
                "ok": False,
                "kind": "unavailable",
                "error": "no code model is configured: bodies stay as the template wrote them",
            }
        request = GenerationRequest(
            prompt=code_prompt(instruction, context),
            max_tokens=max(1, min(int(max_tokens or DEFAULT_CODE_TOKENS), 2048)),
            temperature=0.0,
            stop=("\ndef ", "\nclass ", "\n@", "\nasync def ", "\nif __name__"),
            adapter=adapter,
        )
        result = await engine.generate(request, cancel)
        return {
            "ok": True,
            "code": result.text,
            "finish_reason": result.finish_reason,
            "adapter": result.adapter,
        }

    return Tool(spec, run)


def _read_symbol_tool(root: Path | None) -> Tool:
    spec = ToolSpec(
        "read_symbol",
        "Find where a class or function is defined in the workspace: file, line, kind, source "
        "and the module to import it from.",
        {
            "type": "object",
            "properties": {"name": {"type": "string", "description": "e.g. User"}},
            "required": ["name"],
        },
        available=root is not None,
    )

    def run(name: str) -> dict[str, Any]:
        if root is None:
            return {"ok": False, "kind": "unavailable", "error": "no workspace folder is open"}
        matches = find_symbol(root, name.strip())
        if not matches:
            return {"ok": False, "kind": "not_found", "error": f"no definition of {name!r}"}
        return {"ok": True, "matches": [m.to_data() for m in matches]}

    return Tool(spec, run)


def _template_tools(catalog: TemplateCatalog) -> list[Tool]:
    names = [s.name for s in catalog.specs]
    list_spec = ToolSpec(
        "list_templates",
        "List the scaffolding templates of the active packs with their intents and parameters.",
        {
            "type": "object",
            "properties": {"pack": {"type": "string", "description": "Only this pack."}},
            "required": [],
        },
    )
    render_spec = ToolSpec(
        "render_template",
        "Render a scaffolding template into files; `args` follow the template's parameters.",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": f"One of: {', '.join(names)}"},
                "args": {"type": "object", "description": "The template's arguments."},
            },
            "required": ["name"],
        },
        available=bool(names),
    )

    def list_templates(pack: str | None = None) -> dict[str, Any]:
        return {"ok": True, "templates": catalog.list_templates(pack)}

    def render_template(name: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return catalog.render_template(name, args or {})

    return [Tool(list_spec, list_templates), Tool(render_spec, render_template)]


def _pack_tools(
    manifest: Manifest, search: SearchFn | None, catalog: TemplateCatalog
) -> list[Tool]:
    tools: list[Tool] = []
    for entry in manifest.tools:
        params = entry.parameters or {"type": "object", "properties": {}, "required": []}
        if entry.kind == "search":
            props = dict(params.get("properties", {}))
            props.setdefault("k", {"type": "integer", "description": "How many hits."})
            params = {**params, "properties": props}
            spec = ToolSpec(
                entry.name, entry.description, params, manifest.name, available=search is not None
            )
            tools.append(Tool(spec, _pack_search(manifest.name, search)))
        else:
            props = dict(params.get("properties", {}))
            props.setdefault("args", {"type": "object", "description": "Template arguments."})
            params = {**params, "properties": props}
            spec = ToolSpec(entry.name, entry.description, params, manifest.name)
            tools.append(Tool(spec, _pack_render(manifest.name, catalog)))
    return tools


def _pack_search(pack: str, search: SearchFn | None) -> Callable[..., dict[str, Any]]:
    def run(query: str = "", k: int | None = 5, **_: Any) -> dict[str, Any]:
        if search is None:
            return {
                "ok": False,
                "kind": "unavailable",
                "error": f"semantic layer not available: the {pack} index is not loaded",
            }
        if not query:
            return {"ok": False, "kind": "bad_arguments", "error": "`query` is empty"}
        limit = max(1, min(int(k or 5), 20))
        return {"ok": True, "hits": [dict(h) for h in search(query, pack, None, limit)][:limit]}

    return run


def _pack_render(pack: str, catalog: TemplateCatalog) -> Callable[..., dict[str, Any]]:
    def run(template: str = "", args: Mapping[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        name = template if "/" in template else f"{pack}/{template}"
        if not name.startswith(f"{pack}/"):
            return {"ok": False, "kind": "not_found", "error": f"{template!r} is not in {pack}"}
        return catalog.render_template(name, args or {})

    return run


def build_tools(
    catalog: TemplateCatalog,
    *,
    workspace_root: Path | None = None,
    search: SearchFn | None = None,
    engine: Engine | None = None,
    adapter: str | None = None,
    packs: Iterable[Manifest] = (),
    cancel: CancelToken | None = None,
    max_code_tokens: int = DEFAULT_CODE_TOKENS,
) -> ToolRegistry:
    """The built-in tools over the given services, then each active pack's manifest tools.

    A pack tool never replaces a built-in one of the same name.
    """
    registry = ToolRegistry(
        [
            _read_symbol_tool(workspace_root),
            _search_tool(search),
            *_template_tools(catalog),
            _generate_tool(engine, adapter, cancel, max_code_tokens),
        ]
    )
    for manifest in packs:
        for tool in _pack_tools(manifest, search, catalog):
            if tool.spec.name not in registry:
                registry.register(tool)
    return registry


def _pack_phrase(names: Sequence[str]) -> str:
    if len(names) == 1:
        return f"the {names[0]} pack"
    return "the " + ", ".join(names[:-1]) + f" and {names[-1]} packs"


def system_prompt(packs: Sequence[Manifest], registry: ToolRegistry) -> str:
    """Context injection: the orchestrator's system prompt naming active packs and their tools."""
    lines = [
        "You are Remora's orchestrator inside a code editor. Pick tools to gather context, "
        "render scaffolding templates and have the code model write function bodies."
    ]
    if packs:
        lines.append(f"You have {_pack_phrase([p.name for p in packs])} active.")
        for manifest in packs:
            own = [s for s in registry.specs() if s.source == manifest.name]
            for spec in own:
                verb = "search its docs with" if _is_search(spec) else "scaffold with"
                state = "" if spec.available else " (not available right now)"
                lines.append(
                    f"- {manifest.name}: you can {verb} {spec.name}{state}: "
                    f"{spec.description.strip()}"
                )
    else:
        lines.append("No library pack is active.")
    lines.append("Tools:")
    for spec in registry.specs():
        state = "" if spec.available else " [not available: its service is not configured]"
        lines.append(f"- {spec.name}: {spec.description.strip()}{state}")
    return "\n".join(lines)


def _is_search(spec: ToolSpec) -> bool:
    return bool(re.search(r"search", spec.name)) or "query" in spec.parameters.get("properties", {})
