"""Two-stage index: recall@10 against exact search, latency, speed-up, fast-tier bytes.

Runs, each against the in-run baseline of **exact full-dimension search** (FAISS
``IndexFlatIP`` over float32 vectors, one thread — the fastest exact search there is):

1. **synthetic**, 1,000,000 × 384 (``--quick``: 100,000): clustered vectors with decaying
   per-dimension variance (:mod:`remora_lsp.retrieval.synthetic` documents the generation);
   queries are stored vectors plus noise;
2. **real MiniLM** embeddings (the default model, 384-d) of 12-line windows of the Python code
   installed in this environment — as many as ``--real`` (default 20,000; embedding runs at
   ~30 windows/s here, so the vectors are cached in ``--cache``); queries are held-out windows.
   The fast tier is measured on the leading dimensions as they are, and after a PCA rotation,
   which gives an untrained-for-Matryoshka model informative leading dimensions (the effect a
   Matryoshka loss has);
3. optionally **real static** embeddings (``--static DIR``, a model from
   ``embedding.distill_static``), 256-d, up to 1,000,000 windows;
4. **retrieval quality** (``--retrieval``, on by default): MRR@10 of docstring → function
   retrieval on scikit-learn (held out: no model here was tuned on it) at 64/128/256/full
   dims — MiniLM (the default), the static table distilled from it, and the hashed TF-IDF
   lexical embedder — in the same run.

Each run sweeps the fast tier (binary sign bits of 64/128/256 leading dims, int8 of 32/64
dims, binary 256 after PCA) × the re-rank depth (100/300/1000/3000) and reports recall@10,
p50/p99 latency of single queries and the speed-up over exact search. The headline keys are
the default configuration (binary 256 + re-rank 1000) on the largest synthetic run.

    .venv/bin/python benchmarks/index_bench.py [--quick] [--json OUT] [--real N] [--static DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from remora_lsp.retrieval.index import Chunk, FastTier, VectorIndex
from remora_lsp.retrieval.synthetic import clustered_vectors, near_queries

DEFAULT = ("binary", 256, "leading", 1000)
TIERS = [
    FastTier("binary", 64),
    FastTier("binary", 128),
    FastTier("binary", 256),
    FastTier("int8", 32),
    FastTier("int8", 64),
    FastTier("binary", 256, "pca"),
]
DEPTHS = [100, 300, 1000, 3000]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def exact_baseline(x: np.ndarray, queries: np.ndarray) -> tuple[list[set[int]], list[float]]:
    """Top-10 truth and per-query latency of exact float32 inner-product search."""
    import faiss

    faiss.omp_set_num_threads(1)
    flat = faiss.IndexFlatIP(x.shape[1])
    for lo in range(0, len(x), 100_000):
        flat.add(np.ascontiguousarray(x[lo : lo + 100_000], dtype=np.float32))
    truth: list[set[int]] = []
    times: list[float] = []
    for q in queries:
        t = time.perf_counter()
        _, ids = flat.search(q[None, :], 10)
        times.append((time.perf_counter() - t) * 1000)
        truth.append(set(int(i) for i in ids[0]))
    return truth, times


def sweep(
    name: str, x: np.ndarray, queries: np.ndarray, tiers: list[FastTier], depths: list[int]
) -> dict[str, Any]:
    n, dims = x.shape
    truth, exact_ms = exact_baseline(x, queries)
    exact_p50 = percentile(exact_ms, 0.5)
    chunks = [Chunk("f", i, i, "k", "l") for i in range(n)]
    rows: list[dict[str, Any]] = []
    for tier in tiers:
        if tier.dims > dims:
            continue
        t = time.perf_counter()
        index = VectorIndex.build(x, chunks, model_id=name, fast=tier)
        build_s = time.perf_counter() - t
        index.search(queries[0], 10)  # warm the searcher
        for depth in depths:
            if depth > n:
                continue
            times, recall = [], []
            for q, true in zip(queries, truth, strict=True):
                t = time.perf_counter()
                hits = index.search(q, 10, rerank=depth)
                times.append((time.perf_counter() - t) * 1000)
                recall.append(len({h.row for h in hits} & true) / 10)
            p50 = percentile(times, 0.5)
            rows.append(
                {
                    "fast_tier": f"{tier.kind}-{tier.dims}"
                    + ("-pca" if tier.projection == "pca" else ""),
                    "kind": tier.kind,
                    "dims": tier.dims,
                    "projection": tier.projection,
                    "rerank": depth,
                    "recall_at_10": round(float(np.mean(recall)), 4),
                    "p50_ms": round(p50, 3),
                    "p99_ms": round(percentile(times, 0.99), 3),
                    "speedup_vs_exact": round(exact_p50 / p50, 1),
                    "fast_tier_bytes_per_vector": tier.bytes_per_vector,
                    "fast_tier_mib": round(index.fast_tier_bytes / 2**20, 1),
                    "build_s": round(build_s, 1),
                }
            )
            print(
                f"  {name:10s} {rows[-1]['fast_tier']:16s} rerank {depth:5d}  recall "
                f"{rows[-1]['recall_at_10']:.3f}  p50 {p50:7.3f} ms  "
                f"x{rows[-1]['speedup_vs_exact']}",
                flush=True,
            )
        del index
    return {
        "n_vectors": n,
        "dims": dims,
        "queries": len(queries),
        "exact_p50_ms": round(exact_p50, 2),
        "exact_p99_ms": round(percentile(exact_ms, 0.99), 2),
        "exact_bytes_per_vector": dims * 4,
        "curve": rows,
    }


def code_windows(limit: int, seed: int = 0) -> list[str]:
    """12-line windows (stride 8) of the Python files installed beside numpy, shuffled."""
    site = Path(np.__file__).resolve().parents[1]
    windows: list[str] = []
    for path in sorted(site.glob("*/**/*.py")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for i in range(0, max(1, len(lines) - 6), 8):
            text = "\n".join(lines[i : i + 12]).strip()
            if len(text) > 40:
                windows.append(text)
    random.Random(seed).shuffle(windows)
    return windows[:limit]


def real_vectors(
    kind: str, n: int, cache: Path, static_dir: Path | None, *, cached_only: bool = False
) -> np.ndarray | None:
    """``n`` real embeddings of code windows: from the cache (any cached run at least that
    large) or embedded now and cached."""
    cache.mkdir(parents=True, exist_ok=True)
    for found in sorted(cache.glob(f"{kind}-*.f16"), key=lambda p: int(p.stem.split("-")[1])):
        rows = int(found.stem.split("-")[1])
        if rows >= n:
            data = np.fromfile(found, dtype=np.float16).reshape(rows, -1)
            return data[:n].astype(np.float32)
    if cached_only:
        return None
    path = cache / f"{kind}-{n}.f16"
    from remora_lsp.retrieval.embedding import StaticEmbedder, load_embedder

    if kind == "static":
        if static_dir is None:
            return None
        embedder: Any = StaticEmbedder(static_dir)
    else:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        embedder = load_embedder("default")
    texts = code_windows(n)
    out = np.zeros((len(texts), embedder.dims), np.float32)
    t = time.perf_counter()
    for lo in range(0, len(texts), 1000):
        out[lo : lo + 1000] = embedder.embed_documents(texts[lo : lo + 1000])
        print(
            f"  embedding {kind}: {lo + 1000}/{len(texts)} ({time.perf_counter() - t:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    out.astype(np.float16).tofile(path)
    return out


def sklearn_pairs(limit: int) -> tuple[list[str], list[str]]:
    """(docstring first paragraphs, function code without the docstring) of scikit-learn."""
    import ast

    root = Path(np.__file__).resolve().parents[1] / "sklearn"
    queries: list[str] = []
    documents: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if "/tests/" in path.as_posix():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        lines = text.splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc or len(doc) < 40 or node.name.startswith("_") or not node.body:
                continue
            first = node.body[0]
            body = (
                lines[node.lineno - 1 : first.lineno - 1]
                + lines[first.end_lineno or 0 : node.end_lineno]
            )
            code = "\n".join(body).strip()
            if len(code) < 40:
                continue
            queries.append(doc.split("\n\n", 1)[0].strip())
            documents.append(code[:2000])
    order = list(range(len(queries)))
    random.Random(0).shuffle(order)
    order = order[:limit]
    return [queries[i] for i in order], [documents[i] for i in order]


def mrr_at_10(q: np.ndarray, d: np.ndarray) -> float:
    scores = q @ d.T
    ranks = (scores > scores[np.arange(len(q)), np.arange(len(q))][:, None]).sum(axis=1)
    return float(np.mean([1.0 / (r + 1) if r < 10 else 0.0 for r in ranks]))


def retrieval_quality(n: int, cache: Path, static_dir: Path | None) -> dict[str, Any]:
    from remora_lsp.retrieval.embedding import StaticEmbedder, load_embedder, truncate
    from remora_lsp.retrieval.lexical import LexicalEmbedder

    queries, documents = sklearn_pairs(n)
    models: dict[str, Any] = {"minilm (default)": load_embedder("default")}
    if static_dir is not None and static_dir.is_dir():
        models["static-256 (distilled)"] = StaticEmbedder(static_dir)
    models["lexical-384 (tf-idf)"] = LexicalEmbedder.fit(documents, dims=384)
    out: dict[str, Any] = {"pairs": len(queries), "corpus": "scikit-learn", "models": {}}
    for name, model in models.items():
        t = time.perf_counter()
        dv = model.embed_documents(documents)
        qv = model.embed_queries(queries)
        per_s = (len(documents) + len(queries)) / (time.perf_counter() - t)
        row: dict[str, Any] = {"chunks_per_s": round(per_s)}
        for dims in (64, 128, 256, model.dims):
            if dims <= model.dims:
                key = "full" if dims == model.dims else str(dims)
                row[key] = round(mrr_at_10(truncate(qv, dims), truncate(dv, dims)), 3)
        out["models"][name] = row
        print(
            f"  retrieval {name:24s} " + "  ".join(f"{k}: {v}" for k, v in row.items()), flush=True
        )
    return out


def pick(run: dict[str, Any], kind: str, dims: int, projection: str, depth: int) -> dict[str, Any]:
    for row in run["curve"]:
        if (row["kind"], row["dims"], row["projection"], row["rerank"]) == (
            kind,
            dims,
            projection,
            depth,
        ):
            return row
    return run["curve"][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k synthetic, fewer queries")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--real", type=int, default=None, help="real MiniLM windows to index (+ query windows)"
    )
    parser.add_argument("--static", type=Path, default=None, help="a distilled static model")
    parser.add_argument("--static-n", type=int, default=1_000_000)
    parser.add_argument("--retrieval", type=int, default=None, help="docstring pairs (0: skip)")
    parser.add_argument(
        "--distill", action="store_true", help="distil the static model into the cache (~1 min)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "remora-bench",
    )
    args = parser.parse_args()
    cached_static = args.cache / "static-256"
    if args.static is None and args.distill and not cached_static.is_dir():
        from remora_lsp.retrieval.embedding import default_model_path, distill_static

        distill_static(default_model_path(), cached_static, dims=256, corpus=code_windows(3000))
    if args.static is None and cached_static.is_dir():
        args.static = cached_static
    if args.quick:
        args.static_n = min(args.static_n, 100_000)
    n_synth = 100_000 if args.quick else 1_000_000
    n_queries = 50 if args.quick else 200
    real_n = args.real if args.real is not None else (5_000 if args.quick else 20_000)
    runs: dict[str, Any] = {}
    print(f"synthetic {n_synth} x 384 (generation: remora_lsp.retrieval.synthetic)")
    x = clustered_vectors(n_synth, 384, seed=0)
    q = near_queries(x, n_queries, seed=1)
    tiers = TIERS if not args.quick else [TIERS[1], TIERS[2], TIERS[4]]
    depths = DEPTHS if not args.quick else [100, 1000]
    runs["synthetic"] = sweep("synthetic", x, q, tiers, depths)
    del x
    if real_n:
        # --quick only uses vectors cached by an earlier full run (embedding is ~30/s here)
        vectors = real_vectors(
            "minilm", real_n + n_queries, args.cache, None, cached_only=args.quick
        )
        if vectors is not None:
            print(f"real MiniLM {real_n} x 384 (held-out windows as queries)")
            runs["real_minilm"] = sweep(
                "minilm",
                vectors[:real_n],
                vectors[real_n:],
                tiers,
                [d for d in depths if d < real_n],
            )
    if args.static is not None:
        vectors = real_vectors("static", args.static_n, args.cache, args.static)
        if vectors is not None:
            n = len(vectors) - n_queries
            print(f"real static {n} x {vectors.shape[1]}")
            static_tiers = [t for t in tiers if t.dims <= vectors.shape[1]]
            runs["real_static"] = sweep("static", vectors[:n], vectors[n:], static_tiers, depths)
    pairs = args.retrieval if args.retrieval is not None else (300 if args.quick else 1000)
    quality = retrieval_quality(pairs, args.cache, args.static) if pairs else None
    head = pick(runs["synthetic"], *DEFAULT)
    report = {
        "n_vectors": runs["synthetic"]["n_vectors"],
        "recall_at_10": head["recall_at_10"],
        "speedup_vs_exact": head["speedup_vs_exact"],
        "fast_tier_bytes_per_vector": head["fast_tier_bytes_per_vector"],
        "p50_ms": head["p50_ms"],
        "p99_ms": head["p99_ms"],
        "default": {"fast_tier": "binary-256", "rerank": DEFAULT[3]},
        "quick": args.quick,
        "runs": runs,
        "retrieval_quality": quality,
    }
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def print_table(report: dict[str, Any]) -> None:
    quality = report.get("retrieval_quality")
    if quality:
        print(f"\nMRR@10 docstring -> function, {quality['pairs']} {quality['corpus']} pairs")
        print(f"  {'model':26s}{'64':>7s}{'128':>7s}{'256':>7s}{'full':>7s}{'chunks/s':>10s}")
        for name, row in quality["models"].items():
            cells = "".join(f"{row.get(k, '-')!s:>7s}" for k in ("64", "128", "256", "full"))
            print(f"  {name:26s}{cells}{row['chunks_per_s']:>10d}")
    print()
    print(
        f"default (binary-256 fast tier, re-rank {report['default']['rerank']}) on "
        f"{report['n_vectors']:,} synthetic vectors: recall@10 {report['recall_at_10']}, "
        f"p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
        f"{report['speedup_vs_exact']}x exact, {report['fast_tier_bytes_per_vector']} B/vector"
    )
    for name, run in report["runs"].items():
        print(
            f"\n{name}: {run['n_vectors']:,} x {run['dims']}, exact flat float32 p50 "
            f"{run['exact_p50_ms']} ms ({run['exact_bytes_per_vector']} B/vector)"
        )
        print(
            f"  {'fast tier':18s}{'B/vec':>6s}{'rerank':>8s}{'recall@10':>11s}{'p50 ms':>9s}"
            f"{'p99 ms':>9s}{'speed-up':>10s}"
        )
        for row in run["curve"]:
            print(
                f"  {row['fast_tier']:18s}{row['fast_tier_bytes_per_vector']:>6d}"
                f"{row['rerank']:>8d}"
                f"{row['recall_at_10']:>11.3f}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}"
                f"{row['speedup_vs_exact']:>9.1f}x"
            )


if __name__ == "__main__":
    main()
