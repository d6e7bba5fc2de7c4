"""The transformers + PEFT backend: one model in this process, adapters swapped per request.

Every touch of the model (loading, adapter changes, decoding) runs on one dedicated worker
thread, so requests are served one at a time in arrival order and the event loop never blocks.
Adapters move through the shared :class:`~remora_lsp.inference.slots.AdapterSlots` tiers: the
CPU cache holds each adapter's config and state dict read from safetensors, and a resident
adapter is injected into the model as a PEFT LoRA layer. With ``merge_adapter`` (the default)
the active adapter is merged into the base weights, so a request pays no per-token LoRA cost;
switching adapters unmerges one and merges the other. Decoding is a plain KV-cached loop that
checks for cancellation before every token, which is what makes cancellation immediate.

An encoder-decoder model (``is_encoder_decoder`` in its config) is served through
``generate()`` for ``transform`` work; completions want a decoder-only model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import warnings
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
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

__all__ = ["TransformersEngine"]

log = logging.getLogger(__name__)

# PEFT says so each time the active adapter is evicted; the engine activates one per request.
warnings.filterwarnings("ignore", message=r"Adapter .* was active which is now deleted")

_END = object()
_WEIGHTS = "adapter_model.safetensors"


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` might still become a stop string (or a
    multi-byte character still being decoded) and must not be streamed yet."""
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    if text.endswith("\ufffd"):
        hold = max(hold, len(text) - len(text.rstrip("\ufffd")))
    return hold


