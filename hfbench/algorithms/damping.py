"""Damping rules: how lambda moves between outer steps.

Each rule is a frozen config with `update(lam, rho, step, lam0) -> lam`, pure and on the
host (it runs once per outer step). `lam` is the Levenberg-Marquardt parameter of
HF (Martens 2010 §4.1) and SGN's rho parameter (Gargiani et al. 2020 §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import HFBenchError


def _positive(name: str, value, strict: bool = True) -> None:
    ok = isinstance(value, (int, float)) and (value > 0 if strict else value >= 0)
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise HFBenchError(f"{name} must be a number {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Fixed:
    """lambda never moves (Wang and Huang's fixed lambda; SGN's default rho)."""

    def update(self, lam: float, rho: float, step: int, lam0: float) -> float:
        return lam


@dataclass(frozen=True, kw_only=True)
class LevenbergMarquardt:
    """Martens 2010 §4.1: rho < 1/4: lambda *= 3/2; rho > 3/4: lambda *= 2/3.

    Also Gargiani et al.'s trust-region adaptation (their Alg. 4.1 with thresholds
    1/4, 3/4). A non-finite rho (a failed step) counts as rho < low, so lambda can
    always rise again (a known peer bug gates it so it cannot).
    """

    low: float = 0.25
    high: float = 0.75
    increase: float = 1.5
    decrease: float = 2.0 / 3.0
    min_lambda: float = 0.0

    def __post_init__(self):
        if not 0 <= self.low < self.high:
            raise HFBenchError(f"damping thresholds need 0 <= low < high, got {self.low}, {self.high}")
        if not (self.increase > 1 and 0 < self.decrease < 1):
            raise HFBenchError("damping needs increase > 1 and 0 < decrease < 1")
        _positive("damping.min_lambda", self.min_lambda, strict=False)

    def update(self, lam: float, rho: float, step: int, lam0: float) -> float:
        if not math.isfinite(rho) or rho < self.low:
            lam = lam * self.increase
        elif rho > self.high:
            lam = lam * self.decrease
        return max(lam, self.min_lambda)


@dataclass(frozen=True, kw_only=True)
class Scheduled:
    """SGN's scheduled rho: from lambda_0 to `final` over `steps` (linear or cosine).

    lambda_t = final + (lambda_0 - final) * s(t / steps), s = 1 - u (linear) or
    (1 + cos(pi u)) / 2 (cosine); held at `final` after `steps`.
    """

    schedule: str = "linear"
    final: float = 0.0
    steps: int = 1000

    def __post_init__(self):
        if self.schedule not in ("linear", "cosine"):
            raise HFBenchError(f"damping schedule must be 'linear' or 'cosine', got {self.schedule!r}")
        _positive("damping.final", self.final, strict=False)
        if not isinstance(self.steps, int) or self.steps < 1:
            raise HFBenchError(f"damping.steps must be an integer >= 1, got {self.steps!r}")

    def update(self, lam: float, rho: float, step: int, lam0: float) -> float:
        """The value for step `step + 1` (step counts completed outer steps)."""
        u = min((step + 1) / self.steps, 1.0)
        s = 1 - u if self.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * u))
        return self.final + (lam0 - self.final) * s


def reduction_ratio(f0: float, f_new: float, model: float) -> float:
    """rho = (f(x + p) - f(x)) / (q(p) - q(0)) (Martens 2010 §4.1).

    NaN when f(x + p) is not finite; when the model predicts no decrease (model >= 0),
    -inf if f rose (so lambda rises) and 0 otherwise.
    """
    if not math.isfinite(f_new):
        return float("nan")
    if model < 0:
        return (f_new - f0) / model
    return float("-inf") if f_new > f0 else 0.0


RULES = {"fixed": Fixed, "levenberg_marquardt": LevenbergMarquardt, "scheduled": Scheduled}
