"""The training benchmark: one table per trained pack, base vs adapted, from the run reports.

`remora train` measures its adapters against the base models in the same run (held-out files
of the library, another library's code, held-out retrieval pairs and docstrings), so the run
report is the benchmark. This script prints those reports side by side — perplexity, next-line
exact match, MRR@10 per Matryoshka dimension, docstring ROUGE-L, training time, tokens/s and
pack size by part — with each adapted metric as a ratio of its base, and whether the targets
were met. Without arguments it reads ``dist/packs/*/report.json`` (what ``make packs`` writes).

    python -B benchmarks/train_packs.py [REPORT.json ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _ratio(base: Any, new: Any) -> str:
    if not isinstance(base, (int, float)) or not isinstance(new, (int, float)) or not base:
        return "—"
    return f"{new / base:.3f}×"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def rows(report: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(metric, base, adapted) rows of one report."""
    gen, emb, tr = report["generation"], report["embedding"], report["transform"]
    out: list[tuple[str, Any, Any]] = [
        (
            "perplexity, held-out own code",
            gen.get("heldout_ppl_base"),
            gen.get("heldout_ppl_adapter"),
        ),
        (
            f"perplexity, {gen.get('other_library')}",
            gen.get("other_ppl_base"),
            gen.get("other_ppl_adapter"),
        ),
        (
            f"next-line exact match (n={gen.get('next_line_samples')})",
            gen.get("next_line_em_base"),
            gen.get("next_line_em_adapter"),
        ),
    ]
    for dims, values in sorted(emb.get("mrr_at_10", {}).items(), key=lambda kv: -int(kv[0])):
        out.append((f"MRR@10 at {dims} dims", values.get("base"), values.get("tuned")))
    out.append(
        (
            f"docstring ROUGE-L (n={tr.get('samples')})",
            tr.get("rougeL_base"),
            tr.get("rougeL_adapter"),
        )
    )
    return out


def show(path: Path, report: dict[str, Any]) -> None:
    pack = report.get("pack", {})
    train = report["generation"].get("train", {})
    print(f"\n## {pack.get('name')} {pack.get('version')}  ({path})")
    print(f"{'metric':<44} {'base':>9} {'adapted':>9} {'ratio':>9}")
    for label, base, new in rows(report):
        print(f"{label:<44} {_num(base):>9} {_num(new):>9} {_ratio(base, new):>9}")
    print(
        f"training {report.get('train_seconds')} s (total {report.get('total_seconds')} s); "
        f"generation {train.get('steps')} steps, {train.get('tokens')} tokens, "
        f"{_num(train.get('tokens_per_second'))} tokens/s; "
        f"{report.get('machine', {}).get('cpus')} CPUs"
    )
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in pack.get("parts", {}).items())
    print(f"pack {pack.get('bytes', 0) / 1e6:.1f} MB: {parts}")
    targets = report.get("targets", {})
    print("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in targets.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path, help="report.json files")
    parser.add_argument("--json", type=Path, help="write the collected rows here")
    args = parser.parse_args()
    paths = args.reports or sorted((ROOT / "dist" / "packs").glob("*/report.json"))
    if not paths:
        print("no reports: run `make packs` (or remora train --report-dir DIR) first")
        return 1
    collected = {}
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        show(path, report)
        collected[str(path)] = {label: [base, new] for label, base, new in rows(report)}
    if args.json:
        args.json.write_text(json.dumps(collected, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
