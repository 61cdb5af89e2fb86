"""Dense curvature matrices and in-place dense solves on torch tensors (newton's `dense`).

The contract is `hfbench.algorithms.dense.DenseLinalg`. Here:

- the matrix is built in chunks of k basis vectors, E = [e_s .. e_s+k-1], each chunk
  one batched product torch.func.vmap(op.matvec)(E). vmap runs each operator's own
  product (per-layer forward-mode J v, then one backward over the kept graph; or
  the backward over the kept gradient graph for the Hessian) once on a (k, n)
  batch. torch.autograd.grad(..., is_grads_batched=True) also works on these
  graphs, but log_softmax's double backward has no batching rule there and falls
  back to one pass per row (measured 2.5x slower than vmap on the 784-10-10 net).
  An operator vmap cannot trace gets one product per row instead.
- rows are written straight into one (n, n) float64 buffer B, B[j] = C e_j, so
  B.mT (a view) is C, in the column-major order LAPACK wants: every factorization
  below runs in place on it (out= the input itself), with no n x n copy.
- symmetrisation and the damping are in-place block passes (one (bs, n) temporary).

`matrices` is what each phase holds at once, in n x n float64 buffers (measured:
peak RSS on the CPU, see tests/test_newton.py): Cholesky and LU factor in place;
eigh (LAPACK syevd) keeps the vectors in place but needs a 2 n^2 workspace;
eigvalsh copies its input.
"""

from __future__ import annotations

import torch

MATRICES = {"cholesky": 1.0, "lu": 1.0, "lstsq": 3.0, "eigvalsh": 2.0}


class TorchDense:
    """The dense capability of the torch backend (one device, one dtype)."""

    matrices = MATRICES

    def __init__(self, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        self._vmap_ok: dict[type, bool] = {}

    # -- building -------------------------------------------------------------------
    def matrix(self, op, chunk: int) -> torch.Tensor:
        """C as an (n, n) float64 tensor, column j = op.matvec(e_j) (a column-major view)."""
        return self._rows(op, chunk).mT

    def prepare(self, op, damping: float, chunk: int, symmetrize: bool = True):
        """(A, zero_row): A = (C + C^T)/2 + damping I built in one buffer, and whether
        a row of A is exactly zero (then A is singular and LU would fail).
        symmetrize=False: C + damping I for a Cholesky solve, which reads only the
        lower triangle; zero_row False."""
        rows = self._rows(op, chunk)
        if symmetrize:
            symmetrize_(rows, chunk)
        rows.diagonal().add_(damping)
        if not symmetrize:  # only LU, which always gets the averaged A, reads zero_row
            return rows.mT, torch.zeros((), dtype=torch.bool, device=rows.device)
        zero = (rows.amax(dim=1) == 0) & (rows.amin(dim=1) == 0)  # reductions: no n x n temporary
        return rows.mT, zero.any()

    def _rows(self, op, chunk: int) -> torch.Tensor:
        n = op.size
        out = torch.empty((n, n), dtype=torch.float64, device=self.device)
        basis = torch.zeros((min(chunk, n), n), dtype=self.dtype, device=self.device)
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            E = basis[:k].zero_()
            E.diagonal(offset=start).fill_(1.0)  # E[i, start + i] = 1
            out[start : start + k].copy_(self._products(op, E))
        return out

    def _products(self, op, E: torch.Tensor) -> torch.Tensor:
        """The rows op.matvec(E[i]), as one batched product where vmap can trace it."""
        kind = type(op)
        if self._vmap_ok.get(kind, True):
            try:
                out = torch.func.vmap(op.matvec)(E)
                self._vmap_ok[kind] = True
                return out
            except RuntimeError:  # an operator vmap cannot trace: remember, loop below
                self._vmap_ok[kind] = False
        return torch.stack([op.matvec(e) for e in E])

    # -- solving (each consumes A: it is factored in place) ---------------------------
    def solve(self, A: torch.Tensor, b: torch.Tensor, solver: str):
        """(p, ok): A p = b in float64, p in b's dtype; ok is a 0-d bool tensor."""
        rhs = b.to(torch.float64).unsqueeze(1)
        p = _SOLVERS[solver](A, rhs)[:, 0]
        return p.to(b.dtype), torch.isfinite(p).all()

    def eigvalsh(self, A: torch.Tensor):
        """(smallest, largest) eigenvalue of the symmetric A, as 0-d tensors."""
        w = torch.linalg.eigvalsh(A)
        return w[0], w[-1]


def symmetrize_(A: torch.Tensor, block: int) -> None:
    """A <- (A + A^T)/2 in place, one block of rows at a time.

    Block s:e averages A[s:e, :e] with A[:e, s:e]^T and writes the result to both,
    so each pair (i, j) is read and written once; the only temporary is (block, e).
    """
    n = A.shape[0]
    for s in range(0, n, block):
        e = min(s + block, n)
        avg = torch.add(A[s:e, :e], A[:e, s:e].mT).mul_(0.5)
        A[s:e, :e].copy_(avg)
        A[:e, s:e].copy_(avg.mT)


def _cholesky(A, rhs):
    # out= the input: LAPACK potrf overwrites A with its factor, no copy (A.mT of a
    # row-major buffer is column-major, so torch does not restride it either).
    info = torch.empty((), dtype=torch.int32, device=A.device)
    L, info = torch.linalg.cholesky_ex(A, out=(A, info))
    # two triangular solves: torch.cholesky_solve copies L (measured, one n x n)
    y = torch.linalg.solve_triangular(L, rhs, upper=False)
    p = torch.linalg.solve_triangular(L.mT, y, upper=True)
    return torch.where(info == 0, p, torch.nan)  # not PD: say so with NaN, no host read


def _lu(A, rhs):
    n = A.shape[0]
    pivots = torch.empty(n, dtype=torch.int32, device=A.device)
    info = torch.empty((), dtype=torch.int32, device=A.device)
    LU, pivots, info = torch.linalg.lu_factor_ex(A, out=(A, pivots, info))
    p = torch.linalg.lu_solve(LU, pivots, rhs)
    return torch.where(info == 0, p, torch.nan)  # an exactly zero pivot: singular


def _lstsq(A, rhs):
    """The minimum-norm least-squares solution, from A's eigendecomposition.

    For a symmetric A the singular values are |w|, so cutting |w| <= eps n max|w|
    gives what numpy.linalg.lstsq(A, b, rcond=None) gives (its SVD cutoff).
    """
    n = A.shape[0]
    w = torch.empty(n, dtype=A.dtype, device=A.device)
    w, V = torch.linalg.eigh(A, out=(w, A))  # vectors overwrite A
    keep = w.abs() > torch.finfo(w.dtype).eps * n * w.abs().max()
    z = (V.mT @ rhs)[:, 0]
    z = torch.where(keep, z / torch.where(keep, w, 1.0), 0.0)
    return (V @ z).unsqueeze(1)


_SOLVERS = {"cholesky": _cholesky, "lu": _lu, "lstsq": _lstsq}
