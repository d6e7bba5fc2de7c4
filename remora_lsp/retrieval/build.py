"""Building a pack's ``embeddings/`` folder (and any index) from source folders.

A pack's ``embeddings/`` folder holds one index per *collection*::

    embeddings/
      search/                 code and documentation chunks, for search_embeddings
        index.json vectors.safetensors chunks.jsonl
      usages/                 labelled usage windows, for hover type inference
        index.json vectors.safetensors chunks.jsonl
        calibration.json      the vote-confidence calibration fitted on these rows
        model/                the lexical model the rows were embedded with (IDF table)
      model/                  optional: the pack's fine-tuned search model (a
                              sentence-transformers folder in safetensors; Training issue)

:func:`build_embeddings` walks the sources (folders or files: Python, JS/TS, Markdown, rST),
chunks them (:mod:`~remora_lsp.retrieval.chunkers`), keeps usage windows whose type belongs
to the library's family (the library plus the packages whose classes it re-exports, e.g.
fastapi → starlette) or is a builtin, caps the rows per type, embeds search chunks with the
search model (the embedded default unless told otherwise) and usage windows with a lexical
model fitted on them, fits the confidence calibration by leave-one-file-out voting, and returns
a :class:`BuildReport` whose :meth:`~BuildReport.manifest_block` is the manifest's
``embeddings:`` block.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remora_lsp.retrieval.chunkers import DOC_SUFFIXES, Piece, chunk_file
from remora_lsp.retrieval.embedding import Embedder, load_embedder
from remora_lsp.retrieval.errors import EmptyIndexError
from remora_lsp.retrieval.exports import ExportResolver, default_resolver
from remora_lsp.retrieval.index import FastTier, VectorIndex, label_root
from remora_lsp.retrieval.lexical import LexicalEmbedder
from remora_lsp.retrieval.types import (
    DEFAULT_VOTE,
    Calibration,
    VoteConfig,
    fit_calibration,
    vote,
)

__all__ = [
    "CALIBRATION_FILE",
    "MODEL_DIR",
    "SEARCH",
    "SOURCE_SUFFIXES",
    "USAGES",
    "BuildReport",
    "build_embeddings",
    "build_search_index",
    "build_usage_index",
    "iter_source_files",
    "library_family",
    "load_calibration",
]

SEARCH = "search"
USAGES = "usages"
MODEL_DIR = "model"
CALIBRATION_FILE = "calibration.json"
SOURCE_SUFFIXES = (".py", ".pyi", ".js", ".jsx", ".mjs", ".ts", ".tsx", *DOC_SUFFIXES)
SKIP_DIRS = {
    ".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", "env",
    "site-packages", "build", "dist", ".tox", ".nox", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".remora", ".idea", ".vscode",
}  # fmt: skip
MAX_FILE_BYTES = 1_000_000
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildReport:
    """What was built: rows per collection, the search model, and every file written."""

    folder: Path
    collections: dict[str, int]
    model: str
    dims: int
    mrl_dims: tuple[int, ...]
    files: tuple[str, ...]
    bytes: int
    labels: dict[str, int] = field(default_factory=dict)

    def manifest_block(self, prefix: str = "embeddings/") -> dict[str, Any]:
        """The manifest's ``embeddings:`` block for a pack whose folder this is."""
        return {
            "model": self.model,
            "dims": self.dims,
            "mrl_dims": list(self.mrl_dims),
            "chunks": sum(self.collections.values()),
            "files": [prefix + f for f in self.files],
        }


def iter_source_files(root: Path, *, max_files: int = 100_000) -> list[Path]:
    """Source and documentation files under ``root`` (or ``root`` itself), sorted, skipping
    hidden folders, virtual environments, caches and build output."""
    if root.is_file():
        return [root] if root.suffix.lower() in SOURCE_SUFFIXES else []
    found: list[Path] = []
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(SOURCE_SUFFIXES):
                path = Path(base) / name
                try:
                    if path.stat().st_size <= MAX_FILE_BYTES:
                        found.append(path)
                except OSError:
                    continue
                if len(found) >= max_files:
                    return found
    return found


def _module_root(source: Path) -> Path:
    """Where module names start: the parent of a package folder, else the folder itself."""
    folder = source if source.is_dir() else source.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def library_family(library: str, resolver: ExportResolver | None = None) -> frozenset[str]:
    """The library and the top-level packages whose classes its public API re-exports."""
    resolver = resolver or default_resolver()
    roots = {library}
    for definition in resolver.exports(library):
        roots.add(definition.split(".", 1)[0])
    return frozenset(roots)


