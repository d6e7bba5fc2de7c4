"""The LoRA trainer: a pack's generation adapter and its transform adapter, on CPU.

:func:`train_causal_lora` trains the *generation* adapter on a library's source text (packed
causal-LM blocks); :func:`train_prompted_lora` trains the *transform* adapter on
(instruction, target) pairs with the loss on the target only. Both share one training loop:

* **Data.** Every training sample is a fixed list of token ids with labels (``-100`` where no
  loss is taken). Sample ``k`` of the run (``k = step * batch_size + j``) is taken from epoch
  ``k // n`` at position ``k % n`` of that epoch's seeded permutation, so the data position is a
  pure function of the step and a resumed run reads exactly the batches an uninterrupted one
  would have.
* **Schedule.** Linear warm-up over ``min(warmup_steps, planned // 10)`` steps, then cosine
  decay to 0 at the planned total. The planned total is ``max_steps`` when set, capped by
  ``epochs``; with a time budget it is further capped by an estimate made once, from the steps/s
  measured over :data:`PROBE_STEPS` steps after the first one (which pays one-off costs), stored
  in the checkpoint and never changed afterwards (a schedule that moved would break resume
  equality). Until then the schedule runs on the step/epoch cap. A run stops at ``max_steps``,
  at the end of the ``epochs``, or when the time budget is spent: checked after every step, and
  before every step with the last step's duration, so that a step that would end past the budget
  is not started; a time-estimated planned total also stops as ``"time"``.
* **Checkpoints.** Every ``checkpoint_every_s`` seconds and at the end, the LoRA weights, the
  AdamW state and the torch RNG go to ``work_dir`` as safetensors and the rest (step, planned
  total, elapsed seconds, losses, settings fingerprint) as JSON — no pickle anywhere. Each
  checkpoint is written into a temporary folder, renamed into place, then ``latest.json`` is
  replaced atomically to point at it. ``resume=True`` continues from it when the settings
  fingerprint (training settings + model config + training data) matches.
* **Output.** PEFT ``save_pretrained`` (safetensors) into a temporary sibling of ``out_dir``,
  then renamed: ``adapter_model.safetensors`` + ``adapter_config.json`` whose
  ``base_model_name_or_path`` is the base model's id, never a local path.

Encoder-decoder bases (``is_encoder_decoder``) are recognised and refused with a
:class:`StageError` for now; :func:`_load_model` and :func:`_encode_prompted` are the two places
to extend.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from remora_lsp.inference.identity import read_identity
from remora_lsp.training.errors import BudgetError, StageError
from remora_lsp.training.types import to_data

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_TARGETS",
    "PROBE_STEPS",
    "LoraSettings",
    "TrainResult",
    "train_causal_lora",
    "train_prompted_lora",
]

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PROBE_STEPS = 3  # steps timed before a time-budget run fixes its planned total
IGNORE = -100
LATEST = "latest.json"
StoppedBy = Literal["max_steps", "time", "epochs"]
Progress = Callable[[int, int], None]
Sample = tuple[list[int], list[int]]  # (input ids, labels)


@dataclass(frozen=True)
class LoraSettings:
    """How to train one LoRA adapter (defaults: measured on a 2-core CPU with SmolLM2-135M).

    ``max_steps=0`` means no step cap; ``epochs`` is always a cap; ``time_budget_s`` caps the
    training wall time summed over resumed runs. ``bf16`` turns on bfloat16 autocast (weights
    stay float32). ``min_steps`` is the fewest steps worth an adapter: below it, no adapter.
    """

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    seq_len: int = 512
    batch_size: int = 2
    learning_rate: float = 4e-4
    warmup_steps: int = 10
    max_steps: int = 0
    epochs: float = 1.0
    time_budget_s: float | None = None
    seed: int = 0
    threads: int = 1
    bf16: bool = True
    checkpoint_every_s: float = 60.0
    min_steps: int = 1

    def fingerprint(self, *parts: str) -> str:
        """A hash of everything that changes the trained adapter (not threads, budget, cadence)."""
        data = asdict(self)
        for key in ("threads", "time_budget_s", "checkpoint_every_s", "min_steps"):
            data.pop(key)
        blob = json.dumps({"settings": to_data(data), "parts": list(parts)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class TrainResult:
    """What a training run did.

    ``tokens`` counts target tokens, i.e. the tokens the loss was taken on (label positions that
    are not masked, the first token of each sample excluded since nothing predicts it), summed
    over all steps including those of resumed runs. ``seconds`` is the training-loop wall time
    summed over resumed runs (model loading excluded). ``final_loss`` is the mean loss of the
    last 10 steps.
    """

    adapter_dir: Path
    steps: int
    tokens: int
    seconds: float
    tokens_per_second: float
    final_loss: float
    stopped_by: StoppedBy
    resumed_from_step: int = 0

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = to_data(self)
        return data


# -- public entry points -------------------------------------------------------------------------
def train_causal_lora(
    model_dir: Path,
    texts: Sequence[str],
    out_dir: Path,
    settings: LoraSettings,
    *,
    work_dir: Path,
    resume: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the generation adapter on ``texts`` (each followed by EOS, packed in blocks)."""
    _refuse_encoder_decoder(model_dir)
    tokenizer = _tokenizer(model_dir)
    eos = _eos_id(tokenizer)
    stream: list[int] = []
    for text in texts:
        if text:
            stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
    if len(stream) < 2:
        raise StageError("no training text for the generation adapter: the source is empty")
    blocks = [stream[i : i + settings.seq_len] for i in range(0, len(stream), settings.seq_len)]
    samples = [(b, list(b)) for b in blocks if len(b) >= 2]
    return _train(model_dir, samples, out_dir, settings, work_dir, resume, progress, "causal")