class TransformersEngine:
    """transformers + PEFT multi-adapter engine (see the module docstring)."""

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
        merge_adapter: bool = True,
        threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self._identity = read_identity(self.model_path, model_id)
        self.device = device
        self.dtype = dtype
        self.max_lora_rank = max_lora_rank
        self.max_model_len = max_model_len
        self.merge = merge_adapter
        self.threads = threads
        self.slots = AdapterSlots(max_loras, max_cpu_loras)
        self._state: EngineState = "stopped"
        self._detail: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._model: Any = None
        self._peft: Any = None
        self._eos_ids: set[int] = set()
        self._weights: dict[str, tuple[Any, dict[str, Any]]] = {}  # CPU cache: config, tensors
        self._injected: set[str] = set()
        self._merged: str | None = None
        self._enabled: bool = True
        self._refs: dict[str, AdapterRef] = {}
        self.stats = {"merges": 0, "swaps": 0}

    @classmethod
    def from_config(cls, config: EngineConfig, model_path: Path) -> TransformersEngine:
        """An engine for ``model_path`` with the slot, dtype and merge settings of ``config``."""
        device = "cpu" if config.device == "auto" else config.device
        dtype = (
            config.dtype
            if config.dtype != "auto"
            else ("float32" if device == "cpu" else "bfloat16")
        )
        return cls(
            model_path,
            model_id=config.model_id,
            device=device,
            dtype=dtype,
            max_loras=config.max_loras,
            max_cpu_loras=config.max_cpu_loras,
            max_lora_rank=config.max_lora_rank,
            max_model_len=config.max_model_len,
            merge_adapter=config.merge_adapter,
            threads=config.threads,
        )

    # -- protocol: lifecycle --------------------------------------------------------------------
    @property
    def backend(self) -> BackendName:
        return "transformers"

    async def start(self) -> None:
        if self._state in {"ready", "starting"}:
            return
        self._state, self._detail = "starting", None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="remora-hf")
        try:
            await asyncio.wrap_future(self._executor.submit(self._load_model))
        except BaseException as exc:
            self._state, self._detail = "dead", f"failed to load {self.model_path}: {exc}"
            self._executor.shutdown(wait=False)
            self._executor = None
            if isinstance(exc, EngineError):
                raise
            raise EngineError(self._detail) from exc
        self._state = "ready"

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        self._state = "stopped"
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        self._model = self._peft = None
        self._weights.clear()
        self._injected.clear()
        self._merged = None
        self.slots.clear()

    def identity(self) -> ModelIdentity:
        return self._identity

    def health(self) -> EngineHealth:
        return EngineHealth(
            backend="transformers",
            state=self._state,
            detail=self._detail,
            device=self.device,
            resident_adapters=self.slots.resident(),
            cached_adapters=self.slots.cached(),
            rss_bytes=rss_bytes(),
        )

    def mark_dead(self, reason: str) -> None:
        """Record that the worker can no longer be trusted (the owner replaces the engine)."""
        self._state, self._detail = "dead", reason
        log.error("transformers engine died: %s", reason)

    def count_tokens(self, text: str) -> int:
        tokenizer = self._tokenizer_or_load()
        # Fast tokenizers may reconfigure themselves per call; one caller at a time (the
        # event loop counts tokens while the worker thread encodes a prompt).
        with self._encode_lock:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- protocol: adapters ---------------------------------------------------------------------
    async def load_adapter(self, ref: AdapterRef) -> None:
        executor = self._require_ready()
        await asyncio.wrap_future(executor.submit(self._load_adapter_sync, ref))

    async def unload_adapter(self, name: str) -> None:
        if name not in self._refs:
            return
        executor = self._require_ready()
        await asyncio.wrap_future(executor.submit(self._unload_sync, name))

    def release_adapter(self, name: str) -> None:
        self.slots.release(name)

    async def set_merge(self, merge: bool) -> None:
        """Switch between merging the active adapter into the weights and PEFT adapter layers."""
        executor = self._require_ready()

        def apply() -> None:
            if not merge and self._merged is not None:
                self._peft.base_model.unmerge_adapter()
                self._merged = None
            self.merge = merge

        await asyncio.wrap_future(executor.submit(apply))

    def resident_adapters(self) -> tuple[str, ...]:
        return self.slots.resident()

    def cached_adapters(self) -> tuple[str, ...]:
        return self.slots.cached()

    # -- protocol: generation -------------------------------------------------------------------
    async def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> GenerationResult:
        return await self._submit(request, cancel, None)

    async def stream(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(delta: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, delta)

        task = asyncio.ensure_future(self._submit(request, cancel, emit))
        task.add_done_callback(lambda _: queue.put_nowait(_END))
        try:
            while (item := await queue.get()) is not _END:
                yield str(item)
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- internals: async side ------------------------------------------------------------------
    def _require_ready(self) -> ThreadPoolExecutor:
        if self._state == "dead":
            raise EngineDeadError(f"the transformers engine died: {self._detail}")
        if self._state != "ready" or self._executor is None:
            raise EngineUnavailableError(f"the transformers engine is {self._state}")
        return self._executor

    async def _submit(
        self,
        request: GenerationRequest,
        cancel: CancelToken | None,
        emit: Callable[[str], None] | None,
    ) -> GenerationResult:
        executor = self._require_ready()
        if request.adapter is not None and request.adapter not in self._refs:
            raise AdapterError(f"adapter {request.adapter!r} is not loaded")
        stop = threading.Event()
        unregister = cancel.on_cancel(stop.set) if cancel is not None else (lambda: None)
        submitted = time.perf_counter()
        future = executor.submit(self._generate_sync, request, stop, emit, submitted)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            stop.set()
            raise
        finally:
            unregister()

    # -- internals: worker thread ---------------------------------------------------------------
    def _tokenizer_or_load(self) -> Any:
        with self._tokenizer_lock:
            if self._tokenizer is None:
                set_offline_environment()
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
            return self._tokenizer

    def _load_model(self) -> None:
        set_offline_environment()
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, GenerationConfig

        # One thread per two cores: on a small, busy machine more threads than that made
        # decoding many times slower (measured 14 vs 1 tokens/s on 2 shared cores).
        threads = self.threads or max(1, min(8, (os.cpu_count() or 2) // 2))
        if self.device == "cpu":
            torch.set_num_threads(threads)
        tokenizer = self._tokenizer_or_load()
        auto: Any = (
            AutoModelForSeq2SeqLM if self._identity.is_encoder_decoder else AutoModelForCausalLM
        )
        model = auto.from_pretrained(
            str(self.model_path), dtype=getattr(torch, self.dtype), local_files_only=True
        )
        model.to(self.device)
        model.eval()
        self._model = model
        eos: set[int] = set()
        with contextlib.suppress(OSError, ValueError):
            generation = GenerationConfig.from_pretrained(str(self.model_path))
            value = generation.eos_token_id
            eos.update(value if isinstance(value, list) else [value] if value is not None else [])
        if tokenizer.eos_token_id is not None:
            eos.add(int(tokenizer.eos_token_id))
        self._eos_ids = eos

    def _read_adapter(self, ref: AdapterRef) -> tuple[Any, dict[str, Any]]:
        from peft import LoraConfig
        from safetensors.torch import load_file

        weights = ref.path / _WEIGHTS
        if not (ref.path / "adapter_config.json").is_file() or not weights.is_file():
            raise AdapterError(
                f"adapter {ref.name!r}: {ref.path} needs adapter_config.json and {_WEIGHTS}"
            )
        try:
            config = LoraConfig.from_pretrained(str(ref.path))
            tensors = load_file(str(weights), device=self.device)
        except Exception as exc:
            raise AdapterError(f"adapter {ref.name!r} at {ref.path}: {exc}") from exc
        if config.r > self.max_lora_rank:
            raise AdapterError(
                f"adapter {ref.name!r} has rank {config.r}, above max_lora_rank "
                f"{self.max_lora_rank}; raise max_lora_rank"
            )
        return config, tensors

    def _apply(self, moves: list[SlotMove]) -> None:
        for move in moves:
            self._eject(move.name)
            if move.to == "disk":
                self._weights.pop(move.name, None)

    def _eject(self, name: str) -> None:
        """Take ``name`` out of the model (its weights stay in the CPU cache)."""
        if name not in self._injected:
            return
        if self._merged == name:
            self._peft.base_model.unmerge_adapter()
            self._merged = None
        self._peft.base_model.delete_adapter(name)
        self._injected.discard(name)

    def _load_adapter_sync(self, ref: AdapterRef) -> None:
        old = self._refs.get(ref.name)
        if old is not None and old.path != ref.path:
            self._unload_sync(ref.name)
        if ref.name in self._weights:
            self._refs[ref.name] = ref
            self._apply(self.slots.cache(ref.name))
            return
        self.slots.register(ref.name, ref.path, ref.int_id)
        config_and_weights = self._read_adapter(ref)
        self._refs[ref.name] = ref
        self._weights[ref.name] = config_and_weights
        self._apply(self.slots.cache(ref.name))

    def _unload_sync(self, name: str) -> None:
        self._eject(name)
        self._weights.pop(name, None)
        self._refs.pop(name, None)
        self.slots.drop(name)

    def _inject(self, name: str) -> None:
        from peft import get_peft_model, set_peft_model_state_dict

        config, tensors = self._weights[name]
        config = deepcopy(config)
        config.inference_mode = True
        if self._peft is None:
            self._peft = get_peft_model(self._model, config, adapter_name=name)
        else:
            self._peft.add_adapter(name, config)
        result: Any = set_peft_model_state_dict(self._peft, tensors, adapter_name=name)
        self._injected.add(name)
        unexpected = [k for k in result.unexpected_keys if "lora_" in k]
        if unexpected:
            self._eject(name)
            raise AdapterError(
                f"adapter {name!r} does not fit this base model: it has weights for "
                f"{unexpected[0]} (and {len(unexpected) - 1} more) that the model lacks"
            )
        self._model.eval()

    def _activate(self, name: str | None) -> None:
        """Make the model compute with adapter ``name`` (None: the base model)."""
        if self._merged is not None and self._merged != name:
            # Unmerge before the slot changes below: PEFT cannot add or delete adapters
            # cleanly while another one is merged into the weights.
            self._peft.base_model.unmerge_adapter()
            self._merged = None
        if name is not None:
            if name not in self._weights:
                ref = self._refs[name]
                self._weights[name] = self._read_adapter(ref)
            self._apply(self.slots.use(name))
            if name not in self._injected:
                self._inject(name)
        if self._peft is None:
            return
        if name is None:
            self._set_enabled(False)
            return
        self._set_enabled(True)
        if self._merged == name:
            return
        self._peft.set_adapter(name)
        self.stats["swaps"] += 1
        if self.merge:
            self._peft.base_model.merge_adapter([name])
            self._merged = name
            self.stats["merges"] += 1

    def _set_enabled(self, enabled: bool) -> None:
        if enabled == self._enabled:
            return
        base = self._peft.base_model
        if enabled:
            base.enable_adapter_layers()
        else:
            base.disable_adapter_layers()
        self._enabled = enabled

    def _encode(self, prompt: str, max_tokens: int) -> list[int]:
        tokenizer = self._tokenizer_or_load()
        with self._encode_lock:
            ids: list[int] = tokenizer(prompt)["input_ids"]
        room = self.max_model_len - max_tokens
        if room < 1:
            raise ValueError(
                f"max_tokens {max_tokens} leaves no room in max_model_len {self.max_model_len}"
            )
        return ids[-room:] if len(ids) > room else ids

    def _generate_sync(
        self,
        request: GenerationRequest,
        stop: threading.Event,
        emit: Callable[[str], None] | None,
        submitted: float,
    ) -> GenerationResult:
        if self._state != "ready":
            raise EngineDeadError(f"the transformers engine is {self._state}: {self._detail}")
        ids = self._encode(request.prompt, request.max_tokens)
        try:
            self._activate(request.adapter)
            if self._identity.is_encoder_decoder:
                return self._seq2seq(request, ids, stop, submitted)
            return self._decode(request, ids, stop, emit, submitted)
        except (AdapterError, ValueError):
            raise
        except Exception as exc:
            self.mark_dead(f"{type(exc).__name__}: {exc}")
            raise EngineDeadError(f"the transformers engine died: {exc}") from exc

    def _pick(self, logits: Any, temperature: float) -> int:
        import torch

        if temperature <= 0:
            return int(torch.argmax(logits).item())
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        return int(torch.multinomial(probs, 1).item())

    def _decode(
        self,
        request: GenerationRequest,
        ids: list[int],
        stop: threading.Event,
        emit: Callable[[str], None] | None,
        submitted: float,
    ) -> GenerationResult:
        import torch

        tokenizer = self._tokenizer_or_load()
        model = self._model
        generated: list[int] = []
        text, emitted = "", 0
        finish: FinishReason = "length"
        ttft: float | None = None
        with torch.inference_mode():
            if stop.is_set():
                return self._result(request, "", "cancelled", generated, ids, None, submitted)
            out = model(input_ids=torch.tensor([ids], device=self.device), use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1]
            while True:
                token = self._pick(logits, request.temperature)
                if ttft is None:
                    ttft = time.perf_counter() - submitted
                if token in self._eos_ids:
                    finish = "stop"
                    break
                generated.append(token)
                text = tokenizer.decode(generated, skip_special_tokens=True)
                cut = min((i for s in request.stop if (i := text.find(s)) >= 0), default=-1)
                if cut >= 0:
                    text = text[:cut]
                    finish = "stop"
                    break
                if emit is not None:
                    safe = len(text) - _held_back(text, request.stop)
                    if safe > emitted:
                        emit(text[emitted:safe])
                        emitted = safe
                if len(generated) >= request.max_tokens:
                    break
                if stop.is_set():
                    finish = "cancelled"
                    break
                out = model(
                    input_ids=torch.tensor([[token]], device=self.device),
                    past_key_values=past,
                    use_cache=True,
                )
                past = out.past_key_values
                logits = out.logits[0, -1]
        if emit is not None and len(text) > emitted:
            emit(text[emitted:])
        return self._result(request, text, finish, generated, ids, ttft, submitted)

    def _seq2seq(
        self, request: GenerationRequest, ids: list[int], stop: threading.Event, submitted: float
    ) -> GenerationResult:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        with torch.inference_mode():
            output = self._model.generate(
                input_ids=torch.tensor([ids], device=self.device),
                max_new_tokens=request.max_tokens,
                do_sample=request.temperature > 0,
                temperature=request.temperature if request.temperature > 0 else None,
                stopping_criteria=StoppingCriteriaList([_Cancelled()]),
            )
        generated = [int(t) for t in output[0].tolist() if int(t) not in self._eos_ids]
        generated = [t for t in generated if t != self._model.config.decoder_start_token_id]
        text = self._tokenizer_or_load().decode(generated, skip_special_tokens=True)
        cut = min((i for s in request.stop if (i := text.find(s)) >= 0), default=-1)
        finish: FinishReason = "cancelled" if stop.is_set() else "stop" if cut >= 0 else "length"
        if cut >= 0:
            text = text[:cut]
        elapsed = time.perf_counter() - submitted
        return self._result(request, text, finish, generated, ids, elapsed, submitted)

    def _result(
        self,
        request: GenerationRequest,
        text: str,
        finish: FinishReason,
        generated: list[int],
        ids: list[int],
        ttft: float | None,
        submitted: float,
    ) -> GenerationResult:
        return GenerationResult(
            text=text,
            finish_reason=finish,
            token_ids=tuple(generated),
            adapter=request.adapter,
            prompt_tokens=len(ids),
            ttft_s=ttft,
            total_s=time.perf_counter() - submitted,
            request_id=request.request_id,
        )
