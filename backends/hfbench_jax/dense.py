"""Dense curvature matrices and in-place dense solves on jax arrays (newton's `dense`).

The contract is `hfbench.algorithms.dense.DenseLinalg`. Here:

- the matrix is built in one jitted `fori_loop` over chunks of k basis vectors, each
  chunk one `jax.vmap(op.matvec)` product (the operator is a pytree, so the
  loop takes it as an argument) written into a row-major buffer B, B[j] = C e_j;
- symmetrisation and the damping are two more in-place loops over row blocks, each
  iteration one dynamic_update_slice (a second update in the same iteration makes
  XLA copy the whole buffer, measured);
- XLA's LAPACK calls want column-major operands and would copy a row-major one, so
  the prepared matrix leaves its jit as B^T constrained to a column-major layout: a
  bitcast of the same bytes (B is symmetric, so B^T is B). The solvers are jitted
  with that layout in and out and the matrix donated, so XLA factors it in place.

`matrices` is what each phase holds at once, in n x n float64 buffers, as peak RSS
on the CPU (tests/test_newton.py): Cholesky and LU factor in place. `lax.linalg.eigh`
(least squares, and the eigenvalues, which jax computes only through eigh) keeps the
vectors in the matrix's buffer, but XLA lays its NaN-on-failure select out row-major,
one n x n copy, and LAPACK's syevd allocates a 2 n^2 workspace of which jaxlib's
LAPACK touched about one n^2: 2.9 n^2 measured at n = 3,010, 2.7 at n = 7,960.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental.layout import Format, Layout, with_layout_constraint

MATRICES = {"cholesky": 1.0, "lu": 1.0, "lstsq": 3.0, "eigvalsh": 3.0}
_COLUMN_MAJOR = Layout(major_to_minor=(1, 0))


class JaxDense:
    """The dense capability of the JAX backend (one device, one dtype)."""

    matrices = MATRICES

    def __init__(self, device, dtype: str):
        self.dtype = jnp.dtype(dtype)
        square = Format(_COLUMN_MAJOR, jax.sharding.SingleDeviceSharding(device))

        def jit(f, *rest):  # the matrix in and out (donated: XLA aliases the two) column-major
            return jax.jit(f, donate_argnums=0, in_shardings=(square, *rest),
                           out_shardings=(square, None, None))

        self._solvers = {name: jit(f, None) for name, f in _SOLVERS.items()}
        self._eigvalsh = jit(_eigvalsh)

    def matrix(self, op, chunk: int):
        """C as an (n, n) float64 array, column j = op.matvec(e_j) (column-major)."""
        return _matrix(op, chunk, self.dtype)

    def prepare(self, op, damping: float, chunk: int, symmetrize: bool = True):
        """(A, zero_row): A = (C + C^T)/2 + damping I, and whether a row of A is zero;
        symmetrize=False: C + damping I for a Cholesky solve (its lower triangle is
        all it reads), zero_row False."""
        return _prepare(op, jnp.float64(damping), chunk, self.dtype, symmetrize)

    def solve(self, A, b, solver: str):
        """(p, ok): A p = b in float64, p in b's dtype; A is donated (factored in place)."""
        _, p, ok = self._solvers[solver](A, b)
        return p, ok

    def eigvalsh(self, A):
        """(smallest, largest) eigenvalue of the symmetric A; A is donated."""
        _, lo, hi = self._eigvalsh(A)
        return lo, hi


