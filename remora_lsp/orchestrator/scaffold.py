"""Feature scaffolding: "Add user profile endpoint" → new files that import the project's own
model and parse, with bodies written by the code model when there is one.

:func:`scaffold` is the single entry point for the ``remora.scaffold`` command and the scaffold
code action. It runs the tool-calling loop (the deterministic :class:`RouterDecider` unless
another decider is given) to find the workspace symbols the request names, render the chosen
template with imports that point at where those symbols live, and ask the code model (with the
pack's adapter) to fill each ``# remora: fill`` body. Fills are spliced in one at a time from the
bottom of each file, and the file is re-parsed with tree-sitter after each: a fill that leaves an
ERROR or MISSING node is dropped, the template's own body and its marker stay, and the failure
is reported. Existing files are never overwritten: they are listed with ``exists=True`` and a
message. Every expected failure — no template, a template stopped by the sandbox, no code
model, a timeout — is a value in :class:`ScaffoldResult`, not an exception.
"""

from __future__ import annotations

import asyncio
import logging
import re
import textwrap
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tree_sitter import Node

from remora_lsp.core.languages import language_for, new_parser
from remora_lsp.inference.engine import CancelToken, Engine
from remora_lsp.orchestrator.loop import (
    Decider,
    Observation,
    OrchestratorRequest,
    ToolCall,
    TraceStep,
    run,
    run_tool,
    summarize,
)
from remora_lsp.orchestrator.router_backend import (
    FILL_INSTRUCTION,
    RouterDecider,
    fill_context,
    fill_tag,
)
from remora_lsp.orchestrator.tools import SearchFn, build_tools
from remora_lsp.orchestrator.wiring import TextInsert, wiring_edits
from remora_lsp.packs.manifest import Manifest
from remora_lsp.templates.catalog import TemplateCatalog
from remora_lsp.templates.pym import FILL_COMMENT
from remora_lsp.templates.router import TemplateRouter

__all__ = [
    "FillOutcome",
    "ScaffoldFile",
    "ScaffoldResult",
    "apply_fill",
    "fill_body",
    "marker_block",
    "parse_problems",
    "scaffold",
    "scaffold_sync",
]

log = logging.getLogger(__name__)
_FENCE_RE = re.compile(r"^\s*```[A-Za-z0-9_+-]*\s*$")


@dataclass(frozen=True)
class ScaffoldFile:
    """A file the scaffold produced. ``exists``: a file is already there and is left alone."""

    path: str
    content: str
    exists: bool = False

    def __iter__(self) -> Any:  # unpacks as (path, content, exists)
        return iter((self.path, self.content, self.exists))


@dataclass(frozen=True)
class FillOutcome:
    """What happened to one fill marker: ``filled``, ``kept`` (no model) or ``failed``."""

    path: str
    name: str
    line: int
    status: str
    detail: str = ""


