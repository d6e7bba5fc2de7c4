"""The settings of one training run (validated, frozen) and how they parse from the command line.

:class:`TrainOptions` is everything ``remora train`` was told; :func:`parse_duration` reads
``--time-budget`` values such as ``90s``, ``20m``, ``1h30m`` or plain seconds. Each stage reads
only the fields it needs; the pipeline fingerprints those to decide whether a resumed run may
reuse a stage's checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from remora_lsp.training.errors import TrainingError

__all__ = ["BUDGET_SHARES", "MIN_TIME_BUDGET_S", "TrainOptions", "parse_duration"]

# How the training time budget is shared between the three trained parts.
BUDGET_SHARES = {"embedding": 0.2, "generation": 0.6, "transform": 0.2}
MIN_TIME_BUDGET_S = 10.0
_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``600``, ``90s``, ``20m``, ``1h``, ``1h30m``, ``2m30s``."""
    match = _DURATION_RE.match(text.lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise TrainingError(
            f"--time-budget {text!r} is not a duration; write e.g. 600, 90s, 20m or 1h30m"
        )
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class TrainOptions(BaseModel):
    """Everything one ``remora train`` run was told (see ``remora train --help``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    out: Path
    docs: tuple[str, ...] = ()
    allow_no_docs: bool = False
    crawl_pages: int = Field(default=200, ge=1, le=100_000)
    crawl_depth: int = Field(default=4, ge=0, le=50)
    coverage: Path | None = None
    run_tests: bool = False
    pack_dir: Path | None = None
    name: str | None = None
    version: str | None = None
    triggers: tuple[str, ...] = ()
    base_model: str = "smollm2-135m"
    models_dir: Path | None = None
    time_budget_s: float = Field(default=720.0, gt=0)
    max_steps: int = Field(default=0, ge=0)
    min_steps: int = Field(default=4, ge=1)
    seed: int = 0
    rank: int = Field(default=16, ge=1, le=256)
    alpha: float = Field(default=32.0, gt=0)
    seq_len: int = Field(default=512, ge=32, le=8192)
    batch_size: int = Field(default=2, ge=1, le=256)
    learning_rate: float = Field(default=4e-4, gt=0, lt=1)
    embedding_batch_size: int = Field(default=32, ge=2, le=1024)
    other: str | None = None
    eval_tokens: int = Field(default=20_000, ge=256)
    next_line_samples: int = Field(default=100, ge=1)
    rouge_samples: int = Field(default=30, ge=1)
    heldout_fraction: float = Field(default=0.15, gt=0, lt=0.9)
    report_dir: Path | None = None
    work_dir: Path | None = None
    resume: bool = False
    keep_work: bool = False
    sign_key: Path | None = None
    threads: int = Field(default=1, ge=1, le=256)

    @field_validator("time_budget_s")
    @classmethod
    def _budget(cls, value: float) -> float:
        if value < MIN_TIME_BUDGET_S:
            raise ValueError(
                f"{value:g} s is too small to train anything; give at least "
                f"{MIN_TIME_BUDGET_S:g} s (e.g. --time-budget 5m)"
            )
        return value

    def stage_budget(self, stage: str) -> float:
        """The share of the time budget a training stage may spend."""
        return self.time_budget_s * BUDGET_SHARES[stage]

    @property
    def work_folder(self) -> Path:
        """Where checkpoints live: ``--work-dir``, else ``.<pack file name>.work`` beside it."""
        if self.work_dir is not None:
            return self.work_dir
        return self.out.parent / f".{self.out.name}.work"
