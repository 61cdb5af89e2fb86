"""Dense curvature matrices and dense solves: the capability dense Newton uses.

A backend offers it as `backend.dense`, an object with the methods of `DenseLinalg`:

    A        = dense.matrix(op, chunk)                # C, column j = C e_j, float64
    A, zero  = dense.prepare(op, damping, chunk)      # (C + C^T)/2 + damping I
    A, _     = dense.prepare(op, damping, chunk, symmetrize=False)  # for Cholesky
    p, ok    = dense.solve(A, b, solver)              # A p = b; consumes A
    lo, hi   = dense.eigvalsh(A)                      # extreme eigenvalues; consumes A

C is built from batched products op.matvec over chunks of `chunk` basis vectors on
the device (not one product and one host copy per column). The n x n matrices are
float64 whatever the backend dtype (why: `hfbench.algorithms.newton`). `solve` and
`eigvalsh` may overwrite A (in-place LAPACK factorizations), so a caller that needs
A again builds it again. `matrices` says how many n x n float64 buffers each phase
holds at once, which `newton.peak_bytes` turns into the memory check.

`symmetrize=False` is for a Cholesky solve, which reads the lower triangle alone
(LAPACK potrf, as a hand-written loop calls it): C's lower triangle plus damping I,
with no averaging pass and no zero-row check (`zero` is then False; only LU needs
it). A backend may symmetrise anyway. On digits 64-8-10 (n = 610) the two passes
were a sixth of a JAX newton step.

`HostDense` is the slow, correct fallback for a backend without the capability:
one product per basis vector, stacked on the device through `VectorOps.set_if`, one
host copy of the whole matrix, solved in NumPy.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

SOLVERS = ("cholesky", "lu", "lstsq")
F64 = 8  # bytes per float64 entry
ITEMSIZE = {"float32": 4, "float64": 8}

# Build temporaries per basis vector in a chunk: ROW_VECTORS backend-dtype vectors
# of length n (its basis row, its product, and slack for the product's intermediates)
# plus its float64 row. Measured on float32 MLPs (784-10-10 at batch 64, 64-40-10 at
# 32; Hessian and GGN alike): 15.5 bytes per weight and row in torch (peak RSS),
# 12.7-14.2 in JAX (XLA's temp buffers); this counts 20. A net whose activations per
# example outnumber its weights (wide conv layers, big batches) needs more.
ROW_VECTORS = 3
CHUNK_FRACTION = 1 / 8  # chunk temporaries at most this share of the matrix ...
CHUNK_FLOOR = 16 * 2**20  # ... or this many bytes, if more (a small net in one chunk) ...
CHUNK_CAP = 256 * 2**20  # ... and never more than this many bytes


@runtime_checkable
class DenseLinalg(Protocol):
    matrices: Mapping[str, float]  # "cholesky", "lu", "lstsq", "eigvalsh" -> n x n buffers

    def matrix(self, op: Any, chunk: int) -> Any: ...
    def prepare(self, op: Any, damping: float, chunk: int,
                symmetrize: bool = True) -> tuple[Any, Any]: ...
    def solve(self, A: Any, b: Any, solver: str) -> tuple[Any, Any]: ...
    def eigvalsh(self, A: Any) -> tuple[Any, Any]: ...


def row_bytes(n: int, dtype: str) -> int:
    """Bytes of build temporaries per basis vector in a chunk."""
    return n * (ROW_VECTORS * ITEMSIZE[dtype] + F64)


def chunk_rows(n: int, dtype: str) -> int:
    """Basis vectors per batched product: the chunk's temporaries stay within
    min(max(CHUNK_FRACTION of the matrix, CHUNK_FLOOR), CHUNK_CAP).

    The fraction keeps the matrix dominant in the peak on big nets; the floor keeps
    small nets from paying one product dispatch per few rows (digits 64-8-10, n = 610,
    took 21 chunks of 29 rows under the fraction alone: 2,800 torch ops a step where
    one chunk of 610 needs under 200, which on a GPU is the whole step's cost)."""
    budget = min(max(CHUNK_FRACTION * n * n * F64, CHUNK_FLOOR), CHUNK_CAP)
    return int(max(1, min(n, budget // row_bytes(n, dtype))))


def chunk_bytes(n: int, dtype: str) -> int:
    """The build's temporaries beside the matrix: one chunk of rows."""
    return chunk_rows(n, dtype) * row_bytes(n, dtype)


def capability(backend, like) -> DenseLinalg:
    """The backend's own `dense`, or the host fallback (`like`: a vector of its dtype)."""
    dense = getattr(backend, "dense", None)
    return dense if dense is not None else HostDense(backend, like)


class HostDense:
    """DenseLinalg from `op.matvec` and `VectorOps` alone: slow, but any backend has it.

    Holds the stacked matrix on the device, then on the host its float64 copy and
    NumPy's working copies (a factor, or eigenvectors plus the syevd workspace).
    """

    matrices = {"cholesky": 3.0, "lu": 3.0, "lstsq": 5.0, "eigvalsh": 3.0}

    def __init__(self, backend, like):
        self.backend, self.like = backend, like

    def matrix(self, op, chunk: int) -> np.ndarray:
        return self._stacked(op).T.copy()

    def prepare(self, op, damping: float, chunk: int, symmetrize: bool = True):
        A = self._stacked(op)  # always symmetrised: its rows are C's rows, not columns
        A += A.T.copy()  # a copy: NumPy would make one anyway for the overlap
        A *= 0.5
        A[np.diag_indices_from(A)] += damping
        return A, bool(np.any(~A.any(axis=1)))

    def solve(self, A: np.ndarray, b, solver: str):
        rhs = np.asarray(self.backend.to_numpy(b), dtype=np.float64)
        p = {"cholesky": _cholesky, "lu": _lu, "lstsq": _lstsq}[solver](A, rhs)
        return self.backend.asarray(p), bool(np.all(np.isfinite(p)))

    def eigvalsh(self, A: np.ndarray):
        w = np.linalg.eigvalsh(A)
        return float(w[0]), float(w[-1])

    def _stacked(self, op) -> np.ndarray:
        """Row j = op.matvec(e_j), stacked on the device, then one host copy."""
        ops, n = self.backend.ops, op.size
        rows = ops.zeros((n, n), "float64")
        for j in range(n):
            e = ops.set_if(ops.zeros_like(self.like), j, 1.0, True)
            rows = ops.set_if(rows, j, op.matvec(e), True)
        return np.array(self.backend.to_numpy(rows), dtype=np.float64)


def _cholesky(A, b):
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:  # not positive definite
        return np.full_like(b, np.nan)
    y = np.linalg.solve(L, b)  # NumPy has no triangular solve; fine for a fallback
    return np.linalg.solve(L.T, y)


def _lu(A, b):
    try:
        return np.linalg.solve(A, b)
    except np.linalg.LinAlgError:  # an exactly zero pivot
        return np.full_like(b, np.nan)


def _lstsq(A, b):
    return np.linalg.lstsq(A, b, rcond=None)[0]
