"""The two-stage index: round trips through disk, incremental change, recall on a fixed seed,
filters, merging, and the clear errors for empty, mismatched and corrupt indexes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from remora_lsp.retrieval.errors import (
    DimensionMismatchError,
    EmptyIndexError,
    IndexCorruptError,
)
from remora_lsp.retrieval.index import (
    CHUNKS_FILE,
    INDEX_FILE,
    VECTORS_FILE,
    Chunk,
    ChunkFilter,
    FastTier,
    MergedIndex,
    VectorIndex,
)
from remora_lsp.retrieval.synthetic import clustered_vectors, near_queries
from remora_lsp.retrieval.tensorfile import read_tensors, write_tensors

DIMS = 64


def make_chunks(n: int, *, files: int = 10, prefix: str = "pkg") -> list[Chunk]:
    kinds = ["function", "usage", "section"]
    return [
        Chunk(
            file=f"src/mod{i % files}.py",
            start_line=i,
            end_line=i + 3,
            kind=kinds[i % 3],
            label=f"{prefix}.Type{i % 5}" if i % 3 == 1 else f"{prefix}.mod.f{i}",
            text=f"text {i} ✓",
            name=f"n{i}",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x = clustered_vectors(3000, DIMS, clusters=60, seed=3)
    return x, near_queries(x, 20, seed=4)


def rows(hits: list) -> list[int]:  # type: ignore[type-arg]
    return [h.row for h in hits]


def test_round_trip_through_memory_map(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    chunks = make_chunks(len(x))
    index = VectorIndex.build(
        x, chunks, model_id="m", mrl_dims=(64, 32), name="fastapi", fast=FastTier("binary", 32)
    )
    index.save(tmp_path / "ix")
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == sorted(
        [INDEX_FILE, VECTORS_FILE, CHUNKS_FILE]
    )
    opened = VectorIndex.open(tmp_path / "ix")
    assert isinstance(read_tensors(tmp_path / "ix" / VECTORS_FILE)[0]["precise"], np.memmap)
    assert (opened.model_id, opened.dims, opened.mrl_dims, opened.fast, opened.name) == (
        "m",
        64,
        (64, 32),
        FastTier("binary", 32),
        "fastapi",
    )
    assert opened.chunks == index.chunks
    assert opened.chunks[0].pack == "fastapi" and opened.chunks[5].text == "text 5 ✓"
    for query in q:
        a, b = index.search(query, 10), opened.search(query, 10)
        assert rows(a) == rows(b)
        assert [h.score for h in a] == pytest.approx([h.score for h in b])
    # a second save of the opened (mapped) index gives the same bytes
    opened.save(tmp_path / "again")
    for name in (VECTORS_FILE, CHUNKS_FILE):
        assert (tmp_path / "ix" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


@pytest.mark.parametrize(
    "fast",
    [
        FastTier("binary", 64),
        FastTier("int8", 32),
        FastTier("float", 16),
        FastTier("binary", 64, "pca"),
    ],
    ids=str,
)
def test_every_fast_tier_round_trips(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray], fast: FastTier
) -> None:
    x, q = data
    index = VectorIndex.build(x, make_chunks(len(x)), model_id="m", fast=fast)
    assert index.fast_tier_bytes == len(x) * fast.bytes_per_vector
    index.save(tmp_path)
    opened = VectorIndex.open(tmp_path)
    for query in q[:5]:
        assert rows(index.search(query, 5)) == rows(opened.search(query, 5))


def test_recall_regression_on_fixed_seed() -> None:
    """Recall@10 of the default fast tier against exact search, on seeded synthetic data."""
    x = clustered_vectors(20_000, 384, seed=11)
    q = near_queries(x, 100, seed=12)
    index = VectorIndex.build(x, make_chunks(len(x)), model_id="m")
    assert index.fast == FastTier("binary", 256) and index.fast.bytes_per_vector == 32
    truth = [set(np.argsort(-(x @ v))[:10]) for v in q]

    def recall(rerank: int) -> float:
        hits = [set(rows(index.search(v, 10, rerank=rerank))) for v in q]
        return float(np.mean([len(h & t) / 10 for h, t in zip(hits, truth, strict=True)]))

    deep, shallow = recall(1000), recall(100)
    assert deep >= 0.95, deep
    assert shallow >= 0.85, shallow
    exact = [set(rows(index.search_exact(v, 10))) for v in q]
    assert np.mean([len(e & t) / 10 for e, t in zip(exact, truth, strict=True)]) >= 0.98


def test_incremental_add_and_delete(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    chunks = make_chunks(len(x))
    index = VectorIndex(model_id="m", dims=DIMS, name="workspace")
    assert len(index) == 0 and index.search(q[0], 5) == []
    index.add(x[:100], chunks[:100])
    index.add(x[100:], chunks[100:])  # refits the fast tier: the index more than doubled
    full = VectorIndex.build(x, chunks, model_id="m", name="workspace")
    for query in q[:5]:
        assert rows(index.search(query, 10)) == rows(full.search(query, 10))
    # a row added later is found by its own vector
    extra = Chunk("src/new.py", 0, 1, "function", "pkg.new", "new")
    index.add(x[7] * 0.0 + q[0], [extra])
    assert index.search(q[0], 1)[0].chunk.file == "src/new.py"
    # delete by file, persist, reopen, mutate the mapped copy
    dropped = index.remove_file("src/mod3.py")
    assert dropped == sum(c.file == "src/mod3.py" for c in chunks)
    assert "src/mod3.py" not in index.files()
    index.save(tmp_path)
    opened = VectorIndex.open(tmp_path)
    assert len(opened) == len(x) + 1 - dropped
    assert all(h.chunk.file != "src/mod3.py" for v in q for h in opened.search(v, 20))
    assert opened.remove_file("src/new.py") == 1 and len(opened) == len(x) - dropped
    assert opened.remove_file("nothing.py") == 0
    assert len(VectorIndex.open(tmp_path)) == len(x) + 1 - dropped  # disk unchanged until save


def test_filters_and_merged_search(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    a = VectorIndex.build(
        x[:1500], make_chunks(1500, prefix="fastapi"), model_id="m", name="fastapi"
    )
    b = VectorIndex.build(
        x[1500:], make_chunks(1500, prefix="pydantic"), model_id="m", name="pydantic"
    )
    merged = MergedIndex([a, b])
    assert len(merged) == 3000 and merged.model_ids == {"m"}
    for query in q[:5]:
        hits = merged.search(query, 10, rerank=1500)  # every row: the merge itself is exact
        exact = sorted(
            a.search_exact(query, 10) + b.search_exact(query, 10), key=lambda h: -h.score
        )
        assert [(h.index, h.row) for h in hits] == [(h.index, h.row) for h in exact][:10]
        assert all(h.chunk.pack == h.index for h in hits)
        only = merged.search(query, 10, flt=ChunkFilter(packs=frozenset({"pydantic"})))
        assert only and {h.index for h in only} == {"pydantic"}
        usage = merged.search(
            query,
            10,
            flt=ChunkFilter(kinds=frozenset({"usage"}), label_roots=frozenset({"fastapi"})),
        )
        assert usage and all(h.chunk.kind == "usage" and h.index == "fastapi" for h in usage)
        in_file = a.search(query, 5, flt=ChunkFilter(file_contains="mod4"))
        assert in_file and all("mod4" in h.chunk.file for h in in_file)
    assert a.search(q[0], 5, flt=ChunkFilter(kinds=frozenset({"nothing"}))) == []
    other = VectorIndex.build(
        x[:10, :32].copy() / np.linalg.norm(x[:10, :32], axis=1, keepdims=True),
        make_chunks(10),
        model_id="small",
        name="small",
    )
    both = MergedIndex({"fastapi": a, "small": other})
    hits = both.search({"m": q[0], "small": q[0][:32] / np.linalg.norm(q[0][:32])}, 5)
    assert hits and {h.index for h in hits} <= {"fastapi", "small"}
    assert {h.index for h in both.search({"m": q[0]}, 5)} == {"fastapi"}


def test_empty_and_mismatched_inputs(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    with pytest.raises(EmptyIndexError, match="no vectors"):
        VectorIndex.build(np.zeros((0, DIMS), np.float32), [], model_id="m")
    index = VectorIndex.build(x[:50], make_chunks(50), model_id="m", name="p")
    with pytest.raises(DimensionMismatchError, match="64-dim"):
        index.search(np.ones(32, np.float32), 5)
    with pytest.raises(DimensionMismatchError):
        index.add(np.ones((1, 10), np.float32), make_chunks(1))
    with pytest.raises(ValueError, match="2 vectors but 1 chunks"):
        index.add(x[:2], make_chunks(1))


def corrupt_cases() -> list[tuple[str, str]]:
    return [
        ("truncate-vectors", "truncated"),
        ("garbage-vectors", "not a valid tensor file"),
        ("missing-vectors", "missing"),
        ("index-json-garbage", "unreadable"),
        ("index-json-version", "format version 99"),
        ("index-json-count", "index.json says"),
        ("chunks-truncated", "truncated"),
        ("chunks-garbage", "unreadable chunk metadata"),
    ]


@pytest.mark.parametrize(("case", "message"), corrupt_cases(), ids=[c for c, _ in corrupt_cases()])
def test_corrupt_index_files_raise_clear_errors(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray], case: str, message: str
) -> None:
    x, _ = data
    VectorIndex.build(x[:200], make_chunks(200), model_id="m").save(tmp_path)
    vectors, meta, chunks = tmp_path / VECTORS_FILE, tmp_path / INDEX_FILE, tmp_path / CHUNKS_FILE
    if case == "truncate-vectors":
        vectors.write_bytes(vectors.read_bytes()[:-100])
    elif case == "garbage-vectors":
        vectors.write_bytes(b"\x00" * 7)
    elif case == "missing-vectors":
        vectors.unlink()
    elif case == "index-json-garbage":
        meta.write_text("{not json")
    elif case == "index-json-version":
        data_ = json.loads(meta.read_text())
        data_["version"] = 99
        meta.write_text(json.dumps(data_))
    elif case == "index-json-count":
        data_ = json.loads(meta.read_text())
        data_["count"] = 201
        meta.write_text(json.dumps(data_))
    elif case == "chunks-truncated":
        chunks.write_text("".join(chunks.read_text().splitlines(keepends=True)[:-3]))
    elif case == "chunks-garbage":
        lines = chunks.read_text().splitlines(keepends=True)
        chunks.write_text(lines[0] + "[1,2\n" + "".join(lines[2:]))
    with pytest.raises(IndexCorruptError, match=message):
        VectorIndex.open(tmp_path)


def test_tensor_file_round_trip_and_checks(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    arrays = {
        "a": np.arange(12, dtype=np.float16).reshape(3, 4),
        "b": np.arange(5, dtype=np.uint8),
        "empty": np.zeros((0, 4), np.float32),
    }
    write_tensors(path, arrays, {"k": "v"})
    loaded, meta = read_tensors(path)
    assert meta == {"k": "v"}
    for name, arr in arrays.items():
        assert loaded[name].dtype == arr.dtype and np.array_equal(loaded[name], arr)
    raw = path.read_bytes()
    path.write_bytes(raw + b"extra")
    with pytest.raises(IndexCorruptError, match="extended"):
        read_tensors(path)
    path.write_bytes(raw[:8] + b"[]" + raw[10:])
    with pytest.raises(IndexCorruptError):
        read_tensors(path)
