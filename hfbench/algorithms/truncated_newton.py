"""The step shared by the Hessian-free family (hf, sgn, hf_newton).

One outer step (Martens 2010 Alg. 1; Gargiani et al. 2020 Alg. 1):
1. f(x) and g on the gradient batch.
2. The curvature operator C on the curvature batch (fixed during the solve, §4.5).
3. Optionally the preconditioner M = (diag F + l2 + lambda)^0.75 (§4.7).
4. CG on (C + lambda I) p = -g, warm-started from decay * p_prev (§4.5).
5. Optionally CG-iterate backtracking on f (§4.6), then an optional Armijo line
   search that rejects the step when it fails.
6. rho = (f(x + a p) - f(x)) / (q(a p) - q(0)) at the step actually taken, with f
   and g from the gradient batch; q damped or undamped (`rho_model`). The model
   term p.Ap comes from CG's phi history, so rho costs no extra matvec.
7. lambda moves by the damping rule.
Each preset (hf.py, sgn.py, hf_newton.py) is this step with its paper's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import HFBenchError, unknown
from .backtrack import backtrack
from .cg import CGConfig
from .damping import Fixed, LevenbergMarquardt, Scheduled, reduction_ratio
from .linesearch import Armijo
from .phases import Phases
from .solve import cg_solve

KINDS = ("ggn", "hessian", "fisher")
RHO_MODELS = ("damped", "undamped")


@dataclass(frozen=True, kw_only=True)
class TruncatedNewtonConfig:
    damping: float = 45.0  # initial lambda
    damping_rule: Fixed | LevenbergMarquardt | Scheduled = field(default_factory=LevenbergMarquardt)
    cg: CGConfig = field(default_factory=CGConfig)
    curvature: str = "ggn"
    warm_start: bool = True
    warm_start_decay: float = 0.95
    preconditioner: bool = True
    precond_exponent: float = 0.75
    backtracking: bool = True
    line_search: Armijo | None = None
    step_size: float = 1.0
    rho_model: str = "damped"
    profile: bool = False  # add t_grad, t_curvature, ... to info (syncs between phases)

    def __post_init__(self):
        if not (isinstance(self.damping, (int, float)) and self.damping >= 0):
            raise HFBenchError(f"damping (the initial lambda) must be a number >= 0, got {self.damping!r}")
        if self.damping == 0 and not isinstance(self.damping_rule, Fixed):
            raise HFBenchError(
                "damping (the initial lambda) is 0, but the damping rule only rescales lambda, "
                "so it could never rise; start from a small positive value (e.g. 1e-8)"
            )
        if self.damping == 0 and self.preconditioner:
            raise HFBenchError(
                "damping 0 with the preconditioner on: (diag + lambda)^-0.75 is infinite where "
                "the diagonal is 0; use damping > 0 or preconditioner=False"
            )
        if self.curvature not in KINDS:
            raise HFBenchError(unknown("curvature", self.curvature, KINDS, "curvature"))
        if self.rho_model not in RHO_MODELS:
            raise HFBenchError(unknown("rho_model", self.rho_model, RHO_MODELS, "rho_model"))
        if not 0 <= self.warm_start_decay <= 1:
            raise HFBenchError(f"warm_start_decay must lie in [0, 1], got {self.warm_start_decay!r}")
        if not 0 < self.precond_exponent <= 1:
            raise HFBenchError(f"precond_exponent must lie in (0, 1], got {self.precond_exponent!r}")
        if not self.step_size > 0:
            raise HFBenchError(f"step_size must be > 0, got {self.step_size!r}")


class TruncatedNewtonState(NamedTuple):
    step: int
    lam: float
    p_prev: Any  # last un-backtracked CG solution (device), or None


def tn_init(config: TruncatedNewtonConfig, x) -> TruncatedNewtonState:
    return TruncatedNewtonState(0, float(config.damping), None)


def tn_step(config, problem, x, state, batch, curvature_batch=None):
    be = problem.backend
    ops, clock = be.ops, Phases(be, config.profile)
    cbatch = batch if curvature_batch is None else curvature_batch
    loss, g = problem.value_and_grad(x, batch)
    f0 = ops.to_float(loss)
    clock.mark("grad")
    op = problem.curvature(x, cbatch, config.curvature)
    clock.mark("curvature")
    m_inv = _preconditioner(config, problem, x, batch, state.lam)
    clock.mark("precondition")
    x0 = None
    if config.warm_start and state.p_prev is not None:
        x0 = ops.scale(config.warm_start_decay, state.p_prev)
    sol = cg_solve(be, config.cg, op, ops.scale(-1.0, g), state.lam, m_inv, x0)
    clock.mark("cg")
    counts = {"n_grad": 1, "n_gv": sol.num_gv, "n_fwd": 0, "n_curv": 1, "n_precond": int(m_inv is not None)}

    def f_at(p, alpha=1.0):
        counts["n_fwd"] += 1
        return ops.to_float(problem.loss(ops.axpy(alpha, p, x), batch))

    p, it, f_p = _direction(config, sol, f_at)
    clock.mark("backtrack")
    alpha, f_new, accepted = _step_length(config, ops, f_at, p, f0, f_p, g)
    clock.mark("line_search")
    rho = _rho(config, ops, sol, it, p, g, state.lam, alpha, f0, f_new)
    x_new = ops.axpy(alpha, p, x) if accepted else x
    lam_next = config.damping_rule.update(state.lam, rho, state.step, float(config.damping))
    clock.mark("update")
    info = {
        "loss": f0, "loss_after": f_new, "cg_iters": sol.num_steps, "cg_status": sol.status.name.lower(),
        "lambda": state.lam, "rho": rho, "alpha": alpha, "accepted": accepted,
        "step_norm": abs(alpha) * math.sqrt(ops.to_float(ops.vdot(p, p))) if accepted else 0.0,
        "backtrack_iter": it, "ritz_min": sol.ritz.min, "ritz_max": sol.ritz.max,
        "cond_est": sol.ritz.cond, **counts, **clock.times,
    }
    return x_new, TruncatedNewtonState(state.step + 1, lam_next, sol.x), info


def _preconditioner(config, problem, x, batch, lam):
    if not config.preconditioner:
        return None
    d = problem.precondition(x, batch)
    return (d + (problem.spec.l2 + lam)) ** (-config.precond_exponent)


def _direction(config, sol, f_at):
    """The CG iterate to use, its iteration and f(x + p) when known (else None)."""
    if config.backtracking:
        bt = backtrack(sol, f_at)
        return bt.p, bt.iteration, bt.loss
    return sol.x, sol.num_steps, None


def _step_length(config, ops, f_at, p, f0, f_p, g):
    """(alpha, f(x + alpha p), accepted): the line search, or the fixed step size."""
    if config.line_search is not None:
        slope = ops.to_float(ops.vdot(g, p))
        res = config.line_search.search(lambda a: f_at(p, a), f0, slope)
        return res.alpha, res.loss, res.accepted
    a = config.step_size
    f_new = f_p if (f_p is not None and a == 1.0) else f_at(p, a)
    return a, f_new, True


def _rho(config, ops, sol, it, p, g, lam, alpha, f0, f_new):
    """Reduction ratio at the step taken; q from phi: phi_j = 1/2 p_j.A p_j + g.p_j."""
    if alpha == 0.0 and math.isfinite(f_new):
        return 0.0  # the step was rejected: nothing was taken
    gp = ops.to_float(ops.vdot(g, p))
    pAp = 2.0 * (float(sol.phi[it]) - gp)
    if config.rho_model == "undamped":
        pAp -= lam * ops.to_float(ops.vdot(p, p))
    return reduction_ratio(f0, f_new, 0.5 * alpha**2 * pAp + alpha * gp)
