"""The run report: every metric of a training run, as JSON, as Markdown, and as the pack's card.

:func:`build_report` gathers the stages' results into one dictionary whose keys are a contract
(``generation.heldout_ppl_base`` … ``train_seconds``; see ``docs/training.md``);
:func:`write_report` writes ``report.json`` and ``report.md`` into the report folder;
:func:`card` is the compact part embedded in the pack manifest; :func:`report_markdown` renders
the tables (base vs adapted, time, throughput, pack size by part).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from remora_lsp import __version__
from remora_lsp.training.options import TrainOptions
from remora_lsp.training.types import DocSection, Pair, RepoScan, Source

__all__ = ["TARGETS", "build_report", "card", "report_markdown", "targets", "write_report"]

# The targets a default-budget run is held to (docs/training.md).
TARGETS = {
    "heldout_ppl_reduction": 0.15,
    "other_ppl_max_increase": 0.03,
    "mrr64_share_of_full": 0.90,
}


def _r(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def targets(report: Mapping[str, Any]) -> dict[str, bool | None]:
    """Whether the report meets each target (``None`` when a metric is missing)."""
    gen = report.get("generation", {})
    out: dict[str, bool | None] = {}
    base, adapted = gen.get("heldout_ppl_base"), gen.get("heldout_ppl_adapter")
    out["heldout_ppl_15pct_lower"] = (
        adapted <= base * (1 - TARGETS["heldout_ppl_reduction"]) if base and adapted else None
    )
    obase, oadapted = gen.get("other_ppl_base"), gen.get("other_ppl_adapter")
    out["other_ppl_within_3pct"] = (
        oadapted <= obase * (1 + TARGETS["other_ppl_max_increase"]) if obase and oadapted else None
    )
    mrr = report.get("embedding", {}).get("mrr_at_10", {})
    dims = sorted((int(d) for d in mrr), reverse=True)
    if dims and "64" in mrr and mrr[str(dims[0])].get("tuned"):
        out["mrr64_90pct_of_full"] = (
            mrr["64"]["tuned"] >= TARGETS["mrr64_share_of_full"] * mrr[str(dims[0])]["tuned"]
        )
    else:
        out["mrr64_90pct_of_full"] = None
    return out


def build_report(
    *,
    opts: TrainOptions,
    source: Source,
    scan: RepoScan,
    sections: Sequence[DocSection],
    pairs: Sequence[Pair],
    train_files: Sequence[str],
    heldout_files: Sequence[str],
    identity: Mapping[str, str],
    embedding: Mapping[str, Any],
    generation: Mapping[str, Any],
    transform: Mapping[str, Any],
    metrics: Mapping[str, Any],
    stage_seconds: Mapping[str, float],
    total_seconds: float,
    resumed: Sequence[str],
) -> dict[str, Any]:
    """The report dictionary (``pack`` is added once the pack is written)."""
    kinds: dict[str, int] = {}
    for pair in pairs:
        kinds[pair.kind] = kinds.get(pair.kind, 0) + 1
    gen_metrics = dict(metrics.get("generation", {}))
    tr_metrics = dict(metrics.get("transform", {}))
    train_seconds = sum(
        float(part.get("seconds", 0.0)) for part in (embedding, generation, transform)
    )
    report: dict[str, Any] = {
        "remora_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": opts.seed,
        "source": {
            "spec": opts.source,
            "kind": source.kind,
            "name": source.name,
            "version": source.version,
            "license": source.license or scan.license,
            "packages": list(source.packages),
        },
        "base_model": dict(identity),
        "data": {
            "files": len(scan.files) - len(scan.test_files),
            "test_files": len(scan.test_files),
            "train_files": len(train_files),
            "heldout_files": len(heldout_files),
            "units": len(scan.units),
            "golden": len(scan.golden),
            "golden_rule": scan.golden_rule,
            "unit_reasons": dict(scan.stats),
            "doc_sections": len(sections),
            "pairs": kinds,
        },
        "embedding": {
            k: _r(v) if not isinstance(v, dict) else v
            for k, v in embedding.items()
            if k != "model_dir"
        },
        "generation": {
            **{k: _r(v) for k, v in gen_metrics.items()},
            "train": {k: _r(v) for k, v in generation.items() if k != "adapter_dir"},
            "rank": opts.rank,
            "alpha": opts.alpha,
        },
        "transform": {
            **{k: _r(v) for k, v in tr_metrics.items()},
            "train": {k: _r(v) for k, v in transform.items() if k != "adapter_dir"},
        },
        "train_seconds": round(train_seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in stage_seconds.items()},
        "total_seconds": round(total_seconds, 1),
        "resumed_stages": list(resumed),
        "budget": {
            "time_budget_s": opts.time_budget_s,
            "max_steps": opts.max_steps,
            "threads": opts.threads,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
        },
    }
    report["targets"] = targets(report)
    return report


def card(report: Mapping[str, Any]) -> dict[str, Any]:
    """The compact summary embedded in the manifest (``card:``)."""
    gen = report.get("generation", {})
    emb = report.get("embedding", {})
    tr = report.get("transform", {})
    keys = (
        "heldout_ppl_base",
        "heldout_ppl_adapter",
        "other_library",
        "other_ppl_base",
        "other_ppl_adapter",
        "next_line_em_base",
        "next_line_em_adapter",
    )
    return {
        "trained_with": f"remora {report.get('remora_version', __version__)}",
        "created": report.get("created"),
        "source": {k: report["source"][k] for k in ("name", "version", "license")},
        "base_model": report.get("base_model", {}).get("id"),
        "generation": {k: gen[k] for k in keys if gen.get(k) is not None},
        "embedding": {"mrr_at_10": emb.get("mrr_at_10", {})},
        "transform": {k: tr[k] for k in ("rougeL_base", "rougeL_adapter") if k in tr},
        "golden_rule": report.get("data", {}).get("golden_rule"),
        "train_seconds": report.get("train_seconds"),
    }


def _pct(base: Any, new: Any) -> str:
    if not isinstance(base, (int, float)) or not isinstance(new, (int, float)) or not base:
        return ""
    return f"{(new - base) / base * 100:+.1f}%"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def report_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown tables."""
    gen = report.get("generation", {})
    emb = report.get("embedding", {})
    tr = report.get("transform", {})
    src = report.get("source", {})
    data = report.get("data", {})
    pack = report.get("pack", {})
    lines = [
        f"# Training report: {pack.get('name', src.get('name'))} {pack.get('version', '')}",
        "",
        f"Source: {src.get('kind')} `{src.get('spec')}` ({src.get('name')} {src.get('version')}, "
        f"licence {src.get('license') or 'unknown'}). Base model: "
        f"`{report.get('base_model', {}).get('id')}`. Seed {report.get('seed')}.",
        "",
        "## Generation adapter (held-out files of the library)",
        "",
        "| metric | base | adapter | change |",
        "|---|---|---|---|",
    ]
    for label, key in (
        ("perplexity, own library (held out)", "heldout_ppl"),
        (f"perplexity, other library ({gen.get('other_library') or 'none'})", "other_ppl"),
        (f"next-line exact match (n={gen.get('next_line_samples', 0)})", "next_line_em"),
    ):
        base, new = gen.get(f"{key}_base"), gen.get(f"{key}_adapter")
        lines.append(f"| {label} | {_fmt(base)} | {_fmt(new)} | {_pct(base, new)} |")
    train = gen.get("train", {})
    lines += [
        "",
        f"Trained {train.get('steps', 0)} steps, {train.get('tokens', 0)} tokens in "
        f"{_fmt(train.get('seconds'))} s ({_fmt(train.get('tokens_per_second'))} tokens/s), "
        f"rank {gen.get('rank')}, alpha {gen.get('alpha')}, stopped by "
        f"{train.get('stopped_by', '?')}.",
        "",
        "## Search embedding (MRR@10 on held-out pairs)",
        "",
        "| dims | base | tuned | change |",
        "|---|---|---|---|",
    ]
    mrr = emb.get("mrr_at_10", {})
    for dim in sorted(mrr, key=lambda d: -int(d)):
        base, new = mrr[dim].get("base"), mrr[dim].get("tuned")
        lines.append(f"| {dim} | {_fmt(base)} | {_fmt(new)} | {_pct(base, new)} |")
    lines += [
        "",
        f"{emb.get('train_pairs', 0)} training pairs, {emb.get('eval_pairs', 0)} held out, "
        f"{emb.get('steps', 0)} steps in {_fmt(emb.get('seconds'))} s.",
        "",
        "## Transform adapter (docstrings of held-out functions)",
        "",
        "| metric | base | adapter | change |",
        "|---|---|---|---|",
        f"| ROUGE-L (n={tr.get('samples', 0)}) | {_fmt(tr.get('rougeL_base'))} | "
        f"{_fmt(tr.get('rougeL_adapter'))} | "
        f"{_pct(tr.get('rougeL_base'), tr.get('rougeL_adapter'))} |",
        "",
        "## Data",
        "",
        f"{data.get('files')} code files ({data.get('train_files')} for training, "
        f"{data.get('heldout_files')} held out), {data.get('units')} units, "
        f"{data.get('golden')} golden snippets ({data.get('golden_rule')}), "
        f"{data.get('doc_sections')} documentation sections, pairs {data.get('pairs')}.",
        "",
        "## Time and size",
        "",
        "| stage | seconds |",
        "|---|---|",
    ]
    for stage, seconds in report.get("stage_seconds", {}).items():
        lines.append(f"| {stage} | {seconds} |")
    lines.append(f"| **training (embedding + adapters)** | {report.get('train_seconds')} |")
    lines.append(f"| **total** | {report.get('total_seconds')} |")
    parts = pack.get("parts", {})
    if parts:
        lines += ["", "| pack part | bytes |", "|---|---|"]
        for part, size in parts.items():
            lines.append(f"| {part} | {size:,} |")
        lines.append(f"| **archive** | {pack.get('bytes', 0):,} |")
    checks = report.get("targets", {})
    if checks:
        lines += ["", "## Targets", ""]
        for name, ok in checks.items():
            mark = "n/a" if ok is None else ("met" if ok else "NOT met")
            lines.append(f"- {name}: {mark}")
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "report.json", folder / "report.md"
    for path, text in (
        (json_path, json.dumps(report, indent=2, sort_keys=False) + "\n"),
        (md_path, report_markdown(report)),
    ):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return json_path, md_path
