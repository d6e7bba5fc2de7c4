"""Which backend `engine: auto` means, and building engines from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.errors import EngineUnavailableError
from remora_lsp.inference.hf_engine import TransformersEngine
from remora_lsp.inference.remote_engine import RemoteEngine
from remora_lsp.inference.selection import choose_backend, select_engine
from tests.inference.tiny import TinyModel


@pytest.mark.parametrize(
    ("settings", "device", "backend"),
    [
        ({}, "cpu", "transformers"),
        ({}, "cuda", "vllm"),  # vllm(-cpu) is installed in this environment
        ({"remote_url": "http://gpu:8000"}, "cpu", "remote"),
        ({"engine": "vllm"}, "cpu", "vllm"),
        ({"engine": "transformers"}, "cuda", "transformers"),
    ],
)
def test_choose_backend(settings: dict[str, str], device: str, backend: str) -> None:
    pytest.importorskip("vllm")
    chosen, why = choose_backend(EngineConfig(**settings), device)  # type: ignore[arg-type]
    assert chosen == backend and why


def test_select_engine_builds_without_starting(tmp_path: Path, tiny: TinyModel) -> None:
    engine = select_engine(
        EngineConfig(remora_home=tmp_path, model=str(tiny.path), engine="transformers", max_loras=3)
    )
    assert isinstance(engine, TransformersEngine)
    assert engine.health().state == "stopped" and engine.slots.max_resident == 3
    assert engine.identity().model_id == "tiny-llama"
    remote = select_engine(EngineConfig(remora_home=tmp_path, remote_url="http://127.0.0.1:9"))
    assert isinstance(remote, RemoteEngine) and remote.local_model is None
    with pytest.raises(EngineUnavailableError, match="remote_url"):
        select_engine(EngineConfig(remora_home=tmp_path, engine="remote"))
