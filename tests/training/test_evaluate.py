"""Evaluation: ROUGE-L against hand-computed values, next-line samples, docstring examples,
the prompt format, and the Evaluator on the tiny Llama with and without a trained adapter."""

from __future__ import annotations

import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from remora_lsp.training.errors import StageError
from remora_lsp.training.evaluate import (
    DOCSTRING_INSTRUCTION,
    Evaluator,
    docstring_examples,
    format_prompt,
    mean_rouge_l,
    next_line_samples,
    rouge_l,
)
from remora_lsp.training.lora import LoraSettings, train_causal_lora
from remora_lsp.training.types import CodeUnit
from tests.inference.tiny import build_model

SETTINGS = LoraSettings(rank=4, alpha=8.0, seq_len=64, warmup_steps=0, learning_rate=5e-3,
                        max_steps=12, epochs=100.0)  # fmt: skip


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def source() -> str:
    path = Path(sysconfig.get_paths()["stdlib"]) / "shlex.py"
    return path.read_text(encoding="utf-8")[:4000]


@pytest.fixture(scope="module")
def evaluator(model: Path, source: str, tmp_path_factory: pytest.TempPathFactory) -> Evaluator:
    root = tmp_path_factory.mktemp("adapter")
    result = train_causal_lora(model, [source], root / "out", SETTINGS, work_dir=root / "work")
    return Evaluator(model, result.adapter_dir)


# -- ROUGE-L -------------------------------------------------------------------------------------
def test_rouge_l_hand_computed() -> None:
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat = 5
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # candidate 2 words, reference 4, LCS 2: P = 1, R = 0.5, F1 = 2/3
    assert rouge_l("Parse text", "parse the given text") == pytest.approx(2 / 3)
    # order matters: LCS("a b c", "c b a") = 1, F1 = 1/3
    assert rouge_l("a b c", "c b a") == pytest.approx(1 / 3)
    assert rouge_l("Return the VALUE.", "return the value") == 1.0
    assert rouge_l("x", "y") == 0.0
    assert rouge_l("", "anything") == 0.0 and rouge_l("...", "") == 0.0


def test_rouge_l_splits_identifiers_like_rouge_score() -> None:
    # parse_args -> parse, args: 3 words vs 2, LCS 2: P = 2/3, R = 1, F1 = 0.8
    assert rouge_l("parse_args now", "parse args") == pytest.approx(0.8)


def test_mean_rouge_l() -> None:
    assert mean_rouge_l([("a b", "a b"), ("a", "b")]) == pytest.approx(0.5)
    assert mean_rouge_l([]) == 0.0


# -- next-line samples ---------------------------------------------------------------------------
FILES = {
    "pkg/a.py": "\n".join(
        [
            "import os",
            "",
            "# setup",
            "X = 1",
            "Y = 2",
            "   # indented comment",
            "",
            "def f():",
            "    return X",
            "    ",
            "Z = 3",
        ]
    ),
    "pkg/b.py": "\n".join(f"v{i} = {i}" for i in range(40)),
}


def test_next_line_samples_are_filtered() -> None:
    samples = next_line_samples(FILES, n=1000)
    targets_a = [t for c, t in samples if c.startswith("import os")]
    assert targets_a == ["def f():", "    return X", "Z = 3"]  # line 6+, no blanks or comments
    for context, target in samples:
        assert context.endswith("\n") and context.count("\n") >= 5
        assert target.strip() and not target.strip().startswith("#")
    b_last = next(c for c, t in samples if t == "v39 = 39")
    assert b_last.splitlines() == [f"v{i} = {i}" for i in range(19, 39)]  # 20 context lines
    assert len(samples) == 3 + 35


def test_next_line_samples_are_deterministic() -> None:
    a = next_line_samples(FILES, n=10, seed=3)
    assert a == next_line_samples(dict(reversed(FILES.items())), n=10, seed=3)
    assert len(a) == 10 and a != next_line_samples(FILES, n=10, seed=4)
    assert next_line_samples({}, n=5) == []


# -- docstring examples and the prompt format ----------------------------------------------------
CODE = '''\
def area(width, height):
    """Area of a rectangle.

    Both sides in metres.
    """
    return width * height'''


