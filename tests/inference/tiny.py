"""A tiny but real Llama model, its tokenizer and LoRA adapters, built locally in seconds.

Nothing is downloaded: the byte-level BPE tokenizer is trained on a few files of Python's own
standard library, the model is randomly initialised (untied embeddings, head dim 32, which the
vLLM CPU attention backend accepts) and each adapter is a PEFT LoRA initialised with noise so
that different adapters give visibly different greedy outputs. Used by the inference and
completion tests and by ``--quick`` benchmark runs.
"""

from __future__ import annotations

import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MODEL_ID = "tiny-llama"
_CORPUS = ("textwrap.py", "json/__init__.py", "json/decoder.py", "string.py", "shlex.py")


@dataclass(frozen=True)
class TinyModel:
    """Paths of the tiny model folder and its adapters (name → folder)."""

    path: Path
    adapters: dict[str, Path]
    model_id: str = MODEL_ID


def build_tokenizer(dest: Path, vocab_size: int = 512) -> None:
    """Train a byte-level BPE tokenizer on standard-library source and save it in ``dest``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = [(stdlib / name).read_text(encoding="utf-8") for name in _CORPUS]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    fast.save_pretrained(str(dest))


def build_model(dest: Path, seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 64, 2 heads of 32) with its tokenizer, saved as safetensors."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    build_tokenizer(dest)
    vocab = len(AutoTokenizer.from_pretrained(str(dest)))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.2,
    )
    LlamaForCausalLM(config).float().save_pretrained(str(dest), safe_serialization=True)
    (dest / "remora-model.json").write_text(json.dumps({"id": MODEL_ID}), encoding="utf-8")
    return dest


def build_adapter(
    model: Path, dest: Path, seed: int, rank: int = 8, targets: tuple[str, ...] = TARGETS
) -> Path:
    """A PEFT LoRA adapter for ``model`` with noise in both matrices, saved as safetensors."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(str(model))
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=list(targets), init_lora_weights=False
    )
    get_peft_model(base, config).save_pretrained(str(dest), safe_serialization=True)
    (dest / "README.md").unlink(missing_ok=True)
    return dest


def build_tiny(root: Path, adapters: tuple[str, ...] = ("alpha", "beta")) -> TinyModel:
    """The model under ``root/model`` and one adapter per name under ``root/<name>``."""
    model = build_model(root / "model")
    built = {
        name: build_adapter(model, root / name, seed=100 + i) for i, name in enumerate(adapters)
    }
    return TinyModel(model, built)


def reference_tokens(
    tiny: TinyModel, prompt: str, adapter: str | None, max_tokens: int
) -> list[int]:
    """Greedy tokens from plain transformers (+ PEFT for an adapter): the ground truth."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny.path))
    model = AutoModelForCausalLM.from_pretrained(str(tiny.path), dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(tiny.adapters[adapter]))
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    return [int(t) for t in out[0, ids.shape[1] :].tolist()]


def build_seq2seq(dest: Path, seed: int = 0) -> Path:
    """A one-layer T5 encoder-decoder with the same tokenizer (the transform-model path)."""
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    dest.mkdir(parents=True, exist_ok=True)
    build_tokenizer(dest)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(AutoTokenizer.from_pretrained(str(dest))),
        d_model=64,
        d_kv=32,
        d_ff=128,
        num_heads=2,
        num_layers=1,
        num_decoder_layers=1,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=0,
        initializer_factor=5.0,
    )
    T5ForConditionalGeneration(config).save_pretrained(str(dest), safe_serialization=True)
    return dest
