"""Value objects of the engine interface, identity reading and the zero adapter."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from remora_lsp.inference.engine import AdapterRef, CancelToken, GenerationRequest
from remora_lsp.inference.errors import ModelNotFoundError
from remora_lsp.inference.identity import find_fim_tokens, read_identity
from remora_lsp.inference.zero_adapter import write_zero_adapter
from remora_lsp.packs.compat import config_fingerprint
from tests.inference.tiny import TinyModel


def test_adapter_ref_validation() -> None:
    AdapterRef("fastapi", 1, Path("/x"))
    for bad in ("", "a/b", "__zero"):
        with pytest.raises(ValueError):
            AdapterRef(bad, 1, Path("/x"))
    with pytest.raises(ValueError, match="int_id"):
        AdapterRef("a", 0, Path("/x"))


def test_request_validation_and_ids() -> None:
    a, b = GenerationRequest("x"), GenerationRequest("x")
    assert a.request_id != b.request_id
    with pytest.raises(ValueError):
        GenerationRequest("x", max_tokens=0)
    with pytest.raises(ValueError):
        GenerationRequest("x", temperature=-1)


def test_cancel_token_runs_callbacks_once_from_any_thread() -> None:
    token = CancelToken()
    calls: list[str] = []
    unregister = token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    unregister()
    t = threading.Thread(target=token.cancel)
    t.start()
    t.join()
    token.cancel()
    assert calls == ["b"]
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["b", "late"] and token.cancelled


@pytest.mark.parametrize(
    ("tokens", "prefix"),
    [
        (
            {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"},
            "<|fim_prefix|>",
        ),
        ({"<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"}, "<fim_prefix>"),
        ({"<fim_prefix>", "<fim_middle>"}, None),  # incomplete: no FIM
        ({"<|im_start|>", "<|im_end|>", "<file_sep>"}, None),  # SmolLM2: none
    ],
)
def test_fim_tokens(tokens: set[str], prefix: str | None) -> None:
    fim = find_fim_tokens(tokens)
    assert (fim.prefix if fim else None) == prefix
    if fim is not None:
        assert fim.file_sep is not None


def test_identity_of_the_tiny_model(tiny: TinyModel) -> None:
    ident = read_identity(tiny.path)
    assert ident.model_id == "tiny-llama"
    assert ident.config_sha256 == config_fingerprint(tiny.path)
    assert read_identity(tiny.path, "other").model_id == "other"
    assert ident.max_context == 1024 and ident.eos_token == "<|endoftext|>"


def test_identity_of_a_missing_folder_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="remora models fetch"):
        read_identity(tmp_path)


def test_zero_adapter_has_the_same_layout_and_only_zeros(tiny: TinyModel, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    dest = write_zero_adapter(tiny.adapters["alpha"], tmp_path / "zero")
    source = load_file(str(tiny.adapters["alpha"] / "adapter_model.safetensors"))
    zero = load_file(str(dest / "adapter_model.safetensors"))
    assert source.keys() == zero.keys()
    for key, tensor in zero.items():
        assert tensor.shape == source[key].shape and tensor.dtype == source[key].dtype
        assert not tensor.any()
    assert json.loads((dest / "adapter_config.json").read_text()) == json.loads(
        (tiny.adapters["alpha"] / "adapter_config.json").read_text()
    )
    mtime = (dest / "adapter_model.safetensors").stat().st_mtime_ns
    write_zero_adapter(tiny.adapters["alpha"], dest)  # reused, not rewritten
    assert (dest / "adapter_model.safetensors").stat().st_mtime_ns == mtime
