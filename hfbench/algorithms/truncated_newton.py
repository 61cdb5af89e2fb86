"""The step shared by the Hessian-free family (hf, sgn, hf_newton).

One outer step (Martens 2010 Alg. 1; Gargiani et al. 2020 Alg. 1):
1. f(x) and g on the gradient batch.
2. The curvature operator C on the curvature batch (fixed during the solve, §4.5).
3. Optionally the preconditioner M = (diag F + l2 + lambda)^0.75 (§4.7).
4. CG on (C + lambda I) p = -g, warm-started from decay * p_prev (§4.5).
5. Optionally CG-iterate backtracking on f (§4.6), then an optional line search
   (`linesearch.Armijo`, from alpha0 = step_size).
6. rho = (f(x + a p) - f(x)) / (q(a p) - q(0)), q(a p) - q(0) = a^2/2 p.Ap + a g.p:
   - `rho_point`: "taken" evaluates it at the step actually taken (a from the line
     search); "full" at a = step_size before the line search, as Gargiani et al.'s
     trust region (Nocedal and Wright Alg. 4.1) and Martens' code compute it;
     "taken_over_full" divides the decrease of f at the step taken by the model's
     decrease at the CG solution itself (a = 1), as the TensorFlow HF code that
     Motokawa and Tezuka's public code extends does (w + lr delta against q(delta));
   - `rho_model`: q with the damped A = C + lambda I, or the undamped C (Martens' code);
   - `rho_batch`: f on the gradient batch, or on the curvature batch (Martens' code,
     two forward passes there; g stays the gradient batch's).
   p.Ap comes from CG's phi history, so rho costs no extra matvec.
7. lambda moves by the damping rule.
Each preset (hf.py, sgn.py, hf_newton.py) is this step with its paper's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import HFBenchError, unknown
from ..protocol import CURVATURE_KINDS
from .backtrack import backtrack
from .cg import CGConfig
from .damping import Fixed, LevenbergMarquardt, Scheduled, reduction_ratio
from . import tn_device
from .front import FrontConfig, front, front_for_host, host_solution
from .fused import fused, info_may_stay_on_device, loss_at
from .linesearch import Armijo
from .phases import Phases

RHO_MODELS = ("damped", "undamped")
RHO_POINTS = ("taken", "full", "taken_over_full")
RHO_BATCHES = ("gradient", "curvature")


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
    rho_point: str = "taken"
    rho_batch: str = "gradient"
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
        if self.curvature not in CURVATURE_KINDS:
            raise HFBenchError(unknown("curvature", self.curvature, CURVATURE_KINDS, "curvature"))
        if self.rho_model not in RHO_MODELS:
            raise HFBenchError(unknown("rho_model", self.rho_model, RHO_MODELS, "rho_model"))
        if self.rho_point not in RHO_POINTS:
            raise HFBenchError(unknown("rho_point", self.rho_point, RHO_POINTS, "rho_point"))
        if self.rho_batch not in RHO_BATCHES:
            raise HFBenchError(unknown("rho_batch", self.rho_batch, RHO_BATCHES, "rho_batch"))
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
    return TruncatedNewtonState(0, float(config.damping_rule.initial(float(config.damping))), None)


def front_config(config: TruncatedNewtonConfig) -> FrontConfig:
    # Without backtracking the step's first f is at step_size * x_cg, for the line
    # search's first trial or for rho: the front computes it with the rest.
    needs_f = config.line_search is not None or config.damping_rule.uses_rho
    return FrontConfig(cg=config.cg, curvature=config.curvature, preconditioner=config.preconditioner,
                       precond_exponent=config.precond_exponent,
                       warm_start_decay=config.warm_start_decay,
                       f_at_step=config.step_size if needs_f and not config.backtracking else None)


def tn_step(config, problem, x, state, batch, curvature_batch=None):
    fc = front_config(config)
    if tn_device.applies(config, problem):  # no host decision: one device call
        x_new, p, lam_next, info = tn_device.step(config, fc, problem, x, state, batch, curvature_batch)
        return x_new, TruncatedNewtonState(state.step + 1, lam_next, p), info
    be = problem.backend
    ops, clock = be.ops, Phases(be, config.profile)
    p_prev = state.p_prev if config.warm_start else None
    if config.profile:  # unfused, so each phase can be timed
        fr = front(problem, fc, x, state.lam, p_prev, batch, curvature_batch, clock.mark)
    else:
        fr = fused(problem, front_for_host, fc)(x, state.lam, p_prev, batch, curvature_batch)
    lazy = info_may_stay_on_device()  # the runner: Ritz values after the clock stops
    f0, sol, gx, xx, f_step = host_solution(be, fc, fr, ritz=not lazy)
    g = fr.g
    counts = {"n_grad": 1, "n_gv": sol.num_gv, "n_fwd": 0, "n_curv": 1,
              "n_precond": int(config.preconditioner)}
    f_at = _Objective(problem, x, batch, counts)
    dots = _Dots(ops, g, sol.x, gx, xx)
    p, it, f_p = _direction(config, sol, f_at)
    if f_p is not None:
        f_at.bind(p).known[1.0] = f_p
    if f_step is not None:
        f_at.bind(p).known[config.step_size] = f_step
        counts["n_fwd"] += 1
    clock.mark("backtrack")
    alpha, f_new, accepted = _step_length(config, dots, f_at, p, f0)
    clock.mark("line_search")
    rho = float("nan")
    if config.damping_rule.uses_rho:
        cbatch = batch if curvature_batch is None else curvature_batch
        rho = _rho(config, dots, problem, sol, it, p, state.lam, f_at, f0, alpha, f_new, cbatch, counts)
    x_new = ops.axpy(alpha, p, x) if accepted else x
    lam_next = config.damping_rule.update(state.lam, rho, state.step, float(config.damping))
    clock.mark("update")
    info = {
        "loss": f0, "cg_iters": sol.num_steps, "cg_status": sol.status.name.lower(),
        "lambda": state.lam, "alpha": alpha, "accepted": accepted,
        "step_norm": abs(alpha) * math.sqrt(dots.pp(p)) if accepted else 0.0,
        "backtrack_iter": it, "ritz_min": sol.ritz.min, "ritz_max": sol.ritz.max,
        "cond_est": sol.ritz.cond, **counts, **clock.times,
    }
    if f_new is not None:
        info["loss_after"] = f_new
    if config.damping_rule.uses_rho:
        info["rho"] = rho
    if lazy:
        del info["ritz_min"], info["ritz_max"], info["cond_est"], info["cg_status"]
        info.update(_status=int(sol.status), _alphas=sol.lanczos[0], _betas=sol.lanczos[1],
                    _host=tn_device.finish)
    return x_new, TruncatedNewtonState(state.step + 1, lam_next, sol.x), info


class _Dots:
    """g.p and p.p on the host, free for the final CG iterate (the front computed them)."""

    def __init__(self, ops, g, x_cg, gx, xx):
        self.ops, self.g, self.x_cg, self._known = ops, g, x_cg, (gx, xx)

    def gp(self, p) -> float:
        return self._known[0] if p is self.x_cg else self.ops.to_float(self.ops.vdot(self.g, p))

    def pp(self, p) -> float:
        return self._known[1] if p is self.x_cg else self.ops.to_float(self.ops.vdot(p, p))


class _Objective:
    """f(x + alpha p) on one batch, counting forward passes; remembers values by alpha
    for the current p, so the line search and rho reuse what backtracking computed."""

    def __init__(self, problem, x, batch, counts):
        self.problem, self.x, self.batch, self.counts = problem, x, batch, counts
        self.ops, self._loss_at = problem.backend.ops, loss_at(problem)
        self.known, self._p = {}, None

    def __call__(self, p, alpha=1.0):
        if p is not self._p:
            self.known, self._p = {}, p
        if alpha not in self.known:
            self.counts["n_fwd"] += 1
            self.known[alpha] = self.ops.to_float(self._loss_at(self.x, p, alpha, self.batch))
        return self.known[alpha]

    def bind(self, p):
        """Mark p as current, keeping values already known for it."""
        if p is not self._p:
            self.known, self._p = {}, p
        return self


def _direction(config, sol, f_at):
    """The CG iterate to use, its iteration and f(x + p) when known (else None)."""
    if config.backtracking:
        bt = backtrack(sol, f_at)
        return bt.p, bt.iteration, bt.loss
    return sol.x, sol.num_steps, None


def _step_length(config, dots, f_at, p, f0):
    """(alpha, f(x + alpha p), accepted): the line search, or the fixed step size."""
    a0 = config.step_size
    f_at.bind(p)
    if config.line_search is None:
        # f at the new point only when something reads it (rho); else the value
        # already known from backtracking, if any. A hand-written fixed-step loop
        # would not pay a forward pass here either.
        known = f_at.known.get(a0)
        return a0, (f_at(p, a0) if config.damping_rule.uses_rho else known), True
    slope = dots.gp(p)
    ls = config.line_search
    res = ls.search(lambda a: f_at(p, a), f0, slope, f_at.known.get(ls.alpha0))
    return res.alpha, res.loss, res.accepted


def _rho(config, dots, problem, sol, it, p, lam, f_at, f0, alpha, f_new, cbatch, counts):
    """The reduction ratio (step 6 of the module doc); q from phi: phi_j = 1/2 p_j.A p_j + g.p_j."""
    if config.rho_point == "full":
        alpha = config.step_size
        f_new = f_at(p, alpha)
    elif alpha == 0.0 and math.isfinite(f_new):
        return 0.0  # the step was rejected: nothing was taken
    if config.rho_batch == "curvature" and cbatch is not f_at.batch:
        counts["n_fwd"] += 2
        ops = problem.backend.ops
        f0 = ops.to_float(problem.loss(f_at.x, cbatch))
        f_new = ops.to_float(problem.loss(ops.axpy(alpha, p, f_at.x), cbatch))
    gp = dots.gp(p)
    pAp = 2.0 * (float(sol.phi[it]) - gp)
    if config.rho_model == "undamped":
        pAp -= lam * dots.pp(p)
    a = 1.0 if config.rho_point == "taken_over_full" else alpha
    return reduction_ratio(f0, f_new, 0.5 * a**2 * pAp + a * gp)
