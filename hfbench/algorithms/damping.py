"""Damping rules: how lambda moves between outer steps.

Each rule is a frozen config with `initial(lam0) -> lam` (lambda of the first step) and
`update(lam, rho, step, lam0) -> lam` (lambda of the next one), pure and on the host (it
runs once per outer step). `lam` is the Levenberg-Marquardt parameter of
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

    uses_rho = False

    def initial(self, lam0: float) -> float:
        return lam0

    def update(self, lam: float, rho: float, step: int, lam0: float) -> float:
        return lam


@dataclass(frozen=True, kw_only=True)
class LevenbergMarquardt:
    """Martens 2010 §4.1: rho < 1/4: lambda *= 3/2; rho > 3/4: lambda *= 2/3.

    Also Gargiani et al.'s trust-region adaptation (their Alg. 4.1 with thresholds
    1/4, 3/4). A non-finite rho (a failed step) counts as rho < low, as in Martens'
    code, so lambda can always rise again (a known peer bug gates it so it cannot).
    `min_lambda` floors lambda: Gargiani et al.'s code's DAMP_RHO_MIN, and the 0.1 below
    which Motokawa and Tezuka's code stops moving lambda (their code freezes it there,
    so it can never rise again; a floor keeps the intent without that bug).
    """

    uses_rho = True  # class attribute, not a field: the rule needs the reduction ratio

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

    def initial(self, lam0: float) -> float:
        return max(lam0, self.min_lambda)

    def update(self, lam: float, rho: float, step: int, lam0: float) -> float:
        if not math.isfinite(rho) or rho < self.low:
            lam = lam * self.increase
        elif rho > self.high:
            lam = lam * self.decrease
        return max(lam, self.min_lambda)

    def update_on(self, ops, lam, rho):
        """`update` on device scalars (traceable; the same cases)."""
        up = ~ops.isfinite(rho) | (rho < self.low)
        lam = ops.where(up, lam * self.increase, ops.where(rho > self.high, lam * self.decrease, lam))
        return ops.where(lam < self.min_lambda, self.min_lambda, lam)


@dataclass(frozen=True, kw_only=True)
class Scheduled:
    """SGN's scheduled rho, as Gargiani et al.'s public code computes it.

    The paper (§3.1) only names "linear or cosine decay schedules"; the formulas are
    those of SGN/optimizers/solvers.py (RHO_DECAY, K = `steps`, DAMP_RHO_MIN = `final`),
    with t = 1, 2, ... the outer step:
        linear:  lambda_t = lambda_0 + (final - lambda_0) (t - 1) / (K - 1)   (lambda_K = final)
        cosine:  lambda_t = lambda_0 cos(pi u / 2),  u = t / K               (lambda_K ~ 0)
    each clamped below at `final`, and `final` from step K on. The code's cosine decays
    to 0 and is floored at `final`; it does not interpolate to it.
    """

    uses_rho = False

    schedule: str = "linear"
    final: float = 0.0
    steps: int = 1000

    def __post_init__(self):
        if self.schedule not in ("linear", "cosine"):
            raise HFBenchError(f"damping schedule must be 'linear' or 'cosine', got {self.schedule!r}")
        _positive("damping.final", self.final, strict=False)
        low = 2 if self.schedule == "linear" else 1  # linear divides by K - 1
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < low:
            raise HFBenchError(f"damping.steps must be an integer >= {low} for the {self.schedule} "
                               f"schedule, got {self.steps!r}")

    def value(self, t: int, lam0: float) -> float:
        """lambda at outer step t (t = 1 is the first step)."""
        if self.schedule == "linear":
            u = min((t - 1) / (self.steps - 1), 1.0)
            lam = lam0 + (self.final - lam0) * u
        else:
            u = t / self.steps
            lam = lam0 * math.cos(0.5 * math.pi * u) if u < 1 else self.final
        return max(lam, self.final)

    def initial(self, lam0: float) -> float:
        return self.value(1, lam0)

    def update(self, lam: float, rho: float, step: int, lam0: float) -> float:
        """The value for the next step (`step` counts outer steps done before this one)."""
        return self.value(step + 2, lam0)


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


def reduction_ratio_on(ops, f0, f_new, model):
    """`reduction_ratio` on device scalars (traceable; the same cases)."""
    neg = model < 0
    rho = (f_new - f0) / ops.where(neg, model, -1.0)
    rho = ops.where(neg, rho, ops.where(f_new > f0, -math.inf, 0.0))
    return ops.where(ops.isfinite(f_new), rho, math.nan)


RULES = {"fixed": Fixed, "levenberg_marquardt": LevenbergMarquardt, "scheduled": Scheduled}
