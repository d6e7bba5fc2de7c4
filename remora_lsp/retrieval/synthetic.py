"""Synthetic embedding-like vectors with a documented, seeded generation (tests, benchmarks).

Real sentence embeddings are not uniform on the sphere: they gather in topical clusters, and a
Matryoshka-trained model (or PCA-ordered dimensions) puts most of the variance in the leading
dimensions. :func:`clustered_vectors` imitates both:

1. ``clusters`` centres are drawn from a Gaussian whose per-dimension standard deviation decays
   as ``(i + 1) ** -decay`` (dimension 0 widest);
2. each vector is a centre plus Gaussian noise with the same decaying scale times ``spread``,
   plus a small shared offset (real embeddings are not zero-mean);
3. every row is L2-normalised.

:func:`near_queries` makes queries the way a search sees them: an existing row plus fresh noise
of the same shape, normalised — so a query has true neighbours to find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["clustered_vectors", "near_queries"]


def _scales(dims: int, decay: float) -> np.ndarray:
    import numpy as np

    return (np.arange(1, dims + 1, dtype=np.float32) ** -decay).astype(np.float32)


def clustered_vectors(
    n: int,
    dims: int = 384,
    *,
    clusters: int = 1000,
    spread: float = 0.6,
    decay: float = 0.5,
    offset: float = 0.05,
    seed: int = 0,
    chunk: int = 100_000,
) -> np.ndarray:
    """``n`` L2-normalised float32 rows of ``dims`` dims, generated as described above."""
    import numpy as np

    rng = np.random.default_rng(seed)
    scale = _scales(dims, decay)
    centres = rng.standard_normal((clusters, dims), dtype=np.float32) * scale
    shared = rng.standard_normal(dims, dtype=np.float32) * scale * offset * np.sqrt(dims)
    out = np.empty((n, dims), np.float32)
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        which = rng.integers(0, clusters, m)
        block = centres[which] + rng.standard_normal((m, dims), dtype=np.float32) * scale * spread
        block += shared
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[lo : lo + m] = block
    return out


def near_queries(
    base: np.ndarray, count: int, *, noise: float = 0.6, decay: float = 0.5, seed: int = 1
) -> np.ndarray:
    """``count`` queries: random rows of ``base`` plus noise of the same decaying shape."""
    import numpy as np

    rng = np.random.default_rng(seed)
    dims = base.shape[1]
    scale = _scales(dims, decay)
    rows = rng.integers(0, len(base), count)
    typical = float(np.sqrt((scale**2).sum()))  # norm of one unit-scale noise draw
    picked = np.asarray(base[rows], dtype=np.float32)
    q = picked + rng.standard_normal((count, dims), dtype=np.float32) * scale * noise / typical
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
