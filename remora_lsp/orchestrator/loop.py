"""The tool-calling loop: a decider picks tools, the loop runs them and records every step.

:func:`run` alternates between the decision step (a :class:`Decider`: the FunctionGemma backend
or the deterministic router) and tool calls until the decider answers, the step limit or the
time budget is reached, or the request is cancelled. Every tool call — and every decision that
could not be understood — becomes a :class:`TraceStep` handed to ``on_step`` as it happens (the
server forwards them as ``remora/trace`` notifications and logs them), so a user can see what
context was used. Tool failures are values: a :class:`~remora_lsp.orchestrator.tools.ToolError`
or an exception inside a tool becomes a trace entry with ``error`` set and an
:class:`Observation` the decider sees next, never an exception out of :func:`run`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from remora_lsp.orchestrator.tools import ToolError, ToolRegistry

__all__ = [
    "Answer",
    "Cancellation",
    "Decider",
    "Decision",
    "DecisionError",
    "Observation",
    "OrchestratorRequest",
    "OrchestratorResult",
    "StopReason",
    "ToolCall",
    "TraceStep",
    "run",
    "run_tool",
    "summarize",
]

log = logging.getLogger(__name__)

StopReason = Literal["answered", "step_limit", "time_budget", "cancelled", "decider_failed"]
DECIDE = "(decide)"
SUMMARY_CHARS = 240


@dataclass(frozen=True)
class OrchestratorRequest:
    """What the user asked, and where: ``uri`` is the current file, ``context`` free extras."""

    text: str
    uri: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """One tool to run. ``tag`` is the decider's own label (never sent to the tool)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    tag: str | None = None


@dataclass(frozen=True)
class Answer:
    """The decider is done: a message for the user, plus optional structured data."""

    text: str
    data: Mapping[str, Any] | None = None


Decision = Answer | ToolCall | Sequence[ToolCall]


class DecisionError(Exception):
    """The decider produced something that is not a valid decision (e.g. a malformed call)."""


@dataclass(frozen=True)
class Observation:
    """A tool call and what came of it: the result, or the error that stopped it."""

    call: ToolCall
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """No error, and a result that does not say ``"ok": false``."""
        if self.error is not None:
            return False
        return not (isinstance(self.result, Mapping) and self.result.get("ok") is False)


