"""The first-order baselines on the same harness: sgd and adam.

sgd (Polyak momentum; Nesterov as an option; Sutskever et al. 2013 form):
    v <- mu v + g;  x <- x - lr v            (nesterov: x <- x - lr (g + mu v))
adam (Kingma and Ba 2015, Alg. 1):
    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  x <- x - lr m_hat / (sqrt(v_hat) + eps)
The step counter and learning rate are plain host numbers read every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import HFBenchError
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
    step: int
    velocity: Any


class AdamState(NamedTuple):
    t: int
    m: Any
    v: Any


def _info(ops, loss, lr, upd):
    return {"loss": ops.to_float(loss), "lr": lr, "accepted": True, "cg_iters": 0,
            "step_norm": lr * math.sqrt(ops.to_float(ops.vdot(upd, upd))),
            "n_grad": 1, "n_gv": 0, "n_fwd": 0, "n_curv": 0}


def sgd_step(c: SGDConfig, problem, x, state, batch, curvature_batch=None):
    ops = problem.backend.ops
    loss, g = problem.value_and_grad(x, batch)
    vel = g if state.velocity is None else ops.axpy(c.momentum, state.velocity, g)
    upd = ops.axpy(c.momentum, vel, g) if c.nesterov else vel
    return ops.axpy(-c.lr, upd, x), MomentumState(state.step + 1, vel), _info(ops, loss, c.lr, upd)


def adam_step(c: AdamConfig, problem, x, state, batch, curvature_batch=None):
    ops = problem.backend.ops
    loss, g = problem.value_and_grad(x, batch)
    m0 = ops.zeros_like(g) if state.m is None else state.m
    v0 = ops.zeros_like(g) if state.v is None else state.v
    m = ops.axpy(1 - c.beta1, g, ops.scale(c.beta1, m0))
    v = ops.axpy(1 - c.beta2, g * g, ops.scale(c.beta2, v0))
    t = state.t
    upd = ops.scale(1 / (1 - c.beta1**t), m) / (ops.scale(1 / (1 - c.beta2**t), v) ** 0.5 + c.eps)
    return ops.axpy(-c.lr, upd, x), AdamState(t + 1, m, v), _info(ops, loss, c.lr, upd)


def sgd(**overrides) -> Algorithm:
    cfg = SGDConfig(**resolve("sgd", SGD_DEFAULTS, overrides))
    return Algorithm("sgd", cfg, lambda c, x: MomentumState(0, None), sgd_step)


def adam(**overrides) -> Algorithm:
    cfg = AdamConfig(**resolve("adam", ADAM_DEFAULTS, overrides))
    return Algorithm("adam", cfg, lambda c, x: AdamState(1, None, None), adam_step)