@dataclass(frozen=True)
class ScaffoldResult:
    """Files to create (never overwrite), messages for the user, the trace and any problems.

    ``ok`` means a template was rendered and every new file parses; ``problems`` lists what
    did not work (a fill that broke parsing, an existing file, a stopped template).
    """

    ok: bool
    files: tuple[ScaffoldFile, ...] = ()
    messages: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    trace: tuple[TraceStep, ...] = ()
    template: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    fills: tuple[FillOutcome, ...] = ()
    candidates: tuple[tuple[str, float], ...] = ()
    edits: tuple[TextInsert, ...] = ()

    @property
    def new_files(self) -> tuple[ScaffoldFile, ...]:
        """The files that do not exist yet: what a WorkspaceEdit should create."""
        return tuple(f for f in self.files if not f.exists)

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (for a command's answer or a log)."""
        return {
            "ok": self.ok,
            "template": self.template,
            "arguments": dict(self.arguments),
            "files": [
                {"path": f.path, "content": f.content, "exists": f.exists} for f in self.files
            ],
            "messages": list(self.messages),
            "problems": list(self.problems),
            "fills": [vars(f) for f in self.fills],
            "candidates": [{"template": n, "score": s} for n, s in self.candidates],
            "edits": [vars(e) for e in self.edits],
            "trace": [s.to_data() for s in self.trace],
        }


# -- parse checks and fills --------------------------------------------------------------------


def _first_error(node: Node) -> Node | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            return current
        if current.has_error:
            stack.extend(reversed(current.children))
    return None


def parse_problems(path: str, content: str) -> list[str]:
    """Why ``content`` does not parse as the language of ``path`` (empty when it parses or
    when Remora has no grammar for the file)."""
    language = language_for(path, None)
    if language is None:
        return []
    tree = new_parser(language).parse(content.encode("utf-8"))
    if not tree.root_node.has_error:
        return []
    bad = _first_error(tree.root_node)
    if bad is None:
        return [f"{path}: does not parse"]
    what = f"missing {bad.type}" if bad.is_missing else "syntax error"
    return [f"{path}:{bad.start_point[0] + 1}: {what}"]


def marker_block(lines: list[str], line: int) -> tuple[int, int]:
    """The lines a fill replaces: the marker and the body under it, as ``[start, end)``.

    The body runs while lines are blank or indented at least as deep as the marker; trailing
    blank lines are not part of it.
    """
    indent = len(lines[line]) - len(lines[line].lstrip())
    end = line + 1
    last = line + 1
    while end < len(lines):
        text = lines[end]
        if text.strip():
            if len(text) - len(text.lstrip()) < indent:
                break
            last = end + 1
        end += 1
    return line, last


def fill_body(generated: str, indent: str) -> list[str] | None:
    """The generated text as body lines at ``indent``, or None when nothing usable is left.

    The prompt ends at the marker's indentation, so a first line without indentation is taken
    to start there. Generation that dedents below the marker (the model went on to the next
    function) is cut; code fences and copies of the marker are dropped.
    """
    raw = [ln for ln in generated.replace("\r\n", "\n").split("\n") if not _FENCE_RE.match(ln)]
    while raw and not raw[0].strip():
        raw.pop(0)
    if not raw:
        return None
    if not raw[0][:1].isspace():
        raw[0] = indent + raw[0]
    body: list[str] = []
    for text in raw:
        if text.strip() and len(text) - len(text.lstrip()) < len(indent):
            break
        if text.strip().startswith(FILL_COMMENT):
            continue
        body.append(text.rstrip())
    while body and not body[-1].strip():
        body.pop()
    if not body:
        return None
    dedented = textwrap.dedent("\n".join(body)).split("\n")
    return [indent + ln if ln.strip() else "" for ln in dedented]


def apply_fill(content: str, line: int, body: list[str]) -> str:
    """``content`` with the marker block at ``line`` replaced by ``body``."""
    lines = content.split("\n")
    start, end = marker_block(lines, line)
    return "\n".join(lines[:start] + body + lines[end:])


# -- the pipeline ------------------------------------------------------------------------------


def _rendered(observations: Iterable[Observation]) -> Observation | None:
    found = None
    for obs in observations:
        if obs.ok and isinstance(obs.result, Mapping) and "files" in obs.result:
            found = obs
    return found


def _render_failure(observations: Iterable[Observation]) -> str | None:
    for obs in observations:
        if obs.call.name == "render_template" and not obs.ok:
            if obs.error:
                return obs.error
            return str(obs.result.get("error", "the template failed"))
    return None


def _relative(uri: str, root: Path) -> str | None:
    if not uri.startswith("file:"):
        return None
    try:
        path = Path(unquote(urlsplit(uri).path))
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None


def _disk_reader(root: Path) -> Callable[[str], str | None]:
    def read(rel: str) -> str | None:
        try:
            return (root / rel).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    return read


def _unresolved(
    observations: Iterable[Observation],
    arguments: Mapping[str, Any],
    files: Iterable[ScaffoldFile],
) -> list[str]:
    """Classes the template imports that ``read_symbol`` could not find in the workspace."""
    values = {v for v in arguments.values() if isinstance(v, str)}
    problems = []
    for obs in observations:
        name = obs.call.arguments.get("name")
        if obs.call.name != "read_symbol" or obs.ok or name not in values:
            continue
        pattern = re.compile(rf"^\s*from\s+\S+\s+import\s+.*\b{re.escape(str(name))}\b.*$", re.M)
        for item in files:
            found = pattern.search(item.content)
            if found:
                problems.append(
                    f"{name} is not defined in the workspace: check `{found.group(0).strip()}` "
                    f"in {item.path}"
                )
    return problems


def _exists_check(
    root: Path, existing: Callable[[str], bool] | Collection[str] | None
) -> Callable[[str], bool]:
    if callable(existing):
        return existing
    known = {str(p) for p in existing or ()}
    return lambda rel: rel in known or (root / rel).exists()


async def scaffold(
    request: str,
    current_uri: str,
    workspace_root: Path,
    catalog: TemplateCatalog,
    router: TemplateRouter | None = None,
    *,
    engine: Engine | None = None,
    adapter: str | None = None,
    search: SearchFn | None = None,
    existing_files: Callable[[str], bool] | Collection[str] | None = None,
    read_file: Callable[[str], str | None] | None = None,
    packs: Iterable[Manifest] = (),
    decider: Decider | None = None,
    on_step: Callable[[TraceStep], None] | None = None,
    cancel: CancelToken | threading.Event | None = None,
    max_steps: int = 32,
    time_budget_s: float = 120.0,
    max_fill_tokens: int = 256,
) -> ScaffoldResult:
    """Scaffold ``request`` in the workspace at ``workspace_root`` (see the module docstring).

    ``router`` defaults to a router over ``catalog``. ``existing_files`` says which files exist:
    a function ``(relpath) -> bool`` (the editor's view, replacing the disk check) or a
    collection of relative paths that exist besides those on disk (unsaved new buffers);
    ``read_file(relpath)`` gives an existing file's text (default: the disk). ``adapter`` is the
    pack adapter the fills are generated with.
    """
    manifests = list(packs)
    router = router if router is not None else TemplateRouter(catalog.specs)
    token = cancel if isinstance(cancel, CancelToken) else None
    tools = build_tools(
        catalog,
        workspace_root=workspace_root,
        search=search,
        engine=engine,
        adapter=adapter,
        packs=manifests,
        cancel=token,
        max_code_tokens=max_fill_tokens,
    )
    chosen = decider if decider is not None else RouterDecider(router)
    outcome = await run(
        OrchestratorRequest(request, current_uri),
        chosen,
        tools,
        max_steps=max_steps,
        time_budget_s=time_budget_s,
        cancel=cancel,
        on_step=on_step,
    )
    trace = list(outcome.trace)
    observations = list(outcome.observations)
    messages: list[str] = []
    problems: list[str] = []
    data = outcome.data or {}
    candidates = tuple(
        (str(c["template"]), float(c["score"])) for c in data.get("candidates", []) or []
    )

    rendered = _rendered(observations)
    if rendered is None:
        failure = _render_failure(observations)
        if failure:
            problems.append(f"the template could not be rendered: {failure}")
        elif outcome.stopped != "answered":
            problems.append(outcome.answer)
        return ScaffoldResult(
            ok=False,
            messages=(outcome.answer,),
            problems=tuple(problems),
            trace=tuple(trace),
            candidates=candidates,
        )

    result: Mapping[str, Any] = rendered.result
    template = str(result.get("template") or rendered.call.arguments.get("name", ""))
    arguments = dict(rendered.call.arguments.get("args") or {})
    contents: dict[str, str] = {f["path"]: f["content"] for f in result.get("files", [])}
    fills: list[Mapping[str, Any]] = list(result.get("fills", []))
    generated: dict[str, Observation] = {
        o.call.tag: o for o in observations if o.call.tag and o.call.tag.startswith("fill:")
    }

    # Fills the decider did not ask for (a model decider, or the loop hit a limit) are asked
    # here, so every marker gets one chance with the code model.
    if engine is not None and outcome.stopped not in ("cancelled", "time_budget"):
        for marker in fills:
            tag = fill_tag(marker["path"], marker["line"])
            if tag in generated or marker["path"] not in contents:
                continue
            if token is not None and token.cancelled:
                break
            call = ToolCall(
                "generate_code",
                {
                    "instruction": FILL_INSTRUCTION.format(
                        name=marker["name"], path=marker["path"]
                    ),
                    "context": fill_context(
                        contents[marker["path"]], marker["line"], marker["indent"]
                    ),
                },
                tag=tag,
            )
            try:
                obs, ms = await run_tool(tools, call, timeout_s=max(1.0, time_budget_s / 4))
            except TimeoutError:
                obs, ms = Observation(call, None, "timed out"), time_budget_s / 4 * 1000
            generated[tag] = obs
            step = TraceStep(
                len(trace),
                call.name,
                dict(call.arguments),
                summarize(obs.result) if obs.error is None else "",
                ms,
                obs.error,
            )
            trace.append(step)
            if on_step is not None:
                try:
                    on_step(step)
                except Exception:  # a broken listener must not stop the scaffold
                    log.exception("on_step callback failed")

    outcomes: list[FillOutcome] = []
    for path in contents:
        own = sorted((m for m in fills if m["path"] == path), key=lambda m: -int(m["line"]))
        text = contents[path]
        for marker in own:
            name, line = str(marker["name"]), int(marker["line"])
            answer = generated.get(fill_tag(path, line))
            if answer is None:
                outcomes.append(FillOutcome(path, name, line, "kept", "no code model"))
                continue
            obs = answer
            if not obs.ok:
                error = obs.error or str(obs.result.get("error", "generation failed"))
                outcomes.append(FillOutcome(path, name, line, "failed", error))
                problems.append(f"fill {name} in {path} failed: {error}; the marker is kept")
                continue
            body = fill_body(str(obs.result.get("code", "")), str(marker["indent"]))
            if body is None:
                outcomes.append(FillOutcome(path, name, line, "failed", "empty generation"))
                problems.append(f"fill {name} in {path}: the code model wrote nothing usable")
                continue
            candidate = apply_fill(text, line, body)
            broken = parse_problems(path, candidate)
            if broken:
                outcomes.append(FillOutcome(path, name, line, "failed", broken[0]))
                problems.append(
                    f"fill {name} in {path} did not parse ({broken[0]}); "
                    "the template's body and its marker are kept"
                )
                continue
            text = candidate
            outcomes.append(FillOutcome(path, name, line, "filled"))
        contents[path] = text

    exists = _exists_check(workspace_root, existing_files)
    files: list[ScaffoldFile] = []
    ok = True
    for path, text in contents.items():
        present = exists(path)
        files.append(ScaffoldFile(path, text, present))
        if present:
            problems.append(f"{path} already exists; it was not overwritten")
            messages.append(f"{path} already exists: not overwritten (the rendered text is kept)")
        broken = parse_problems(path, text)
        if broken:
            ok = False
            problems.extend(broken)
    if not any(not f.exists for f in files):
        ok = False

    problems.extend(_unresolved(observations, arguments, files))

    edits: list[TextInsert] = []
    if ok:
        reader = read_file if read_file is not None else _disk_reader(workspace_root)
        edits = wiring_edits(
            [(f.path, f.content) for f in files if not f.exists],
            reader,
            current_path=_relative(current_uri, workspace_root),
        )
        reasons: dict[str, list[str]] = {}
        for edit in edits:
            reasons.setdefault(edit.path, []).append(edit.reason)
        messages.extend(f"{path}: {' and '.join(why)}" for path, why in reasons.items())

    outcomes.reverse()
    kept = [f for f in outcomes if f.status == "kept"]
    filled = [f for f in outcomes if f.status == "filled"]
    created = [f.path for f in files if not f.exists]
    if created:
        messages.insert(0, f"{template}: {', '.join(created)}")
    if kept:
        messages.append(
            f"No code model is configured: {len(kept)} bod{'y' if len(kept) == 1 else 'ies'} "
            f"keep the template's code under `{FILL_COMMENT}` markers."
        )
    if filled:
        messages.append(f"The code model filled {len(filled)} of {len(fills)} bodies.")
    return ScaffoldResult(
        ok=ok,
        files=tuple(files),
        messages=tuple(messages),
        problems=tuple(problems),
        trace=tuple(trace),
        template=template,
        arguments=arguments,
        fills=tuple(sorted(outcomes, key=lambda f: (f.path, f.line))),
        candidates=candidates,
        edits=tuple(edits),
    )


def scaffold_sync(*args: Any, **kwargs: Any) -> ScaffoldResult:
    """:func:`scaffold` for callers without an event loop (CLI, benchmarks)."""
    return asyncio.run(scaffold(*args, **kwargs))
