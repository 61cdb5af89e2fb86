"""adaptive_hf: Adaptive Hessian-free optimization, Motokawa and Tezuka 2020, Alg. 1.

Per step t (from 1): delta_t = CG solution of (H + lambda I) delta = -g (separate
gradient and curvature batches); lambda by Levenberg-Marquardt; Adam moments of
delta_t with bias correction; the step size of their Eq. 3 (= Eq. 31):
    beta1   = eps / (eps + 2 sigma)
    alpha_t = 4 (|d|^2 (1 - beta1) - |d| (beta1 - beta1^t) sigma) / (3 L (1 - beta1^t)^2 sigma)
    m_t = beta1 m + (1 - beta1) d,   v_t = beta2 v + (1 - beta2) d^2
    theta <- theta + alpha_t * m_hat / (sqrt(v_hat) + mu)
with d = delta_t and |d| its norm (their "conjugate gradient vector" g_t). alpha_t and
t are recomputed every step on the host; the public code bakes them in as constants,
which we do not repeat.

Where Algorithm 1 is silent, the defaults follow the public code
(mtkwT/adaptive-hessian-free-optimization, src/optimizer/hfoptimizer_adam.py):
CG warm-started from 0.95 delta_{t-1}, as the HF baseline it is compared with, and
stopped on a relative change of phi below 1e-4 with no k factor (`cg.py`, "relative").
rho for the LM rule is an option: by default at delta_t with the damped model (the
order of Algorithm 1: "Update lambda" follows the CG solve); `rho_point: taken`,
`rho_model: undamped`, `damping_min: 0.1` are what the code does (the decrease of f
at the step actually taken, over the undamped model's decrease at delta_t, and no
lambda below 0.1). Either costs one forward pass and no matvec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import HFBenchError, unknown
from .cg import CGConfig
from . import tn_device
from .damping import LevenbergMarquardt, reduction_ratio, reduction_ratio_on
from .options import Algorithm, Default, resolve
from .front import FrontConfig, front, front_for_host, host_solution, to_host
from .fused import fused

RHO_POINTS = ("direction", "taken")

DEFAULTS = {
    "damping": Default(10.0, "within their search range lambda in [1, 30] (App. B.2)"),
    "L": Default(100.0, "within their search range L in [50, 300] (App. B.2)"),
    "sigma": Default(50.0, "within their search range sigma in [30, 100] (App. B.2)"),
    "eps": Default(1e-3, "within their search range eps in [1e-5, 0.1] (App. B.2)"),
    "beta2": Default(1e-6, "within their search range beta2 in [1e-10, 1e-4] (App. B.2)"),
    "mu": Default(1e-8, "Adam's epsilon (Kingma and Ba); the paper gives no value"),
    "curvature": Default("hessian", "Alg. 1: A = (H + lambda I); 'ggn' is an option"),
    "cg_max_iters": Default(250, "as hf (Martens' cap); Alg. 1 says only 'CG'"),
    "cg_stop": Default("relative", "public code: relative change of phi < eps, no k factor; "
                                   "'martens' is §4.4 of Martens 2010"),
    "cg_eps": Default(1e-4, "public code's 1e-4 ('martens' uses 5e-4)"),
    "cg_k_min": Default(10, "public code's gap = 10 (k = max(10, i // 10))"),
    "cg_residual_stop": Default(True, "public code: CG also ends once r.r < 1e-20 (float32) "
                                      "or 1e-80 (float64)"),
    "warm_start": Default(True, "public code: CG starts from cg_decay * delta_{t-1}; Alg. 1 "
                                "says only 'CG'"),
    "warm_start_decay": Default(0.95, "public code's cg_decay = 0.95"),
    "damping_min": Default(0.0, "Alg. 1 (none); the public code stops moving lambda at 0.1 "
                                "with the Hessian"),
    "rho_point": Default("direction", "Alg. 1's order: f at x + delta_t; 'taken': at the "
                                      "updated x, as the public code"),
    "rho_model": Default("damped", "Martens' q; the public code sets lambda = 0 in it "
                                   "('undamped')"),
    "clamp_step": Default(False, "Eq. 3 can give alpha_t < 0; True clamps it at 0 (a deviation)"),
}


@dataclass(frozen=True, kw_only=True)
class AdaptiveHFConfig:
    damping: float
    L: float
    sigma: float
    eps: float
    beta2: float
    mu: float
    curvature: str = "hessian"
    cg: CGConfig = field(default_factory=CGConfig)
    damping_rule: LevenbergMarquardt = field(default_factory=LevenbergMarquardt)
    clamp_step: bool = False
    warm_start: bool = True
    warm_start_decay: float = 0.95
    rho_point: str = "direction"
    rho_model: str = "damped"

    def __post_init__(self):
        for name in ("L", "sigma", "eps"):
            if not getattr(self, name) > 0:
                raise HFBenchError(f"adaptive_hf.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.beta2 < 1:
            raise HFBenchError(f"adaptive_hf.beta2 must lie in [0, 1), got {self.beta2!r}")
        if not self.mu > 0:  # m_hat / (sqrt(v_hat) + mu) is 0/0 where delta is exactly 0
            raise HFBenchError(f"adaptive_hf.mu must be > 0 (as Adam's eps), got {self.mu!r}")
        if not self.damping > 0:  # the LM rule only rescales lambda: from 0 it never moves
            raise HFBenchError(f"adaptive_hf.damping must be > 0, got {self.damping!r}")
        if self.curvature not in ("hessian", "ggn"):
            raise HFBenchError(unknown("curvature", self.curvature, ("hessian", "ggn"), "adaptive_hf"))
        if self.rho_point not in RHO_POINTS:
            raise HFBenchError(unknown("rho_point", self.rho_point, RHO_POINTS, "adaptive_hf"))
        if self.rho_model not in ("damped", "undamped"):
            raise HFBenchError(unknown("rho_model", self.rho_model, ("damped", "undamped"), "adaptive_hf"))
        if not 0 <= self.warm_start_decay <= 1:
            raise HFBenchError(f"adaptive_hf.warm_start_decay must lie in [0, 1], got {self.warm_start_decay!r}")

    @property
    def beta1(self) -> float:
        return self.eps / (self.eps + 2 * self.sigma)

    def step_size(self, d_norm: float, t: int) -> float:
        """Eq. 3 at step t (t >= 1)."""
        b1, s = self.beta1, self.sigma
        num = 4 * (d_norm**2 * (1 - b1) - d_norm * (b1 - b1**t) * s)
        alpha = num / (3 * self.L * (1 - b1**t) ** 2 * s)
        return max(alpha, 0.0) if self.clamp_step else alpha


class AdaptiveHFState(NamedTuple):
    t: int  # steps taken + 1
    lam: float
    m: Any
    v: Any
    d_prev: Any = None  # last CG solution, for the warm start


def init(config: AdaptiveHFConfig, x) -> AdaptiveHFState:
    return AdaptiveHFState(1, float(config.damping_rule.initial(float(config.damping))), None, None)


def step(config: AdaptiveHFConfig, problem, x, state, batch, curvature_batch=None):
    be = problem.backend
    ops = be.ops
    fc = FrontConfig(cg=config.cg, curvature=config.curvature, warm_start_decay=config.warm_start_decay)
    d_prev = state.d_prev if config.warm_start else None
    if tn_device.applies_to_any(problem):  # no host decision at all: one device call
        return _device_step(config, fc, problem, x, state, d_prev, batch, curvature_batch)
    fr = fused(problem, front_for_host, fc)(x, state.lam, d_prev, batch, curvature_batch)
    f0, sol, _, dd, _ = host_solution(be, fc, fr)
    d = sol.x
    t, b1, b2 = state.t, config.beta1, config.beta2
    zeros = None if state.m is not None else ops.zeros_like(d)
    m_prev, v_prev = (zeros, zeros) if state.m is None else (state.m, state.v)
    d_norm = math.sqrt(dd)
    alpha = config.step_size(d_norm, t)
    # bias corrections in float64 on the host; the update and f at rho's point are
    # one call (a backend that fuses runs them as one jit)
    static = (b1, b2, config.mu, config.rho_point == "taken")
    x_new, m, v, uu, f_at = fused(problem, _tail, static)(
        x, d, m_prev, v_prev, alpha, 1 / (1 - b1**t), 1 / (1 - b2**t), batch)
    f_at, uu = (float(a) for a in to_host(be, [f_at, uu]))
    rho = _rho(config, sol, dd, state.lam, f0, f_at)
    lam_next = config.damping_rule.update(state.lam, rho, state.t - 1, float(config.damping))
    info = {
        "loss": f0, "cg_iters": sol.num_steps, "cg_status": sol.status.name.lower(),
        "lambda": state.lam, "rho": rho, "alpha": alpha, "beta1": b1, "t": t,
        "direction_norm": d_norm, "step_norm": abs(alpha) * math.sqrt(uu),
        "accepted": True, "ritz_min": sol.ritz.min, "ritz_max": sol.ritz.max, "cond_est": sol.ritz.cond,
        "n_grad": 1, "n_gv": sol.num_gv, "n_fwd": 1, "n_curv": 1,
    }
    return x_new, AdaptiveHFState(t + 1, lam_next, m, v, d), info


def _device_step(config, fc, problem, x, state, d_prev, batch, curvature_batch):
    """The whole step on the device (see tn_device); info read back by the runner."""
    t, b1, b2 = state.t, config.beta1, config.beta2
    zeros = None if state.m is not None else problem.backend.ops.zeros_like(x)
    m, v = (zeros, zeros) if state.m is None else (state.m, state.v)
    x_new, m, v, d, lam_next, out = fused(problem, _device, (config, fc))(
        x, state.lam, d_prev, m, v, b1**t, 1 / (1 - b1**t), 1 / (1 - b2**t), batch, curvature_batch)
    info = {
        "loss": out["loss"], "cg_iters": out["cg_iters"], "lambda": state.lam, "rho": out["rho"],
        "alpha": out["alpha"], "beta1": b1, "t": t, "direction_norm": out["direction_norm"],
        "step_norm": out["step_norm"], "accepted": True, "n_grad": 1, "n_gv": out["n_gv"],
        "n_fwd": 1, "n_curv": 1, "_status": out["status"], "_alphas": out["alphas"],
        "_betas": out["betas"], "_host": tn_device.finish,
    }
    return x_new, AdaptiveHFState(t + 1, lam_next, m, v, d), info


def _device(problem, static, x, lam, d_prev, m, v, b1t, c1, c2, batch, cbatch):
    config, fc = static
    ops = problem.backend.ops
    fr = front(problem, fc, x, lam, d_prev, batch, cbatch)
    s, d = fr.cg, fr.cg.x
    d_norm = fr.xx**0.5
    b1, sigma = config.beta1, config.sigma
    alpha = 4 * (fr.xx * (1 - b1) - d_norm * (b1 - b1t) * sigma) / (3 * config.L * (1 - b1t) ** 2 * sigma)
    if config.clamp_step:
        alpha = ops.where(alpha < 0, 0.0, alpha)
    tail = (b1, config.beta2, config.mu, config.rho_point == "taken")
    x_new, m, v, uu, f_at = _tail(problem, tail, x, d, m, v, alpha, c1, c2, batch)
    model = ops.get(s.phi, s.i)  # phi(d) = q(d) - q(0), damped
    if config.rho_model == "undamped":
        model = model - 0.5 * lam * fr.xx
    rho = reduction_ratio_on(ops, fr.loss, f_at, model)
    out = {"loss": fr.loss, "cg_iters": s.i, "n_gv": s.num_gv, "status": s.status, "alphas": s.alphas,
           "betas": s.betas, "rho": rho, "alpha": alpha, "direction_norm": d_norm,
           "step_norm": abs(alpha) * uu**0.5}
    return x_new, m, v, d, config.damping_rule.update_on(ops, lam, rho), out


def _tail(problem, static, x, d, m, v, alpha, c1, c2, batch):
    """Adam moments of d, theta + alpha m_hat / (sqrt(v_hat) + mu), and f where rho looks."""
    b1, b2, mu, taken = static
    ops = problem.backend.ops
    m = ops.axpy(1 - b1, d, ops.scale(b1, m))
    v = ops.axpy(1 - b2, d * d, ops.scale(b2, v))
    update = ops.scale(c1, m) / (ops.scale(c2, v) ** 0.5 + mu)
    x_new = ops.axpy(alpha, update, x)
    at = x_new if taken else ops.axpy(1.0, d, x)
    return x_new, m, v, ops.vdot(update, update), problem.loss(at, batch)


def _rho(config, sol, dd, lam, f0, f_at) -> float:
    """(f(at) - f(x)) / (q(d) - q(0)); phi(d) = q(d) - q(0) with the damped A; dd = |d|^2."""
    model = float(sol.phi[sol.num_steps])
    if config.rho_model == "undamped":
        model -= 0.5 * lam * dd
    return reduction_ratio(f0, f_at, model)


def build(o: dict) -> AdaptiveHFConfig:
    return AdaptiveHFConfig(
        damping=o["damping"], L=o["L"], sigma=o["sigma"], eps=o["eps"], beta2=o["beta2"], mu=o["mu"],
        curvature=o["curvature"], clamp_step=o["clamp_step"],
        cg=CGConfig(stop=o["cg_stop"], max_iters=o["cg_max_iters"], eps=o["cg_eps"],
                    k_min=o["cg_k_min"], residual_floor="auto" if o["cg_residual_stop"] else 0.0,
                    save_iterates=False),
        damping_rule=LevenbergMarquardt(min_lambda=o["damping_min"]),
        warm_start=o["warm_start"], warm_start_decay=o["warm_start_decay"],
        rho_point=o["rho_point"], rho_model=o["rho_model"],
    )


def adaptive_hf(**overrides) -> Algorithm:
    return Algorithm("adaptive_hf", build(resolve("adaptive_hf", DEFAULTS, overrides)), init, step)
