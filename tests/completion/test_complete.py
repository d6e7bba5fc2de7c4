"""complete(): the whole path against a scripted engine, and once against a real one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from remora_lsp.completion.cache import SuggestionCache
from remora_lsp.completion.complete import complete, plan_completion
from remora_lsp.inference.engine import CancelToken, GenerationRequest
from tests.completion.support import document
from tests.inference.fakes import FakeEngine


def scripted(text: str) -> FakeEngine:
    engine = FakeEngine(lambda request: text)
    engine.state = "ready"
    engine.slots.register("fastapi", Path("/packs/fastapi"))
    return engine


async def test_single_line_completion_uses_the_adapter_and_newline_stop() -> None:
    engine = scripted("load(path)\nprint(x)")
    doc, offset = document("import json\nx = █\n")
    result = await complete(doc, offset, engine, adapter="fastapi")
    assert result is not None
    assert (result.text, result.mode, result.source, result.adapter) == (
        "load(path)",
        "single",
        "model",
        "fastapi",
    )
    request = engine.requests[-1]
    assert request.adapter == "fastapi" and request.stop == ("\n",)
    assert request.prompt == "import json\nx ="


async def test_typing_through_is_served_from_the_cache() -> None:
    engine = scripted("load(path)")
    cache = SuggestionCache()
    doc, offset = document("x = █\n")
    first = await complete(doc, offset, engine, cache=cache)
    assert first is not None and first.text == "load(path)"
    for typed in ("l", "lo", "load("):
        doc, offset = document(f"x = {typed}█\n")
        hit = await complete(doc, offset, engine, cache=cache)
        assert hit is not None and hit.source == "cache"
        assert hit.text == "load(path)"[len(typed) :]
    assert len(engine.requests) == 1


async def test_multi_line_stream_is_closed_when_the_block_ends() -> None:
    body = "\n    return x * 2\n\ndef other():\n" + "    pass\n" * 200
    engine = scripted(body)
    engine.delay_per_token = 0.001
    doc, offset = document("def double(x):█")
    result = await complete(doc, offset, engine)
    assert result is not None and result.text == "\n    return x * 2"
    assert result.elapsed_s < 0.5  # it did not wait for the 200 extra lines


async def test_nothing_while_the_engine_is_down_or_cancelled() -> None:
    engine = scripted("abc")
    doc, offset = document("x = █")
    engine.state = "starting"
    assert await complete(doc, offset, engine) is None
    engine.state = "ready"
    token = CancelToken()
    token.cancel()
    assert await complete(doc, offset, engine, cancel=token) is None
    engine.crash()
    assert await complete(doc, offset, engine) is None  # EngineDeadError becomes no answer


async def test_cancel_during_generation_gives_no_answer() -> None:
    engine = scripted("a" * 400)
    engine.delay_per_token = 0.01
    token = CancelToken()
    doc, offset = document("x = █")
    task = asyncio.create_task(complete(doc, offset, engine, cancel=token))
    await asyncio.sleep(0.05)
    token.cancel()
    assert await task is None


def test_plan_uses_fim_when_the_model_has_it() -> None:
    from remora_lsp.inference.engine import FimTokens

    engine = FakeEngine(fim=FimTokens("<P>", "<S>", "<M>"))
    doc, offset = document("x = █\ny = 2\n")
    plan = plan_completion(doc, offset, engine.identity(), engine.count_tokens)
    assert plan is not None and plan.prompt.mode == "fim"
    assert plan.prompt.text == "<P>x =<S>\ny = 2\n<M>"


async def test_against_the_real_transformers_engine(tiny) -> None:  # type: ignore[no-untyped-def]
    from remora_lsp.inference.hf_engine import TransformersEngine
    from tests.inference.helpers import adapter_ref

    engine = TransformersEngine(tiny.path, max_loras=1, max_cpu_loras=2)
    await engine.start()
    try:
        await engine.load_adapter(adapter_ref(tiny, "alpha"))
        doc, offset = document("import json\n\ndef load(path):█\n")
        result = await complete(doc, offset, engine, adapter="alpha")
        plan = plan_completion(doc, offset, engine.identity(), engine.count_tokens)
        assert plan is not None and plan.context.mode == "multi"
        raw = await engine.generate(
            GenerationRequest(plan.prompt.text, plan.max_tokens, stop=plan.stop, adapter="alpha")
        )
        if result is not None:  # a random tiny model may produce nothing worth showing
            assert raw.text.startswith(result.text.split("\n")[0][:4])
            assert result.adapter == "alpha" and result.prompt_tokens > 0
    finally:
        await engine.close()


async def test_prompt_ending_in_newline_and_indentation_is_healed() -> None:
    # BPE merges "\n" with the next line's indentation: the prompt stops before the newline and
    # the model writes the gap itself, which is stripped from the suggestion.
    engine = scripted("\n    return len(items)\n\n\ndef other():\n    pass\n")
    doc, offset = document("def count(items):\n    █\n")
    result = await complete(doc, offset, engine)
    assert result is not None
    assert result.text.splitlines()[0] == "return len(items)"
    assert engine.requests[-1].prompt == "def count(items):"


async def test_healed_prompt_with_a_model_that_skips_the_gap_keeps_its_text() -> None:
    engine = scripted("return len(items)")
    doc, offset = document("def count(items):\n    █\n")
    result = await complete(doc, offset, engine)
    assert result is not None and result.text.startswith("return len(items)")
