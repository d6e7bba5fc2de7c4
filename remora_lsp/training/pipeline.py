"""Runs a training run stage by stage, checkpointing each stage so an interrupted run resumes.

:func:`train` is ``remora train``: resolve SOURCE, walk the code, scrape the docs, mine pairs,
fine-tune the search embedding, train the generation and transform adapters, evaluate them
against the base model, assemble and sign the pack, write the run report. Each finished stage
leaves ``stages/<name>.json`` (its result and a fingerprint of the settings it used) in the work
folder; with ``resume`` a stage whose fingerprint still matches is not run again, and the LoRA
stages continue from their own mid-stage checkpoints. Without ``resume`` the work folder starts
empty. The pack is written only when every stage succeeded, atomically, so a failed or
interrupted run never leaves a broken pack behind.

Progress goes through a :class:`Reporter` (the CLI draws rich progress bars; tests stay quiet).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from remora_lsp.training.errors import DocsError, SourceError, StageError
from remora_lsp.training.options import TrainOptions
from remora_lsp.training.repowalker import read_source
from remora_lsp.training.types import (
    CodeUnit,
    DocSection,
    Pair,
    RepoScan,
    Source,
    is_heldout,
    to_data,
)

__all__ = [
    "OTHER_LIBRARIES",
    "QuietReporter",
    "Reporter",
    "RunResult",
    "fim_texts",
    "split_files",
    "split_units",
    "train",
]

# Installed libraries tried, in order, for the "does the adapter wreck other code" check.
OTHER_LIBRARIES = ("jinja2", "click", "httpx", "requests", "pygments", "yaml")
STAGES = (
    "source",
    "walk",
    "docs",
    "pairs",
    "embedding",
    "generation",
    "transform",
    "evaluate",
    "assemble",
)
MAX_TEXT_BYTES = 400_000
MAX_EVAL_PAIRS = 400
# Pair sets are small (hundreds): several passes fit the stage's time share; time ends it first.
EMBEDDING_EPOCHS = 4
# Training on the first 128 tokens of each text gives 2.8x the steps of the model's own 256 in
# the same time; on fastapi (150 s) MRR@10 rose to .853 full / .819 at 64 dims, vs .705 / .676.
EMBEDDING_TRAIN_TOKENS = 128


class Reporter(Protocol):
    """Where a run reports its progress."""

    def stage(self, name: str, description: str) -> Any:
        """A context manager around one stage."""
        ...

    def progress(self, done: int, total: int) -> None:
        """Progress within the current stage."""
        ...

    def log(self, message: str) -> None:
        """One line about what happened."""
        ...


class QuietReporter:
    """A reporter that keeps the log lines (for tests and ``--quiet``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stages: list[str] = []

    @contextmanager
    def stage(self, name: str, description: str) -> Iterator[None]:
        self.stages.append(name)
        yield

    def progress(self, done: int, total: int) -> None:
        pass

    def log(self, message: str) -> None:
        self.lines.append(message)


@dataclass
class RunResult:
    """What a finished run produced."""

    pack: Path
    report: dict[str, Any]
    report_dir: Path | None
    resumed_stages: list[str] = field(default_factory=list)


def split_files(files: Sequence[str], *, seed: int, fraction: float) -> tuple[list[str], list[str]]:
    """(train, held-out) files by :func:`is_heldout`, each side non-empty when ≥ 2 files.

    With few files the hash split can leave one side empty; then the files are ranked by the
    same hash and the first ``max(1, fraction × n)`` are held out, so the split stays
    deterministic and stable for a given seed.
    """
    ordered = sorted(files)
    held = [f for f in ordered if is_heldout(f, seed=seed, fraction=fraction)]
    train_files = [f for f in ordered if f not in set(held)]
    if len(ordered) >= 2 and (not held or not train_files):
        ranked = sorted(ordered, key=lambda f: hashlib.sha256(f"{seed}:{f}".encode()).digest())
        n = min(len(ordered) - 1, max(1, round(fraction * len(ordered))))
        held = sorted(ranked[:n])
        train_files = [f for f in ordered if f not in set(held)]
    return train_files, held


# ---------------------------------------------------------------------------------------------
# Stage bookkeeping


class _Stages:
    """Stage records in ``<work>/stages/``: run a stage or reuse its matching record."""

    def __init__(self, work: Path, reporter: Reporter, resume: bool) -> None:
        self.folder = work / "stages"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.reporter = reporter
        self.resume = resume
        self.reused: list[str] = []
        self.seconds: dict[str, float] = {}

    def run(
        self,
        name: str,
        description: str,
        fingerprint: str,
        fn: Callable[[], Any],
        outputs: Sequence[Path] = (),
    ) -> Any:
        """``fn()``'s JSON result, or the saved one when resuming with the same fingerprint
        (and every folder in ``outputs`` still there)."""
        record = self.folder / f"{name}.json"
        if self.resume and record.is_file() and all(p.exists() for p in outputs):
            try:
                saved = json.loads(record.read_text("utf-8"))
            except (OSError, ValueError):
                saved = {}
            if saved.get("fingerprint") == fingerprint and "data" in saved:
                self.reused.append(name)
                self.seconds[name] = float(saved.get("seconds", 0.0))
                self.reporter.log(f"{name}: reused from the last run")
                return saved["data"]
        started = time.monotonic()
        with self.reporter.stage(name, description):
            data = fn()
        seconds = time.monotonic() - started
        self.seconds[name] = seconds
        tmp = record.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"fingerprint": fingerprint, "seconds": seconds, "data": data}),
            encoding="utf-8",
        )
        os.replace(tmp, record)
        return data


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Helpers


