"""The deterministic decider: the default decision step when no orchestrator model is configured.

:class:`RouterDecider` plays the orchestrator's part with the
:class:`~remora_lsp.templates.router.TemplateRouter` (declared intents, keyword rules, TF-IDF
similarity) and a fixed plan, computed afresh from the history at every step so it needs no
state: look up the classes the request names (CamelCase words, and the class arguments the
router extracted: "Add **user** profile endpoint" → ``User``) with ``read_symbol``; gather
context with ``search_embeddings`` when the semantic layer is there; render the routed template
with the routed arguments, the model's module taken from where ``read_symbol`` found it; then
one ``generate_code`` per fill marker when a code model is there. A request no template matches
is answered with the closest templates and their scores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from remora_lsp.orchestrator.loop import (
    Answer,
    Decision,
    Observation,
    OrchestratorRequest,
    ToolCall,
)
from remora_lsp.orchestrator.tools import ToolRegistry
from remora_lsp.templates.pym import TemplateSpec
from remora_lsp.templates.router import Route, TemplateRouter

__all__ = ["RouterDecider", "fill_context", "fill_tag", "symbol_names"]

_CAMEL_RE = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b|\b[A-Z]{2,}[a-z][A-Za-z0-9]*\b")
_CAPITAL_RE = re.compile(r"\b[A-Z][a-z0-9]+\b")
MAX_SYMBOLS = 4
MAX_HITS_IN_PROMPT = 2
HIT_CHARS = 400
FILL_INSTRUCTION = (
    "Write the body of `{name}` in {path}, replacing the lines under the `# remora: fill {name}` "
    "marker. Write only the body, indented like the marker; use the project's own names."
)


def symbol_names(text: str, route: Route, spec: TemplateSpec | None) -> list[str]:
    """Class names worth looking up: CamelCase words, capitalised words after the first, and
    the values of the routed template's ``class`` parameters."""
    names: list[str] = []
    for match in _CAMEL_RE.finditer(text):
        names.append(match.group(0))
    for match in _CAPITAL_RE.finditer(text):
        if match.start() > 0 and not text[: match.start()].rstrip().endswith((".", "!", "?")):
            names.append(match.group(0))
    if spec is not None:
        for param in spec.params:
            value = route.arguments.get(param.name)
            if param.extract == "class" and isinstance(value, str):
                names.append(value)
    unique = list(dict.fromkeys(names))
    return unique[:MAX_SYMBOLS]


def fill_tag(path: str, line: int) -> str:
    """The tag of the ``generate_code`` call that fills the marker at ``path:line``."""
    return f"fill:{path}:{line}"


def fill_context(content: str, line: int, indent: str) -> str:
    """The rendered file up to and including the marker line, ending at the marker's indent."""
    lines = content.splitlines()
    return "\n".join(lines[: line + 1]) + "\n" + indent


def _closest(route: Route) -> Answer:
    if route.candidates:
        listed = ", ".join(f"{name} ({score:.2f})" for name, score in route.candidates)
        text = f"No template matches this request well; the closest are {listed}."
    else:
        text = "No template matches this request: no pack with templates is active."
    return Answer(
        text,
        {
            "kind": "no_template",
            "candidates": [{"template": n, "score": round(s, 4)} for n, s in route.candidates],
        },
    )


