"""Usage-based type inference on real code that the index never saw, through the hover path.

For each pack (fastapi, pydantic) a usage index is built in this run from installed real code:
the library itself plus projects that use it (the *training* packages below). The evaluation
takes *other* installed projects that import the library (the *held-out* packages), finds
every parameter annotated with a type of the library's family (or a builtin), strips **all**
annotations of that function (parameters and return), re-parses the file and asks
``SemanticService.hover`` — the exact path the editor's hover takes — for the parameter's
type. A case is right when the answer equals the annotation's normalised label.

Reported per pack, for the library's own types (the headline) and for builtins: top-1, top-3,
coverage and precision at the default confidence threshold, the slice of parameters whose
name is uncommon in the training rows (fewer than 3 rows with that name: usage has to carry
the answer), and two in-run baselines: always the most frequent library type of the training
rows, and jedi's own inference where it answers (jedi is optional: ``pip install jedi``).

    .venv/bin/python benchmarks/type_inference.py [--quick] [--json OUT] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
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
    library_family,
    select_usage_rows,
)
from remora_lsp.retrieval.chunkers import analyse_python, module_name_for
from remora_lsp.retrieval.exports import default_resolver
from remora_lsp.retrieval.index import label_root
from remora_lsp.retrieval.service import SemanticService, SemanticSettings
from remora_lsp.retrieval.types import DEFAULT_THRESHOLD

PACKS: dict[str, dict[str, list[str]]] = {
    "fastapi": {
        "train": [
            "fastapi",
            "starlette",
            "sse_starlette",
            "prometheus_fastapi_instrumentator",
            "fastapi_cli",
            "fastapi_cloud_cli",
            "model_hosting_container_standards",
            "mcp",
            "mistral_common",
        ],
        "held_out": ["vllm"],
    },
    "pydantic": {
        "train": [
            "pydantic",
            "pydantic_settings",
            "pydantic_extra_types",
            "fastapi",
            "fastapi_cloud_cli",
            "mcp",
            "model_hosting_container_standards",
            "anthropic",
            "compressed_tensors",
            "mistral_common",
        ],
        "held_out": ["openai", "vllm", "lmformatenforcer", "xgrammar"],
    },
}


@dataclass
class Case:
    pack: str
    file: str
    line: int
    name: str
    truth: str
    library: bool
    uncommon: bool
    predicted: str | None = None
    top3: tuple[str, ...] = ()
    confidence: float = 0.0
    above: bool = False
    jedi: str | None = None


def package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name.startswith("__init__.") else None


def build_pack(
    name: str, train: list[str], folder: Path
) -> tuple[VerifiedPack, Counter[str], list[Any]]:
    sources = [p for p in (package_dir(n) for n in train) if p is not None]
    pieces = collect_pieces(sources, kinds=frozenset({"usage"}))
    rows = select_usage_rows(pieces, family=library_family(name), per_builtin=150)
    build_usage_index(rows, folder / "embeddings" / USAGES, name=name)
    (folder / "manifest.yaml").write_text(
        f"format: 1\nname: {name}\nversion: 0.1.0\ntriggers: {{python_imports: [{name}]}}\n"
    )
    manifest = parse_manifest((folder / "manifest.yaml").read_text())
    names = Counter(p.chunk.name for p in rows)
    return VerifiedPack(folder, manifest, None), names, rows


def strip_function(source: bytes, fn: Any, offset: int) -> tuple[bytes, int]:
    """``source`` without any parameter or return annotation of function node ``fn``, and
    where byte ``offset`` moved to."""
    cuts: list[tuple[int, int]] = []
    params = fn.child_by_field_name("parameters")
    for p in params.named_children if params is not None else []:
        annotation = p.child_by_field_name("type")
        if annotation is None:
            continue
        name = p.child_by_field_name("name") or next(
            (c for c in p.named_children if c.type == "identifier"), None
        )
        if name is not None:
            cuts.append((name.end_byte, annotation.end_byte))
    returns = fn.child_by_field_name("return_type")
    if returns is not None:
        arrow = returns.prev_sibling
        start = arrow.start_byte if arrow is not None and arrow.type == "->" else returns.start_byte
        cuts.append((start, returns.end_byte))
    out = source
    for a, b in sorted(cuts, reverse=True):
        out = out[:a] + out[b:]
    moved = offset - sum(b - a for a, b in cuts if b <= offset)
    return out, moved


def evaluation_cases(
    pack: str, held_out: list[str], names: Counter[str], limit: int
) -> list[tuple[Case, str, int]]:
    """(case, stripped source, byte offset of the parameter) for the held-out packages."""
    family = library_family(pack)
    resolver = default_resolver()
    parser = new_parser("python")
    out: list[tuple[Case, str, int]] = []
    for package in held_out:
        root = package_dir(package)
        if root is None:
            continue
        site = root.parent
        for path in iter_source_files(root):
            if path.suffix != ".py":
                continue
            source = path.read_bytes()
            if not any(
                f"import {lib}".encode() in source or f"from {lib}".encode() in source
                for lib in family
            ):
                continue
            tree = parser.parse(source)
            module = module_name_for(path, site)
            analysis = analyse_python(
                tree,
                source,
                module=module,
                resolver=resolver,
                is_package=path.name == "__init__.py",
            )
            for scope in analysis.scopes():
                if scope.type != "function_definition":
                    continue
                for binding in analysis.bindings(scope):
                    if binding.how != "param" or binding.label is None:
                        continue
                    library = label_root(binding.label) in family
                    if not library and "." in binding.label:
                        continue
                    if library and resolver.is_class(binding.label) is not True:
                        continue
                    stripped, offset = strip_function(source, scope, binding.node.start_byte)
                    case = Case(
                        pack=pack,
                        file=path.relative_to(site).as_posix(),
                        line=binding.node.start_point.row,
                        name=binding.name,
                        truth=binding.label,
                        library=library,
                        uncommon=names[binding.name] < 3,
                    )
                    out.append((case, stripped.decode("utf-8", "replace"), offset))
    library_cases = [c for c in out if c[0].library]
    builtin_cases = [c for c in out if not c[0].library]
    return library_cases[:limit] + builtin_cases[: limit // 2]


def jedi_type(source: str, offset: int) -> str | None:
    try:
        import jedi
    except ImportError:
        return None
    data = source.encode()
    line = data[:offset].count(b"\n") + 1
    column = len(data[:offset].rsplit(b"\n", 1)[-1].decode("utf-8", "replace"))
    try:
        names = jedi.Script(source).infer(line, column)
    except Exception:  # jedi raises many kinds of errors on real code
        return None
    for name in names:
        if name.type in ("instance", "class") and name.full_name:
            full = name.full_name
            return full.removeprefix("builtins.")
    return None


def compare_embedders(
    pack: str, rows: list[Any], triples: list[tuple[Case, str, int]], args: argparse.Namespace
) -> dict[str, Any]:
    """Top-1 on the library slice with the same windows, filter and vote but other
    embedders: the lexical default, MiniLM, and (when cached) the distilled static table."""
    from remora_lsp.retrieval.chunkers import usage_window
    from remora_lsp.retrieval.embedding import StaticEmbedder, load_embedder
    from remora_lsp.retrieval.index import ChunkFilter, VectorIndex
    from remora_lsp.retrieval.lexical import LexicalEmbedder
    from remora_lsp.retrieval.types import allowed_roots, vote

    family = library_family(pack)
    resolver = default_resolver()
    parser = new_parser("python")
    queries: list[tuple[str, frozenset[str], str]] = []
    for case, source, offset in triples:
        if not case.library:
            continue
        data = source.encode()
        analysis = analyse_python(parser.parse(data), data, resolver=resolver)
        binding, _node, scope = analysis.binding_at(offset)
        if binding is None or scope is None:
            continue
        window = usage_window(analysis, scope, binding.name, binding=binding)
        queries.append((window.render(), allowed_roots(analysis, family), case.truth))
    texts = [p.embed_text for p in rows]
    models: dict[str, Any] = {"lexical-384 (default)": LexicalEmbedder.fit(texts)}
    models["minilm"] = load_embedder("default")
    static = args.cache / "static-256"
    if static.is_dir():
        models["static-256"] = StaticEmbedder(static)
    counts = Counter(p.chunk.label for p in rows)
    out: dict[str, Any] = {"queries": len(queries)}
    for name, model in models.items():
        t = time.perf_counter()
        vectors = model.embed_documents(texts)
        index = VectorIndex.build(vectors, [p.chunk for p in rows], model_id=model.model_id)
        right = 0
        for text, roots, truth in queries:
            q = model.embed_queries([text])[0]
            flt = ChunkFilter(kinds=frozenset({"usage"}), label_roots=roots)
            hits = index.search(q, 30, rerank=len(index), flt=flt)
            ranked, _ = vote(hits, counts)
            right += bool(ranked) and ranked[0][0] == truth
        out[name] = {
            "top1": round(right / max(len(queries), 1), 3),
            "seconds": round(time.perf_counter() - t, 1),
        }
        print(f"  {pack}: {name:22s} top1 {out[name]['top1']}", flush=True)
    return out


def summarise(cases: list[Case], baseline: str | None) -> dict[str, Any]:
    n = len(cases)
    if not n:
        return {"n": 0}
    right = [c for c in cases if c.predicted == c.truth]
    above = [c for c in cases if c.above]
    jedi_answers = [c for c in cases if c.jedi is not None]
    return {
        "n": n,
        "top1": round(len(right) / n, 3),
        "top3": round(sum(c.truth in c.top3 for c in cases) / n, 3),
        "coverage_at_threshold": round(len(above) / n, 3),
        "precision_at_threshold": round(sum(c.predicted == c.truth for c in above) / len(above), 3)
        if above
        else 0.0,
        "baseline_most_frequent_top1": round(sum(c.truth == baseline for c in cases) / n, 3)
        if baseline
        else 0.0,
        "baseline_jedi_top1": round(sum(c.jedi == c.truth for c in cases) / n, 3),
        "jedi_answered": round(len(jedi_answers) / n, 3),
    }


def run_pack(
    pack: str, spec: dict[str, list[str]], args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    t0 = time.perf_counter()
    verified, names, train_rows = build_pack(pack, spec["train"], tmp / pack)
    rows = len(train_rows)
    build_s = time.perf_counter() - t0
    family = library_family(pack)
    service = SemanticService(SemanticSettings(threshold=args.threshold))
    note = service.pack_loaded(verified)
    if note:
        raise SystemExit(f"{pack}: {note}")
    from remora_lsp.retrieval.index import VectorIndex

    index = VectorIndex.open(tmp / pack / "embeddings" / USAGES)
    lib_counts = Counter(c.label for c in index.chunks if label_root(c.label) in family)
    baseline = lib_counts.most_common(1)[0][0] if lib_counts else None
    limit = 150 if args.quick else 5000
    triples = evaluation_cases(pack, spec["held_out"], names, limit)
    store = DocumentStore()
    latencies: list[float] = []
    cases: list[Case] = []
    jedi_budget = 40 if args.quick else 400
    for i, (case, source, offset) in enumerate(triples):
        doc = store.open(f"file:///eval/{i}.py", "python", 1, source)
        t = time.perf_counter()
        result = service.hover(doc, offset, [pack])
        latencies.append((time.perf_counter() - t) * 1000)
        if result is not None:
            case.predicted = result.type
            case.top3 = (result.type, *(label for label, _ in result.alternatives[:2]))
            case.confidence = result.confidence
            case.above = result.above_threshold
        if i < jedi_budget or (case.library and i < jedi_budget * 2):
            case.jedi = jedi_type(source, offset)
        cases.append(case)
        store.close(doc.uri)
    library = [c for c in cases if c.library]
    builtins = [c for c in cases if not c.library]
    compared = compare_embedders(pack, train_rows, triples, args) if args.compare else None
    report = {
        "training_rows": rows,
        "build_s": round(build_s, 1),
        "baseline_label": baseline,
        "library": summarise(library, baseline),
        "library_uncommon_names": summarise([c for c in library if c.uncommon], baseline),
        "builtins": summarise(builtins, None),
        "hover_p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "labels": dict(Counter(c.truth for c in library).most_common(12)),
        "embedders": compared,
        "errors": [
            f"{c.file}:{c.line + 1} {c.name}: {c.truth} -> {c.predicted} ({c.confidence:.2f})"
            for c in library
            if c.predicted != c.truth
        ][:15],
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases (about a minute)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--packs", nargs="*", default=list(PACKS))
    parser.add_argument(
        "--compare", action="store_true", help="also compare embedders on the same windows"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "remora-bench",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pack in args.packs:
            results[pack] = run_pack(pack, PACKS[pack], args, Path(tmp))
    head = results[args.packs[0]]["library"]
    lib = [results[p]["library"] for p in args.packs if results[p]["library"].get("n")]
    weights = [s["n"] for s in lib]

    def pooled(key: str) -> float:
        return round(
            sum(s[key] * w for s, w in zip(lib, weights, strict=True)) / max(sum(weights), 1), 3
        )

    report = {
        "threshold": args.threshold,
        "quick": args.quick,
        "top1": pooled("top1"),
        "top3": pooled("top3"),
        "precision_at_threshold": pooled("precision_at_threshold"),
        "coverage_at_threshold": pooled("coverage_at_threshold"),
        "baseline_most_frequent_top1": pooled("baseline_most_frequent_top1"),
        "baseline_jedi_top1": pooled("baseline_jedi_top1"),
        "cases": sum(weights),
        "first_pack": head,
        "packs": results,
    }
    print_table(report, args.packs)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def print_table(report: dict[str, Any], packs: list[str]) -> None:
    cols = [
        "n",
        "top1",
        "top3",
        "coverage_at_threshold",
        "precision_at_threshold",
        "baseline_most_frequent_top1",
        "baseline_jedi_top1",
        "jedi_answered",
    ]
    short = ["n", "top1", "top3", "cover@t", "prec@t", "most-freq", "jedi", "jedi ans."]
    print(
        f"threshold {report['threshold']}  (pooled over library types: top1 {report['top1']}, "
        f"top3 {report['top3']}, precision {report['precision_at_threshold']} at coverage "
        f"{report['coverage_at_threshold']}; most-frequent baseline "
        f"{report['baseline_most_frequent_top1']}, jedi {report['baseline_jedi_top1']})"
    )
    print(f"{'pack / slice':34s}" + "".join(f"{s:>10s}" for s in short))
    for pack in packs:
        r = report["packs"][pack]
        for slice_name in ("library", "library_uncommon_names", "builtins"):
            s = r[slice_name]
            if not s.get("n"):
                continue
            row = f"{pack + ' / ' + slice_name:34s}"
            row += "".join(f"{s.get(c, 0):>10}" for c in cols)
            print(row)
        print(
            f"    {pack}: {r['training_rows']} training rows built in {r['build_s']} s; "
            f"hover p50 {r['hover_p50_ms']} ms; most frequent = {r['baseline_label']}"
        )
        for name, row in (r.get("embedders") or {}).items():
            if isinstance(row, dict):
                print(f"    embedder {name}: top1 {row['top1']} ({row['seconds']} s)")
        for line in r["errors"][:5]:
            print("    miss:", line)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
