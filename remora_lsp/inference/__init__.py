"""The generative layer: one resident code model, per-pack LoRA adapters swapped in per request.

Code map:

- ``engine``: the :class:`Engine` protocol and the values it trades (:class:`AdapterRef`,
  :class:`GenerationRequest`, :class:`GenerationResult`, :class:`ModelIdentity`, ...).
- ``errors``: :class:`EngineError` and its subclasses.
- ``config``: :class:`EngineConfig` (``engine``, ``model``, ``max_loras``, ...).
- ``slots``: :class:`AdapterSlots`, the disk → CPU cache → resident LRU every backend shares.
- ``hf_engine``, ``vllm_engine``, ``remote_engine``: the three backends (heavy libraries are
  imported inside them, lazily).
- ``selection``: :func:`select_engine`, which backend ``engine: auto`` means on this device.
- ``models``: the default base model (``remora models fetch``) and model folder resolution.
- ``identity``, ``zero_adapter``, ``system``: model folder facts, the all-zero adapter for
  vLLM-CPU base requests, machine facts.
- ``service``: :class:`GenerativeService`, the pack listener that owns the engine's lifecycle.

Importing this package imports no heavy library.
"""

from __future__ import annotations

from remora_lsp.inference.config import EngineConfig, load_engine_config
from remora_lsp.inference.engine import (
    AdapterRef,
    CancelToken,
    Engine,
    EngineHealth,
    FimTokens,
    GenerationRequest,
    GenerationResult,
    ModelIdentity,
)
from remora_lsp.inference.errors import (
    AdapterError,
    EngineDeadError,
    EngineError,
    EngineUnavailableError,
    ModelNotFoundError,
)

__all__ = [
    "AdapterError",
    "AdapterRef",
    "CancelToken",
    "Engine",
    "EngineConfig",
    "EngineDeadError",
    "EngineError",
    "EngineHealth",
    "EngineUnavailableError",
    "FimTokens",
    "GenerationRequest",
    "GenerationResult",
    "ModelIdentity",
    "ModelNotFoundError",
    "load_engine_config",
]
