"""Evaluation of a trained adapter against its base model, and the evaluation data it needs.

:class:`Evaluator` loads the base model once (float32, eval mode, CPU) with the adapter on top
and runs each metric with the adapter on or off (PEFT ``disable_adapter()``), so base vs
adapter costs one load:

* :meth:`Evaluator.perplexity` — token-level perplexity over non-overlapping windows;
* :meth:`Evaluator.next_line_exact_match` — greedy next-line completion, exact after ``rstrip``;
* :meth:`Evaluator.generate` — greedy generations (for ROUGE-L of the transform adapter).

The data helpers are pure Python: :func:`next_line_samples` draws next-line completion samples
from held-out files, :func:`docstring_examples` builds (instruction, docstring) pairs for the
transform role, :func:`rouge_l` / :func:`mean_rouge_l` score generated text (written here, no
rouge-score or nltk dependency), and :func:`format_prompt` renders an instruction the way the
transform adapter is trained and served.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from remora_lsp.training.errors import StageError
from remora_lsp.training.types import CodeUnit

__all__ = [
    "DOCSTRING_INSTRUCTION",
    "Evaluator",
    "docstring_examples",
    "format_prompt",
    "mean_rouge_l",
    "next_line_samples",
    "rouge_l",
]

DOCSTRING_INSTRUCTION = "Write the docstring for this Python function.\n\n"
MAX_CODE_CHARS = 1_500
MAX_DOCSTRING_CHARS = 300
MIN_CONTEXT_LINES = 5
_WORD = re.compile(r"[a-z0-9]+")


def format_prompt(tokenizer: Any, instruction: str) -> str:
    """``instruction`` as a user turn of the tokenizer's chat template, ready for the answer.

    Without a chat template: ``"### Instruction:\\n<instruction>\\n\\n### Response:\\n"``.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
        return str(text)
    return f"### Instruction:\n{instruction}\n\n### Response:\n"