@dataclass(frozen=True)
class TraceStep:
    """One step of the loop as the user sees it."""

    index: int
    tool: str
    arguments: Mapping[str, Any]
    result_summary: str
    elapsed_ms: float
    error: str | None = None

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (the payload of a ``remora/trace`` notification)."""
        return {
            "index": self.index,
            "tool": self.tool,
            "arguments": _shorten_arguments(self.arguments),
            "resultSummary": self.result_summary,
            "elapsedMs": round(self.elapsed_ms, 1),
            "error": self.error,
        }


@dataclass(frozen=True)
class OrchestratorResult:
    """The answer, why the loop stopped, every step and every observation."""

    answer: str
    trace: tuple[TraceStep, ...]
    stopped: StopReason = "answered"
    observations: tuple[Observation, ...] = ()
    data: Mapping[str, Any] | None = None


class Decider(Protocol):
    """The decision step: given the request and what the tools answered so far, what next."""

    async def decide(
        self, request: OrchestratorRequest, history: Sequence[Observation], tools: ToolRegistry
    ) -> Decision:
        """An :class:`Answer`, one :class:`ToolCall` or several; raises :class:`DecisionError`."""
        ...


class Cancellation(Protocol):
    """Anything with a ``cancelled`` flag (``CancelToken``); a ``threading.Event`` works too."""

    @property
    def cancelled(self) -> bool: ...


def _is_cancelled(cancel: Cancellation | threading.Event | asyncio.Event | None) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event | asyncio.Event):
        return cancel.is_set()
    return bool(cancel.cancelled)


def _shorten_arguments(arguments: Mapping[str, Any], limit: int = 200) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if isinstance(value, str) and len(value) > limit:
            out[key] = value[:limit] + f"… ({len(value)} chars)"
        else:
            out[key] = value
    return out


def summarize(result: Any, limit: int = SUMMARY_CHARS) -> str:
    """A one-line human summary of a tool result."""
    text: str
    if isinstance(result, Mapping):
        if result.get("ok") is False:
            text = f"failed: {result.get('error', 'no detail')}"
        elif "files" in result:
            paths = [f.get("path", "?") for f in result.get("files", [])]
            text = f"rendered {', '.join(paths)}; {len(result.get('fills', []))} fill marker(s)"
        elif "matches" in result:
            found = [
                f"{m.get('kind')} {m.get('name')} in {m.get('file')}" for m in result["matches"]
            ]
            text = f"{len(found)} definition(s): {'; '.join(found)}"
        elif "hits" in result:
            hits = result["hits"]
            labels = [str(h.get("label") or h.get("file") or "?") for h in hits[:3]]
            text = f"{len(hits)} hit(s): {', '.join(labels)}"
        elif "templates" in result:
            names = [t.get("name", "?") for t in result["templates"]]
            text = f"{len(names)} template(s): {', '.join(names)}"
        elif "code" in result:
            code = str(result["code"])
            text = f"{len(code.splitlines())} line(s) of code ({result.get('finish_reason')})"
        else:
            text = json.dumps(result, default=str)
    elif isinstance(result, str):
        text = result
    else:
        text = json.dumps(result, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def run_tool(
    tools: ToolRegistry, call: ToolCall, *, timeout_s: float | None = None
) -> tuple[Observation, float]:
    """Run one call; every failure becomes ``Observation.error``. Returns it and the ms spent.

    A timeout cancels the tool (a sync tool's thread finishes in the background, its answer
    dropped) and re-raises ``TimeoutError`` so the loop can stop on its budget.
    """
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(tools.call(call.name, call.arguments), timeout_s)
    except TimeoutError:
        raise
    except ToolError as exc:
        return Observation(call, None, str(exc)), (time.perf_counter() - started) * 1000
    except Exception as exc:  # a tool bug must not end the request
        log.exception("tool %s failed", call.name)
        error = f"{call.name} failed: {type(exc).__name__}: {exc}"
        return Observation(call, None, error), (time.perf_counter() - started) * 1000
    return Observation(call, result), (time.perf_counter() - started) * 1000


async def run(
    request: OrchestratorRequest | str,
    decider: Decider,
    tools: ToolRegistry,
    *,
    max_steps: int = 16,
    time_budget_s: float = 60.0,
    cancel: Cancellation | threading.Event | asyncio.Event | None = None,
    on_step: Callable[[TraceStep], None] | None = None,
) -> OrchestratorResult:
    """Run the decide → call tools loop until an answer or a limit.

    ``max_steps`` bounds the tool calls (and undecodable decisions); ``time_budget_s`` is the
    wall-clock budget for the whole run; ``cancel`` is checked between steps.
    """
    if isinstance(request, str):
        request = OrchestratorRequest(request)
    deadline = time.monotonic() + time_budget_s
    trace: list[TraceStep] = []
    history: list[Observation] = []

    def record(
        tool: str, arguments: Mapping[str, Any], summary: str, ms: float, error: str | None
    ) -> None:
        step = TraceStep(len(trace), tool, dict(arguments), summary, ms, error)
        trace.append(step)
        log.info(
            "orchestrator step %d %s %.0f ms: %s", step.index, tool, ms, error or summary or "-"
        )
        if on_step is not None:
            try:
                on_step(step)
            except Exception:  # a broken listener must not stop the work
                log.exception("on_step callback failed")

    def finish(
        answer: str, stopped: StopReason, data: Mapping[str, Any] | None = None
    ) -> OrchestratorResult:
        return OrchestratorResult(answer, tuple(trace), stopped, tuple(history), data)

    while True:
        if _is_cancelled(cancel):
            return finish("Cancelled.", "cancelled")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return finish(f"Stopped: the {time_budget_s:g} s time budget ran out.", "time_budget")
        if len(trace) >= max_steps:
            return finish(f"Stopped after {max_steps} steps (the step limit).", "step_limit")
        started = time.perf_counter()
        try:
            decision = await asyncio.wait_for(
                decider.decide(request, tuple(history), tools), remaining
            )
        except TimeoutError:
            record(DECIDE, {}, "", (time.perf_counter() - started) * 1000, "time budget ran out")
            return finish(f"Stopped: the {time_budget_s:g} s time budget ran out.", "time_budget")
        except DecisionError as exc:
            ms = (time.perf_counter() - started) * 1000
            record(DECIDE, {}, "the decision could not be used", ms, str(exc))
            history.append(Observation(ToolCall(DECIDE), None, str(exc)))
            continue
        except Exception as exc:
            log.exception("decider failed")
            ms = (time.perf_counter() - started) * 1000
            record(DECIDE, {}, "", ms, f"{type(exc).__name__}: {exc}")
            return finish(f"The decision step failed: {exc}", "decider_failed")
        if isinstance(decision, Answer):
            return finish(decision.text, "answered", decision.data)
        calls = [decision] if isinstance(decision, ToolCall) else list(decision)
        if not calls:
            return finish("Nothing to do.", "answered")
        for call in calls:
            if _is_cancelled(cancel):
                return finish("Cancelled.", "cancelled")
            if len(trace) >= max_steps:
                return finish(f"Stopped after {max_steps} steps (the step limit).", "step_limit")
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                observation, ms = await run_tool(tools, call, timeout_s=remaining)
            except TimeoutError:
                ms = max(remaining, 0.0) * 1000
                record(call.name, call.arguments, "", ms, "time budget ran out")
                return finish(
                    f"Stopped: the {time_budget_s:g} s time budget ran out.", "time_budget"
                )
            history.append(observation)
            error = observation.error
            if error is None and not observation.ok:
                error = str(observation.result.get("error", "the tool reported a failure"))
            summary = summarize(observation.result) if observation.error is None else ""
            record(call.name, call.arguments, summary, ms, error)
