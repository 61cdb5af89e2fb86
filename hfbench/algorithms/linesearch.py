"""Backtracking line search (Nocedal and Wright 2006, Alg. 3.1), with the variants
that the papers' public codes run.

Try alpha = alpha0, shrink*alpha0, ... (`max_steps` trials) and accept the first with
    armijo (the text):  f(x + alpha p) <= f(x) + c1 * alpha * g.p
    fixed (Gargiani et al.'s code): f(x + alpha p) <= f(x) + c1 * alpha0 * g.p
The code computes its right-hand side once, at the first alpha, and never rescales it
(SGN/optimizers/solvers.py), which asks every shorter step for the decrease of the
full one. When no trial passes, `on_failure` decides:
    reject (default): alpha = 0, the step is not taken (keeping the last tiny step is a
        known peer bug; Martens' code rejects too);
    keep_last: take the last trial anyway, as Gargiani et al.'s code does (10 halvings,
        then alpha = 0.5^10 whatever f is).
Runs on the host, once per outer step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from ..errors import HFBenchError, unknown

ON_FAILURE = ("reject", "keep_last")
RHS = ("armijo", "fixed")


class LineSearchResult(NamedTuple):
    alpha: float  # the step length taken; 0.0 when rejected
    loss: float  # f at the point taken, or f(x) when rejected
    evals: int  # objective evaluations this search made (a given f_first is not one)
    accepted: bool  # a step was taken (alpha > 0)
    satisfied: bool  # the sufficient-decrease condition held at alpha


@dataclass(frozen=True, kw_only=True)
class Armijo:
    c1: float = 1e-4
    shrink: float = 0.5
    alpha0: float = 1.0
    max_steps: int = 20  # trials, alpha0 * shrink^k for k = 0 .. max_steps - 1
    on_failure: str = "reject"
    rhs: str = "armijo"

    def __post_init__(self):
        if not 0 < self.c1 < 1:
            raise HFBenchError(f"line_search.c1 must lie in (0, 1), got {self.c1!r}")
        if not 0 < self.shrink < 1:
            raise HFBenchError(f"line_search.shrink must lie in (0, 1), got {self.shrink!r}")
        if not self.alpha0 > 0:
            raise HFBenchError(f"line_search.alpha0 must be > 0, got {self.alpha0!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise HFBenchError(f"line_search.max_steps must be an integer >= 1, got {self.max_steps!r}")
        if self.on_failure not in ON_FAILURE:
            raise HFBenchError(unknown("line search on_failure", self.on_failure, ON_FAILURE, "ls_on_failure"))
        if self.rhs not in RHS:
            raise HFBenchError(unknown("line search rhs", self.rhs, RHS, "ls_rhs"))

    def search(self, f: Callable[[float], float], f0: float, slope: float,
               f_first: float | None = None) -> LineSearchResult:
        """f(alpha) evaluates the objective at x + alpha p; slope = g.p (< 0 for descent).

        f_first: f(x + alpha0 p) when the caller already has it (no evaluation spent).
        """
        if not slope < 0 and self.on_failure == "reject":
            return LineSearchResult(0.0, f0, 0, False, False)  # no alpha > 0 can pass
        alpha, evals, value = self.alpha0, 0, f_first
        for k in range(self.max_steps):
            if k > 0:
                alpha *= self.shrink
            if k > 0 or value is None:
                value, evals = f(alpha), evals + 1
            if value <= f0 + self.c1 * self._scale(alpha) * slope:
                return LineSearchResult(alpha, value, evals, True, True)
        if self.on_failure == "keep_last":
            return LineSearchResult(alpha, value, evals, True, False)
        return LineSearchResult(0.0, f0, evals, False, False)

    def _scale(self, alpha: float) -> float:
        return alpha if self.rhs == "armijo" else self.alpha0