# -- ROUGE-L -------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    """Lower-cased alphanumeric words (the rouge-score tokenisation, without stemming)."""
    return _WORD.findall(text.lower())


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of ``candidate`` against ``reference`` (0.0 when either has no words)."""
    cand, ref = _words(candidate), _words(reference)
    if not cand or not ref:
        return 0.0
    common = _lcs(cand, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def mean_rouge_l(pairs: Iterable[tuple[str, str]]) -> float:
    """Mean :func:`rouge_l` over (candidate, reference) pairs (0.0 for none)."""
    scores = [rouge_l(c, r) for c, r in pairs]
    return sum(scores) / len(scores) if scores else 0.0


# -- evaluation data -----------------------------------------------------------------------------
def next_line_samples(
    files: Mapping[str, str], *, n: int = 200, context_lines: int = 20, seed: int = 0
) -> list[tuple[str, str]]:
    """A deterministic sample of (context, target line) next-line completion cases.

    The context is the up to ``context_lines`` lines before the target joined with newlines
    plus a final ``"\\n"``; targets are non-blank lines that are not pure comments and have at
    least 5 lines before them. The sample depends only on ``files``, ``n`` and ``seed`` and comes
    back ordered by file path and line.
    """
    candidates: list[tuple[str, int]] = []
    lines_of = {path: files[path].splitlines() for path in sorted(files)}
    for path, lines in lines_of.items():
        for i in range(MIN_CONTEXT_LINES, len(lines)):
            stripped = lines[i].strip()
            if stripped and not stripped.startswith("#"):
                candidates.append((path, i))
    chosen = sorted(random.Random(seed).sample(candidates, min(n, len(candidates))))
    samples = []
    for path, i in chosen:
        lines = lines_of[path]
        context = "\n".join(lines[max(0, i - context_lines) : i]) + "\n"
        samples.append((context, lines[i]))
    return samples


def docstring_examples(units: Iterable[CodeUnit]) -> list[tuple[str, str]]:
    """(instruction, target) pairs for the transform adapter from documented code units.

    The instruction is :data:`DOCSTRING_INSTRUCTION` + the unit's code with its docstring lines
    removed (cut at a line boundary to ~1,500 characters); the target is the docstring's first
    paragraph on one line (markup removed, as :func:`~remora_lsp.training.pairs.docstring_summary`
    does), cut at a word boundary to 300 characters.
    """
    from remora_lsp.training.pairs import code_without_docstring, docstring_summary

    examples = []
    for unit in units:
        target = docstring_summary(unit.docstring)
        if len(target) > MAX_DOCSTRING_CHARS:
            cut = target[:MAX_DOCSTRING_CHARS]
            target = cut[: cut.rfind(" ")] if " " in cut else cut
        if target:
            code = code_without_docstring(unit, MAX_CODE_CHARS)
            examples.append((DOCSTRING_INSTRUCTION + code, target))
    return examples


# -- the evaluator -------------------------------------------------------------------------------
class Evaluator:
    """The base model, loaded once, with an optional LoRA adapter that each metric toggles."""

    def __init__(self, model_dir: Path, adapter_dir: Path | None = None, *, threads: int = 1):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.threads = threads
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise StageError(f"cannot load the base model {model_dir}: {exc}") from exc
        self.has_adapter = adapter_dir is not None
        if adapter_dir is not None:
            from peft import PeftModel

            try:
                model = PeftModel.from_pretrained(model, str(adapter_dir))
            except (OSError, ValueError) as exc:
                raise StageError(f"cannot load the adapter {adapter_dir}: {exc}") from exc
        self.model = model.eval()

    @contextmanager
    def _mode(self, use_adapter: bool) -> Iterator[None]:
        """Inference mode with ``threads`` threads and the adapter on or off."""
        import torch

        if use_adapter and not self.has_adapter:
            raise StageError("no adapter loaded: evaluate with use_adapter=False")
        toggle = self.model.disable_adapter() if self.has_adapter and not use_adapter else None
        before = torch.get_num_threads()
        torch.set_num_threads(max(1, self.threads))
        try:
            with torch.inference_mode(), toggle if toggle is not None else nullcontext():
                yield
        finally:
            torch.set_num_threads(before)

    def perplexity(
        self,
        texts: Sequence[str],
        *,
        use_adapter: bool,
        seq_len: int = 512,
        max_tokens: int = 20_000,
    ) -> float:
        """exp(mean NLL per predicted token) over non-overlapping ``seq_len`` windows.

        The texts are tokenised (each followed by EOS), concatenated and cut to the first
        ``max_tokens`` tokens, so the measurement is deterministic and bounded.
        """
        import torch

        eos = self.tokenizer.eos_token_id
        stream: list[int] = []
        for text in texts:
            if len(stream) >= max_tokens:
                break
            stream += self.tokenizer(text, add_special_tokens=False)["input_ids"]
            stream += [] if eos is None else [eos]
        stream = stream[:max_tokens]
        total, count = 0.0, 0
        with self._mode(use_adapter):
            for start in range(0, len(stream), seq_len):
                window = stream[start : start + seq_len]
                if len(window) < 2:
                    continue
                ids = torch.tensor([window])
                logits = self.model(input_ids=ids).logits[0, :-1].float()
                nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum")
                total += float(nll)
                count += len(window) - 1
        if count == 0:
            raise StageError("no text to measure perplexity on")
        return math.exp(total / count)

    def _greedy(self, prompt: str, max_new_tokens: int, line_after: int | None = None) -> str:
        """Greedy continuation of ``prompt`` (inside :meth:`_mode`), special tokens dropped.

        With ``line_after=k``, generation stops as soon as the text after its first ``k``
        characters (the newlines that open the predicted line) holds a newline.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokenizer = self.tokenizer
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        start, skip = ids.shape[1], line_after or 0

        class LineDone(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                text = tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
                return torch.full((input_ids.shape[0],), "\n" in text[skip:], dtype=torch.bool)

        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id or 0,
            stopping_criteria=StoppingCriteriaList([LineDone()])
            if line_after is not None
            else None,
        )
        return str(tokenizer.decode(out[0, start:], skip_special_tokens=True))

    def next_line_exact_match(
        self, samples: Sequence[tuple[str, str]], *, use_adapter: bool, max_new_tokens: int = 48
    ) -> float:
        """Share of samples whose greedy next line equals the target.

        The prompt is the context *without* its final newlines: BPE tokenizers merge newlines
        with the next line's indentation into one token, so a prompt ending in a bare newline
        would ask for a token sequence the model never saw (and it then drops the indentation).
        The generation must start with the newlines taken off; the prediction is what follows
        them, up to the next newline. Prediction and target are compared after ``rstrip()``
        only (leading indentation must match exactly).
        """
        if not samples:
            raise StageError("no next-line samples to evaluate")
        hits = 0
        with self._mode(use_adapter):
            for context, target in samples:
                prompt = context.rstrip("\n") or context
                gap = context[len(prompt) :]
                said = self._greedy(prompt, max_new_tokens, line_after=len(gap))
                if said.startswith(gap):
                    hits += said[len(gap) :].split("\n", 1)[0].rstrip() == target.rstrip()
        return hits / len(samples)

    def generate(
        self, prompts: Sequence[str], *, use_adapter: bool, max_new_tokens: int = 64
    ) -> list[str]:
        """Greedy continuations of ``prompts`` (each stops at EOS or ``max_new_tokens``)."""
        with self._mode(use_adapter):
            return [self._greedy(p, max_new_tokens) for p in prompts]
