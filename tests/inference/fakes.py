"""A fake engine for fast tests of the layers above the engine (service, completion).

It follows the :class:`~remora_lsp.inference.engine.Engine` protocol without a model: the
"generation" is a scripted function of the prompt and adapter. Every real backend has its own
tests that run it for real; this exists only so logic tests take milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from remora_lsp.inference.engine import (
    AdapterRef,
    BackendName,
    CancelToken,
    EngineHealth,
    EngineState,
    FimTokens,
    GenerationRequest,
    GenerationResult,
    ModelIdentity,
)
from remora_lsp.inference.errors import AdapterError, EngineDeadError, EngineUnavailableError
from remora_lsp.inference.slots import AdapterSlots

Script = Callable[[GenerationRequest], str]


def echo_adapter(request: GenerationRequest) -> str:
    return f"<{request.adapter or 'base'}>"


class FakeEngine:
    """Scripted outputs, real slot bookkeeping, controllable start failures and crashes."""

    def __init__(
        self,
        script: Script = echo_adapter,
        *,
        model_id: str = "fake-model",
        config_sha256: str | None = "ab" * 32,
        fim: FimTokens | None = None,
        max_loras: int = 2,
        max_cpu_loras: int = 4,
        start_delay: float = 0.0,
        fail_start: str | None = None,
        delay_per_token: float = 0.0,
    ) -> None:
        self.script = script
        self._identity = ModelIdentity(
            model_id, config_sha256, "FakeForCausalLM", fim=fim, path=Path("/nonexistent")
        )
        self.slots = AdapterSlots(max_loras, max_cpu_loras)
        self.state: EngineState = "stopped"
        self.start_delay = start_delay
        self.fail_start = fail_start
        self.delay_per_token = delay_per_token
        self.requests: list[GenerationRequest] = []
        self.loaded: list[str] = []
        self.starts = 0

    @property
    def backend(self) -> BackendName:
        return "transformers"

    async def start(self) -> None:
        self.starts += 1
        self.state = "starting"
        await asyncio.sleep(self.start_delay)
        if self.fail_start:
            self.state = "dead"
            raise EngineUnavailableError(self.fail_start)
        self.state = "ready"

    async def close(self) -> None:
        self.state = "stopped"

    def crash(self) -> None:
        self.state = "dead"

    def identity(self) -> ModelIdentity:
        return self._identity

    def health(self) -> EngineHealth:
        return EngineHealth(
            "transformers",
            self.state,
            resident_adapters=self.slots.resident(),
            cached_adapters=self.slots.cached(),
        )

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4) if text else 0

    def _check(self) -> None:
        if self.state == "dead":
            raise EngineDeadError("fake engine died")
        if self.state != "ready":
            raise EngineUnavailableError(f"fake engine is {self.state}")

    async def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> GenerationResult:
        text = ""
        async for delta in self.stream(request, cancel):
            text += delta
        reason = "cancelled" if cancel is not None and cancel.cancelled else "stop"
        return GenerationResult(text, reason, adapter=request.adapter, ttft_s=0.0)

    async def stream(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> AsyncGenerator[str, None]:
        self._check()
        if request.adapter is not None:
            if self.slots.tier(request.adapter) is None:
                raise AdapterError(f"adapter {request.adapter!r} is not loaded")
            self.slots.use(request.adapter)
        self.requests.append(request)
        text = self.script(request)
        for stop in request.stop:
            if stop in text:
                text = text[: text.index(stop)]
        for i in range(0, len(text), 4):
            if cancel is not None and cancel.cancelled:
                return
            if self.delay_per_token:
                await asyncio.sleep(self.delay_per_token)
            self._check()
            yield text[i : i + 4]

    async def load_adapter(self, ref: AdapterRef) -> None:
        self._check()
        if not ref.path.exists():
            raise AdapterError(f"adapter {ref.name!r}: {ref.path} does not exist")
        self.slots.register(ref.name, ref.path, ref.int_id)
        self.slots.cache(ref.name)
        self.loaded.append(ref.name)

    async def unload_adapter(self, name: str) -> None:
        self.slots.drop(name)

    def release_adapter(self, name: str) -> None:
        self.slots.release(name)

    def resident_adapters(self) -> tuple[str, ...]:
        return self.slots.resident()

    def cached_adapters(self) -> tuple[str, ...]:
        return self.slots.cached()