class RouterDecider:
    """Deterministic decisions from the template router (see the module docstring)."""

    def __init__(self, router: TemplateRouter, *, search_k: int = 5) -> None:
        self.router = router
        self.search_k = search_k
        self._specs = {s.name: s for s in router.specs}
        self._routes: dict[str, Route] = {}

    def route(self, text: str) -> Route:
        """The router's answer for ``text`` (memoised: the plan re-reads it every step)."""
        if text not in self._routes:
            self._routes[text] = self.router.route(text)
        return self._routes[text]

    async def decide(
        self, request: OrchestratorRequest, history: Sequence[Observation], tools: ToolRegistry
    ) -> Decision:
        """The next step of the plan given what has been done."""
        route = self.route(request.text)
        if route.template is None:
            return _closest(route)
        spec = self._specs.get(route.template)
        by_tag = {o.call.tag: o for o in history if o.call.tag}

        if tools.available("read_symbol"):
            lookups = [
                ToolCall("read_symbol", {"name": name}, tag=f"symbol:{name}")
                for name in symbol_names(request.text, route, spec)
                if f"symbol:{name}" not in by_tag
            ]
            if lookups:
                return lookups
        if tools.available("search_embeddings") and "context" not in by_tag:
            return ToolCall(
                "search_embeddings", {"query": request.text, "k": self.search_k}, tag="context"
            )

        rendered = by_tag.get("render")
        if rendered is None:
            if route.missing:
                return Answer(
                    f"{route.template} needs {_describe(spec, route.missing)}; "
                    "say it in the request.",
                    {"kind": "missing_arguments", **route.to_data()},
                )
            args = self._arguments(route, spec, history)
            return ToolCall("render_template", {"name": route.template, "args": args}, tag="render")
        if not rendered.ok:
            error = rendered.error or (rendered.result or {}).get("error", "unknown error")
            return Answer(
                f"Rendering {route.template} failed: {error}",
                {"kind": "render_failed", "error": error, **route.to_data()},
            )

        result: Mapping[str, Any] = rendered.result
        if tools.available("generate_code"):
            contents = {f["path"]: f["content"] for f in result.get("files", [])}
            notes = self._symbol_notes(history)
            fills = [
                ToolCall(
                    "generate_code",
                    {
                        "instruction": FILL_INSTRUCTION.format(name=m["name"], path=m["path"])
                        + notes,
                        "context": fill_context(contents[m["path"]], m["line"], m["indent"]),
                    },
                    tag=fill_tag(m["path"], m["line"]),
                )
                for m in result.get("fills", [])
                if fill_tag(m["path"], m["line"]) not in by_tag and m["path"] in contents
            ]
            if fills:
                return fills
        paths = ", ".join(f["path"] for f in result.get("files", []))
        return Answer(
            f"Rendered {paths} from {route.template}.",
            {"kind": "rendered", "template": route.template, "render": dict(result)},
        )

    def _arguments(
        self, route: Route, spec: TemplateSpec | None, history: Sequence[Observation]
    ) -> dict[str, Any]:
        """The routed arguments, plus module parameters taken from where classes are defined."""
        args = dict(route.arguments)
        if spec is None:
            return args
        modules: list[str] = []
        for param in spec.params:
            value = args.get(param.name)
            if param.extract == "class" and isinstance(value, str):
                match = _first_match(history, value)
                if match is not None and match.get("language") == "python":
                    modules.append(str(match["module"]))
        for param in spec.params:
            if param.extract == "module" and param.name not in args and modules:
                args[param.name] = modules[0]
        return args

    @staticmethod
    def _symbol_notes(history: Sequence[Observation]) -> str:
        """The found definitions and the best search hits, for the fill instructions."""
        code: list[str] = []
        related: list[str] = []
        for obs in history:
            if obs.call.name == "read_symbol" and obs.ok:
                first = obs.result["matches"][0]
                code.append(f"\n{first['import']}\n{first['excerpt']}")
            elif obs.call.tag == "context" and obs.ok:
                for hit in list(obs.result.get("hits", []))[:MAX_HITS_IN_PROMPT]:
                    text = str(hit.get("text", "")).strip()[:HIT_CHARS]
                    if text:
                        related.append(f"\n{hit.get('label') or hit.get('file') or ''}\n{text}")
        notes = ("\nRelevant project code:" + "".join(code)) if code else ""
        if related:
            notes += "\nRelated examples:" + "".join(related)
        return notes


def _describe(spec: TemplateSpec | None, names: Sequence[str]) -> str:
    parts = []
    for name in names:
        param = spec.param(name) if spec is not None else None
        detail = param.description.strip().rstrip(".") if param and param.description else ""
        parts.append(f"`{name}` ({detail})" if detail else f"`{name}`")
    return ", ".join(parts)


def _first_match(history: Sequence[Observation], name: str) -> Mapping[str, Any] | None:
    for obs in history:
        if obs.call.tag == f"symbol:{name}" and obs.ok:
            matches = obs.result.get("matches") or []
            classes = [m for m in matches if m.get("kind") == "class"]
            return (classes or matches or [None])[0]
    return None
