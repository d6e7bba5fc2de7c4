"""The remote backend: an OpenAI-compatible vLLM server (or a fleet behind one address).

For teams that outgrow one machine. Requests go to ``POST /v1/completions`` with the adapter's
name as ``model`` (the base model's served name for no adapter); adapters are registered at
run time with ``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``, which the server
allows when started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``.
Adapter paths are sent as they are: the server must see the same files (a shared pack store).
Streaming reads the server-sent events; closing the stream (task cancelled, cancel token, or
the consumer stopping early) closes the connection, and vLLM aborts a request whose client
went away. A server that cannot be reached marks the engine ``dead`` so the owning service
probes it again with backoff. Token counts use the model's tokenizer when a local copy of the
model folder is configured, else an estimate (about 3.5 characters per token).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.engine import (
    AdapterRef,
    BackendName,
    CancelToken,
    EngineHealth,
    EngineState,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    ModelIdentity,
)
from remora_lsp.inference.errors import (
    AdapterError,
    EngineDeadError,
    EngineError,
    EngineUnavailableError,
)
from remora_lsp.inference.identity import read_identity
from remora_lsp.inference.slots import AdapterSlots
from remora_lsp.inference.system import set_offline_environment
from remora_lsp.inference.zero_adapter import ZERO_ADAPTER_NAME, write_zero_adapter

__all__ = ["RemoteEngine"]

log = logging.getLogger(__name__)


def _message(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        return str(error)[:300]
    return str(data)[:300]


class RemoteEngine:
    """An OpenAI-compatible vLLM server over HTTP (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        model_id: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_loras: int = 4,
        max_cpu_loras: int = 16,
        local_model: Path | None = None,
        zero_adapter_for_base: bool = False,
        cache_dir: Path | None = None,
        transport: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = model_id
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.local_model = local_model
        self.use_zero_adapter = zero_adapter_for_base
        self.cache_dir = cache_dir
        self.slots = AdapterSlots(max_loras, max_cpu_loras)
        self._transport = transport
        self._client: Any = None
        self._state: EngineState = "stopped"
        self._detail: str | None = None
        self._identity: ModelIdentity | None = None
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()
        self._refs: dict[str, AdapterRef] = {}
        self._zero_loaded = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_config(cls, config: EngineConfig) -> RemoteEngine:
        """An engine for ``config.remote_url``; a local copy of ``model`` (if any) gives the
        exact tokenizer and config fingerprint."""
        if not config.remote_url:
            raise EngineUnavailableError(
                "`engine: remote` needs `remote_url` (e.g. http://gpu-box:8000)"
            )
        local: Path | None = None
        with contextlib.suppress(EngineError):
            from remora_lsp.inference.models import resolve_model

            local = resolve_model(config)
        zero = {"auto": False, "always": True, "never": False}[config.zero_adapter_for_base]
        return cls(
            config.remote_url,
            model=config.remote_model,
            model_id=config.model_id,
            api_key=config.remote_api_key,
            timeout_s=config.remote_timeout_s,
            max_loras=config.max_loras,
            max_cpu_loras=config.max_cpu_loras,
            local_model=local,
            zero_adapter_for_base=zero,
            cache_dir=config.cache_dir,
        )

    # -- protocol: lifecycle --------------------------------------------------------------------
    @property
    def backend(self) -> BackendName:
        return "remote"

    async def start(self) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise EngineUnavailableError(
                "the remote engine needs httpx: `pip install httpx`"
            ) from exc
        self._state, self._detail = "starting", None
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
            transport=self._transport,
            trust_env=False,
        )
        try:
            response = await self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            await self._fail(f"cannot reach {self.base_url}: {exc}")
            raise EngineUnavailableError(self._detail or "") from exc
        if response.status_code != 200:
            await self._fail(f"{self.base_url}/v1/models answered {response.status_code}")
            raise EngineUnavailableError(self._detail or "")
        served = [
            str(m["id"])
            for m in response.json().get("data", [])
            if isinstance(m, dict) and m.get("id")
        ]
        bases = [m for m in served if m and m not in self._refs and m != ZERO_ADAPTER_NAME]
        if self.model is None:
            if not bases:
                await self._fail(f"{self.base_url} serves no model")
                raise EngineUnavailableError(self._detail or "")
            self.model = bases[0]
        elif self.model not in served:
            await self._fail(
                f"{self.base_url} does not serve {self.model!r} (it serves {', '.join(served)}); "
                "set `remote_model`"
            )
            raise EngineUnavailableError(self._detail or "")
        self._identity = self._make_identity()
        self._state = "ready"

    async def _fail(self, detail: str) -> None:
        self._state, self._detail = "dead", detail
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _make_identity(self) -> ModelIdentity:
        served = self.model or "remote"
        if self.local_model is not None:
            local = read_identity(self.local_model, self.model_id or served)
            return local
        return ModelIdentity(
            model_id=self.model_id or served, config_sha256=None, architecture="remote"
        )

    async def close(self) -> None:
        self._state = "stopped"
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        self.slots.clear()
        self._refs.clear()
        self._zero_loaded = False
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def identity(self) -> ModelIdentity:
        if self._identity is None:
            self._identity = self._make_identity()
        return self._identity

    def health(self) -> EngineHealth:
        return EngineHealth(
            backend="remote",
            state=self._state,
            detail=self._detail,
            device=f"remote {self.base_url}",
            resident_adapters=self.slots.resident(),
            cached_adapters=self.slots.cached(),
            rss_bytes=None,
        )

    def count_tokens(self, text: str) -> int:
        tokenizer = self._local_tokenizer()
        if tokenizer is None:
            return max(1, int(len(text) / 3.5)) if text else 0
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _local_tokenizer(self) -> Any:
        if self.local_model is None:
            return None
        with self._tokenizer_lock:
            if self._tokenizer is None:
                set_offline_environment()
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.local_model))
            return self._tokenizer

    # -- protocol: adapters ---------------------------------------------------------------------
    def _require_ready(self) -> Any:
        if self._state == "dead":
            raise EngineDeadError(f"the remote engine is unreachable: {self._detail}")
        if self._state != "ready" or self._client is None:
            raise EngineUnavailableError(f"the remote engine is {self._state}")
        return self._client

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        import httpx

        client = self._require_ready()
        try:
            return await client.post(path, json=payload)
        except httpx.HTTPError as exc:
            await self._fail(f"{self.base_url}{path}: {exc}")
            raise EngineDeadError(f"the remote engine is unreachable: {exc}") from exc

    async def _register(self, name: str, path: Path) -> None:
        response = await self._post(
            "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)}
        )
        if response.status_code == 200:
            return
        message = _message(response)
        if response.status_code == 400 and "already been loaded" in message:
            return
        if response.status_code == 404:
            message = (
                "the server does not allow loading adapters at run time; start it with "
                "--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
            )
        raise AdapterError(f"the server refused adapter {name!r}: {message}")

    async def load_adapter(self, ref: AdapterRef) -> None:
        old = self._refs.get(ref.name)
        if old is not None and old.path != ref.path:
            await self.unload_adapter(ref.name)
        if self.use_zero_adapter and not self._zero_loaded:
            base = self.cache_dir
            if base is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="remora-zero-")
                base = Path(self._tmp.name)
            folder = await asyncio.to_thread(write_zero_adapter, ref.path, base / "zero" / "remote")
            await self._register(ZERO_ADAPTER_NAME, folder)
            self._zero_loaded = True
        if ref.name not in self._refs:
            await self._register(ref.name, ref.path)
        self._refs[ref.name] = ref
        self.slots.register(ref.name, ref.path, ref.int_id)
        self.slots.cache(ref.name)

    async def unload_adapter(self, name: str) -> None:
        if self._refs.pop(name, None) is None:
            return
        self.slots.drop(name)
        response = await self._post("/v1/unload_lora_adapter", {"lora_name": name})
        if response.status_code not in (200, 404):
            log.warning("unloading %s: %s", name, _message(response))

    def release_adapter(self, name: str) -> None:
        self.slots.release(name)

    def resident_adapters(self) -> tuple[str, ...]:
        return self.slots.resident()

    def cached_adapters(self) -> tuple[str, ...]:
        return self.slots.cached()

    # -- protocol: generation -------------------------------------------------------------------
    def _payload(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        if request.adapter is not None:
            if request.adapter not in self._refs:
                raise AdapterError(f"adapter {request.adapter!r} is not loaded")
            self.slots.use(request.adapter)
            model = request.adapter
        else:
            model = ZERO_ADAPTER_NAME if self._zero_loaded else (self.model or "")
        payload: dict[str, Any] = {
            "model": model,
            "prompt": request.prompt,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
            "return_token_ids": True,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        return payload

    async def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> GenerationResult:
        submitted = time.perf_counter()
        text: list[str] = []
        ids: list[int] = []
        finish: FinishReason = "length"
        ttft: float | None = None
        prompt_tokens = 0
        async for delta, delta_ids, reason, n_prompt in self._events(request, cancel):
            if ttft is None and (delta or delta_ids):
                ttft = time.perf_counter() - submitted
            text.append(delta)
            ids.extend(delta_ids)
            prompt_tokens = n_prompt or prompt_tokens
            if reason is not None:
                finish = reason
        return GenerationResult(
            text="".join(text),
            finish_reason=finish,
            token_ids=tuple(ids),
            adapter=request.adapter,
            prompt_tokens=prompt_tokens,
            ttft_s=ttft,
            total_s=time.perf_counter() - submitted,
            request_id=request.request_id,
        )

    async def stream(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> AsyncGenerator[str, None]:
        async for delta, _, _, _ in self._events(request, cancel):
            if delta:
                yield delta

    async def _events(
        self, request: GenerationRequest, cancel: CancelToken | None
    ) -> AsyncGenerator[tuple[str, list[int], FinishReason | None, int], None]:
        """Server-sent events of a streamed completion as (text, token ids, finish, prompt)."""
        import httpx

        client = self._require_ready()
        payload = self._payload(request, stream=True)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        fired = False

        def on_cancel() -> None:
            nonlocal fired
            fired = True
            if task is not None:
                loop.call_soon_threadsafe(task.cancel)

        unregister = cancel.on_cancel(on_cancel) if cancel is not None else (lambda: None)
        try:
            async with client.stream("POST", "/v1/completions", json=payload) as response:
                if response.status_code != 200:
                    await response.aread()
                    message = _message(response)
                    if response.status_code == 404 and request.adapter is not None:
                        raise AdapterError(f"the server does not know adapter: {message}")
                    raise EngineError(f"the server refused the completion: {message}")
                prompt_tokens = 0
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("error"):
                        raise EngineError(f"the server failed the completion: {event['error']}")
                    usage = event.get("usage") or {}
                    prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                    for choice in event.get("choices", []):
                        if not prompt_tokens and choice.get("prompt_token_ids"):
                            prompt_tokens = len(choice["prompt_token_ids"])
                        reason = choice.get("finish_reason")
                        finish: FinishReason | None = (
                            None if reason is None else "stop" if reason == "stop" else "length"
                        )
                        yield (
                            choice.get("text") or "",
                            list(choice.get("token_ids") or []),
                            finish,
                            prompt_tokens,
                        )
        except asyncio.CancelledError:
            if fired and task is not None and task.uncancel() == 0:
                yield "", [], "cancelled", 0
                return
            raise
        except httpx.HTTPError as exc:
            await self._fail(f"{self.base_url}/v1/completions: {exc}")
            raise EngineDeadError(f"the remote engine is unreachable: {exc}") from exc
        finally:
            unregister()
