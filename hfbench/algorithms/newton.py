"""newton: dense (damped) Newton, the baseline of Wang and Huang §3.1-3.2.

    w <- w - alpha (H + lambda I)^-1 g        (lambda = 0 when damped=False)
The Hessian is formed densely from n products on basis vectors and solved in
float64 on the host. It refuses, before allocating, when n^2 float64 values exceed
`memory_limit_gb`, and points to hf_newton, which needs only products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import HFBenchError
from .options import Algorithm, Default, resolve

DEFAULTS = {
    "damped": Default(True, "§3.2 damped Newton; False is plain Newton (§3.1)"),
    "damping": Default(32.0, "Wang and Huang: lambda = 32 for damped Newton"),
    "step_size": Default(0.5, "Wang and Huang's 'lambda = 0.5', read as the step size alpha"),
    "curvature": Default("hessian", "§3.1; 'ggn' gives dense Gauss-Newton"),
    "memory_limit_gb": Default(2.0, "refuse dense matrices larger than this"),
}


@dataclass(frozen=True, kw_only=True)
class NewtonConfig:
    damped: bool
    damping: float
    step_size: float
    curvature: str
    memory_limit_gb: float

    def __post_init__(self):
        if not self.damping >= 0:
            raise HFBenchError(f"newton.damping must be >= 0, got {self.damping!r}")
        if not self.step_size > 0 or not self.memory_limit_gb > 0:
            raise HFBenchError("newton.step_size and newton.memory_limit_gb must be > 0")


class NewtonState(NamedTuple):
    step: int


def init(config: NewtonConfig, x) -> NewtonState:
    n = int(x.shape[0])
    need = n * n * 8 / 2**30
    if need > config.memory_limit_gb:
        raise HFBenchError(
            f"newton: the dense {n} x {n} curvature matrix needs {need:.2f} GiB in float64, over "
            f"memory_limit_gb={config.memory_limit_gb}; use 'hf_newton' (Hessian-free, products "
            "only) or raise memory_limit_gb"
        )
    return NewtonState(0)


def dense_matrix(be, op, n: int) -> np.ndarray:
    """The operator as a dense float64 matrix, one product per basis vector."""
    cols = [np.asarray(be.to_numpy(op.matvec(be.asarray(e))), dtype=np.float64) for e in np.eye(n)]
    return np.stack(cols, axis=1)


def step(config: NewtonConfig, problem, x, state, batch, curvature_batch=None):
    be = problem.backend
    cbatch = batch if curvature_batch is None else curvature_batch
    loss, g = problem.value_and_grad(x, batch)
    n = int(x.shape[0])
    H = dense_matrix(be, problem.curvature(x, cbatch, config.curvature), n)
    lam = config.damping if config.damped else 0.0
    A = 0.5 * (H + H.T) + lam * np.eye(n)
    g64 = np.asarray(be.to_numpy(g), dtype=np.float64)
    p, solver = _solve(A, -g64)
    x_new = x + be.asarray((config.step_size * p).astype(be.dtype))
    eig = np.linalg.eigvalsh(A)
    info = {
        "loss": be.ops.to_float(loss), "lambda": lam, "alpha": config.step_size, "solver": solver,
        "step_norm": config.step_size * float(np.linalg.norm(p)), "eig_min": float(eig[0]),
        "eig_max": float(eig[-1]), "accepted": True, "n_grad": 1, "n_gv": n, "n_fwd": 0, "n_curv": 1,
        "cg_iters": 0,
    }
    return x_new, NewtonState(state.step + 1), info


def _solve(A, b):
    try:
        return np.linalg.solve(A, b), "solve"
    except np.linalg.LinAlgError:  # singular (plain Newton on a flat direction): least squares
        return np.linalg.lstsq(A, b, rcond=None)[0], "lstsq"


def newton(**overrides) -> Algorithm:
    o = resolve("newton", DEFAULTS, overrides)
    return Algorithm("newton", NewtonConfig(**o), init, step)
