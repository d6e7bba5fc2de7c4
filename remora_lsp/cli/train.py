"""``remora train`` (also installed as ``remora-train``): turn a library into a trained pack.

The command parses and validates the options into a
:class:`~remora_lsp.training.options.TrainOptions`, draws one progress bar per stage on stderr
(when it is a terminal; plain log lines otherwise) and prints the run report's tables at the
end. Failures are one red line and exit 1; an interrupt says how to resume.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markdown import Markdown

from remora_lsp.cli.common import command, fail, stderr
from remora_lsp.errors import RemoraError

__all__ = ["main", "register", "train_command"]


class RichReporter:
    """Progress bars per stage on a terminal, timestamped lines otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self._bar: Any = None
        self._task: Any = None

    @contextmanager
    def stage(self, name: str, description: str) -> Iterator[None]:
        started = time.monotonic()
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            columns = (
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=self.console, transient=True) as bar:
                self._bar, self._task = bar, bar.add_task(description, total=None)
                try:
                    yield
                finally:
                    self._bar = self._task = None
        else:
            self.console.print(f"==> {description}")
            yield
        self.console.print(f"[green]✓[/] {description} ({time.monotonic() - started:.1f} s)")

    def progress(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total or None)

    def log(self, message: str) -> None:
        self.console.print(f"  {message}", highlight=False)


