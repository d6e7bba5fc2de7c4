"""Hover latency with a large usage index: in-process and through a real stdio LSP session.

A ``torch`` pack is built in a temporary ``REMORA_HOME`` whose usage index holds at least
100,000 real usage windows (``--quick``: 10,000) mined from installed code that uses torch
(torch, transformers, vllm, peft, ...; every type of the torch family and every builtin, no
per-type cap, so the search really scans them). Hovers land on untyped parameters of
functions in held-out files that import torch (annotations stripped).

* **in-process**: ``SemanticService.hover`` — analysis, usage window, lexical embedding,
  two-stage search, vote; the baseline in the same run is the same hover answered from the
  syntax alone (an annotated name), i.e. the cost of everything but the index.
* **stdio** (``--server``): a scripted editor starts ``remora serve`` on that home, opens the
  file and sends ``textDocument/hover`` requests; the baseline is a ``remora/listPacks``
  round trip on the same connection. ``wired`` says whether the hover text carried an
  inferred type (the server's hover feature must use ``SemanticService``).

    .venv/bin/python benchmarks/hover_latency.py [--quick] [--json OUT] [--server]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from remora_lsp.core.documents import DocumentStore
from remora_lsp.core.languages import new_parser
from remora_lsp.packs.manifest import parse_manifest
from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.retrieval.build import (
    USAGES,
    build_usage_index,
    collect_pieces,
    iter_source_files,
    select_usage_rows,
)
from remora_lsp.retrieval.chunkers import analyse_python
from remora_lsp.retrieval.service import SemanticService

MINED = ["transformers", "peft", "accelerate", "sentence_transformers", "torch", "vllm"]
HELD_OUT = ["compressed_tensors", "einops", "xgrammar"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name.startswith("__init__.") else None


def build_pack(home: Path, target: int) -> tuple[VerifiedPack, int]:
    rows: list[Any] = []
    for name in MINED:
        root = package_dir(name)
        if root is None:
            continue
        files = iter_source_files(root)
        for lo in range(0, len(files), 200):
            pieces = collect_pieces(files[lo : lo + 200], kinds=frozenset({"usage"}))
            rows += select_usage_rows(
                pieces, family=frozenset({"torch"}), per_label=10**9, strict_classes=False
            )
            if len(rows) >= target:
                break
        if len(rows) >= target:
            break
    folder = home / "packs" / "torch" / "0.1.0"
    build_usage_index(rows, folder / "embeddings" / USAGES, name="torch", calibrate=False)
    (folder / "manifest.yaml").write_text(
        "format: 1\nname: torch\nversion: 0.1.0\ntriggers: {python_imports: [torch]}\n"
    )
    manifest = parse_manifest((folder / "manifest.yaml").read_text())
    return VerifiedPack(folder, manifest, None), len(rows)


def hover_targets(limit: int) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """(source, [(byte offset, line, character)]) of untyped parameters in held-out files."""
    parser = new_parser("python")
    out: list[tuple[str, list[tuple[int, int, int]]]] = []
    total = 0
    for name in HELD_OUT:
        root = package_dir(name)
        if root is None:
            continue
        for path in iter_source_files(root):
            source = path.read_bytes()
            if path.suffix != ".py" or b"import torch" not in source:
                continue
            tree = parser.parse(source)
            analysis = analyse_python(tree, source)
            spots = []
            for scope in analysis.scopes():
                for binding in analysis.bindings(scope):
                    if binding.how == "param" and binding.label is None:
                        node = binding.node
                        spots.append((node.start_byte, *node.start_point))
            if spots:
                text = source.decode("utf-8", "replace")
                # LSP characters are UTF-16; these files are ASCII where it matters
                out.append((text, spots[:20]))
                total += len(spots[:20])
            if total >= limit:
                return out
    return out


def in_process(pack: VerifiedPack, targets: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    service = SemanticService()
    note = service.pack_loaded(pack)
    if note:
        raise SystemExit(note)
    store = DocumentStore()
    times: list[float] = []
    syntax: list[float] = []
    answered = 0
    for i, (text, spots) in enumerate(targets):
        doc = store.open(f"file:///held/{i}.py", "python", 1, text)
        service.hover(doc, spots[0][0], ["torch"])  # warm caches for this document's imports
        for offset, _, _ in spots:
            t = time.perf_counter()
            result = service.hover(doc, offset, ["torch"])
            times.append((time.perf_counter() - t) * 1000)
            answered += result is not None
        annotated = "import torch\ndef f(x: torch.Tensor):\n    return x\n"
        adoc = store.open(f"file:///held/a{i}.py", "python", 1, annotated)
        t = time.perf_counter()
        service.hover(adoc, annotated.index("x:"), ["torch"])
        syntax.append((time.perf_counter() - t) * 1000)
    return {
        "hovers": len(times),
        "answered": answered,
        "p50_ms": round(percentile(times, 0.5), 2),
        "p99_ms": round(percentile(times, 0.99), 2),
        "mean_ms": round(statistics.mean(times), 2),
        "syntax_only_p50_ms": round(percentile(syntax, 0.5), 2),
    }


async def over_stdio(home: Path, targets: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    from remora_lsp.server.editor import ScriptedEditor

    project = home.parent / "project"
    project.mkdir(exist_ok=True)
    env = {"REMORA_HOME": str(home), "REMORA_ALLOW_UNSIGNED": "1"}
    editor = ScriptedEditor(project, env=env)
    await editor.start()
    times: list[float] = []
    base: list[float] = []
    typed = 0
    try:
        for i, (text, spots) in enumerate(targets):
            rel = f"held_{i}.py"
            (project / rel).write_text(text)
            uri = editor.open(rel, text)
            if i == 0:
                await editor.wait_state("torch", "ready", timeout=120)
            for _, line, col in spots:
                t = time.perf_counter()
                shown = await editor.hover(uri, line, col)
                times.append((time.perf_counter() - t) * 1000)
                typed += bool(shown and ("confidence" in shown.lower() or "torch." in shown))
                t = time.perf_counter()
                await editor.list_packs()
                base.append((time.perf_counter() - t) * 1000)
            editor.close(uri)
    finally:
        await editor.stop()
    return {
        "hovers": len(times),
        "wired": typed > 0,
        "typed_answers": typed,
        "p50_ms": round(percentile(times, 0.5), 2),
        "p99_ms": round(percentile(times, 0.99), 2),
        "list_packs_p50_ms": round(percentile(base, 0.5), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 chunks, fewer hovers")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--server", action="store_true", help="also measure over stdio")
    args = parser.parse_args()
    target = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t = time.perf_counter()
        pack, chunks = build_pack(home, target)
        build_s = time.perf_counter() - t
        targets = hover_targets(60 if args.quick else 300)
        local = in_process(pack, targets)
        report: dict[str, Any] = {
            "chunks": chunks,
            "build_s": round(build_s, 1),
            "in_process": local,
            "p50_ms": local["p50_ms"],
            "p99_ms": local["p99_ms"],
            "path": "in-process",
        }
        if args.server:
            remote = asyncio.run(over_stdio(home, targets))
            report["stdio"] = remote
            if remote["wired"]:
                report.update(p50_ms=remote["p50_ms"], p99_ms=remote["p99_ms"], path="stdio")
    print(f"usage index: {report['chunks']:,} chunks (built in {report['build_s']} s)")
    print(
        f"in-process hover: p50 {local['p50_ms']} ms, p99 {local['p99_ms']} ms over "
        f"{local['hovers']} hovers ({local['answered']} answered); syntax-only hover p50 "
        f"{local['syntax_only_p50_ms']} ms"
    )
    if "stdio" in report:
        r = report["stdio"]
        print(
            f"stdio hover: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms (remora/listPacks round trip "
            f"p50 {r['list_packs_p50_ms']} ms); inferred types shown: {r['wired']}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