def _rows(op, chunk: int, dtype):
    """B with B[j] = op.matvec(e_j), one vmapped product per chunk of rows."""
    n = op.size
    count = -(-n // chunk)

    def body(i, B):
        start = jnp.minimum(i * chunk, n - chunk)  # the last chunk overlaps: same values
        E = (jnp.arange(n)[None, :] == (start + jnp.arange(chunk))[:, None]).astype(dtype)
        rows = jax.vmap(op.matvec)(E).astype(jnp.float64)
        return lax.dynamic_update_slice_in_dim(B, rows, start, 0)

    B = jnp.zeros((n, n), jnp.float64)
    # Row-major, like the loop carry: left free, XLA would pick the LAPACK layout for
    # the zeros and copy them into the loop.
    B = with_layout_constraint(B, Layout(major_to_minor=(0, 1)))
    return lax.fori_loop(0, count, body, B)


def _column_major(B):
    """B^T in column-major layout: the same bytes as B, no copy."""
    return with_layout_constraint(B.T, _COLUMN_MAJOR)


def _symmetrize(B, block: int):
    """(B + B^T)/2 in place: lower triangle first, then mirrored to the upper one."""
    n = B.shape[0]
    block = min(block, n)
    count = -(-n // block)

    def strips(i, B):
        start = jnp.minimum(i * block, n - block)
        rows = lax.dynamic_slice_in_dim(B, start, block, 0)
        cols = lax.dynamic_slice_in_dim(B, start, block, 1)
        return start, rows, cols

    def lower(i, B):  # rows of block i, columns up to its end: the average
        start, rows, cols = strips(i, B)
        # rows before i * block belong to the previous (overlapped) block: done already
        new = (jnp.arange(n)[None, :] < start + block) & (
            (start + jnp.arange(block))[:, None] >= i * block)
        return lax.dynamic_update_slice_in_dim(
            B, jnp.where(new, 0.5 * (rows + cols.T), rows), start, 0)

    def upper(i, B):  # columns of block i, rows above it: the mirror of the lower part
        start, rows, cols = strips(i, B)
        above = jnp.arange(n)[:, None] < i * block
        return lax.dynamic_update_slice_in_dim(B, jnp.where(above, rows.T, cols), start, 1)

    B = lax.fori_loop(0, count, lower, B)
    return lax.fori_loop(0, count, upper, B)


def _matrix_impl(op, chunk: int, dtype):
    return _column_major(_rows(op, chunk, dtype))


def _prepare_impl(op, damping, chunk: int, dtype, symmetrize: bool):
    B = _rows(op, chunk, dtype)
    if symmetrize:
        B = _symmetrize(B, chunk)
    i = jnp.arange(B.shape[0])
    B = B.at[i, i].add(damping)
    zero = (jnp.any((jnp.max(B, axis=1) == 0) & (jnp.min(B, axis=1) == 0)) if symmetrize
            else jnp.bool_(False))  # only LU, which always gets the averaged A, reads it
    return _column_major(B), zero


_matrix = jax.jit(_matrix_impl, static_argnums=(1, 2))
_prepare = jax.jit(_prepare_impl, static_argnums=(2, 3, 4))


def _finish(A, p64, b):
    """(the consumed buffer, p in b's dtype, ok): returning the buffer lets XLA alias it."""
    return A, p64.astype(b.dtype), jnp.all(jnp.isfinite(p64))


def _cholesky(A, b):
    L = lax.linalg.cholesky(A, symmetrize_input=False)  # NaN where A is not PD
    rhs = b.astype(jnp.float64)[:, None]
    y = lax.linalg.triangular_solve(L, rhs, left_side=True, lower=True)
    p = lax.linalg.triangular_solve(L, y, left_side=True, lower=True, transpose_a=True)
    return _finish(L, p[:, 0], b)


def _lu(A, b):
    # An exactly zero pivot (singular A) divides by zero in the solve: ok is False.
    lu, pivots, _ = lax.linalg.lu(A)
    p = jax.scipy.linalg.lu_solve((lu, pivots), b.astype(jnp.float64))
    return _finish(lu, p, b)


def _lstsq(A, b):
    """Minimum-norm least squares via eigh: |w| <= eps n max|w| cut, as numpy's lstsq."""
    V, w = lax.linalg.eigh(A, symmetrize_input=False)
    cut = jnp.finfo(jnp.float64).eps * A.shape[0] * jnp.max(jnp.abs(w))
    keep = jnp.abs(w) > cut
    z = jnp.dot(b.astype(jnp.float64), V)
    z = jnp.where(keep, z / jnp.where(keep, w, 1.0), 0.0)
    return _finish(V, jnp.dot(V, z), b)


def _eigvalsh(A):
    V, w = lax.linalg.eigh(A, symmetrize_input=False)
    return V, w[0], w[-1]


_SOLVERS = {"cholesky": _cholesky, "lu": _lu, "lstsq": _lstsq}
