"""The embedding fine-tune: MRR on a hand-checkable case, batching, budget errors, and one real
Matryoshka fine-tune of MiniLM on pairs mined from an installed library (click)."""

from __future__ import annotations

import ast
import json
import random
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from remora_lsp.retrieval.chunkers import chunk_file
from remora_lsp.retrieval.embedding import MODEL_CARD, SentenceTransformerEmbedder, load_embedder
from remora_lsp.training.embedding_tune import (
    EmbeddingResult,
    evaluate_mrr,
    plan_batches,
    tune_embedding,
)
from remora_lsp.training.errors import BudgetError, StageError
from remora_lsp.training.pairs import mine_pairs
from remora_lsp.training.types import CodeUnit, Pair, RepoScan, UnitKind

# Vectors of a fake embedder: q* are queries, d* documents. Cosine at 2 dims uses (x, y) only.
VECTORS = {
    "qa": [1.0, 0.0, 0.0, 0.0],
    "qb": [0.0, 1.0, 0.0, 0.0],
    "qc": [0.6, 0.8, 0.0, 0.0],
    "da": [0.9, 0.1, 0.0, 0.0],
    "db": [0.6, 0.0, 0.8, 0.0],
    "dc": [0.0, 0.6, 0.0, 0.8],
}


class FakeEmbedder:
    """Looks texts up in :data:`VECTORS` (normalised)."""

    model_id = "fake"
    dims = 4
    mrl_dims = (4, 2)

    def _rows(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.array([VECTORS[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._rows(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._rows(texts)


def test_evaluate_mrr_by_hand() -> None:
    pairs = [
        Pair("qa", "da", "docstring", "a.py"),
        Pair("qb", "db", "docstring", "b.py"),
        Pair("qc", "dc", "docstring", "c.py"),
        Pair("qa", "da", "docstring", "a.py"),  # a repeated pair counts again
    ]
    # 4 dims: qa scores da .99, db .6, dc 0 → 1; qb scores da .11, db 0, dc .6 → db third
    # (1/3); qc scores da .68, db .36, dc .48 → dc second (1/2).
    # 2 dims (da ≈ (.99, .11), db = (1, 0), dc = (0, 1)): qa → db 1 beats da .99 → 1/2;
    # qb → dc 1, da .11, db 0 → 1/3; qc → dc .8, da .68, db .6 → 1.
    result = evaluate_mrr(FakeEmbedder(), pairs, [4, 2])
    assert result[4] == pytest.approx((1 + 1 / 3 + 1 / 2 + 1) / 4)
    assert result[2] == pytest.approx((1 / 2 + 1 / 3 + 1 + 1 / 2) / 4)
    assert evaluate_mrr(FakeEmbedder(), pairs, [4], k=2)[4] == pytest.approx(
        (1 + 0 + 1 / 2 + 1) / 4
    )
    with pytest.raises(StageError):
        evaluate_mrr(FakeEmbedder(), [], [4])


def test_plan_batches_has_no_repeats_and_is_seeded() -> None:
    pairs = [
        Pair(f"q{i}", "same" if i % 3 == 0 else f"p{i}", "usage_type", "a.py") for i in range(30)
    ]
    batches = plan_batches(pairs, 8, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(30))
    for batch in batches:
        assert len(batch) <= 8
        assert len({pairs[i].positive for i in batch}) == len(batch)
    assert batches == plan_batches(pairs, 8, random.Random(1))


def test_budget_errors_write_nothing(tmp_path: Path) -> None:
    pair = Pair("query text", "positive text", "docstring", "a.py")
    out = tmp_path / "model"
    with pytest.raises(BudgetError, match="at least two"):
        tune_embedding([pair], [pair], out)
    with pytest.raises(BudgetError, match="not one training step"):
        tune_embedding([pair, pair], [pair], out, time_budget_s=0)
    with pytest.raises(StageError):
        tune_embedding([pair, pair], [], out)
    assert not out.exists() and not list(tmp_path.iterdir())


def _units(root: Path, rel: str) -> list[CodeUnit]:
    """CodeUnits of a real file through the Semantic layer's code chunker (standing in for
    the RepoWalker)."""
    units: list[CodeUnit] = []
    for piece in chunk_file(root / rel, root, kinds=frozenset({"code"})):
        chunk = piece.chunk
        lines = (root / rel).read_text(encoding="utf-8").splitlines()
        code = "\n".join(lines[chunk.start_line : chunk.end_line + 1])
        try:
            node = ast.parse(textwrap.dedent(code)).body[0]
        except (SyntaxError, IndexError):
            continue
        doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else None
        kind: UnitKind = (
            "class" if chunk.kind == "class" else "method" if chunk.kind == "method" else "function"
        )
        units.append(
            CodeUnit(
                rel, chunk.label, kind, chunk.start_line + 1, chunk.end_line + 1, code, doc or ""
            )
        )
    return units


@pytest.mark.slow
def test_real_fine_tune_of_minilm(tmp_path: Path) -> None:
    import click
    import torch

    root = Path(click.__file__).parent.parent
    files = tuple(sorted(p.relative_to(root).as_posix() for p in (root / "click").glob("*.py")))
    units = [u for rel in files for u in _units(root, rel)]
    scan = RepoScan(root=root, files=files, units=tuple(units))
    mined = [p for p in mine_pairs(scan, [], max_pairs=5000) if p.kind == "docstring"][:192]
    assert len(mined) == 192
    # shorter positives (signature and first lines) keep the test fast on a busy machine
    pairs = [Pair(p.query, p.positive[:300], p.kind, p.path) for p in mined]
    out = tmp_path / "tuned"
    seen: list[tuple[int, int]] = []
    result = tune_embedding(
        pairs, pairs, out, max_steps=10, batch_size=16, learning_rate=1e-4,
        progress=lambda step, total: seen.append((step, total)),
    )  # fmt: skip
    print(json.dumps(result.to_data(), indent=1))
    assert result.steps == 10 and result.stopped_by == "steps" and seen[-1] == (10, 10)
    assert result.dims == (384, 256, 128, 64)
    assert set(result.mrr_at_10) == {"384", "256", "128", "64"}
    for dim, mrr in result.mrr_at_10.items():
        assert mrr["tuned"] > mrr["base"] + 0.01, (dim, mrr)
    assert EmbeddingResult.from_data(json.loads(json.dumps(result.to_data()))) == result
    files_written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    weights = [
        f for f in files_written if f.endswith((".bin", ".pt", ".pth", ".pkl", ".safetensors"))
    ]
    assert weights == ["model.safetensors"], files_written
    assert (out / "model.safetensors").stat().st_size < 50_000_000  # fp16: ~45 MB, fp32 ~90 MB
    card = json.loads((out / MODEL_CARD).read_text())
    assert card == {
        "kind": "sentence-transformers",
        "model_id": "remora/all-MiniLM-L6-v2+mrl",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "dims": 384,
        "mrl_dims": [384, 256, 128, 64],
    }
    assert not list(tmp_path.glob(".tuned*"))
    embedder = load_embedder(out)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert {p.dtype for p in embedder.model.parameters()} == {torch.float32}
    assert embedder.model_id == "remora/all-MiniLM-L6-v2+mrl"
    assert embedder.mrl_dims == (384, 256, 128, 64)
    vectors = embedder.embed_queries([pairs[0].query])
    assert vectors.dtype == np.float32 and vectors.shape == (1, 384)