def train_prompted_lora(
    model_dir: Path,
    examples: Sequence[tuple[str, str]],
    out_dir: Path,
    settings: LoraSettings,
    *,
    work_dir: Path,
    resume: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the transform adapter on (instruction, target) pairs, loss on target + EOS only."""
    _refuse_encoder_decoder(model_dir)
    tokenizer = _tokenizer(model_dir)
    samples = [_encode_prompted(tokenizer, p, t, settings.seq_len) for p, t in examples if t]
    if not samples:
        raise StageError("no training examples for the transform adapter (no non-empty targets)")
    return _train(model_dir, samples, out_dir, settings, work_dir, resume, progress, "prompted")


# -- data ----------------------------------------------------------------------------------------
def _tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise StageError(f"cannot load the tokenizer of {model_dir}: {exc}") from exc


def _eos_id(tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise StageError("the base model's tokenizer has no EOS token; it cannot be trained")
    return int(eos)


def _refuse_encoder_decoder(model_dir: Path) -> None:
    if read_identity(model_dir).is_encoder_decoder:
        raise StageError(
            f"{model_dir} is an encoder-decoder model; encoder-decoder bases are not supported "
            "yet: pick a decoder-only base model"
        )


def _encode_prompted(tokenizer: Any, instruction: str, target: str, seq_len: int) -> Sample:
    """Decoder-only: the formatted prompt (left-truncated) then target + EOS, loss on the latter.

    The target keeps at most half of ``seq_len``; the prompt keeps its last tokens, so the
    generation prompt (the assistant turn header) is never cut off.
    """
    from remora_lsp.training.evaluate import format_prompt

    prompt = tokenizer(format_prompt(tokenizer, instruction), add_special_tokens=False)
    answer = tokenizer(target, add_special_tokens=False)["input_ids"][: max(1, seq_len // 2 - 1)]
    answer = [*answer, _eos_id(tokenizer)]
    head = prompt["input_ids"][-max(1, seq_len - len(answer)) :]
    return head + answer, [IGNORE] * len(head) + answer


def _sample_at(k: int, n: int, seed: int, cache: dict[int, list[int]]) -> int:
    """The index of the ``k``-th sample of the run: epoch ``k // n``'s seeded permutation."""
    epoch = k // n
    if epoch not in cache:
        order = list(range(n))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        cache.clear()
        cache[epoch] = order
    return cache[epoch][k % n]


def _collate(batch: list[Sample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (x, y) in enumerate(batch):
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return ids, labels, mask


def _data_digest(samples: Sequence[Sample]) -> str:
    digest = hashlib.sha256()
    for ids, labels in samples:
        digest.update(json.dumps([ids, labels]).encode())
    return digest.hexdigest()


# -- model ---------------------------------------------------------------------------------------
def _load_model(model_dir: Path, settings: LoraSettings) -> Any:
    """The base model (float32, training mode) wrapped in a fresh PEFT LoRA (seeded init)."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    try:
        base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise StageError(f"cannot load the base model {model_dir}: {exc}") from exc
    base.config.use_cache = False
    present = {name.rsplit(".", 1)[-1] for name, mod in base.named_modules()
               if isinstance(mod, torch.nn.Linear)}  # fmt: skip
    targets = [t for t in settings.target_modules if t in present]
    if not targets:
        raise StageError(
            f"none of the LoRA target modules {list(settings.target_modules)} exist in "
            f"{model_dir} (its linear layers: {sorted(present)}); set target_modules"
        )
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=settings.rank,
        lora_alpha=settings.alpha,  # type: ignore[arg-type]  # PEFT accepts a float
        lora_dropout=settings.dropout,
        target_modules=targets,
    )
    torch.manual_seed(settings.seed)
    model = get_peft_model(base, config)
    model.train()
    return model


def _trainable(model: Any) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


@contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lr_factor(step: int, planned: int, warmup_steps: int) -> float:
    """Warm-up then cosine to 0 at ``planned``; ``step`` counts steps already taken."""
    warmup = min(warmup_steps, planned // 10)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    span = max(1, planned - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


# -- checkpoints ---------------------------------------------------------------------------------
@dataclass
class _State:
    """The JSON half of a checkpoint (the tensors live beside it in safetensors)."""

    fingerprint: str
    step: int = 0
    planned: int = 0
    planned_fixed: bool = False
    elapsed: float = 0.0
    tokens: int = 0
    losses: list[float] | None = None
    epoch: int = 0
    position: int = 0


def _save_checkpoint(work_dir: Path, state: _State, model: Any, optimizer: Any) -> None:
    import torch
    from safetensors.torch import save_file

    work_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{state.step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=work_dir))
    weights = {k: v.detach().contiguous() for k, v in _trainable(model).items()}
    save_file(weights, str(tmp / "adapter.safetensors"))
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in opt["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    meta = {"state": asdict(state), "param_groups": opt["param_groups"], "scalars": scalars}
    (tmp / "state.json").write_text(json.dumps(meta), encoding="utf-8")
    final = work_dir / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(work_dir / LATEST, json.dumps({"checkpoint": name}))
    for old in work_dir.glob("ckpt-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _load_checkpoint(work_dir: Path, fingerprint: str, model: Any, optimizer: Any) -> _State:
    import torch
    from safetensors.torch import load_file

    try:
        pointer = json.loads((work_dir / LATEST).read_text(encoding="utf-8"))
        folder = work_dir / str(pointer["checkpoint"])
        meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "adapter.safetensors"))
        tensors = load_file(str(folder / "optimizer.safetensors"))
    except (OSError, ValueError, KeyError) as exc:
        raise StageError(
            f"the checkpoint in {work_dir} is unreadable ({exc}); delete the work folder to "
            "start over"
        ) from exc
    state = _State(**meta["state"])
    if state.fingerprint != fingerprint:
        raise StageError(
            f"the checkpoint in {work_dir} was made with other settings, base model or data "
            "(the settings changed); delete the work folder to start over"
        )
    params = _trainable(model)
    if set(weights) != set(params):
        raise StageError(f"the checkpoint in {work_dir} does not match the adapter's layers")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(weights[name])
    entries: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, field = key.split(".", 2)
            entries.setdefault(int(index), {})[field] = value
    for index, extra in meta["scalars"].items():
        entries.setdefault(int(index), {}).update(extra)
    groups = meta["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": entries, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    return state


def _clear_checkpoints(work_dir: Path) -> None:
    (work_dir / LATEST).unlink(missing_ok=True)
    for old in work_dir.glob("ckpt-*"):
        shutil.rmtree(old, ignore_errors=True)


# -- output --------------------------------------------------------------------------------------
def _save_adapter(model: Any, out_dir: Path, model_id: str) -> None:
    """PEFT safetensors into a temp sibling, base id instead of the local path, then rename."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        config_path = tmp / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = model_id
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        for extra in tmp.iterdir():
            if extra.name not in {"adapter_model.safetensors", "adapter_config.json"}:
                extra.unlink()
            else:
                extra.chmod(0o644)  # a pack is read by others: not mkdtemp's private modes
        tmp.chmod(0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the loop ------------------------------------------------------------------------------------
def _planned_cap(settings: LoraSettings, n: int) -> int:
    """Steps allowed by ``max_steps`` and ``epochs`` (whichever is smaller)."""
    if settings.epochs <= 0:
        raise StageError("epochs must be > 0 (it caps every training run)")
    by_epochs = max(1, math.ceil(settings.epochs * n / settings.batch_size))
    return min(settings.max_steps, by_epochs) if settings.max_steps > 0 else by_epochs


def _train(
    model_dir: Path,
    samples: list[Sample],
    out_dir: Path,
    settings: LoraSettings,
    work_dir: Path,
    resume: bool,
    progress: Progress | None,
    kind: str,
) -> TrainResult:
    import torch

    if not samples:
        raise StageError(f"no training samples for the {kind} adapter")
    if settings.batch_size < 1 or settings.seq_len < 2:
        raise StageError("batch_size must be >= 1 and seq_len >= 2")
    identity = read_identity(model_dir)
    n = len(samples)
    cap = _planned_cap(settings, n)
    fingerprint = settings.fingerprint(kind, identity.config_sha256 or "", _data_digest(samples))
    budget = settings.time_budget_s
    with _threads(settings.threads):
        model = _load_model(model_dir, settings)
        clock = time.perf_counter()
        params = list(_trainable(model).values())
        optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
        has_checkpoint = (work_dir / LATEST).is_file()
        if resume and has_checkpoint:
            state = _load_checkpoint(work_dir, fingerprint, model, optimizer)
        else:
            if work_dir.is_dir():
                _clear_checkpoints(work_dir)
            torch.manual_seed(settings.seed)
            state = _State(fingerprint, planned=cap, planned_fixed=budget is None)
        resumed_from = state.step
        losses = list(state.losses or [])
        base_elapsed = state.elapsed
        last_save = time.perf_counter()
        order: dict[int, list[int]] = {}
        probe_start: tuple[int, float] | None = None
        step_s = 0.0  # the last step's duration: a step that would overrun the budget is not run
        stopped_by: StoppedBy = "epochs" if state.step >= cap else "max_steps"

        def elapsed() -> float:
            return base_elapsed + time.perf_counter() - clock

        while True:
            if state.step >= state.planned:
                stopped_by = _stop_reason(settings, state, cap)
                break
            if budget is not None and elapsed() + step_s > budget:
                stopped_by = "time"  # the next step would not end within the budget
                break
            step_start = time.perf_counter()
            first = state.step * settings.batch_size
            batch = [samples[_sample_at(first + j, n, settings.seed, order)]
                     for j in range(settings.batch_size)]  # fmt: skip
            ids, labels, mask = _collate(batch)
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * _lr_factor(
                    state.step, state.planned, settings.warmup_steps
                )
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.bf16):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            step_s = time.perf_counter() - step_start
            state.tokens += int((labels[:, 1:] != IGNORE).sum())
            losses = ([*losses, float(loss.detach())])[-10:]
            end = first + settings.batch_size
            state.epoch, state.position = end // n, end % n
            if not state.planned_fixed and budget is not None:
                probe_start = _fix_plan(state, probe_start, elapsed(), budget, cap)
            if budget is not None and elapsed() >= budget:
                stopped_by = "time"
                break
            if time.perf_counter() - last_save >= settings.checkpoint_every_s:
                _checkpoint(work_dir, state, losses, elapsed(), model, optimizer)
                last_save = time.perf_counter()
            if progress is not None:
                progress(state.step, state.planned)
        if state.step < settings.min_steps:
            spent = elapsed()
            raise BudgetError(
                f"the budget allowed {state.step} training steps ({spent:.1f} s); at least "
                f"{settings.min_steps} are needed: raise --time-budget or --max-steps"
            )
        _checkpoint(work_dir, state, losses, elapsed(), model, optimizer)
        _save_adapter(model, out_dir, identity.model_id)
    seconds = state.elapsed
    return TrainResult(
        adapter_dir=out_dir,
        steps=state.step,
        tokens=state.tokens,
        seconds=seconds,
        tokens_per_second=state.tokens / seconds if seconds > 0 else 0.0,
        final_loss=sum(losses) / len(losses) if losses else float("nan"),
        stopped_by=stopped_by,
        resumed_from_step=resumed_from,
    )


def _stop_reason(settings: LoraSettings, state: _State, cap: int) -> StoppedBy:
    if settings.max_steps > 0 and state.step >= settings.max_steps:
        return "max_steps"
    if state.step >= cap:
        return "epochs"
    return "time"  # a planned total estimated from the time budget


def _fix_plan(
    state: _State, probe: tuple[int, float] | None, now: float, budget: float, cap: int
) -> tuple[int, float] | None:
    """Time-budget runs: after the first step, time :data:`PROBE_STEPS` steps, fix the plan.

    The first step is left out of the measurement (it pays one-off warm-up costs).
    """
    if probe is None:
        return (state.step, now)
    done = state.step - probe[0]
    if done < PROBE_STEPS or now <= probe[1]:
        return probe
    rate = done / (now - probe[1])
    state.planned = max(state.step, min(cap, state.step + int((budget - now) * rate)))
    state.planned_fixed = True
    return probe


def _checkpoint(
    work_dir: Path, state: _State, losses: list[float], seconds: float, model: Any, opt: Any
) -> None:
    state.losses = list(losses)
    state.elapsed = seconds
    _save_checkpoint(work_dir, state, model, opt)
