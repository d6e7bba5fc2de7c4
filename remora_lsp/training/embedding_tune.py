"""Fine-tuning the search embedding on mined pairs with a Matryoshka loss, measured before and
after.

:func:`tune_embedding` loads a sentence-transformers model from disk (the embedded
all-MiniLM-L6-v2 by default; never a hub), trains it on (query, positive) pairs with
``MatryoshkaLoss(MultipleNegativesRankingLoss)`` at the full dimension and each Matryoshka
dimension, and saves it as a sentence-transformers folder that a pack can carry: safetensors
weights only (packs refuse pickles), in float16, with a ``remora_embedding.json`` card.
:func:`evaluate_mrr` measures MRR@10 of each query's own positive among all the positives at
each dimension; the result reports it for the base model and the tuned one.

The training loop is written here rather than taken from the sentence-transformers trainer
(which needs the ``datasets`` package): one seeded shuffle per epoch, batches without a
repeated query or positive (a repeat would be a false in-batch negative), AdamW, linear warmup
then linear decay, one torch thread (a busy 2-core machine trains fastest so), and an honest
account of what stopped it: ``steps`` (``max_steps``), ``time`` (``time_budget_s``) or
``epochs``. The stage is short and has no checkpoint: an interrupted run re-runs it.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remora_lsp.retrieval.embedding import (
    DEFAULT_MODEL_ID,
    MODEL_CARD,
    SentenceTransformerEmbedder,
    default_model_path,
    l2_normalize,
    truncate,
)
from remora_lsp.training.errors import BudgetError, StageError
from remora_lsp.training.types import Pair

if TYPE_CHECKING:
    import numpy as np

    from remora_lsp.retrieval.embedding import Embedder

__all__ = ["EmbeddingResult", "evaluate_mrr", "plan_batches", "tune_embedding"]

WARMUP_FRACTION = 0.1
REFUSED_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def evaluate_mrr(
    embedder: Embedder, pairs: Sequence[Pair], dims: Sequence[int], *, k: int = 10
) -> dict[int, float]:
    """MRR@k of each pair's own positive among the distinct positives of ``pairs``, per dim.

    Queries are embedded with ``embed_queries``, positives with ``embed_documents``; at each
    dimension both are truncated (first *d* dims, re-normalised) and ranked by cosine. A
    positive tied with others counts as ranked after none of them (rank = 1 + the number of
    strictly better ones).
    """
    import numpy as np

    if not pairs:
        raise StageError("cannot measure MRR on no pairs")
    corpus: dict[str, int] = {}
    for pair in pairs:
        corpus.setdefault(pair.positive, len(corpus))
    queries = embedder.embed_queries([p.query for p in pairs])
    documents = embedder.embed_documents(list(corpus))
    targets = np.array([corpus[p.positive] for p in pairs])
    out: dict[int, float] = {}
    for dim in dims:
        scores = truncate(queries, dim) @ truncate(documents, dim).T
        own = scores[np.arange(len(pairs)), targets]
        ranks = 1 + (scores > own[:, None]).sum(axis=1)
        out[int(dim)] = float(np.where(ranks <= k, 1.0 / ranks, 0.0).mean())
    return out


@dataclass(frozen=True)
class EmbeddingResult:
    """What the fine-tune did: where the model is, MRR@10 per dimension (``{"384": {"base":
    x, "tuned": y}, "256": ...}``), how much it trained and what stopped it."""

    model_dir: Path | None
    dims: tuple[int, ...]
    mrr_at_10: dict[str, dict[str, float]]
    train_pairs: int
    eval_pairs: int
    steps: int
    seconds: float
    pairs_per_second: float
    stopped_by: str

    def to_data(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir.as_posix() if self.model_dir is not None else None,
            "dims": list(self.dims),
            "mrr_at_10": {d: dict(v) for d, v in self.mrr_at_10.items()},
            "train_pairs": self.train_pairs,
            "eval_pairs": self.eval_pairs,
            "steps": self.steps,
            "seconds": self.seconds,
            "pairs_per_second": self.pairs_per_second,
            "stopped_by": self.stopped_by,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> EmbeddingResult:
        model_dir = data.get("model_dir")
        return cls(
            model_dir=Path(model_dir) if model_dir else None,
            dims=tuple(int(d) for d in data["dims"]),
            mrr_at_10={str(d): dict(v) for d, v in data["mrr_at_10"].items()},
            train_pairs=int(data["train_pairs"]),
            eval_pairs=int(data["eval_pairs"]),
            steps=int(data["steps"]),
            seconds=float(data["seconds"]),
            pairs_per_second=float(data["pairs_per_second"]),
            stopped_by=str(data["stopped_by"]),
        )


def plan_batches(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches (indices into ``pairs``) in a shuffled order; no batch holds the
    same query or the same positive twice. A pair that would repeat one waits for the next
    batch; only the last batch may be smaller than ``batch_size``."""
    pending = list(range(len(pairs)))
    rng.shuffle(pending)
    batches: list[list[int]] = []
    while pending:
        batch: list[int] = []
        texts: set[str] = set()
        rest: list[int] = []
        for i in pending:
            pair = pairs[i]
            if len(batch) < batch_size and pair.query not in texts and pair.positive not in texts:
                batch.append(i)
                texts.update((pair.query, pair.positive))
            else:
                rest.append(i)
        batches.append(batch)
        pending = rest
    return batches


