"""newton: dense (damped) Newton, the baseline of Wang and Huang §3.1-3.2.

    w <- w - alpha A^-1 g,    A = (H + H^T)/2 + lambda I    (lambda = 0 when damped=False)

H (or the GGN, `curvature="ggn"`) is built densely on the device from batched
products over chunks of basis vectors (`hfbench.algorithms.dense`), symmetrised and
damped in place, and solved on the device:

- damped (lambda > 0): Cholesky, since A should be positive definite; if it is not
  (lambda below -eig_min(H)), A is built again and solved by LU. Cholesky reads
  only the lower triangle of H + lambda I (LAPACK potrf), so this A is not averaged
  with its transpose (the built H is symmetric up to rounding in the products); the
  hand-written loops of benchmarks/handwritten do the same. LU, least squares and
  the eigenvalues get the averaged A;
- plain Newton: LU (H is indefinite on a nonconvex net);
- singular A (an exactly zero pivot, or an exactly zero row, which LU would meet as
  one: inputs that are zero on the whole batch, dead units): the minimum-norm least
  squares solution, numpy.linalg.lstsq's (rcond=None) through A's eigenvalues.
`info["solver"]` says which one produced the step.

Precision: A is float64 whatever the backend dtype, and so is the solve, as the
host NumPy solve was before. A float32 factorization loses about cond(A) * 6e-8 of
relative accuracy, and plain Newton's A is indefinite and nearly singular (on a
batch of B examples with K classes the GGN part has rank at most B (K - 1): 576 of
7,960 on wang2024), where a float32 solve can lose every digit. The float64 matrix
costs twice the memory and, on GPUs with slow float64, time; the products themselves
run in the backend dtype.

Memory: `peak_bytes` counts every n x n buffer and chunk temporary a step holds at
once; `init` refuses before allocating when it exceeds `memory_limit_gb`.

Eigenvalue diagnostics (`eig_diagnostics=True`) are deferred out of the timed step:
the step puts a zero-argument callable under `info["deferred"]`. Contract: the
runner calls it once, after stopping the training clock and before the next step,
and merges the dict it returns ({"eig_min": float, "eig_max": float}, extreme
eigenvalues of A, damping included) into the step's record. It rebuilds A from the
step's curvature operator (kept alive by the callable; not counted in n_gv) and
holds `matrices["eigvalsh"]` n x n buffers while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..errors import HFBenchError
from . import dense as dense_mod
from .fused import info_may_stay_on_device, norm
from .options import Algorithm, Default, resolve

DEFAULTS = {
    "damped": Default(True, "§3.2 damped Newton; False is plain Newton (§3.1)"),
    "damping": Default(32.0, "Wang and Huang: lambda = 32 for damped Newton"),
    "step_size": Default(0.5, "Wang and Huang's 'lambda = 0.5', read as the step size alpha"),
    "curvature": Default("hessian", "§3.1; 'ggn' gives dense Gauss-Newton"),
    "memory_limit_gb": Default(2.0, "refuse when peak_bytes (every n x n buffer) exceeds this"),
    "eig_diagnostics": Default(False, "not in the paper: eig_min/eig_max of A, computed "
                                      "outside the timed step (info['deferred'])"),
}

# The most n x n float64 buffers each phase holds on a built-in backend (torch's
# eigvalsh copies its input once; JAX's computes eigenvectors too); `init` sees no
# backend, so it plans for the larger.
BUILTIN_MATRICES = {"cholesky": 1.0, "lu": 1.0, "lstsq": 3.0, "eigvalsh": 3.0}
# Solvers in the order tried, keyed by lambda > 0, and those `peak_bytes` plans for:
# a damped A should be positive definite, so its least-squares end is a guarded rarity.
CHAINS = {True: ("cholesky", "lu", "lstsq"), False: ("lu", "lstsq")}
PLANNED = {True: ("cholesky", "lu"), False: ("lu", "lstsq")}


@dataclass(frozen=True, kw_only=True)
class NewtonConfig:
    damped: bool
    damping: float
    step_size: float
    curvature: str
    memory_limit_gb: float
    eig_diagnostics: bool

    def __post_init__(self):
        if not self.damping >= 0:
            raise HFBenchError(f"newton.damping must be >= 0, got {self.damping!r}")
        if not self.step_size > 0 or not self.memory_limit_gb > 0:
            raise HFBenchError("newton.step_size and newton.memory_limit_gb must be > 0")

    @property
    def lam(self) -> float:
        return self.damping if self.damped else 0.0

    @property
    def solvers(self) -> tuple[str, ...]:
        """The solvers a step plans memory for (see `CHAINS`)."""
        return PLANNED[self.lam > 0]


class NewtonState(NamedTuple):
    step: int


def peak_bytes(n: int, dtype: str = "float32", *, damped: bool = True,
               eig_diagnostics: bool = False, matrices=None) -> int:
    """The most bytes a step holds at once in n x n buffers and chunk temporaries.

    Phases: the build (the float64 matrix plus one chunk of product temporaries),
    each solver planned for (`PLANNED[damped]`, damped meaning lambda > 0), holding
    `matrices[solver]` n x n float64 buffers (in-place factorizations hold one), and
    the deferred eigenvalues when asked for. Not counted: what every algorithm holds
    (parameters, gradient, the operator's forward-pass residuals). `matrices`: a
    backend's `dense.matrices`; by default the larger of the built-in backends'.
    """
    table = BUILTIN_MATRICES if matrices is None else matrices
    square = n * n * dense_mod.F64
    phases = [square + dense_mod.chunk_bytes(n, dtype)]
    phases += [table[s] * square for s in PLANNED[damped]]
    if eig_diagnostics:
        phases.append(table["eigvalsh"] * square)
    return int(max(phases))


def init(config: NewtonConfig, x) -> NewtonState:
    """Refuses, reading only x's length and dtype, when `peak_bytes` is over the limit."""
    n, dtype = int(x.shape[0]), str(getattr(x, "dtype", "float32")).replace("torch.", "")
    need = peak_bytes(n, dtype if dtype in dense_mod.ITEMSIZE else "float32",
                      damped=config.lam > 0, eig_diagnostics=config.eig_diagnostics)
    _check_memory(config, n, need)
    return NewtonState(0)


def _check_memory(config: NewtonConfig, n: int, need: float) -> None:
    limit = config.memory_limit_gb
    if need / 2**30 > limit:
        raise HFBenchError(
            f"newton: a dense step on {n} weights needs {need / 2**30:.2f} GiB (the {n} x {n} "
            f"float64 matrix and its solver's buffers), over memory_limit_gb={limit}; use "
            "'hf_newton' (Hessian-free, products only) or raise memory_limit_gb"
        )


def step(config: NewtonConfig, problem, x, state, batch, curvature_batch=None):
    be = problem.backend
    cbatch = batch if curvature_batch is None else curvature_batch
    n = int(x.shape[0])
    chunk = dense_mod.chunk_rows(n, be.dtype)
    loss, g = problem.value_and_grad(x, batch)
    op = problem.curvature(x, cbatch, config.curvature)
    dense = dense_mod.capability(be, g)
    p, solver, builds = _direction(config, be, dense, op, g, chunk)
    step_vec = be.ops.scale(-config.step_size, p)
    x_new, step_norm = be.ops.axpy(1.0, step_vec, x), norm(be.ops, step_vec)
    lazy = info_may_stay_on_device()
    info = {
        "loss": loss if lazy else be.ops.to_float(loss), "lambda": config.lam,
        "alpha": config.step_size, "solver": solver,
        "step_norm": step_norm if lazy else be.ops.to_float(step_norm),
        "accepted": True, "n_grad": 1, "n_gv": builds * n, "n_fwd": 0,
        "n_curv": 1, "cg_iters": 0,
    }
    if config.eig_diagnostics:
        info["deferred"] = _eig_diagnostics(be, dense, op, config.lam, chunk)
    return x_new, NewtonState(state.step + 1), info


def _direction(config: NewtonConfig, be, dense, op, g, chunk: int):
    """(A^-1 g, the solver that produced it, how many times A was built).

    Each solve factors A in place, so a fallback builds A again: rare when damped
    (Cholesky fails only when lambda < -eig_min(H)). An exactly zero row sends plain
    Newton's LU straight to least squares on the same A. A damped step reaches least
    squares only if LU meets an exactly zero pivot, which `init` did not plan for, so
    each solver's buffers (`dense.matrices`) are checked here, before allocating.
    """
    builds, A, zero_row = 0, None, False
    for solver in CHAINS[config.lam > 0]:
        if A is None:  # Cholesky reads one triangle: no averaging pass, no zero-row check
            A, zero_row = dense.prepare(op, config.lam, chunk, symmetrize=solver != "cholesky")
            builds += 1
        if solver == "lu" and be.ops.to_float(zero_row):
            continue  # LAPACK would stop at that row's zero pivot; A is left intact
        _check_memory(config, op.size, dense.matrices[solver] * op.size**2 * dense_mod.F64)
        p, ok = dense.solve(A, g, solver)
        A = None
        if be.ops.to_float(ok):
            return p, solver, builds
    raise HFBenchError(
        "newton: the least-squares solve of the dense system returned non-finite values "
        "(a NaN or inf in the curvature matrix or the gradient?)"
    )


def _eig_diagnostics(be, dense, op, lam: float, chunk: int):
    """The deferred callable of the module docstring."""

    def run() -> dict[str, float]:
        A, _ = dense.prepare(op, lam, chunk)
        lo, hi = dense.eigvalsh(A)
        return {"eig_min": be.ops.to_float(lo), "eig_max": be.ops.to_float(hi)}

    return run


def newton(**overrides) -> Algorithm:
    o = resolve("newton", DEFAULTS, overrides)
    return Algorithm("newton", NewtonConfig(**o), init, step, warmup=1)  # one path to compile
