"""The errors of the generative layer, as part of Remora's error tree::

    RemoraError
    └── EngineError                 an engine cannot do what was asked
        ├── ModelNotFoundError      the configured base model is not on this machine
        ├── EngineUnavailableError  the backend cannot be used here (not installed, no server)
        ├── EngineDeadError         the engine's process or worker died; it must be replaced
        └── AdapterError            an adapter cannot be loaded or used

Every message names the value at fault and what fixes it (``remora models fetch``, the
``pip install`` that adds a backend, the setting to change).
"""

from __future__ import annotations

from remora_lsp.errors import RemoraError

__all__ = [
    "AdapterError",
    "EngineDeadError",
    "EngineError",
    "EngineUnavailableError",
    "ModelNotFoundError",
]


class EngineError(RemoraError):
    """An engine failed to start, serve or change adapters."""


class ModelNotFoundError(EngineError):
    """The configured base model folder is missing or incomplete."""


class EngineUnavailableError(EngineError):
    """The chosen backend cannot run here, or is not started yet."""


class EngineDeadError(EngineError):
    """The engine died (its process exited or its worker crashed)."""


class AdapterError(EngineError):
    """An adapter could not be loaded, or a request named one that is not loaded."""