def _stable_sample(rows: list[Piece], cap: int) -> list[Piece]:
    """At most ``cap`` rows, chosen by a hash of their location (stable across runs)."""
    if len(rows) <= cap:
        return rows

    def key(p: Piece) -> str:
        c = p.chunk
        return hashlib.sha1(f"{c.file}:{c.start_line}:{c.name}".encode()).hexdigest()

    return sorted(rows, key=key)[:cap]


def collect_pieces(
    sources: Iterable[Path],
    *,
    kinds: frozenset[str],
    resolver: ExportResolver | None = None,
    progress: Progress | None = None,
) -> list[Piece]:
    """Chunks of every file under ``sources``; chunk paths are relative to each source's
    module root (``fastapi/routing.py``)."""
    jobs: list[tuple[Path, Path]] = []
    for source in sources:
        root = _module_root(source)
        jobs.extend((path, root) for path in iter_source_files(source))
    pieces: list[Piece] = []
    for i, (path, root) in enumerate(jobs):
        pieces.extend(chunk_file(path, root, resolver=resolver, kinds=kinds))
        if progress is not None and (i % 50 == 0 or i + 1 == len(jobs)):
            progress(i + 1, len(jobs))
    return pieces


def select_usage_rows(
    pieces: Sequence[Piece],
    *,
    family: frozenset[str] | None,
    resolver: ExportResolver | None = None,
    per_label: int = 300,
    per_builtin: int | None = None,
    strict_classes: bool = True,
) -> list[Piece]:
    """Usage rows worth indexing: types of ``family`` (all when None) and builtins, real
    classes only when ``strict_classes``, at most ``per_label`` rows per type
    (``per_builtin`` per builtin type, default the same)."""
    resolver = resolver or default_resolver()
    by_label: dict[str, list[Piece]] = defaultdict(list)
    for piece in pieces:
        label = piece.chunk.label
        if piece.chunk.kind != "usage":
            continue
        root = label_root(label)
        if family is not None and root != "builtins" and root not in family:
            continue
        if root != "builtins" and strict_classes and resolver.is_class(label) is not True:
            continue
        by_label[label].append(piece)
    rows: list[Piece] = []
    for label in sorted(by_label):
        cap = per_label if "." in label or per_builtin is None else per_builtin
        rows.extend(_stable_sample(by_label[label], cap))
    return rows


def _embed(
    embedder: Embedder, texts: Sequence[str], progress: Progress | None, batch: int = 256
) -> Any:
    import numpy as np

    out = np.zeros((len(texts), embedder.dims), np.float32)
    for lo in range(0, len(texts), batch):
        out[lo : lo + batch] = embedder.embed_documents(list(texts[lo : lo + batch]))
        if progress is not None:
            progress(min(lo + batch, len(texts)), len(texts))
    return out


def build_search_index(
    pieces: Sequence[Piece],
    folder: Path,
    embedder: Embedder,
    *,
    name: str = "",
    progress: Progress | None = None,
) -> VectorIndex:
    """Embed code and documentation pieces and save their index into ``folder``."""
    rows = [p for p in pieces if p.chunk.kind != "usage"]
    if not rows:
        raise EmptyIndexError(f"{folder}: no code or documentation chunks to index")
    vectors = _embed(embedder, [p.embed_text for p in rows], progress, batch=64)
    index = VectorIndex.build(
        vectors,
        [p.chunk for p in rows],
        model_id=embedder.model_id,
        mrl_dims=embedder.mrl_dims,
        fast=FastTier("binary", min(256, embedder.dims - embedder.dims % 8)),
        name=name,
    )
    index.save(folder)
    return index


def build_usage_index(
    rows: Sequence[Piece],
    folder: Path,
    *,
    name: str = "",
    dims: int = 384,
    lexical: LexicalEmbedder | None = None,
    calibrate: bool = True,
) -> tuple[VectorIndex, LexicalEmbedder, Calibration]:
    """Fit (or reuse) a lexical model on usage rows, embed them, save index + model +
    calibration into ``folder``."""
    if not rows:
        raise EmptyIndexError(f"{folder}: no labelled usage windows to index")
    texts = [p.embed_text for p in rows]
    embedder = lexical or LexicalEmbedder.fit(texts, dims=dims, name=name)
    vectors = embedder.embed_documents(texts)
    index = VectorIndex.build(
        vectors,
        [p.chunk for p in rows],
        model_id=embedder.model_id,
        mrl_dims=embedder.mrl_dims,
        fast=FastTier("binary", min(256, dims)),
        name=name,
    )
    index.save(folder)
    embedder.save(folder / MODEL_DIR)
    calibration = fit_index_calibration(index, vectors) if calibrate else Calibration()
    (folder / CALIBRATION_FILE).write_text(
        json.dumps(calibration.to_data(), indent=1) + "\n", encoding="utf-8"
    )
    return index, embedder, calibration


