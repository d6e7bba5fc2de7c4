"""EngineConfig: merged from config.yaml, client layers and REMORA_* variables."""

from __future__ import annotations

from pathlib import Path

from remora_lsp.config import merge_config
from remora_lsp.inference.config import load_engine_config


def test_defaults(tmp_path: Path) -> None:
    cfg, problems = load_engine_config(environ={"REMORA_HOME": str(tmp_path)})
    assert problems == []
    assert (cfg.engine, cfg.model, cfg.max_loras, cfg.max_lora_rank) == (
        "auto",
        "smollm2-135m",
        4,
        16,
    )
    assert cfg.models_dir == tmp_path / "models"


def test_precedence_file_then_client_then_env(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "engine: vllm\nmax_loras: 2\nmodel: /models/x\nallow_unsigned: true\n"
    )
    env = {"REMORA_HOME": str(tmp_path), "REMORA_ENGINE": "transformers"}
    server, _ = merge_config(environ=env)
    cfg, problems = load_engine_config(server, {"remora": {"max_loras": 3}}, environ=env)
    assert problems == []
    assert (cfg.engine, cfg.max_loras, cfg.model) == ("transformers", 3, "/models/x")


def test_bad_values_fall_back_with_a_message(tmp_path: Path) -> None:
    env = {
        "REMORA_HOME": str(tmp_path),
        "REMORA_ENGINE": "tpu",
        "REMORA_MAX_LORA_RANK": "12",
        "REMORA_REMOTE_API_KEY": "secret",
        "REMORA_MERGE_ADAPTER": "0",
    }
    cfg, problems = load_engine_config(environ=env)
    assert cfg.engine == "auto" and cfg.max_lora_rank == 16 and not cfg.merge_adapter
    assert any("`engine` = 'tpu'" in p for p in problems)
    assert any("`max_lora_rank` = '12'" in p and "one of" in p for p in problems)
    assert "secret" not in repr(cfg)
