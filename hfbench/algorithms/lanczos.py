"""Curvature diagnostics from CG's own coefficients, at no extra matvec.

CG on A with preconditioner M builds, as a by-product, the Lanczos tridiagonal
matrix T of M^-1 A (Golub and Van Loan §11.3.5; Saad, "Iterative Methods", §6.7.3):
    T_11 = 1/alpha_1,  T_jj = 1/alpha_j + beta_{j-1}/alpha_{j-1},
    T_{j,j+1} = T_{j+1,j} = sqrt(beta_j)/alpha_j.
Its eigenvalues (Ritz values) approximate the extreme eigenvalues of the damped,
preconditioned curvature; their ratio estimates its condition number, the
"pathological curvature" Martens 2010 §2 is about.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RitzValues(NamedTuple):
    min: float
    max: float
    cond: float


def tridiagonal(alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """T from m CG steps (alphas, betas of length m; betas[m-1] unused)."""
    a = np.asarray(alphas, dtype=np.float64)
    b = np.asarray(betas, dtype=np.float64)
    m = len(a)
    diag = 1.0 / a
    diag[1:] += b[: m - 1] / a[: m - 1]
    off = np.sqrt(np.maximum(b[: m - 1], 0.0)) / a[: m - 1]
    return np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)


def ritz_values(alphas, betas) -> RitzValues:
    """Extreme Ritz values and the condition estimate; NaNs when CG took no step."""
    a = np.asarray(alphas, dtype=np.float64)
    m = len(a) if np.all(a > 0) else int(np.argmin(a > 0))  # the steps CG actually took
    if m == 0:
        return RitzValues(float("nan"), float("nan"), float("nan"))
    ev = np.linalg.eigvalsh(tridiagonal(a[:m], np.asarray(betas, dtype=np.float64)[:m]))
    lo, hi = float(ev[0]), float(ev[-1])
    return RitzValues(lo, hi, hi / lo if lo > 0 else float("inf"))
