"""The tool-calling loop: answers, trace, tool errors as feedback, limits and cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

from remora_lsp.inference.engine import CancelToken
from remora_lsp.orchestrator.loop import (
    Answer,
    Decision,
    DecisionError,
    Observation,
    OrchestratorRequest,
    ToolCall,
    TraceStep,
    run,
    summarize,
)
from remora_lsp.orchestrator.tools import Tool, ToolRegistry, ToolSpec

ECHO = ToolSpec(
    "echo",
    "Echo a word.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)


def registry(**extra: Any) -> ToolRegistry:
    def echo(word: str) -> dict[str, Any]:
        if word == "boom":
            raise RuntimeError("exploded")
        return {"ok": True, "echo": word}

    async def slow(seconds: float = 1.0) -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {"ok": True}

    slow_spec = ToolSpec(
        "slow", "Sleep.", {"type": "object", "properties": {"seconds": {"type": "number"}}}
    )
    return ToolRegistry([Tool(ECHO, echo), Tool(slow_spec, slow)])


class Script:
    """A decider that plays back decisions and records the history it was shown."""

    def __init__(self, *decisions: Decision | Exception) -> None:
        self.decisions = list(decisions)
        self.seen: list[Sequence[Observation]] = []

    async def decide(
        self, request: OrchestratorRequest, history: Sequence[Observation], tools: ToolRegistry
    ) -> Decision:
        self.seen.append(history)
        if not self.decisions:
            return ToolCall("echo", {"word": "again"})
        item = self.decisions.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


async def test_answer_and_trace() -> None:
    steps: list[TraceStep] = []
    decider = Script(
        ToolCall("echo", {"word": "hi"}),
        [ToolCall("echo", {"word": "a"}), ToolCall("echo", {"word": "b"})],
        Answer("done", {"x": 1}),
    )
    result = await run("say hi", decider, registry(), on_step=steps.append)
    assert (result.answer, result.stopped, result.data) == ("done", "answered", {"x": 1})
    assert [(s.index, s.tool, dict(s.arguments)) for s in result.trace] == [
        (0, "echo", {"word": "hi"}),
        (1, "echo", {"word": "a"}),
        (2, "echo", {"word": "b"}),
    ]
    assert list(result.trace) == steps
    assert all(s.error is None and s.elapsed_ms >= 0 for s in steps)
    assert [o.result["echo"] for o in decider.seen[-1]] == ["hi", "a", "b"]
    assert steps[0].to_data()["tool"] == "echo"


async def test_tool_errors_become_trace_entries_and_feedback() -> None:
    decider = Script(
        ToolCall("nope", {}),
        ToolCall("echo", {}),
        ToolCall("echo", {"word": 3}),
        ToolCall("echo", {"word": "boom"}),
        Answer("gave up"),
    )
    result = await run("x", decider, registry())
    assert result.stopped == "answered"
    errors = [s.error for s in result.trace]
    assert "unknown tool 'nope'" in (errors[0] or "")
    assert "argument `word` is required" in (errors[1] or "")
    assert "must be of type string" in (errors[2] or "")
    assert "RuntimeError: exploded" in (errors[3] or "")
    assert [o.error is not None for o in decider.seen[-1]] == [True] * 4


async def test_undecodable_decisions_are_fed_back() -> None:
    decider = Script(DecisionError("bad call"), Answer("ok"))
    result = await run("x", decider, registry())
    assert result.answer == "ok"
    assert result.trace[0].tool == "(decide)" and result.trace[0].error == "bad call"
    assert decider.seen[1][0].error == "bad call"


async def test_decider_crash_is_a_value() -> None:
    result = await run("x", Script(RuntimeError("kaput")), registry())
    assert result.stopped == "decider_failed" and "kaput" in result.answer


async def test_step_limit() -> None:
    result = await run("x", Script(), registry(), max_steps=3)
    assert result.stopped == "step_limit"
    assert len(result.trace) == 3


async def test_time_budget_stops_a_slow_tool() -> None:
    started = time.monotonic()
    result = await run("x", Script(ToolCall("slow", {"seconds": 5})), registry(), time_budget_s=0.2)
    assert result.stopped == "time_budget"
    assert time.monotonic() - started < 2
    assert result.trace[-1].error == "time budget ran out"


async def test_cancellation_between_steps() -> None:
    token = CancelToken()
    seen: list[TraceStep] = []

    def on_step(step: TraceStep) -> None:
        seen.append(step)
        if step.index == 1:
            token.cancel()

    result = await run("x", Script(), registry(), cancel=token, on_step=on_step)
    assert result.stopped == "cancelled" and len(result.trace) == 2

    event = threading.Event()
    event.set()
    result = await run("x", Script(), registry(), cancel=event)
    assert result.stopped == "cancelled" and result.trace == ()


async def test_a_broken_listener_does_not_stop_the_loop() -> None:
    def on_step(step: TraceStep) -> None:
        raise ValueError("listener bug")

    result = await run(
        "x", Script(ToolCall("echo", {"word": "a"}), Answer("fine")), registry(), on_step=on_step
    )
    assert result.answer == "fine"


def test_summaries() -> None:
    assert summarize({"ok": False, "error": "no"}) == "failed: no"
    assert summarize({"ok": True, "files": [{"path": "a.py"}], "fills": [1, 2]}) == (
        "rendered a.py; 2 fill marker(s)"
    )
    assert len(summarize("x" * 1000)) == 240
