"""The whole training pipeline on a tiny real repository and a tiny real model.

Every stage runs for real (tree-sitter walk, coverage.py through the repo's own tests, docs,
pair mining, a MatryoshkaLoss step on the real default embedding model, LoRA training and
evaluation on a tiny Llama, index build, pack build); only the sizes are small. Checks the pack
and the report, resume after an interruption, determinism, and refusals of bad input.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from remora_lsp.packs.archive import PackArchive
from remora_lsp.training.errors import BudgetError, DocsError, SourceError
from remora_lsp.training.options import TrainOptions, parse_duration
from remora_lsp.training.pipeline import (
    QuietReporter,
    fim_texts,
    split_files,
    split_units,
    train,
)
from tests.inference.tiny import build_model

REPO = Path(__file__).parents[1] / "data" / "train_repo"
REPORT_KEYS = (
    "generation.heldout_ppl_base",
    "generation.heldout_ppl_adapter",
    "generation.other_ppl_base",
    "generation.other_ppl_adapter",
    "generation.next_line_em_base",
    "generation.next_line_em_adapter",
    "transform.rougeL_base",
    "transform.rougeL_adapter",
    "train_seconds",
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("base") / "tiny-llama")


def _options(tmp: Path, base: Path, **overrides: Any) -> TrainOptions:
    repo = tmp / "repo"
    if not repo.exists():
        shutil.copytree(REPO, repo)
    values: dict[str, Any] = {
        "source": str(repo),
        "out": tmp / "out" / "tinyledger.remorapack",
        "base_model": str(base),
        "max_steps": 3,
        "time_budget_s": 600,
        "seq_len": 64,
        "embedding_batch_size": 8,
        "eval_tokens": 512,
        "next_line_samples": 4,
        "rouge_samples": 2,
        "other": "jinja2",
        "report_dir": tmp / "report",
        "heldout_fraction": 0.3,
    }
    values.update(overrides)
    return TrainOptions(**values)


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_end_to_end_pack_and_report(tmp_path: Path, base: Path) -> None:
    opts = _options(tmp_path, base, run_tests=True)
    result = train(opts)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    for key in REPORT_KEYS:
        assert _get(report, key) is not None, key
    for dims in ("384", "256", "128", "64"):
        assert set(report["embedding"]["mrr_at_10"][dims]) == {"base", "tuned"}
    assert report["data"]["golden_rule"].startswith("coverage")
    assert (tmp_path / "report" / "report.md").read_text().startswith("# Training report")
    assert result.pack == opts.out
    with PackArchive(opts.out) as archive:
        archive.verify_contents()
        manifest = archive.manifest
        files = set(manifest.files)
    assert manifest.triggers.python_imports == ("tinyledger",)
    roles = {a.role: a for a in manifest.adapters}
    assert set(roles) == {"generation", "transform"}
    assert roles["generation"].base_model.id == "tiny-llama"
    assert "adapters/generation/adapter_model.safetensors" in files
    assert "embeddings/model/remora_embedding.json" in files
    assert manifest.embeddings is not None and manifest.embeddings.model.startswith("remora-pack/")
    assert manifest.card["generation"]["heldout_ppl_adapter"] > 0
    assert "LICENSE" in files and "README.md" in files
    assert not opts.work_folder.exists()  # cleaned after success

    # The demo installs a trained pack in place of its source and shows the card.
    from io import StringIO

    from rich.console import Console

    from remora_lsp.server.demo import prepare_home

    sources = tmp_path / "sources" / "tinyledger"
    sources.mkdir(parents=True)
    (sources / "manifest.yaml").write_text("format: 1\nname: tinyledger\nversion: 0.0.1\n")
    shown = StringIO()
    home = tmp_path / "demo-home"
    names = prepare_home(
        home, sources.parent, Console(file=shown, width=120), trained=(opts.out.parent,)
    )
    assert names == ["tinyledger"]
    assert (home / "packs" / "tinyledger" / "0.1.0" / "adapters" / "generation").is_dir()
    assert "perplexity, held-out library code" in shown.getvalue()


class _Interrupt(QuietReporter):
    """Interrupts the run when it enters ``stop_at`` (like Ctrl-C)."""

    def __init__(self, stop_at: str) -> None:
        super().__init__()
        self.stop_at = stop_at

    @contextmanager
    def stage(self, name: str, description: str) -> Iterator[None]:
        if name == self.stop_at:
            raise KeyboardInterrupt
        with super().stage(name, description):
            yield


def test_resume_after_interruption_reuses_finished_stages(tmp_path: Path, base: Path) -> None:
    opts = _options(tmp_path, base)
    with pytest.raises(KeyboardInterrupt):
        train(opts, _Interrupt("transform"))
    assert not opts.out.exists()  # no broken pack
    assert (opts.work_folder / "stages" / "generation.json").is_file()
    first_adapter = opts.work_folder / "adapters" / "generation" / "adapter_model.safetensors"
    before = _sha(first_adapter)
    reporter = QuietReporter()
    result = train(opts.model_copy(update={"resume": True, "keep_work": True}), reporter)
    assert {"source", "walk", "docs", "pairs", "embedding", "generation"} <= set(
        result.resumed_stages
    )
    assert "transform" in reporter.stages
    assert _sha(first_adapter) == before
    assert opts.out.is_file()


def test_same_seed_same_adapters(tmp_path: Path, base: Path) -> None:
    shas = []
    for run in ("a", "b"):
        opts = _options(tmp_path, base, out=tmp_path / run / "p.remorapack", keep_work=True)
        train(opts)
        folder = opts.work_folder / "adapters"
        shas.append(
            (
                _sha(folder / "generation" / "adapter_model.safetensors"),
                _sha(folder / "transform" / "adapter_model.safetensors"),
            )
        )
    assert shas[0] == shas[1]


def test_no_python_files_is_refused(tmp_path: Path, base: Path) -> None:
    empty = tmp_path / "docs-only"
    empty.mkdir()
    (empty / "README.md").write_text("# Nothing here\n\nJust prose.\n")
    opts = _options(tmp_path, base, source=str(empty))
    with pytest.raises(SourceError, match="no Python files"):
        train(opts)
    assert not opts.out.exists()


def test_repo_without_docs_is_refused_unless_allowed(tmp_path: Path, base: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo)
    for doc in [*repo.glob("README*"), repo / "docs"]:
        shutil.rmtree(doc) if doc.is_dir() else doc.unlink()
    opts = _options(tmp_path, base)
    with pytest.raises(DocsError, match="--allow-no-docs"):
        train(opts)
    assert not opts.out.exists()


def test_budget_too_small_to_train_is_refused(tmp_path: Path, base: Path) -> None:
    # 10 s of training cannot give an adapter the (deliberately huge) number of steps asked
    # for: the stage that runs out says so, and nothing is written.
    opts = _options(tmp_path, base, max_steps=0, time_budget_s=10, min_steps=10**9)
    with pytest.raises(BudgetError, match="budget"):
        train(opts)
    assert not opts.out.exists()
    assert not (tmp_path / "report" / "report.json").exists()


def test_split_files_keeps_both_sides() -> None:
    train_files, held = split_files(["a.py", "b.py"], seed=0, fraction=0.15)
    assert train_files and held and sorted(train_files + held) == ["a.py", "b.py"]
    assert split_files(["a.py", "b.py"], seed=0, fraction=0.15) == (train_files, held)


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("20m") == 1200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("600") == 600
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("soon")


def test_cli_refuses_tiny_budget_and_bad_source(tmp_path: Path) -> None:
    from remora_lsp.cli import app

    runner = CliRunner()
    out = tmp_path / "x.remorapack"
    result = runner.invoke(app, ["train", str(REPO), "--out", str(out), "--time-budget", "3s"])
    assert result.exit_code == 1
    assert "too small to train" in result.output
    result = runner.invoke(app, ["train", "no-such-dist-xyz", "--out", str(out)])
    assert result.exit_code == 1
    assert "error:" in result.output and "no-such-dist-xyz" in result.output
    assert not out.exists()


def test_fim_examples_keep_every_line_once() -> None:
    texts = ["".join(f"line {i}\n" for i in range(40)) for _ in range(20)]
    tokens = ("<PRE>", "<SUF>", "<MID>")
    out = fim_texts(texts, tokens, rate=0.5, seed=3)
    assert out == fim_texts(texts, tokens, rate=0.5, seed=3)
    fim = [t for t in out if t.startswith("<PRE>")]
    assert 0 < len(fim) < len(texts)
    for text in fim:
        prefix, rest = text.removeprefix("<PRE>").split("<SUF>")
        suffix, middle = rest.split("<MID>")
        assert middle and prefix + middle + suffix == texts[0]


def test_transform_evaluation_units_never_trained_on(tmp_path: Path) -> None:
    from remora_lsp.training.repowalker import walk_repo
    from remora_lsp.training.source import resolve_source

    shutil.copytree(REPO, tmp_path / "repo")
    scan = walk_repo(resolve_source(str(tmp_path / "repo"), work_dir=tmp_path))
    files = [f for f in scan.files if f not in scan.test_files]
    train_files, held_files = split_files(files, seed=0, fraction=0.3)
    train_units, eval_units = split_units(scan, train_files, held_files, want=50, seed=0)
    assert eval_units and train_units
    assert not {(u.path, u.qualname) for u in train_units} & {
        (u.path, u.qualname) for u in eval_units
    }
    assert all(u.path in train_files for u in train_units)
    moved = [u for u in eval_units if u.path in train_files]
    assert len(moved) <= int(0.2 * (len(train_units) + len(moved)))
    again = split_units(scan, train_files, held_files, want=50, seed=0)
    assert again == (train_units, eval_units)
