"""The registry's errors, each a :class:`~remora_lsp.errors.RemoraError` with a one-line message.

::

    RemoraError
    └── RegistryError            anything about a registry (bad URL, bad answer, storage)
        ├── RegistryUnreachable  no connection (offline, wrong port, DNS)
        └── RegistryHTTPError    the registry answered 4xx/5xx; ``status`` and ``code`` say which

Messages never contain a token.
"""

from __future__ import annotations

from remora_lsp.errors import RemoraError

__all__ = ["RegistryError", "RegistryHTTPError", "RegistryUnreachable"]


class RegistryError(RemoraError):
    """A registry operation failed."""


class RegistryUnreachable(RegistryError):
    """The registry could not be reached at all."""


class RegistryHTTPError(RegistryError):
    """The registry refused a request (401, 403, 404, 409, 413, 422, 5xx)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
