"""The engine interface: what the rest of Remora may ask of a code model, and the values it trades.

An :class:`Engine` holds one resident base model and a set of LoRA adapters that can be swapped
in per request. Backends (in-process vLLM, transformers + PEFT, a remote vLLM server) implement
the :class:`Engine` protocol; callers see only the small frozen values defined here. Like vLLM's
``LoRARequest``, an :class:`AdapterRef` names an adapter by name, integer id and path: the value
crosses boundaries, a loaded model never does. Cancellation works two ways and both stop the
request in the backend: cancel the asyncio task awaiting :meth:`Engine.generate` (the
``CancelledError`` propagates), or call :meth:`CancelToken.cancel` from any thread (the result
comes back with ``finish_reason="cancelled"`` and whatever text was produced so far).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "AdapterRef",
    "AdapterRole",
    "BackendName",
    "CancelToken",
    "Engine",
    "EngineHealth",
    "EngineState",
    "FimTokens",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "ModelIdentity",
]

AdapterRole = Literal["generation", "embedding", "transform", "orchestrator"]
BackendName = Literal["vllm", "transformers", "remote"]
EngineState = Literal["stopped", "starting", "ready", "dead"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class FimTokens:
    """The fill-in-the-middle control tokens of a model's tokenizer, as text.

    A FIM prompt is ``prefix + <prefix text> + suffix + <suffix text> + middle``; ``file_sep``
    (when the model has one) separates context files placed before it.
    """

    prefix: str
    suffix: str
    middle: str
    file_sep: str | None = None


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Which base model an engine runs, as far as adapters and prompts are concerned.

    ``model_id`` is the name adapters declare in ``base_model.id``; ``config_sha256`` is
    :func:`remora_lsp.packs.compat.config_fingerprint` of its ``config.json`` (None when the
    engine cannot see the config, e.g. a remote server without a local copy). ``fim`` is None
    when the tokenizer has no FIM tokens (then completion is prefix-only). An encoder-decoder
    model (``is_encoder_decoder``) serves ``transform`` adapters rather than completions.
    """

    model_id: str
    config_sha256: str | None
    architecture: str
    is_encoder_decoder: bool = False
    fim: FimTokens | None = None
    path: Path | None = None
    max_context: int | None = None
    vocab_size: int | None = None
    eos_token: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterRef:
    """A LoRA adapter by name: what an engine needs to load it, never the weights themselves.

    ``int_id`` is stable for one adapter folder for the life of the process (vLLM keys its
    caches by it); ``path`` is the PEFT folder (``adapter_config.json`` +
    ``adapter_model.safetensors``); ``base_model_id`` is the base it was trained for.
    """

    name: str
    int_id: int
    path: Path
    role: AdapterRole = "generation"
    base_model_id: str | None = None

    def __post_init__(self) -> None:
        if self.int_id < 1:
            raise ValueError(f"adapter {self.name!r}: int_id must be >= 1, got {self.int_id}")
        if not self.name or "/" in self.name or self.name.startswith("__"):
            raise ValueError(
                f"adapter name {self.name!r} must be non-empty, without '/' and not start "
                "with '__' (reserved)"
            )


def _request_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation: a prompt, how much to generate and with which adapter.

    ``adapter=None`` uses the base model. ``stop`` strings end the generation and are not
    part of the returned text. ``temperature=0`` is greedy decoding.
    """

    prompt: str
    max_tokens: int = 64
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    adapter: str | None = None
    request_id: str = field(default_factory=_request_id)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """What one generation produced.

    ``token_ids`` are the generated tokens when the backend reports them (empty for the remote
    backend); ``ttft_s`` is the time from submission to the first generated token.
    """

    text: str
    finish_reason: FinishReason
    token_ids: tuple[int, ...] = ()
    adapter: str | None = None
    prompt_tokens: int = 0
    ttft_s: float | None = None
    total_s: float = 0.0
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class EngineHealth:
    """A snapshot of an engine's state for status bars and ``remora doctor``."""

    backend: BackendName
    state: EngineState
    detail: str | None = None
    device: str = "cpu"
    resident_adapters: tuple[str, ...] = ()
    cached_adapters: tuple[str, ...] = ()
    rss_bytes: int | None = None


class CancelToken:
    """A thread-safe flag that stops a running generation when set.

    Engines register a callback with :meth:`on_cancel`; :meth:`cancel` may be called from any
    thread, any number of times. Callbacks registered after cancellation run at once.
    """

    __slots__ = ("_callbacks", "_event", "_lock")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Stop the generation(s) holding this token."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on cancellation; returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._discard(callback)
        callback()
        return lambda: None

    def _discard(self, callback: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


@runtime_checkable
class Engine(Protocol):
    """One resident base model with hot-swappable LoRA adapters.

    Lifecycle: construct (cheap, no weights), ``await start()`` (loads the model; may take
    tens of seconds), use, ``await close()``. ``identity()`` may be called before ``start()``
    by local backends. A backend whose process or worker died reports ``health().state ==
    "dead"`` and raises :class:`~remora_lsp.inference.errors.EngineDeadError` from requests;
    the owner (see :mod:`remora_lsp.inference.service`) replaces it.
    """

    @property
    def backend(self) -> BackendName:
        """Which implementation this is."""
        ...

    async def start(self) -> None:
        """Load the model and become ready. Raises ``EngineError`` subclasses on failure."""
        ...

    async def close(self) -> None:
        """Stop serving and release the model (idempotent)."""
        ...

    def identity(self) -> ModelIdentity:
        """The base model this engine runs."""
        ...

    def health(self) -> EngineHealth:
        """Current state, adapters and memory."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is for this model (exact when a tokenizer is at hand)."""
        ...

    async def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> GenerationResult:
        """Run one request to completion (or cancellation)."""
        ...

    def stream(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> AsyncGenerator[str, None]:
        """Yield text deltas as they are generated; closing the iterator aborts the request."""
        ...

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Make ``ref`` available (at least in the CPU cache); raises ``AdapterError``."""
        ...

    async def unload_adapter(self, name: str) -> None:
        """Forget an adapter (no error if unknown)."""
        ...

    def release_adapter(self, name: str) -> None:
        """The adapter is no longer wanted: keep it loaded, but evict it before any other."""
        ...

    def resident_adapters(self) -> tuple[str, ...]:
        """Adapters occupying an active slot, most recently used first."""
        ...

    def cached_adapters(self) -> tuple[str, ...]:
        """Adapters loaded in memory (resident ones included), most recently used first."""
        ...
