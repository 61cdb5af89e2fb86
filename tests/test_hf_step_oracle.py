"""One `hf` step end to end against a NumPy preconditioned CG written out here.

Martens 2010 §4.2-4.7 with the weight cost l2/2 |theta|^2 of the objective:

    A     = G_c + l2 I + lambda I     G_c the Gauss-Newton matrix of the curvature batch;
                                      l2 I is the weight cost's exact curvature
    b     = -g                        g the objective's gradient on the gradient batch
    M^-1  = (diag + l2 + lambda)^-0.75, diag = (1/B) sum_i g_i * g_i over the gradient
                                      batch's per-example loss gradients (§4.7's
                                      empirical-Fisher diagonal; the 1/B of the mean
                                      objective puts it on G's scale; the l2 curvature
                                      added as it is to A)
    x_0   = 0.95 p_prev               the warm start decayed as Martens' public code does

Every dense piece comes from `oracles.reference` (torch autograd on a functional
forward; the per-example gradients by a Python loop over examples), none from a
backend. CG is capped at 5 iterations: Martens' stop needs i > k >= 10, so the
step runs exactly 5, and the oracle runs 5. `warm_start_decay` and the
preconditioner exponent are left at hf's defaults, so a changed default is caught.

Each test first shows that the oracle tells the planted bugs apart (dropping l2
from M, a decay of 1.0 or 0.0 instead of 0.95): a bug whose direction differed
from the truth only at rounding level would otherwise pass by accident.
"""

from __future__ import annotations

import numpy as np
import pytest

from hfbench import algorithms as algs
from hfbench import models
from hfbench.algorithms.fused import lazy_info

from conftest import SQUARED, backend_params, make_backend
from oracles import reference, relerr, torch

pytestmark = pytest.mark.skipif(
    torch is None, reason="the dense oracles build G with torch autograd: pip install 'hfbench[torch]'")

# 3-4-2 tanh net, squared error, with a weight cost: 26 parameters. Inputs of scale 3
# and a small lambda make A ill-conditioned enough (cond ~ 26) that 5 iterations do
# not solve it, so the start and the preconditioner still show in the direction.
SPEC = models.mlp([3, 4, 2], "tanh", loss=SQUARED, l2=0.2, name="hf-oracle")
LAM = 0.1  # lambda: the damping the step starts from
DECAY = 0.95  # Martens' public code; hf's default
EXPONENT = 0.75  # §4.7
ITERS = 5
TOL = 1e-10
# hf at its defaults but for the damping and a CG cap below Martens' k_min
HF = dict(damping=LAM, cg_max_iters=ITERS)


def pcg(A, b, m_inv, x0, iters: int) -> np.ndarray:
    """Preconditioned CG (Nocedal and Wright Alg. 5.3), exactly `iters` iterations."""
    x = np.array(x0, dtype=np.float64)
    r = b - A @ x
    z = m_inv * r
    p, rz = z.copy(), r @ z
    for _ in range(iters):
        Ap = A @ p
        alpha = rz / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        z = m_inv * r
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    return x


class Oracle:
    """The dense system of one step, and its PCG solution under chosen variants."""

    def __init__(self, theta, Xg, Yg, Xc, Yc, p_prev):
        grad_ref = reference(SPEC, theta, Xg, Yg)
        curv_ref = reference(SPEC, theta, Xc, Yc)
        n = theta.size
        self.b = -grad_ref.grad
        self.A = curv_ref.ggn + LAM * np.eye(n)  # ggn carries the weight cost's l2 I
        g_i = grad_ref.per_example  # (B, n), one backward pass per example
        self.diag = (g_i**2).sum(axis=0) / len(g_i)
        self.p_prev = p_prev

    def solve(self, l2_in_m: bool = True, decay: float = DECAY, iters: int = ITERS):
        m_inv = (self.diag + (SPEC.l2 if l2_in_m else 0.0) + LAM) ** -EXPONENT
        return pcg(self.A, self.b, m_inv, decay * self.p_prev, iters)


def case(one_batch: bool):
    rng = np.random.default_rng(12)
    X, Y = 3.0 * rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    theta = rng.standard_normal(SPEC.num_params)
    p_prev = 0.5 * rng.standard_normal(SPEC.num_params)  # a previous direction, non-zero
    Xc, Yc = (X[:8], Y[:8]) if one_batch else (X[8:], Y[8:])
    return theta, X[:8], Y[:8], Xc, Yc, p_prev


def host(be, a) -> np.ndarray:
    return np.array(be.to_numpy(a), dtype=np.float64)


def assert_oracle_sees_the_planted_bugs(oracle, want):
    """The variants a mutation would compute are far from the truth, not rounding away."""
    for label, variant in (("no l2 in M", oracle.solve(l2_in_m=False)),
                           ("decay 1.0", oracle.solve(decay=1.0)),
                           ("decay 0.0", oracle.solve(decay=0.0)),
                           ("one iteration less", oracle.solve(iters=ITERS - 1))):
        assert relerr(variant, want) > 1e-3, f"the oracle cannot tell {label} from the truth"


def run_step(name, one_batch, overrides, lazy=False):
    theta, Xg, Yg, Xc, Yc, p_prev = case(one_batch)
    oracle = Oracle(theta, Xg, Yg, Xc, Yc, p_prev)
    be = make_backend(name, "float64")
    problem = be.problem(SPEC)
    alg = algs.get("hf", **HF, **overrides)
    x = be.asarray(theta)
    state = alg.init(x)._replace(p_prev=be.asarray(p_prev))  # as if a step had run before
    batch = be.batch(Xg, Yg)
    cbatch = None if one_batch else be.batch(Xc, Yc)
    if lazy:  # the runner's mode: on a fusing backend, one device call per step
        with lazy_info():
            x_new, state_new, info = alg.step(problem, x, state, batch, cbatch)
        info = {k: (host(be, v) if k in ("cg_iters", "n_gv") else v) for k, v in info.items()}
    else:
        x_new, state_new, info = alg.step(problem, x, state, batch, cbatch)
    return oracle, theta, host(be, x_new), host(be, state_new.p_prev), info


@pytest.mark.parametrize("name", backend_params())
@pytest.mark.parametrize("one_batch", [False, True], ids=["two-batches", "one-batch"])
def test_hf_cg_direction_is_the_oracle_pcg(name, one_batch):
    """hf as run (backtracking on): the CG solution it keeps for the next warm start
    is 5 PCG iterations from 0.95 p_prev with (diag + l2 + lambda)^-0.75; with two
    batches, G is the curvature batch's and the diagonal the gradient batch's."""
    oracle, _, _, p, info = run_step(name, one_batch, {})
    want = oracle.solve()
    assert_oracle_sees_the_planted_bugs(oracle, want)
    assert int(info["cg_iters"]) == ITERS
    assert int(info["n_gv"]) == ITERS + 1  # the warm start's residual costs one product
    assert relerr(p, want) <= TOL


@pytest.mark.parametrize("name", backend_params())
@pytest.mark.parametrize("lazy", [False, True], ids=["host", "device"])
def test_hf_step_without_backtracking_takes_the_oracle_pcg(name, lazy):
    """Backtracking off: the step is x + p, p the oracle PCG solution; "device" runs
    it as the runner does, where a fusing backend (JAX) takes the one-call path."""
    oracle, theta, x_new, p, info = run_step(name, True, {"backtracking": False}, lazy=lazy)
    want = oracle.solve()
    assert_oracle_sees_the_planted_bugs(oracle, want)
    assert int(info["cg_iters"]) == ITERS
    assert relerr(p, want) <= TOL
    assert relerr(x_new - theta, want) <= TOL