class _ModelEmbedder:
    """An in-memory ``SentenceTransformer`` as an :class:`Embedder` (for measuring)."""

    def __init__(self, model: Any, model_id: str) -> None:
        self._model = model
        self._id = model_id

    @property
    def model_id(self) -> str:
        return self._id

    @property
    def dims(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def mrl_dims(self) -> tuple[int, ...]:
        return (self.dims,)

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        import torch

        prompt = (getattr(self._model, "prompts", None) or {}).get(role)
        self._model.eval()
        with torch.inference_mode():
            out = self._model.encode(
                list(texts), prompt=prompt or None, batch_size=32, convert_to_numpy=True,
                show_progress_bar=False, normalize_embeddings=False,
            )  # fmt: skip
        return l2_normalize(out)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")


def _base_model(base: str | Path) -> tuple[Path, str]:
    """(folder, model id) of the base model: ``"default"`` is the embedded MiniLM."""
    if str(base) in ("default", DEFAULT_MODEL_ID):
        return default_model_path(), DEFAULT_MODEL_ID
    path = Path(base).expanduser()
    return path, SentenceTransformerEmbedder(path).model_id


def _load(path: Path) -> Any:
    from remora_lsp.retrieval.embedding import _offline

    _offline()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:
        raise StageError(f"cannot load the base embedding model in {path}: {exc}") from exc
    return model.float()


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup over ``warmup`` steps, then linear decay to zero at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def _save(model: Any, folder: Path, card: dict[str, Any]) -> None:
    """The model as a float16 safetensors sentence-transformers folder with its card."""
    model.half()
    try:
        model.save(str(folder), create_model_card=False, safe_serialization=True)
    finally:
        model.float()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.lower().endswith(REFUSED_SUFFIXES):
            path.unlink()
    if not any(folder.rglob("*.safetensors")):
        raise StageError(f"{folder}: the model was not saved as safetensors")
    (folder / MODEL_CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")


def tune_embedding(
    train: Sequence[Pair],
    evaluation: Sequence[Pair],
    out_dir: Path,
    *,
    base: str | Path = "default",
    matryoshka_dims: Sequence[int] = (256, 128, 64),
    epochs: int = 1,
    max_steps: int = 0,
    time_budget_s: float | None = None,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    train_seq_length: int | None = None,
) -> EmbeddingResult:
    """Fine-tune ``base`` on ``train`` and save it into ``out_dir`` (see the module docstring).

    Stops after ``epochs`` passes, or ``max_steps`` optimizer steps (``0``: no limit), or when
    ``time_budget_s`` (counted from the call: loading, the base measurement and training) is
    spent, whichever comes first; a step that has started is finished. MRR@10 is measured on
    ``evaluation`` before training and after (with the saved float16 weights), at the full
    dimension and each of ``matryoshka_dims``. ``progress(step, planned_steps)`` is called
    after each step. ``train_seq_length`` truncates texts harder while training only (more
    steps in a budget; the saved model keeps its own limit).

    Raises :class:`BudgetError` (and writes nothing) when there are fewer than two training
    pairs or the budget does not let one step run, :class:`StageError` when there is nothing
    to evaluate on or the base model cannot be loaded. ``out_dir`` is replaced only at the
    end (the model is written beside it first).
    """
    started = time.monotonic()
    deadline = None if time_budget_s is None else started + time_budget_s
    if len(train) < 2:
        raise BudgetError(f"{len(train)} training pair(s): the embedding needs at least two")
    if epochs < 1 and max_steps <= 0:
        raise BudgetError("epochs and max_steps are both zero: not one training step can run")
    if time_budget_s is not None and time_budget_s <= 0:
        raise BudgetError(f"a time budget of {time_budget_s} s lets not one training step run")
    if not evaluation:
        raise StageError("no evaluation pairs: the fine-tune could not be measured")
    if batch_size < 2:
        raise BudgetError(f"batch size {batch_size}: in-batch negatives need at least two")

    import torch

    path, base_id = _base_model(base)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _load(path)
        full = int(model.get_embedding_dimension())
        dims = tuple(sorted({full, *(int(d) for d in matryoshka_dims if 0 < d < full)},
                            reverse=True))  # fmt: skip
        embedder = _ModelEmbedder(model, base_id)
        before = evaluate_mrr(embedder, evaluation, dims)
        own_limit = model.max_seq_length
        if train_seq_length:
            model.max_seq_length = min(own_limit or train_seq_length, train_seq_length)
        try:
            steps, seen, stopped_by, train_seconds = _train(
                model, train, dims, epochs=epochs, max_steps=max_steps, deadline=deadline,
                batch_size=batch_size, learning_rate=learning_rate, seed=seed, progress=progress,
            )  # fmt: skip
        finally:
            model.max_seq_length = own_limit
        card = {
            "kind": "sentence-transformers",
            "model_id": f"remora/{base_id.rsplit('/', 1)[-1]}+mrl",
            "base_model": base_id,
            "dims": full,
            "mrl_dims": list(dims),
        }
        prompts = {k: v for k, v in (getattr(model, "prompts", None) or {}).items() if v}
        if prompts:
            card["prompts"] = prompts
        staging = out_dir.with_name(f".{out_dir.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            _save(model, staging, card)  # leaves the model with the saved (fp16) weights
            after = evaluate_mrr(embedder, evaluation, dims)
            shutil.rmtree(out_dir, ignore_errors=True)
            staging.rename(out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        torch.set_num_threads(threads)
    return EmbeddingResult(
        model_dir=out_dir,
        dims=dims,
        mrr_at_10={str(d): {"base": before[d], "tuned": after[d]} for d in dims},
        train_pairs=len(train),
        eval_pairs=len(evaluation),
        steps=steps,
        seconds=round(time.monotonic() - started, 3),
        pairs_per_second=round(seen / train_seconds, 3) if train_seconds > 0 else 0.0,
        stopped_by=stopped_by,
    )


def _train(
    model: Any,
    train: Sequence[Pair],
    dims: tuple[int, ...],
    *,
    epochs: int,
    max_steps: int,
    deadline: float | None,
    batch_size: int,
    learning_rate: float,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int, str, float]:
    """The training loop: (steps, pairs seen, what stopped it, seconds spent training)."""
    import torch
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    torch.manual_seed(seed)
    rng = random.Random(seed)
    loss_fn = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=list(dims))
    size = min(batch_size, len(train))
    batches = plan_batches(train, size, rng)
    planned = len(batches) * max(0, epochs)
    if max_steps > 0:
        planned = min(planned, max_steps) if planned else max_steps
    warmup = max(1, int(planned * WARMUP_FRACTION))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, warmup, planned)
    )
    prompts = getattr(model, "prompts", None) or {}
    q_prompt, d_prompt = prompts.get("query"), prompts.get("document")
    model.train()
    steps = seen = epoch = 0
    t0 = time.monotonic()
    while True:
        for batch in batches:
            if max_steps > 0 and steps >= max_steps:
                break
            if deadline is not None and time.monotonic() >= deadline:
                if steps == 0:
                    raise BudgetError(
                        "the time budget was spent loading and measuring the base model: "
                        "not one training step could run; raise --time-budget (the embedding stage "
                        "gets a fifth of it)"
                    )
                break
            features = [
                _features(model, [train[i].query for i in batch], q_prompt),
                _features(model, [train[i].positive for i in batch], d_prompt),
            ]
            loss = loss_fn(features, torch.zeros(len(batch)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            seen += len(batch)
            if progress is not None:
                progress(steps, planned)
        else:  # the epoch ran to its end
            epoch += 1
            if epochs < 1 or epoch < epochs:
                batches = plan_batches(train, size, rng)
                continue
            stopped_by = "epochs"
            break
        stopped_by = "steps" if max_steps > 0 and steps >= max_steps else "time"
        break
    model.eval()
    return steps, seen, stopped_by, time.monotonic() - t0


def _features(model: Any, texts: list[str], prompt: str | None) -> dict[str, Any]:
    """One column of tokenized texts (with the model's prompt for their role) on the CPU, as
    the loss modules expect it."""
    features = model.preprocess(texts, prompt=prompt or None)
    return {k: v.to("cpu") if hasattr(v, "to") else v for k, v in features.items()}
