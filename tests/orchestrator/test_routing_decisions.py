"""The router decider's first decision on the held-out routing requests of both shipped packs.

With no workspace and no index, the decider's first step is the render call itself, so its
template and arguments must be the router's (or, when a required parameter is not stated, the
answer asking for it carries them): the accuracy the routing benchmark reports carries over to
the orchestrator (target >= 90% right template + exactly the stated arguments).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from remora_lsp.orchestrator.loop import Answer, OrchestratorRequest, ToolCall
from remora_lsp.orchestrator.router_backend import RouterDecider
from remora_lsp.orchestrator.tools import build_tools
from remora_lsp.packs.manifest import load_manifest
from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.templates import TemplateCatalog, TemplateRouter
from tests.orchestrator.conftest import REPO

DATA = REPO / "benchmarks" / "data" / "routing_requests.jsonl"


@pytest.fixture(scope="module")
def both_packs() -> TemplateCatalog:
    packs = [
        VerifiedPack(REPO / "packs" / name, load_manifest(REPO / "packs" / name), "test")
        for name in ("fastapi", "pydantic")
    ]
    catalog = TemplateCatalog.from_packs(packs)
    assert catalog.errors == []
    return catalog


async def test_first_decision_matches_the_expected_route(both_packs: TemplateCatalog) -> None:
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    held_out = [r for r in rows if r["split"] in ("test", "fresh")]
    assert len(held_out) >= 100
    decider = RouterDecider(TemplateRouter(both_packs.specs))
    tools = build_tools(both_packs)
    right = 0
    misses: list[Any] = []
    for row in held_out:
        decision = await decider.decide(OrchestratorRequest(row["request"]), (), tools)
        if isinstance(decision, ToolCall):
            got = (decision.arguments["name"], decision.arguments["args"])
        elif isinstance(decision, Answer) and decision.data is not None:
            # a required parameter the request does not state: right template and arguments,
            # and the answer asks for the rest
            got = (decision.data.get("template"), decision.data.get("arguments", {}))
        else:
            got = ("several calls", {})
        if got == (row["template"], row["arguments"]):
            right += 1
        else:
            misses.append((row["request"], got))
    assert right / len(held_out) >= 0.9, misses
