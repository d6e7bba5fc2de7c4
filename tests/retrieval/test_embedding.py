"""Embedding backends, run for real: the default MiniLM, an EmbeddingGemma-shaped model built
locally (prompts, Matryoshka truncation), a static table distilled offline, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from remora_lsp.retrieval.embedding import (
    DEFAULT_MODEL_ID,
    EMBEDDINGGEMMA_MRL_DIMS,
    EMBEDDINGGEMMA_PROMPTS,
    MODEL_CARD,
    Embedder,
    SentenceTransformerEmbedder,
    StaticEmbedder,
    distill_static,
    l2_normalize,
    load_embedder,
    truncate,
)
from remora_lsp.retrieval.errors import DimensionMismatchError, ModelUnavailableError


def test_truncate_keeps_leading_dims_and_renormalises() -> None:
    x = l2_normalize(np.arange(1, 9, dtype=np.float32)[None, :])
    t = truncate(x, 4)
    assert t.shape == (1, 4)
    assert np.allclose(np.linalg.norm(t, axis=1), 1.0)
    assert np.allclose(t, l2_normalize(x[:, :4]))
    with pytest.raises(DimensionMismatchError):
        truncate(x, 16)


def test_default_model_is_minilm(minilm: Embedder) -> None:
    assert isinstance(minilm, Embedder)
    assert minilm.model_id == DEFAULT_MODEL_ID
    assert minilm.dims == 384
    assert minilm.mrl_dims == (384,)
    docs = minilm.embed_documents(
        ["def read_csv(path): return pandas.read_csv(path)", "a recipe for lemon cake"]
    )
    assert docs.dtype == np.float32 and docs.shape == (2, 384)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = minilm.embed_queries(["load a csv file into a dataframe"])[0]
    assert docs[0] @ query > docs[1] @ query
    assert minilm.embed_documents([]).shape == (0, 384)


def test_embeddinggemma_path_uses_prompts_and_truncates(tiny_gemma: Path) -> None:
    full = SentenceTransformerEmbedder(tiny_gemma, model_id="google/embeddinggemma-300m")
    assert full.dims == 64
    assert full.mrl_dims[0] == 64  # 768/512/256/128 do not fit a 64-dim model
    text = "async def get_user(request): return await request.json()"
    q, d = full.embed_queries([text])[0], full.embed_documents([text])[0]
    assert not np.allclose(q, d)  # query and document prompts differ
    raw = full.model.encode(
        [EMBEDDINGGEMMA_PROMPTS["query"] + text], convert_to_numpy=True, normalize_embeddings=True
    )[0]
    assert np.allclose(q, raw, atol=1e-5)
    cut = SentenceTransformerEmbedder(
        tiny_gemma, model_id="google/embeddinggemma-300m", truncate_dim=32, mrl_dims=(64, 32)
    )
    assert cut.dims == 32 and cut.model_id == "google/embeddinggemma-300m@32"
    assert np.allclose(cut.embed_queries([text])[0], truncate(q[None, :], 32)[0], atol=1e-5)


def test_embeddinggemma_refuses_dims_it_was_not_trained_for(tiny_gemma: Path) -> None:
    bad = SentenceTransformerEmbedder(
        tiny_gemma, model_id="google/embeddinggemma-300m", truncate_dim=48
    )
    assert EMBEDDINGGEMMA_MRL_DIMS == (768, 512, 256, 128)
    with pytest.raises(DimensionMismatchError, match="Matryoshka"):
        bad.embed_queries(["x"])


def test_model_card_sets_identity_and_prompts(tiny_gemma: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pack-embedding"
    shutil.copytree(tiny_gemma, copy)
    card = {"model_id": "remora/fastapi-embedding", "mrl_dims": [64, 32, 16], "prompts": {}}
    (copy / MODEL_CARD).write_text(json.dumps(card))
    embedder = load_embedder(copy)
    assert embedder.model_id == "remora/fastapi-embedding"
    assert embedder.mrl_dims == (64, 32, 16)
    text = "x"
    assert np.allclose(embedder.embed_queries([text]), embedder.embed_documents([text]))


def test_static_distillation_offline(tiny_gemma: Path, tmp_path: Path) -> None:
    static = distill_static(
        tiny_gemma, tmp_path / "static", dims=32, corpus=["def f(x): return x.y"] * 3
    )
    assert isinstance(static, StaticEmbedder)
    again = load_embedder(tmp_path / "static")
    assert isinstance(again, StaticEmbedder) and again.dims == 32
    v = again.embed_documents(["request.headers", "dataframe.groupby"])
    assert v.shape == (2, 32) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(static.embed_queries(["a b"]), again.embed_queries(["a b"]))
    assert again.mrl_dims[0] == 32


def test_missing_models_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"config\.yaml"):
        load_embedder("google/embeddinggemma-300m")
    with pytest.raises(ModelUnavailableError, match=r"does not exist|no sentence-transformers"):
        load_embedder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        SentenceTransformerEmbedder(tmp_path).embed_queries(["x"])