def _quiet_libraries() -> None:
    """Our bars replace the model libraries' own (weight loading, shard writing)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


@command
def train_command(
    source: str = typer.Argument(
        ...,
        help="A repository folder, a git URL, or the name of an installed distribution "
        "(e.g. `fastapi`: its installed source is read).",
        show_default=False,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Where to write the pack (.remorapack).", show_default=False
    ),
    docs: list[str] = typer.Option(
        None,
        "--docs",
        help="Documentation: a folder (Markdown, reStructuredText, built Sphinx/MkDocs HTML), "
        "a file, or a URL crawled on the same site (robots.txt honoured). Repeatable. "
        "Default: README/docs found with the source, or the distribution's description.",
    ),
    allow_no_docs: bool = typer.Option(
        False, "--allow-no-docs", help="Train from code alone when no documentation is found."
    ),
    crawl_pages: int = typer.Option(
        200, "--crawl-pages", help="Most pages read when --docs is a URL."
    ),
    crawl_depth: int = typer.Option(
        4, "--crawl-depth", help="Most links followed from the start URL."
    ),
    coverage: Path | None = typer.Option(
        None,
        "--coverage",
        help="A coverage.py data file (.coverage) from the repository's tests: golden "
        "snippets are the covered ones.",
    ),
    run_tests: bool = typer.Option(
        False, "--run-tests", help="Run the repository's tests under coverage.py first."
    ),
    pack_dir: Path | None = typer.Option(
        None,
        "--pack-dir",
        help="Pack source folder: manifest.yaml (name, version, description, triggers, tools) "
        "and templates/*.pym to include.",
    ),
    name: str | None = typer.Option(None, "--name", help="Pack name (default: from the source)."),
    version: str | None = typer.Option(None, "--version", help="Pack version (default 0.1.0)."),
    triggers: list[str] = typer.Option(
        None,
        "--triggers",
        help="Imports that activate the pack, comma-separated (default: the distribution's "
        "top-level modules).",
    ),
    base_model: str = typer.Option(
        "smollm2-135m",
        "--base-model",
        help="Base model for the adapters: a name from `remora models list` or a local "
        "Hugging Face folder.",
    ),
    time_budget: str = typer.Option(
        "12m",
        "--time-budget",
        help="Training time (600, 90s, 20m, 1h30m), shared 20/60/20 by the embedding, "
        "generation and transform stages. Evaluation comes on top.",
    ),
    max_steps: int = typer.Option(
        0, "--max-steps", help="Cap on optimizer steps per trained part (0: no cap)."
    ),
    min_steps: int = typer.Option(
        4,
        "--min-steps",
        help="Fewest optimizer steps an adapter may get (at most --max-steps); a budget that "
        "allows fewer is an error (nothing is written).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for splits, sampling and training."),
    rank: int = typer.Option(16, "--rank", help="LoRA rank."),
    alpha: float = typer.Option(32.0, "--alpha", help="LoRA alpha."),
    seq_len: int = typer.Option(512, "--seq-len", help="Training sequence length (tokens)."),
    batch_size: int = typer.Option(2, "--batch-size", help="LoRA training batch size."),
    learning_rate: float = typer.Option(4e-4, "--lr", help="LoRA learning rate."),
    other: str | None = typer.Option(
        None,
        "--other",
        help="Another library (installed distribution or folder) whose perplexity must not "
        "get worse (default: the first installed of jinja2, click, httpx, requests).",
    ),
    eval_tokens: int = typer.Option(
        20_000, "--eval-tokens", help="Tokens per perplexity measurement."
    ),
    next_line_samples: int = typer.Option(
        100, "--next-line-samples", help="Held-out lines for next-line exact match."
    ),
    rouge_samples: int = typer.Option(
        30, "--rouge-samples", help="Held-out functions for docstring ROUGE-L."
    ),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="Write report.json and report.md here."
    ),
    work_dir: Path | None = typer.Option(
        None,
        "--work-dir",
        help="Checkpoints and stage results (default: .<OUT name>.work beside OUT).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its checkpoints."
    ),
    keep_work: bool = typer.Option(
        False, "--keep-work", help="Keep the work folder after a successful run."
    ),
    sign: Path | None = typer.Option(None, "--sign", help="Sign the pack with this ed25519 key."),
    threads: int = typer.Option(
        1, "--threads", help="torch threads (1 measured fastest on a busy 2-core machine)."
    ),
) -> None:
    """Train a Language Pack from a library's code and docs, and report how much it helps.

    Stages: walk the code (golden snippets), read the docs, mine pairs, fine-tune the search
    embedding (Matryoshka), train the generation and transform LoRA adapters, evaluate them
    against the base model on held-out files, build the index and write the (signed) pack.
    Interrupted runs continue with --resume. Examples:

      remora train fastapi --pack-dir packs/fastapi --out fastapi.remorapack --report-dir rep

      remora train ./ourlib --run-tests --docs ./ourlib/docs --out ourlib.remorapack --sign k.key
    """
    from remora_lsp.training.options import TrainOptions, parse_duration
    from remora_lsp.training.pipeline import train
    from remora_lsp.training.report import report_markdown

    try:
        opts = TrainOptions(
            source=source,
            out=out,
            docs=tuple(docs or ()),
            allow_no_docs=allow_no_docs,
            crawl_pages=crawl_pages,
            crawl_depth=crawl_depth,
            coverage=coverage,
            run_tests=run_tests,
            pack_dir=pack_dir,
            name=name,
            version=version,
            triggers=_split(triggers),
            base_model=base_model,
            time_budget_s=parse_duration(time_budget),
            max_steps=max_steps,
            min_steps=min_steps,
            seed=seed,
            rank=rank,
            alpha=alpha,
            seq_len=seq_len,
            batch_size=batch_size,
            learning_rate=learning_rate,
            other=other,
            eval_tokens=eval_tokens,
            next_line_samples=next_line_samples,
            rouge_samples=rouge_samples,
            report_dir=report_dir,
            work_dir=work_dir,
            resume=resume,
            keep_work=keep_work,
            sign_key=sign,
            threads=threads,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise fail(
            f"--{field.replace('_', '-')}: {str(err['msg']).removeprefix('Value error, ')}"
        ) from None
    if coverage is not None and not coverage.is_file():
        raise fail(f"--coverage {coverage}: no such file")
    console = stderr()
    _quiet_libraries()
    try:
        result = train(opts, RichReporter(console))
    except KeyboardInterrupt:
        raise fail(
            f"interrupted; run the same command with --resume to continue from the last "
            f"checkpoint (work folder {opts.work_folder})",
            130,
        ) from None
    except RemoraError:
        console.print(
            f"[dim]nothing was written to {opts.out}; checkpoints are in {opts.work_folder}[/]"
        )
        raise
    Console(soft_wrap=True).print(Markdown(report_markdown(result.report)))
    where = f"; report in {result.report_dir}" if result.report_dir else ""
    console.print(f"[green]wrote {result.pack}[/]{where}")


def register(app: typer.Typer) -> None:
    """Add ``remora train``."""
    app.command("train", help=train_command.__doc__)(train_command)


def main() -> None:
    """The ``remora-train`` entry point (the same command, on its own)."""
    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    standalone.command(help=train_command.__doc__)(train_command)
    standalone(prog_name="remora-train", args=sys.argv[1:])
