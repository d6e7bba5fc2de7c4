"""The semantic layer's errors, all under :class:`~remora_lsp.errors.RemoraError`::

    RemoraError
    └── RetrievalError            anything the semantic layer refuses or cannot do
        ├── IndexCorruptError     an index folder is unreadable, truncated or of an unknown format
        ├── EmptyIndexError       an index holds no vectors (nothing to search or build from)
        ├── DimensionMismatchError vectors, index and model disagree on the number of dimensions
        └── ModelUnavailableError an embedding model cannot be loaded (missing path, no weights)

Messages name the file or model, the value found, and what to do about it.
"""

from __future__ import annotations

from remora_lsp.errors import RemoraError

__all__ = [
    "DimensionMismatchError",
    "EmptyIndexError",
    "IndexCorruptError",
    "ModelUnavailableError",
    "RetrievalError",
]


class RetrievalError(RemoraError):
    """The semantic layer could not do what was asked."""


class IndexCorruptError(RetrievalError):
    """An index file is missing, truncated, unparsable or written by an unknown format version."""


class EmptyIndexError(RetrievalError):
    """An index has no vectors."""


class DimensionMismatchError(RetrievalError):
    """Vectors, an index and an embedding model disagree on dimensions (or on the model)."""


class ModelUnavailableError(RetrievalError):
    """An embedding model is not configured, not on disk, or failed to load."""
