"""Parsing and import-detection cost on a large real Python file.

Takes ``pydantic_core/core_schema.py`` (over 5,000 lines, installed with pydantic, which Remora
depends on) or, if that is missing or short, concatenates installed modules until 5,000 lines,
and measures: a full tree-sitter parse; a one-line edit through ``DocumentStore.change`` (byte
splice, line-index update, ``Tree.edit``, incremental reparse, changed ranges); a batch of ten
one-line edits parsed once versus ten single-edit batches; full import detection; and
``ImportTracker.update`` after a one-line edit. Prints median and p90 milliseconds and each
median as a fraction of the full parse.

    .venv/bin/python benchmarks/parse_bench.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from remora_lsp.core.documents import ChangeResult, DocumentStore, TextChange
from remora_lsp.core.imports import ImportTracker, detect_imports
from remora_lsp.core.languages import new_parser

T = TypeVar("T")

MIN_LINES = 5_000
URI = "file:///bench/big.py"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def big_source() -> tuple[str, str]:
    """(description, text) of a real Python file of at least MIN_LINES lines."""
    first = module_file("pydantic_core.core_schema")
    if first is not None and first.suffix == ".py":
        text = first.read_text(encoding="utf-8")
        if text.count("\n") >= MIN_LINES:
            return str(first), text
    parts: list[str] = []
    names: list[str] = []
    for name in ("pydantic.main", "pydantic.types", "pydantic.json_schema", "typing_extensions",
                 "rich.console", "click.core", "yaml.scanner"):  # fmt: skip
        path = module_file(name)
        if path is None or path.suffix != ".py":
            continue
        parts.append(path.read_text(encoding="utf-8"))
        names.append(path.name)
        if sum(p.count("\n") for p in parts) >= MIN_LINES:
            break
    text = "\n".join(parts)
    if text.count("\n") < MIN_LINES:
        sys.exit(f"could not assemble {MIN_LINES} lines of installed Python source")
    return "concatenation of " + ", ".join(names), text


def timed(repeats: int, setup: Callable[[int], T], run: Callable[[T], object]) -> list[float]:
    """Milliseconds of ``run(setup(i))`` for each repeat; setup time is not counted."""
    out: list[float] = []
    for i in range(repeats):
        arg = setup(i)
        start = time.perf_counter()
        run(arg)
        out.append((time.perf_counter() - start) * 1000)
    return out


def edit_line(text: str) -> tuple[int, int]:
    """A line in the middle of the file that holds code, and its length in UTF-16 units."""
    lines = text.splitlines()
    middle = len(lines) // 2
    for offset in range(len(lines)):
        line = lines[(middle + offset) % len(lines)]
        if line.strip() and not line.strip().startswith(("#", '"', "'")):
            number = (middle + offset) % len(lines)
            return number, len(line.encode("utf-16-le")) // 2
    return middle, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 5 s)")
    parser.add_argument("--json", metavar="OUT", type=Path, help="also write the figures here")
    args = parser.parse_args()
    repeats = 16 if args.quick else 80  # even: every phase ends with the text it started with

    description, text = big_source()
    data = text.encode()
    ts_parser = new_parser("python")
    line, width = edit_line(text)
    comment = "  # edited"
    grow = TextChange(((line, width), (line, width)), comment)
    shrink = TextChange(((line, width), (line, width + len(comment))), "")

    # Warm up: grammar loading, query compilation.
    tree = ts_parser.parse(data)
    detect_imports(tree, data, "python")

    results: dict[str, list[float]] = {}
    results["full parse"] = timed(repeats, lambda _: None, lambda _: ts_parser.parse(data))

    store = DocumentStore(max_bytes=64 * 1024 * 1024)
    store.open(URI, "python", 1, text)
    version = iter(range(2, 10**9))
    results["one-line edit (DocumentStore.change)"] = timed(
        repeats,
        lambda i: shrink if i % 2 else grow,
        lambda change: store.change(URI, next(version), [change]),
    )

    # Ten one-line edits on ten different lines: one batch parsed once vs ten batches.
    store.open(URI, "python", 1, text)
    lines = text.splitlines()
    targets = [line + 7 * k for k in range(10) if line + 7 * k < len(lines)]
    ten_grow = [TextChange(((t, 0), (t, 0)), "#") for t in targets]
    ten_shrink = [TextChange(((t, 0), (t, 1)), "") for t in targets]

    def batch(changes: Sequence[TextChange]) -> None:
        store.change(URI, next(version), changes)

    def singles(changes: Sequence[TextChange]) -> None:
        for change in changes:
            store.change(URI, next(version), [change])

    results["10 edits, one batch (1 parse)"] = timed(
        repeats, lambda i: ten_shrink if i % 2 else ten_grow, batch
    )
    results["10 edits, 10 batches (10 parses)"] = timed(
        repeats, lambda i: ten_shrink if i % 2 else ten_grow, singles
    )

    document = store.get(URI)
    assert document is not None and document.tree is not None
    tree = document.tree
    results["full import detection"] = timed(
        repeats,
        lambda _: None,
        lambda _: detect_imports(tree, document.text, "python", line_index=document.line_index),
    )

    tracker = ImportTracker()
    tracker.reset(store.open(URI, "python", 1, text))
    scanned: list[int] = []

    def change_for_tracker(i: int) -> ChangeResult:
        return store.change(URI, next(version), [shrink if i % 2 else grow])

    def update(result: ChangeResult) -> None:
        tracker.update(result)
        scanned.append(tracker.last_scan.scanned_bytes)

    results["ImportTracker.update after one-line edit"] = timed(repeats, change_for_tracker, update)
    final = store.get(URI)
    assert final is not None and final.tree is not None
    assert tracker.imports == tuple(detect_imports(final.tree, final.text, "python"))

    base = statistics.median(results["full parse"])
    rows = [
        {
            "operation": name,
            "median_ms": round(statistics.median(values), 3),
            "p90_ms": round(percentile(values, 0.9), 3),
            "vs_full_parse": round(statistics.median(values) / base, 4),
        }
        for name, values in results.items()
    ]
    report = {
        "file": description,
        "lines": text.count("\n") + 1,
        "bytes": len(data),
        "imports": len(tracker.imports),
        "repeats": repeats,
        "tracker_scanned_bytes_median": statistics.median(scanned),
        "python": sys.version.split()[0],
        "results": rows,
    }
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


def print_table(report: dict[str, object]) -> None:
    rows = report["results"]
    assert isinstance(rows, list)
    print(
        f"{report['file']}: {report['lines']} lines, {report['bytes']} bytes, "
        f"{report['imports']} imports, {report['repeats']} repeats"
    )
    header = f"{'operation':<44} {'median ms':>10} {'p90 ms':>10} {'vs full parse':>14}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['operation']:<44} {row['median_ms']:>10.3f} {row['p90_ms']:>10.3f} "
            f"{row['vs_full_parse']:>14.3f}"
        )
    print(f"ImportTracker re-queried a median of {report['tracker_scanned_bytes_median']} bytes")


if __name__ == "__main__":
    main()
