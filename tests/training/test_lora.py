"""The LoRA trainer, run for real on the tiny Llama: learning, determinism, resume, budgets,
and an adapter that the engines can load."""

from __future__ import annotations

import json
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from remora_lsp.training.errors import BudgetError, StageError
from remora_lsp.training.lora import (
    LoraSettings,
    TrainResult,
    train_causal_lora,
    train_prompted_lora,
)
from tests.inference.tiny import MODEL_ID, build_model

FAST = LoraSettings(rank=4, alpha=8.0, seq_len=64, batch_size=2, warmup_steps=0,
                    learning_rate=5e-3, max_steps=6, epochs=100.0)  # fmt: skip


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    text = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")
    return [text[:3000], text[3000:6000]]


def train(model: Path, texts: list[str], root: Path, name: str, **changes: object) -> TrainResult:
    settings = replace(FAST, **changes)  # type: ignore[arg-type]
    return train_causal_lora(model, texts, root / name, settings, work_dir=root / f"{name}-work")


def adapter_tensors(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return dict(load_file(str(folder / "adapter_model.safetensors")))


def test_training_lowers_perplexity_of_the_training_text(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    from remora_lsp.training.evaluate import Evaluator

    result = train(model, texts, tmp_path, "out", max_steps=12)
    assert result.steps == 12 and result.stopped_by == "max_steps"
    assert result.tokens > 0 and result.tokens_per_second > 0 and result.seconds > 0
    assert result.resumed_from_step == 0
    evaluator = Evaluator(model, result.adapter_dir)
    base = evaluator.perplexity(texts, use_adapter=False, seq_len=64)
    tuned = evaluator.perplexity(texts, use_adapter=True, seq_len=64)
    assert tuned < base * 0.9
    data = result.to_data()
    assert data["adapter_dir"] == (tmp_path / "out").as_posix()
    json.dumps(data)


def test_adapter_folder_is_portable_safetensors(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    result = train(model, texts, tmp_path, "out", max_steps=1)
    assert sorted(p.name for p in result.adapter_dir.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == MODEL_ID
    assert str(tmp_path) not in json.dumps(config)
    assert config["r"] == 4
    assert not list(tmp_path.glob(".out*"))  # no temporary siblings left behind
    pickles = [p for p in tmp_path.rglob("*") if p.suffix in {".bin", ".pt", ".pkl", ".pth"}]
    assert pickles == []


def test_same_seed_gives_byte_identical_adapters(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    a = train(model, texts, tmp_path, "a", max_steps=3)
    b = train(model, texts, tmp_path, "b", max_steps=3)
    c = train(model, texts, tmp_path, "c", max_steps=3, seed=1)
    name = "adapter_model.safetensors"
    assert (a.adapter_dir / name).read_bytes() == (b.adapter_dir / name).read_bytes()
    assert (a.adapter_dir / name).read_bytes() != (c.adapter_dir / name).read_bytes()


class Interrupt(Exception):
    pass


def test_resumed_run_ends_with_the_uninterrupted_adapter(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    import torch

    whole = train(model, texts, tmp_path, "whole", max_steps=6)

    def stop_at_3(step: int, planned: int) -> None:
        assert planned == 6
        if step == 3:
            raise Interrupt

    settings = replace(FAST, max_steps=6, checkpoint_every_s=0.0)
    out, work = tmp_path / "resumed", tmp_path / "resumed-work"
    with pytest.raises(Interrupt):
        train_causal_lora(model, texts, out, settings, work_dir=work, progress=stop_at_3)
    assert not out.exists()
    state = json.loads(next(work.glob("ckpt-*/state.json")).read_text())
    assert state["state"]["step"] == 3
    resumed = train_causal_lora(model, texts, out, settings, work_dir=work, resume=True)
    assert resumed.resumed_from_step == 3 and resumed.steps == 6
    assert resumed.tokens == whole.tokens
    expected, got = adapter_tensors(whole.adapter_dir), adapter_tensors(out)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert torch.allclose(value, got[key], atol=1e-6), key  # type: ignore[arg-type]


def test_resume_refuses_changed_settings(model: Path, texts: list[str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    train_causal_lora(model, texts, tmp_path / "a", replace(FAST, max_steps=2), work_dir=work)
    with pytest.raises(StageError, match="settings changed"):
        train_causal_lora(
            model, texts, tmp_path / "b", replace(FAST, max_steps=2, rank=8), work_dir=work,
            resume=True,
        )  # fmt: skip


def test_zero_time_budget_is_a_budget_error_and_writes_nothing(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    with pytest.raises(BudgetError, match=r"allowed 0 training steps.*--time-budget"):
        train(model, texts, tmp_path, "out", max_steps=0, time_budget_s=0.0)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


def test_min_steps_above_the_step_cap_is_a_budget_error(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    with pytest.raises(BudgetError, match="at least 5 are needed"):
        train(model, texts, tmp_path, "out", max_steps=2, min_steps=5)
    assert not (tmp_path / "out").exists()


def test_time_budget_stops_training(model: Path, texts: list[str], tmp_path: Path) -> None:
    result = train(model, texts, tmp_path, "out", max_steps=0, epochs=1000.0, time_budget_s=1.5)
    assert result.stopped_by == "time"
    assert result.steps >= 1 and result.seconds < 1.5 + 1.0


def test_epochs_cap_the_steps(model: Path, texts: list[str], tmp_path: Path) -> None:
    result = train(model, texts, tmp_path, "out", max_steps=0, epochs=1.0, seq_len=256)
    assert result.stopped_by == "epochs"
    blocks = result.tokens / 255  # roughly: every full block predicts seq_len - 1 tokens
    assert result.steps == pytest.approx(blocks / 2, abs=1.5)


def test_empty_input_is_refused(model: Path, tmp_path: Path) -> None:
    with pytest.raises(StageError, match="empty"):
        train(model, ["", ""], tmp_path, "out")
    with pytest.raises(StageError, match="no training examples"):
        train_prompted_lora(model, [("x", "")], tmp_path / "p", FAST, work_dir=tmp_path / "w")


def test_missing_target_modules_are_refused(model: Path, texts: list[str], tmp_path: Path) -> None:
    with pytest.raises(StageError, match="target modules"):
        train(model, texts, tmp_path, "out", target_modules=("c_attn",))


def test_prompted_adapter_learns_its_targets(model: Path, tmp_path: Path) -> None:
    from remora_lsp.training.evaluate import Evaluator, format_prompt

    examples = [(f"Name the number {i}.", "It is a small number.") for i in range(8)]
    settings = replace(FAST, max_steps=30)
    result = train_prompted_lora(model, examples, tmp_path / "t", settings, work_dir=tmp_path / "w")
    # tokens count targets only: the target + EOS of each of the 2 samples per step
    evaluator = Evaluator(model, result.adapter_dir)
    prompt = format_prompt(evaluator.tokenizer, "Name the number 3.")
    tuned = evaluator.generate([prompt], use_adapter=True, max_new_tokens=12)[0]
    base = evaluator.generate([prompt], use_adapter=False, max_new_tokens=12)[0]
    assert tuned.startswith("It is a small number")
    assert base != tuned
    target_len = len(evaluator.tokenizer("It is a small number.")["input_ids"]) + 1
    assert result.tokens == 30 * 2 * target_len


def test_encoder_decoder_bases_are_refused(tmp_path: Path) -> None:
    from tests.inference.tiny import build_seq2seq

    t5 = build_seq2seq(tmp_path / "t5")
    with pytest.raises(StageError, match="encoder-decoder bases are not supported yet"):
        train_prompted_lora(t5, [("a", "b")], tmp_path / "o", FAST, work_dir=tmp_path / "w")


async def test_the_transformers_engine_loads_and_uses_the_adapter(
    model: Path, texts: list[str], tmp_path: Path
) -> None:
    from remora_lsp.inference.engine import AdapterRef, GenerationRequest
    from remora_lsp.inference.hf_engine import TransformersEngine

    result = train(model, texts, tmp_path, "out", max_steps=12)
    engine = TransformersEngine(model, max_loras=1, max_cpu_loras=1)
    await engine.start()
    try:
        await engine.load_adapter(AdapterRef("lib", 1, result.adapter_dir, base_model_id=MODEL_ID))
        prompt = texts[0][:200]
        tuned = await engine.generate(GenerationRequest(prompt, max_tokens=8, adapter="lib"))
        base = await engine.generate(GenerationRequest(prompt, max_tokens=8, adapter=None))
    finally:
        await engine.close()
    assert tuned.text and tuned.adapter == "lib"
    assert tuned.token_ids != base.token_ids