def test_docstring_examples() -> None:
    unit = CodeUnit("geo.py", "area", "function", 1, 6, CODE,
                    docstring="Area of a rectangle.\n\nBoth sides in metres.")  # fmt: skip
    bare = replace(unit, qualname="g", docstring="")
    long = replace(unit, docstring="word " * 200)
    examples = docstring_examples([unit, bare, long])
    assert len(examples) == 2
    instruction, target = examples[0]
    assert (
        instruction == DOCSTRING_INSTRUCTION + "def area(width, height):\n    return width * height"
    )
    assert target == "Area of a rectangle."
    assert len(examples[1][1]) <= 300 and examples[1][1].endswith("word")


class Plain:
    chat_template = None


class Chat:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: object) -> str:
        assert kwargs == {"tokenize": False, "add_generation_prompt": True}
        return f"<user>{messages[0]['content']}</user><assistant>"


def test_format_prompt_uses_the_chat_template_or_a_plain_fallback() -> None:
    assert format_prompt(Plain(), "Do it.") == "### Instruction:\nDo it.\n\n### Response:\n"
    assert format_prompt(Chat(), "Do it.") == "<user>Do it.</user><assistant>"


def test_format_prompt_with_the_real_smollm2_template_when_installed() -> None:
    folder = Path.home() / ".remora/models/smollm2-135m"
    if not (folder / "tokenizer.json").is_file():
        pytest.skip("SmolLM2 is not installed")
    from transformers import AutoTokenizer

    prompt = format_prompt(AutoTokenizer.from_pretrained(str(folder)), "Do it.")
    assert "<|im_start|>user\nDo it.<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


# -- the evaluator -------------------------------------------------------------------------------
def test_adapter_lowers_perplexity_and_base_is_unchanged(
    evaluator: Evaluator, model: Path, source: str
) -> None:
    base = evaluator.perplexity([source], use_adapter=False, seq_len=64)
    tuned = evaluator.perplexity([source], use_adapter=True, seq_len=64)
    assert tuned < base
    assert evaluator.perplexity([source], use_adapter=False, seq_len=64) == base
    plain = Evaluator(model).perplexity([source], use_adapter=False, seq_len=64)
    assert plain == pytest.approx(base, rel=1e-5)  # disable_adapter() is the bare base model


def test_perplexity_token_cap_is_deterministic(evaluator: Evaluator, source: str) -> None:
    short = evaluator.perplexity([source], use_adapter=False, seq_len=32, max_tokens=100)
    assert short == evaluator.perplexity(
        [source, "more text"], use_adapter=False, seq_len=32, max_tokens=100
    )
    with pytest.raises(StageError, match="no text"):
        evaluator.perplexity([], use_adapter=False)


def test_generation_and_next_line_with_and_without_adapter(
    evaluator: Evaluator, source: str
) -> None:
    samples = next_line_samples({"shlex.py": source}, n=6)
    base = evaluator.next_line_exact_match(samples, use_adapter=False, max_new_tokens=16)
    tuned = evaluator.next_line_exact_match(samples, use_adapter=True, max_new_tokens=16)
    assert 0.0 <= base <= 1.0 and 0.0 <= tuned <= 1.0
    prompts = [c for c, _ in samples[:3]]
    off = evaluator.generate(prompts, use_adapter=False, max_new_tokens=12)
    on = evaluator.generate(prompts, use_adapter=True, max_new_tokens=12)
    assert len(on) == 3 and on != off
    assert off == evaluator.generate(prompts, use_adapter=False, max_new_tokens=12)


def test_next_line_prediction_is_the_line_after_the_contexts_end(evaluator: Evaluator) -> None:
    # The context is prompted without its final newline (newlines and the next line's
    # indentation are one BPE token); the generation must open the new line itself.
    context = "import os\n" * 6
    said = evaluator.generate([context[:-1]], use_adapter=True, max_new_tokens=48)[0]
    if said.startswith("\n"):
        line = said[1:].split("\n", 1)[0]
        assert evaluator.next_line_exact_match([(context, line + "  ")], use_adapter=True) == 1.0
    else:  # the model went on with the last line: never a hit
        first = said.split("\n", 1)[0]
        assert evaluator.next_line_exact_match([(context, first)], use_adapter=True) == 0.0


def test_use_adapter_without_an_adapter_is_refused(model: Path) -> None:
    with pytest.raises(StageError, match="no adapter"):
        Evaluator(model).generate(["x"], use_adapter=True)