def fit_index_calibration(
    index: VectorIndex, vectors: Any, *, sample: int = 2000, config: VoteConfig = DEFAULT_VOTE
) -> Calibration:
    """Leave-one-file-out voting over (a sample of) the index's own rows, then a logistic
    fit of "the winner was right" on the vote features."""
    import numpy as np

    chunks = index.chunks
    counts = Counter(c.label for c in chunks)
    rng = np.random.default_rng(0)
    rows = np.arange(len(chunks))
    if len(rows) > sample:
        rows = np.sort(rng.choice(rows, sample, replace=False))
    samples: list[tuple[tuple[float, ...], bool]] = []
    depth = max(config.k * 4, 100)
    for row in rows:
        own = chunks[int(row)]
        hits = index.search(vectors[row], depth, rerank=max(1000, depth))
        # leave the row's file out (leaving its whole project out was measured too: it made
        # the calibration so cautious that coverage of library types fell from .73 to .30 on
        # held-out code at the same precision)
        hits = [h for h in hits if h.chunk.file != own.file][: config.k]
        # the row's own label is not in the counts it is judged against
        ranked, features = vote(hits, counts, config)
        if ranked:
            samples.append((features, ranked[0][0] == own.label))
    return fit_calibration(samples)


def load_calibration(folder: Path) -> Calibration:
    """The calibration saved beside a usage index (the default one when absent or bad)."""
    try:
        return Calibration.from_data(json.loads((folder / CALIBRATION_FILE).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return Calibration()


def _files_under(folder: Path) -> tuple[list[str], int]:
    files, size = [], 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            files.append(path.relative_to(folder).as_posix())
            size += path.stat().st_size
    return files, size


def build_embeddings(
    sources: Sequence[Path],
    out_dir: Path,
    *,
    library: str | None = None,
    usage_sources: Sequence[Path] = (),
    search_embedder: Embedder | None = None,
    lexical_dims: int = 384,
    per_label: int = 300,
    per_builtin: int = 150,
    resolver: ExportResolver | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BuildReport:
    """Build ``out_dir`` (a pack's ``embeddings/`` folder) from ``sources``.

    ``sources`` give code and documentation chunks for search and usage windows;
    ``usage_sources`` (e.g. projects that use the library) give usage windows only.
    With ``library``, usage types are limited to its family and builtins. Builtin types get
    fewer rows (``per_builtin``): they are plentiful, and fewer of them keep a pack small and
    measured slightly better for library types (docs/semantic.md).
    """
    resolver = resolver or default_resolver()

    def step(stage: str) -> Progress | None:
        if progress is None:
            return None
        return lambda done, total: progress(stage, done, total)

    pieces = collect_pieces(
        sources, kinds=frozenset({"code", "docs", "usage"}), resolver=resolver,
        progress=step("chunking"),
    )  # fmt: skip
    if usage_sources:
        pieces += collect_pieces(
            usage_sources, kinds=frozenset({"usage"}), resolver=resolver,
            progress=step("chunking usages"),
        )  # fmt: skip
    family = library_family(library, resolver) if library else None
    rows = select_usage_rows(
        pieces, family=family, resolver=resolver, per_label=per_label, per_builtin=per_builtin
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    name = library or ""
    embedder = search_embedder or load_embedder("default")
    collections: dict[str, int] = {}
    search_index = build_search_index(
        pieces, out_dir / SEARCH, embedder, name=name, progress=step("embedding")
    )
    collections[SEARCH] = len(search_index)
    if rows:
        usage_index, _, _ = build_usage_index(rows, out_dir / USAGES, name=name, dims=lexical_dims)
        collections[USAGES] = len(usage_index)
    files, size = _files_under(out_dir)
    labels = Counter(p.chunk.label for p in rows)
    return BuildReport(
        folder=out_dir,
        collections=collections,
        model=embedder.model_id,
        dims=embedder.dims,
        mrl_dims=embedder.mrl_dims,
        files=tuple(files),
        bytes=size,
        labels=dict(labels.most_common()),
    )
