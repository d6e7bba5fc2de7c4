"""Config merging: precedence, environment coercion, bad values fall back with a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.config import merge_config


def test_defaults(tmp_path: Path) -> None:
    config, problems = merge_config(environ={"REMORA_HOME": str(tmp_path)})
    assert problems == []
    assert config.max_active_packs == 8
    assert config.max_document_bytes == 2 * 1024 * 1024
    assert config.allow_unsigned is False
    assert config.packs_dir == tmp_path / "packs"


def test_precedence_file_then_init_then_settings_then_env(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "max_active_packs: 3\ndebounce_ms: 50\nlog_level: DEBUG\n"
    )
    env = {"REMORA_HOME": str(tmp_path), "REMORA_DEBOUNCE_MS": "75"}
    config, problems = merge_config(
        {"max_active_packs": 4, "deactivate_grace_seconds": 1},
        {"remora": {"deactivate_grace_seconds": 2}},
        environ=env,
    )
    assert problems == []
    assert config.max_active_packs == 4
    assert config.deactivate_grace_seconds == 2
    assert config.debounce_ms == 75
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize("raw", ["1", "true", "YES", "on"])
def test_env_bool(tmp_path: Path, raw: str) -> None:
    config, _ = merge_config(environ={"REMORA_HOME": str(tmp_path), "REMORA_ALLOW_UNSIGNED": raw})
    assert config.allow_unsigned is True


def test_bad_values_fall_back_and_are_named(tmp_path: Path) -> None:
    config, problems = merge_config(
        {"max_active_packs": "lots", "debounce_ms": -5, "colour": "blue"},
        environ={"REMORA_HOME": str(tmp_path)},
    )
    assert config.max_active_packs == 8
    assert config.debounce_ms == 150
    text = "\n".join(problems)
    assert "`max_active_packs` = 'lots'" in text
    assert "`debounce_ms` = -5" in text
    assert "unknown setting `colour`" in text


def test_broken_config_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("max_active_packs: [unclosed\n")
    config, problems = merge_config(environ={"REMORA_HOME": str(tmp_path)})
    assert config.max_active_packs == 8
    assert any("not valid YAML" in p for p in problems)


def test_non_mapping_settings(tmp_path: Path) -> None:
    config, problems = merge_config(["x"], environ={"REMORA_HOME": str(tmp_path)})  # type: ignore[list-item]
    assert config.max_active_packs == 8
    assert problems and "must be an object" in problems[0]


def test_server_knows_every_engine_setting() -> None:
    from remora_lsp.inference.config import EngineConfig
    from remora_lsp.server.app import FOREIGN_KEYS

    assert set(EngineConfig.model_fields) - {"remora_home"} <= FOREIGN_KEYS
