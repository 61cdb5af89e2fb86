"""One seeded NumPy index stream per trial, so every backend sees the same batches.

Each epoch is a fresh permutation of the training set drawn from
default_rng([seed, 1]); batches are consecutive slices and the remainder is dropped,
so every batch has one shape (JAX recompiles for new shapes: DESIGN, known traps).
The curvature batch is the first `curvature_batch_size` examples of the gradient
batch, as Martens 2010 §4.5 takes a subset of the data for the curvature.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from ..errors import HFBenchError


class IndexBatch(NamedTuple):
    grad: np.ndarray
    curvature: np.ndarray | None  # None: the gradient batch itself
    perm: np.ndarray | None = None  # the epoch's permutation, grad = perm[start:start + len]
    start: int = 0


def index_stream(n: int, batch_size: int, seed: int, curvature_batch_size: int | None = None
                 ) -> Iterator[IndexBatch]:
    if batch_size > n:
        raise HFBenchError(
            f"batch_size {batch_size} exceeds the {n} training examples; use at most {n}"
        )
    if curvature_batch_size is not None and curvature_batch_size > batch_size:
        raise HFBenchError(
            f"curvature_batch_size {curvature_batch_size} exceeds batch_size {batch_size}; "
            "the curvature batch is a subset of the gradient batch"
        )
    rng = np.random.default_rng([seed, 1])
    subset = curvature_batch_size not in (None, batch_size)
    while True:
        perm = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            yield IndexBatch(idx, idx[:curvature_batch_size] if subset else None, perm, start)
