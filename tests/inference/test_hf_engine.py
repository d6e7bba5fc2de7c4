"""The transformers + PEFT engine, run for real on the tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from remora_lsp.inference.engine import CancelToken, Engine, GenerationRequest
from remora_lsp.inference.errors import AdapterError, EngineDeadError
from remora_lsp.inference.hf_engine import TransformersEngine
from tests.inference.conftest import PROMPTS
from tests.inference.helpers import adapter_ref, matches_reference
from tests.inference.tiny import TinyModel

Reference = dict[tuple[str, str | None], list[int]]


async def started(tiny: TinyModel, **kwargs: object) -> TransformersEngine:
    engine = TransformersEngine(tiny.path, max_loras=2, max_cpu_loras=3, **kwargs)  # type: ignore[arg-type]
    await engine.start()
    for i, name in enumerate(("alpha", "beta"), start=1):
        await engine.load_adapter(adapter_ref(tiny, name, i))
    return engine


@pytest.fixture(params=[True, False], ids=["merged", "unmerged"])
async def engine(
    request: pytest.FixtureRequest, tiny: TinyModel
) -> AsyncIterator[TransformersEngine]:
    eng = await started(tiny, merge_adapter=request.param)
    yield eng
    await eng.close()


def greedy(prompt: str, adapter: str | None, n: int = 12) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=n, adapter=adapter)


async def test_is_an_engine(engine: TransformersEngine) -> None:
    assert isinstance(engine, Engine)
    ident = engine.identity()
    assert ident.model_id == "tiny-llama"
    assert ident.architecture == "LlamaForCausalLM"
    assert ident.fim is None and not ident.is_encoder_decoder
    assert len(ident.config_sha256 or "") == 64


async def test_greedy_equals_peft_reference_for_base_and_each_adapter(
    engine: TransformersEngine, reference: Reference
) -> None:
    # Interleave adapters so every request follows a swap.
    for prompt in PROMPTS:
        for adapter in ("alpha", None, "beta", "alpha", None):
            result = await engine.generate(greedy(prompt, adapter))
            assert matches_reference(result.token_ids, reference[(prompt, adapter)]), adapter
            assert result.adapter == adapter
            assert result.ttft_s is not None and result.ttft_s > 0


async def test_adapters_change_the_output(engine: TransformersEngine) -> None:
    outs = {
        a: (await engine.generate(greedy(PROMPTS[0], a))).token_ids for a in (None, "alpha", "beta")
    }
    assert len(set(outs.values())) == 3


async def test_stream_yields_the_same_text(engine: TransformersEngine) -> None:
    request = greedy(PROMPTS[1], "beta", 16)
    whole = await engine.generate(request)
    pieces = [p async for p in engine.stream(request)]
    assert "".join(pieces) == whole.text
    assert len(pieces) > 1


async def test_stop_strings_end_the_text(engine: TransformersEngine) -> None:
    full = (await engine.generate(greedy(PROMPTS[0], "alpha", 16))).text
    stop = full[3:5]
    assert stop
    result = await engine.generate(
        GenerationRequest(PROMPTS[0], max_tokens=16, adapter="alpha", stop=(stop,))
    )
    assert result.finish_reason == "stop"
    assert result.text == full[: full.index(stop)]
    pieces = [
        p
        async for p in engine.stream(
            GenerationRequest(PROMPTS[0], 16, adapter="alpha", stop=(stop,))
        )
    ]
    assert "".join(pieces) == result.text


async def test_cancel_token_stops_the_generation(tiny: TinyModel) -> None:
    engine = await started(tiny)
    try:
        token = CancelToken()
        seen: list[str] = []
        async for delta in engine.stream(
            GenerationRequest(PROMPTS[0], 400, adapter="alpha"), token
        ):
            seen.append(delta)
            if len(seen) == 2:
                token.cancel()
        result = await engine.generate(GenerationRequest(PROMPTS[0], 400, adapter="alpha"), token)
        assert result.finish_reason == "cancelled"
        assert len(result.token_ids) <= 1
        # After cancellation the worker is free for the next request.
        assert (await engine.generate(greedy(PROMPTS[0], None, 4))).finish_reason == "length"
    finally:
        await engine.close()


async def test_asyncio_cancel_stops_the_backend(tiny: TinyModel) -> None:
    engine = await started(tiny)
    try:
        task = asyncio.create_task(
            engine.generate(GenerationRequest(PROMPTS[0], 900, adapter="beta"))
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The worker stopped decoding: a short request is served promptly.
        short = await asyncio.wait_for(engine.generate(greedy(PROMPTS[0], None, 2)), timeout=5)
        assert len(short.token_ids) <= 2
    finally:
        await engine.close()


async def test_lru_tiers_and_eviction(tiny: TinyModel, reference: Reference) -> None:
    engine = await started(tiny)  # 2 resident slots, 3 cached
    try:
        for name, i in (("gamma", 3), ("delta", 4)):
            await engine.load_adapter(adapter_ref(tiny, name, i))
        # Four loaded into a 3-adapter cache: the least recently used (alpha) went to disk.
        assert set(engine.cached_adapters()) == {"beta", "gamma", "delta"}
        for name in ("beta", "gamma", "delta"):
            await engine.generate(greedy(PROMPTS[0], name, 2))
        assert engine.resident_adapters() == ("delta", "gamma")
        # alpha is cold on disk; using it reads it again and it is still correct.
        result = await engine.generate(greedy(PROMPTS[0], "alpha"))
        assert matches_reference(result.token_ids, reference[(PROMPTS[0], "alpha")])
        assert engine.resident_adapters()[0] == "alpha"
        await engine.unload_adapter("alpha")
        with pytest.raises(AdapterError):
            await engine.generate(greedy(PROMPTS[0], "alpha"))
    finally:
        await engine.close()


async def test_bad_adapter_is_an_adapter_error(tiny: TinyModel, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from remora_lsp.inference.engine import AdapterRef

    engine = await started(tiny)
    try:
        with pytest.raises(AdapterError, match=r"adapter_config\.json"):
            await engine.load_adapter(AdapterRef("broken", 9, tmp_path))
        assert engine.health().state == "ready"
    finally:
        await engine.close()


async def test_a_crash_in_the_worker_marks_the_engine_dead(tiny: TinyModel) -> None:
    engine = await started(tiny)
    try:
        model = engine._model

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("simulated kernel failure")

        model.forward = boom
        with pytest.raises(EngineDeadError, match="simulated"):
            await engine.generate(greedy(PROMPTS[0], None))
        assert engine.health().state == "dead"
        with pytest.raises(EngineDeadError):
            await engine.generate(greedy(PROMPTS[0], None))
    finally:
        await engine.close()


async def test_an_encoder_decoder_model_is_served(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.inference.tiny import build_seq2seq

    engine = TransformersEngine(build_seq2seq(tmp_path / "t5"))
    assert engine.identity().is_encoder_decoder
    await engine.start()
    try:
        result = await engine.generate(GenerationRequest("def parse(text):", max_tokens=6))
        assert 0 < len(result.token_ids) <= 6 and result.finish_reason in {"length", "stop"}
        token = CancelToken()
        token.cancel()
        cancelled = await engine.generate(GenerationRequest("def parse(text):", 50), token)
        assert cancelled.finish_reason == "cancelled" and len(cancelled.token_ids) <= 1
    finally:
        await engine.close()
