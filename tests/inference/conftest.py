"""Session fixtures: the tiny model and adapters (built once), and their reference outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.inference.tiny import TinyModel, build_tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPTS = ("def parse(text):\n    return", "import json\n\nclass Decoder:\n    def ")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A tiny Llama with adapters ``alpha`` and ``beta`` (and ``gamma``, ``delta`` for LRU)."""
    root: Path = tmp_path_factory.mktemp("tiny")
    return build_tiny(root, adapters=("alpha", "beta", "gamma", "delta"))


@pytest.fixture(scope="session")
def reference(tiny: TinyModel) -> dict[tuple[str, str | None], list[int]]:
    """Greedy tokens from plain transformers/PEFT for each prompt and adapter (None = base)."""
    from tests.inference.tiny import reference_tokens

    return {
        (prompt, adapter): reference_tokens(tiny, prompt, adapter, 12)
        for prompt in PROMPTS
        for adapter in (None, "alpha", "beta")
    }
