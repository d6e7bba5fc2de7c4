"""Errors of the training pipeline: each says what was wrong and what to do about it."""

from __future__ import annotations

from remora_lsp.errors import RemoraError

__all__ = ["BudgetError", "DocsError", "SourceError", "StageError", "TrainingError"]


class TrainingError(RemoraError):
    """Base class: a training run cannot go on. No pack is written."""


class SourceError(TrainingError):
    """SOURCE cannot be read: missing folder, failed clone, unknown distribution, no code."""


class DocsError(TrainingError):
    """Documentation cannot be read (missing folder, unreachable site, nothing usable)."""


class BudgetError(TrainingError):
    """The time or step budget is too small to train anything useful."""


class StageError(TrainingError):
    """A stage failed (bad checkpoint, model that cannot be loaded, evaluation impossible)."""
