"""Plumbing with a real engine: the tiny local Llama (random weights) through transformers.

Its output is noise, which is the point: the FunctionGemma decider must turn whatever comes back
into calls, an answer or a traced parse error, and the scaffold must still hand back files that
parse, keeping a marker wherever a generated body does not.
"""

from __future__ import annotations

import pytest

from remora_lsp.orchestrator.functiongemma import FunctionGemmaDecider
from remora_lsp.orchestrator.loop import run
from remora_lsp.orchestrator.scaffold import parse_problems, scaffold
from remora_lsp.orchestrator.tools import build_tools
from remora_lsp.packs.manifest import Manifest
from remora_lsp.templates import TemplateCatalog
from tests.inference.conftest import tiny  # noqa: F401
from tests.inference.tiny import TinyModel
from tests.orchestrator.conftest import SAMPLE

pytest.importorskip("torch")
pytest.importorskip("transformers")


async def test_function_gemma_decider_on_a_real_engine(
    tiny: TinyModel,  # noqa: F811
    catalog: TemplateCatalog,
    fastapi_manifest: Manifest,
) -> None:
    from remora_lsp.inference.hf_engine import TransformersEngine

    engine = TransformersEngine(tiny.path, max_loras=1, max_cpu_loras=2)
    await engine.start()
    try:
        decider = FunctionGemmaDecider(engine, packs=[fastapi_manifest], max_tokens=24)
        tools = build_tools(catalog, workspace_root=SAMPLE, packs=[fastapi_manifest])
        result = await run("Add user profile endpoint", decider, tools, max_steps=2)
        assert result.stopped in ("answered", "step_limit")
        assert decider.last_prompt.startswith("<start_of_turn>developer\n")
        assert "declaration:render_template{" in decider.last_prompt
        for step in result.trace:
            assert step.tool == "(decide)" or step.tool in tools
    finally:
        await engine.close()


async def test_scaffold_with_a_real_engine_still_parses(
    tiny: TinyModel,  # noqa: F811
    catalog: TemplateCatalog,
) -> None:
    from remora_lsp.inference.hf_engine import TransformersEngine

    engine = TransformersEngine(tiny.path, max_loras=1, max_cpu_loras=2)
    await engine.start()
    try:
        result = await scaffold(
            "Add user profile endpoint",
            "file:///work/app/main.py",
            SAMPLE,
            catalog,
            engine=engine,
            max_fill_tokens=16,
        )
    finally:
        await engine.close()
    assert result.ok
    [(path, content, _)] = result.files
    assert parse_problems(path, content) == []
    assert "from app.models import User" in content
    assert len(result.fills) == 5
    assert all(f.status in ("filled", "failed") for f in result.fills)
    failed = [f for f in result.fills if f.status == "failed"]
    assert content.count("# remora: fill") == len(failed)
    assert len(result.problems) == len(failed)
