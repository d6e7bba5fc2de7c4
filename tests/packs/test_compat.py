"""Adapter ↔ base model compatibility reasons."""

from __future__ import annotations

import json
from pathlib import Path

from remora_lsp.packs.compat import adapter_compatibility, config_fingerprint
from remora_lsp.packs.manifest import Manifest

from .factory import BASE_CONFIG_SHA, good_files, manifest_data


def _manifest() -> Manifest:
    return Manifest.model_validate(manifest_data(good_files()))


def test_compatible_adapter() -> None:
    assert adapter_compatibility(_manifest(), "generation", "smollm2-135m", BASE_CONFIG_SHA) is None
    assert adapter_compatibility(_manifest(), "generation", "smollm2-135m", None) is None


def test_reasons() -> None:
    m = _manifest()
    assert adapter_compatibility(m, "transform", "smollm2-135m", None) == (
        "demo@1.0.0 has no transform adapter"
    )
    reason = adapter_compatibility(m, "generation", "codegemma-2b", BASE_CONFIG_SHA)
    assert reason is not None
    assert "trained for base model 'smollm2-135m', but the engine runs 'codegemma-2b'" in reason
    assert "the rest of the pack is loaded" in reason
    reason = adapter_compatibility(m, "generation", "smollm2-135m", "cd" * 32)
    assert reason is not None and "config sha256 ababababab" in reason and "cdcdcdcdcd" in reason
    assert "unknown adapter role" in (adapter_compatibility(m, "vision", "x", None) or "")


def test_config_fingerprint_ignores_cosmetic_keys(tmp_path: Path) -> None:
    config = {"hidden_size": 576, "num_hidden_layers": 30, "model_type": "llama"}
    noisy = {
        **config,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.99",
        "_name_or_path": "x",
    }
    assert config_fingerprint(config) == config_fingerprint(noisy)
    assert config_fingerprint(config) != config_fingerprint({**config, "hidden_size": 64})
    (tmp_path / "config.json").write_text(json.dumps(noisy))
    assert config_fingerprint(tmp_path) == config_fingerprint(config)