def _file_texts(root: Path, files: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for rel in files:
        text = read_source(root / rel, MAX_TEXT_BYTES)
        if text and text.strip():
            out[rel] = text
    return out


def _base_model_dir(opts: TrainOptions) -> Path:
    from remora_lsp.inference.config import load_engine_config
    from remora_lsp.inference.errors import ModelNotFoundError
    from remora_lsp.inference.models import resolve_model

    layer: dict[str, Any] = {"model": opts.base_model}
    if opts.models_dir is not None:
        layer["remora_home"] = opts.models_dir.parent
    config, _ = load_engine_config(None, layer)
    try:
        if opts.models_dir is not None:
            path = opts.models_dir / opts.base_model
            if (path / "config.json").is_file():
                return path
        return resolve_model(config)
    except ModelNotFoundError as exc:
        raise StageError(str(exc)) from exc


def _other_library(opts: TrainOptions, source: Source) -> Source | None:
    from remora_lsp.training.source import resolve_source

    own = {source.name.lower(), *(p.lower() for p in source.packages)}
    candidates = [opts.other] if opts.other else list(OTHER_LIBRARIES)
    for name in candidates:
        if name is None or name.lower() in own:
            continue
        try:
            return resolve_source(name, work_dir=opts.work_folder / "other")
        except SourceError:
            if opts.other:
                raise
    return None


def _other_texts(other: Source, budget_chars: int) -> dict[str, str]:
    from remora_lsp.training.repowalker import walk_repo

    scan = walk_repo(other)
    texts: dict[str, str] = {}
    used = 0
    for rel in sorted(set(scan.files) - set(scan.test_files)):
        text = read_source(scan.root / rel, MAX_TEXT_BYTES)
        if not text or not text.strip():
            continue
        texts[rel] = text
        used += len(text)
        if used >= budget_chars:
            break
    return texts


def _docs_sections(opts: TrainOptions, source: Source, reporter: Reporter) -> list[DocSection]:
    from remora_lsp.training.docscraper import chunk_text, find_docs, scrape_docs

    sections: list[DocSection] = []
    if opts.docs:
        for spec in opts.docs:
            crawl: dict[str, Any] = {}
            if spec.startswith(("http://", "https://")):
                crawl = {"max_pages": opts.crawl_pages, "max_depth": opts.crawl_depth}
            found = scrape_docs(spec, progress=reporter.progress, **crawl)
            reporter.log(f"docs: {len(found)} sections from {spec}")
            sections += found
    else:
        if source.kind in ("folder", "git"):
            for path in find_docs(source.root):
                found = scrape_docs(path, progress=reporter.progress)
                rel = path.relative_to(source.root).as_posix() if path != source.root else "."
                sections += [
                    DocSection(
                        f"{rel}/{s.source}" if path.is_dir() else rel,
                        s.headings,
                        s.text,
                        s.code_names,
                    )
                    for s in found
                ]
        if source.readme and not any(s.source.lower().startswith("readme") for s in sections):
            fmt = source.readme_format or "text"
            sections += chunk_text(source.readme, fmt, f"README ({source.name})")
        reporter.log(f"docs: {len(sections)} sections found with the source")
    if not sections and not opts.allow_no_docs:
        raise DocsError(
            f"no documentation found for {opts.source} (looked for README*, docs/, doc/ and the "
            "package description); pass --docs DIR|URL, or --allow-no-docs to train from the "
            "code alone"
        )
    return sections


def _generation_texts(
    scan: RepoScan, train_files: Sequence[str], texts: dict[str, str]
) -> list[str]:
    """Training text: every golden snippet (with its file as a header), then the files."""
    train = set(train_files)
    out = [f"# {u.path}\n{u.code}" for u in scan.golden if u.path in train]
    out += [f"# {rel}\n{texts[rel]}" for rel in sorted(train) if rel in texts]
    return out


def fim_texts(
    texts: Sequence[str], tokens: tuple[str, str, str], *, rate: float = 0.5, seed: int = 0
) -> list[str]:
    """Turn a seeded ``rate`` share of ``texts`` into fill-in-the-middle examples.

    ``tokens`` are the base model's (prefix, suffix, middle) FIM tokens. The hole is a span of
    whole lines (one to a quarter of the text), so the model learns to fill the lines between a
    prefix and a suffix in the order the completion engine prompts it (PSM).
    """
    import random

    rng = random.Random(seed)
    pre_tok, suf_tok, mid_tok = tokens
    out = []
    for text in texts:
        lines = text.splitlines(keepends=True)
        if len(lines) < 3 or rng.random() >= rate:
            out.append(text)
            continue
        size = rng.randint(1, max(1, len(lines) // 4))
        start = rng.randint(1, len(lines) - size)
        prefix = "".join(lines[:start])
        middle = "".join(lines[start : start + size])
        suffix = "".join(lines[start + size :])
        out.append(f"{pre_tok}{prefix}{suf_tok}{suffix}{mid_tok}{middle}")
    return out


def _units_in(scan: RepoScan, files: Sequence[str]) -> list[CodeUnit]:
    chosen = set(files)
    return [u for u in scan.units if u.path in chosen and u.docstring and u.reason != "test code"]


def split_units(
    scan: RepoScan,
    train_files: Sequence[str],
    heldout_files: Sequence[str],
    *,
    want: int,
    seed: int,
    max_share: float = 0.2,
) -> tuple[list[CodeUnit], list[CodeUnit]]:
    """(train, evaluation) documented units for the transform adapter.

    Evaluation units are those of the held-out files. Libraries that document few functions
    (FastAPI documents parameters with ``Doc()`` instead) can leave that side nearly empty; then
    documented units of the training files are moved over, ranked by a seeded hash of their
    qualified name, until ``want`` are held out or ``max_share`` of the training units have
    moved. Moved units are left out of training, so no score is measured on trained text.
    """
    from remora_lsp.training.evaluate import docstring_examples

    train = [u for u in _units_in(scan, train_files) if docstring_examples([u])]
    held = [u for u in _units_in(scan, heldout_files) if docstring_examples([u])]
    room = min(max(0, want - len(held)), int(len(train) * max_share))
    if room:
        ranked = sorted(
            train, key=lambda u: hashlib.sha256(f"{seed}:{u.path}:{u.qualname}".encode()).digest()
        )
        moved = {id(u) for u in ranked[:room]}
        held += [u for u in train if id(u) in moved]
        train = [u for u in train if id(u) not in moved]
    return train, held


def _base_identity(model_dir: Path) -> tuple[dict[str, str], tuple[str, str, str] | None]:
    """The base model's id and config fingerprint (as the manifest records them) and its FIM
    tokens (prefix, suffix, middle) when it has them."""
    from remora_lsp.inference.identity import read_identity

    ident = read_identity(model_dir)
    fim = (ident.fim.prefix, ident.fim.suffix, ident.fim.middle) if ident.fim else None
    return {"id": ident.model_id, "config_sha256": ident.config_sha256 or ""}, fim


# ---------------------------------------------------------------------------------------------
# The run


def train(opts: TrainOptions, reporter: Reporter | None = None) -> RunResult:
    """Run every stage of ``opts`` and write the pack (and the report when asked)."""
    reporter = reporter or QuietReporter()
    work = opts.work_folder
    if not opts.resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stages = _Stages(work, reporter, opts.resume)
    started = time.monotonic()

    # 1. SOURCE
    def stage_source() -> Any:
        from remora_lsp.training.source import resolve_source

        return to_data(resolve_source(opts.source, work_dir=work, progress=reporter.log))

    source = Source.from_data(
        stages.run("source", "Resolving the source", _fingerprint(opts.source), stage_source)
    )
    reporter.log(f"source: {source.kind} {source.name} {source.version} at {source.root}")

    # 2. Code
    def stage_walk() -> Any:
        from remora_lsp.training.repowalker import walk_repo

        scan = walk_repo(
            source,
            coverage=opts.coverage,
            run_tests=opts.run_tests,
            work_dir=work,
            progress=reporter.progress,
        )
        return to_data(scan)

    walk_fp = _fingerprint(source.root, opts.coverage, opts.run_tests)
    scan = RepoScan.from_data(stages.run("walk", "Walking the code", walk_fp, stage_walk))
    code_files = [f for f in scan.files if f not in set(scan.test_files)]
    if not code_files:
        raise SourceError(f"no Python files (other than tests) in {source.root}")
    reporter.log(
        f"code: {len(code_files)} files, {len(scan.units)} units, {len(scan.golden)} golden "
        f"({scan.golden_rule})"
    )

    # 3. Docs
    docs_fp = _fingerprint(walk_fp, opts.docs, opts.allow_no_docs)
    sections = [
        DocSection.from_data(d)
        for d in stages.run(
            "docs",
            "Reading the documentation",
            docs_fp,
            lambda: to_data(_docs_sections(opts, source, reporter)),
        )
    ]

    train_files, heldout_files = split_files(
        code_files, seed=opts.seed, fraction=opts.heldout_fraction
    )
    texts = _file_texts(source.root, code_files)

    # 4. Pairs
    library = source.packages[0] if source.packages else source.name

    def stage_pairs() -> Any:
        from remora_lsp.training.pairs import mine_pairs

        return to_data(mine_pairs(scan, sections, seed=opts.seed, library=library))

    pairs_fp = _fingerprint(docs_fp, opts.seed)
    pairs = [Pair.from_data(p) for p in stages.run("pairs", "Mining pairs", pairs_fp, stage_pairs)]
    reporter.log(f"pairs: {len(pairs)}")

    # 5. Embedding fine-tune
    embed_dir = work / "embedding-model"
    embed_fp = _fingerprint(
        pairs_fp,
        opts.max_steps,
        opts.time_budget_s,
        opts.embedding_batch_size,
        opts.seed,
        opts.heldout_fraction,
    )

    def stage_embedding() -> Any:
        from remora_lsp.training.embedding_tune import tune_embedding
        from remora_lsp.training.pairs import split_pairs

        train_pairs, eval_pairs = split_pairs(pairs, seed=opts.seed, fraction=opts.heldout_fraction)
        eval_pairs = eval_pairs[:MAX_EVAL_PAIRS]  # measuring the base is inside the budget
        if embed_dir.exists():
            shutil.rmtree(embed_dir)
        result = tune_embedding(
            train_pairs,
            eval_pairs,
            embed_dir,
            max_steps=opts.max_steps,
            time_budget_s=opts.stage_budget("embedding"),
            batch_size=opts.embedding_batch_size,
            epochs=EMBEDDING_EPOCHS,
            train_seq_length=EMBEDDING_TRAIN_TOKENS,
            seed=opts.seed,
            progress=reporter.progress,
        )
        return result.to_data()

    embedding = stages.run(
        "embedding",
        "Fine-tuning the search embedding",
        embed_fp,
        stage_embedding,
        outputs=[embed_dir],
    )

    # 6. Generation adapter
    model_dir = _base_model_dir(opts)
    identity, fim = _base_identity(model_dir)
    from remora_lsp.training.lora import (
        LoraSettings,
        TrainResult,
        train_causal_lora,
        train_prompted_lora,
    )

    def settings(stage: str) -> LoraSettings:
        return LoraSettings(
            rank=opts.rank,
            alpha=opts.alpha,
            seq_len=opts.seq_len,
            batch_size=opts.batch_size,
            learning_rate=opts.learning_rate,
            max_steps=opts.max_steps,
            min_steps=min(opts.min_steps, opts.max_steps or opts.min_steps),
            time_budget_s=opts.stage_budget(stage),
            seed=opts.seed,
            threads=opts.threads,
        )

    gen_dir = work / "adapters" / "generation"
    gen_texts = _generation_texts(scan, train_files, texts)
    if fim is not None:  # half the examples become FIM (SmolLM2 has no FIM tokens: prefix only)
        gen_texts = fim_texts(gen_texts, fim, seed=opts.seed)
        reporter.log(f"generation: FIM examples with {fim[0]} {fim[1]} {fim[2]}")
    gen_fp = _fingerprint(walk_fp, identity, settings("generation"), train_files)

    def adapter_stage(
        role: str, trainer: Callable[..., TrainResult], data: Any, out: Path
    ) -> Callable[[], Any]:
        def run() -> Any:
            return trainer(
                model_dir,
                data,
                out,
                settings(role),
                work_dir=work / "checkpoints" / role,
                resume=opts.resume,
                progress=reporter.progress,
            ).to_data()

        return run

    generation = stages.run(
        "generation",
        "Training the generation adapter",
        gen_fp,
        adapter_stage("generation", train_causal_lora, gen_texts, gen_dir),
        outputs=[gen_dir],
    )

    # 7. Transform adapter
    tr_dir = work / "adapters" / "transform"
    from remora_lsp.training.evaluate import docstring_examples

    tr_train_units, tr_eval_units = split_units(
        scan, train_files, heldout_files, want=opts.rouge_samples, seed=opts.seed
    )
    tr_examples = docstring_examples(tr_train_units)
    tr_fp = _fingerprint(
        walk_fp, identity, settings("transform"), [(u.path, u.qualname) for u in tr_train_units]
    )

    if not tr_examples:
        raise StageError(
            "no documented functions in the training files: the transform adapter needs "
            "function ↔ docstring pairs"
        )
    transform = stages.run(
        "transform",
        "Training the transform adapter",
        tr_fp,
        adapter_stage("transform", train_prompted_lora, tr_examples, tr_dir),
        outputs=[tr_dir],
    )

    # 8. Evaluation
    def stage_evaluate() -> Any:
        return _evaluate(
            opts, source, tr_eval_units, heldout_files, texts, model_dir, gen_dir, tr_dir, reporter
        )

    eval_fp = _fingerprint(
        gen_fp,
        tr_fp,
        opts.eval_tokens,
        opts.next_line_samples,
        opts.rouge_samples,
        opts.other,
        heldout_files,
    )
    metrics = stages.run("evaluate", "Evaluating against the base model", eval_fp, stage_evaluate)

    # 9. Report + assembly
    from remora_lsp.training.assemble import assemble_pack
    from remora_lsp.training.report import build_report, write_report

    report = build_report(
        opts=opts,
        source=source,
        scan=scan,
        sections=sections,
        pairs=pairs,
        train_files=train_files,
        heldout_files=heldout_files,
        identity=identity,
        embedding=embedding,
        generation=generation,
        transform=transform,
        metrics=metrics,
        stage_seconds=stages.seconds,
        total_seconds=time.monotonic() - started,
        resumed=stages.reused,
    )
    with reporter.stage("assemble", "Assembling the pack"):
        pack_info = assemble_pack(
            opts=opts,
            source=source,
            scan=scan,
            sections=sections,
            identity=identity,
            embed_dir=embed_dir,
            gen_dir=gen_dir,
            tr_dir=tr_dir,
            report=report,
            work=work,
            progress=reporter.progress,
            log=reporter.log,
        )
    report["pack"] = pack_info
    report["total_seconds"] = round(time.monotonic() - started, 1)
    if opts.report_dir is not None:
        write_report(report, opts.report_dir)
    if not opts.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return RunResult(opts.out, report, opts.report_dir, stages.reused)


def _evaluate(
    opts: TrainOptions,
    source: Source,
    doc_units: Sequence[CodeUnit],
    heldout_files: Sequence[str],
    texts: dict[str, str],
    model_dir: Path,
    gen_dir: Path,
    tr_dir: Path,
    reporter: Reporter,
) -> dict[str, Any]:
    from remora_lsp.training.evaluate import (
        Evaluator,
        docstring_examples,
        format_prompt,
        mean_rouge_l,
        next_line_samples,
    )

    held = {rel: texts[rel] for rel in heldout_files if rel in texts}
    if not held:
        raise StageError("no held-out files to evaluate on (the source has too few files)")
    held_texts = [f"# {rel}\n{text}" for rel, text in sorted(held.items())]
    out: dict[str, Any] = {"generation": {}, "transform": {}}
    gen = out["generation"]
    samples = next_line_samples(held, n=opts.next_line_samples, seed=opts.seed)
    other = _other_library(opts, source)
    other_texts: list[str] = []
    if other is not None:
        other_files = _other_texts(other, budget_chars=opts.eval_tokens * 6)
        other_texts = [f"# {rel}\n{text}" for rel, text in sorted(other_files.items())]
        gen["other_library"] = f"{other.name} {other.version}".strip()
    else:
        reporter.log("evaluate: no other library installed for the general-code check")
        gen["other_library"] = None
    evaluator = Evaluator(model_dir, gen_dir, threads=opts.threads)
    steps = 4 + (2 if other_texts else 0)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        reporter.progress(done, steps)

    for side, flag in (("base", False), ("adapter", True)):
        gen[f"heldout_ppl_{side}"] = evaluator.perplexity(
            held_texts, use_adapter=flag, seq_len=opts.seq_len, max_tokens=opts.eval_tokens
        )
        tick()
        if other_texts:
            gen[f"other_ppl_{side}"] = evaluator.perplexity(
                other_texts, use_adapter=flag, seq_len=opts.seq_len, max_tokens=opts.eval_tokens
            )
            tick()
        gen[f"next_line_em_{side}"] = evaluator.next_line_exact_match(samples, use_adapter=flag)
        tick()
    gen["next_line_samples"] = len(samples)
    gen["heldout_files"] = len(held)
    del evaluator

    tr = out["transform"]
    examples = docstring_examples(doc_units)[: opts.rouge_samples]
    tr["samples"] = len(examples)
    if examples:
        evaluator = Evaluator(model_dir, tr_dir, threads=opts.threads)
        prompts = [format_prompt(evaluator.tokenizer, instruction) for instruction, _ in examples]
        for side, flag in (("base", False), ("adapter", True)):
            made = evaluator.generate(prompts, use_adapter=flag, max_new_tokens=64)
            tr[f"rougeL_{side}"] = mean_rouge_l(
                list(zip(made, [target for _, target in examples], strict=True))
            )
        del evaluator
    else:
        reporter.log("evaluate: no documented held-out functions for ROUGE-L")
        tr["rougeL_base"] = tr["rougeL_adapter"] = None
    return out
