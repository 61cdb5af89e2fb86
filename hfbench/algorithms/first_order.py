"""The first-order baselines on the same harness: sgd and adam.

sgd (Polyak momentum; Nesterov as an option; Sutskever et al. 2013 form):
    v <- mu v + g;  x <- x - lr v            (nesterov: x <- x - lr (g + mu v))
adam (Kingma and Ba 2015, Alg. 1):
    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  x <- x - lr m_hat / (sqrt(v_hat) + eps)

A step is one fused call (`fused.first_order_step`): the gradient, the update and its
diagnostics (loss, step norm) in one jitted function on JAX, and with no host read on
any backend, so the harness costs what a hand-written loop of the same model costs.
The step counter lives on the device in the state, as an argument of the fused
function: a counter or learning rate frozen into a compiled graph is a known peer bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import HFBenchError
from .fused import first_order_step, in_dtype, lerp, norm, traces
from .options import Algorithm, Default, resolve

SGD_DEFAULTS = {
    "lr": Default(0.1, "Wang and Huang's SGD alpha = 0.1; suites sweep it"),
    "momentum": Default(0.0, "plain SGD, as Gargiani et al. and Wang and Huang run it"),
    "nesterov": Default(False, "Nesterov momentum option"),
}
ADAM_DEFAULTS = {
    "lr": Default(1e-3, "Kingma and Ba 2015 default"),
    "beta1": Default(0.9, "Kingma and Ba 2015 default"),
    "beta2": Default(0.999, "Kingma and Ba 2015 default"),
    "eps": Default(1e-8, "Kingma and Ba 2015 default"),
}
COUNTS = {"accepted": True, "cg_iters": 0, "n_grad": 1, "n_gv": 0, "n_fwd": 0, "n_curv": 0}


@dataclass(frozen=True, kw_only=True)
class SGDConfig:
    lr: float
    momentum: float
    nesterov: bool

    def __post_init__(self):
        if not self.lr > 0:
            raise HFBenchError(f"sgd.lr must be > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise HFBenchError(f"sgd.momentum must lie in [0, 1), got {self.momentum!r}")


@dataclass(frozen=True, kw_only=True)
class AdamConfig:
    lr: float
    beta1: float
    beta2: float
    eps: float

    def __post_init__(self):
        if not self.lr > 0 or not self.eps > 0:
            raise HFBenchError("adam.lr and adam.eps must be > 0")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise HFBenchError(f"adam.{name} must lie in [0, 1), got {getattr(self, name)!r}")


class MomentumState(NamedTuple):
    velocity: Any  # None without momentum (plain SGD keeps no state)


class AdamState(NamedTuple):
    # this step's index, from 1: a 0-d float64 device array on a tracing backend (a
    # Python counter would be frozen into the compiled step), else a Python float,
    # whose bias-correction arithmetic costs no device op
    t: Any
    m: Any
    v: Any


def sgd_update(ops, c: SGDConfig, x, state: MomentumState, loss, g):
    """The SGD update from (loss, g): pure vector algebra, fused with the gradient."""
    if c.momentum == 0:
        upd, new = g, state
    else:
        vel = ops.axpy(c.momentum, state.velocity, g)
        upd, new = (ops.axpy(c.momentum, vel, g) if c.nesterov else vel), MomentumState(vel)
    return ops.axpy(-c.lr, upd, x), new, {"loss": loss, "step_norm": c.lr * norm(ops, upd)}


def adam_update(ops, c: AdamConfig, x, state: AdamState, loss, g):
    """Alg. 1 with its bias corrections folded into scalars (Kingma and Ba 2015, §2's
    remark on the order of computation). With c1 = 1 - b1^t and c2 = 1 - b2^t,

        lr m_hat / (sqrt(v_hat) + eps) = (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)),

    exactly (the paper's faster form leaves eps unscaled, which changes the method), so
    the vectors take 8 passes (two lerps, g^2, sqrt, + eps, the division, the step and
    its norm) rather than 12; on an eager backend each pass is a full read and write.
    """
    t = state.t
    m = lerp(ops, state.m, g, 1 - c.beta1)  # b1 m + (1 - b1) g
    v = lerp(ops, state.v, g * g, 1 - c.beta2)
    root_c2 = (1 - c.beta2**t) ** 0.5
    size = c.lr * root_c2 / (1 - c.beta1**t)
    u = m / (v**0.5 + in_dtype(ops, c.eps * root_c2, v))
    info = {"loss": loss, "step_norm": size * norm(ops, u)}
    return ops.axpy(-size, u, x), AdamState(t + 1, m, v), info


def _sgd_init(c: SGDConfig, x) -> MomentumState:
    return MomentumState(None)


def _adam_init(c: AdamConfig, x) -> AdamState:
    return AdamState(None, None, None)


def _filled(problem, c, state, x):
    """The state with its device buffers made on first use (the init has no backend)."""
    ops = problem.backend.ops
    if isinstance(state, AdamState) and state.m is None:
        t = ops.asarray(1.0, "float64") if traces(problem) else 1.0
        return AdamState(t, ops.zeros_like(x), ops.zeros_like(x))
    if isinstance(state, MomentumState) and state.velocity is None and c.momentum:
        return MomentumState(ops.zeros_like(x))
    return state


def _step(update):
    def step(c, problem, x, state, batch, curvature_batch=None):
        state = _filled(problem, c, state, x)
        x, state, info = first_order_step(problem, update, c)(x, state, batch)
        return x, state, {**info, "lr": c.lr, **COUNTS}
    return step


def sgd(**overrides) -> Algorithm:
    cfg = SGDConfig(**resolve("sgd", SGD_DEFAULTS, overrides))
    return Algorithm("sgd", cfg, _sgd_init, _step(sgd_update), warmup=1)


def adam(**overrides) -> Algorithm:
    cfg = AdamConfig(**resolve("adam", ADAM_DEFAULTS, overrides))
    return Algorithm("adam", cfg, _adam_init, _step(adam_update), warmup=1)
