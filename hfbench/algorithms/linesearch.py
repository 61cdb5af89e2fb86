"""Backtracking Armijo line search (Nocedal and Wright 2006, Alg. 3.1).

Try alpha = alpha0, shrink*alpha0, ... and accept the first with
    f(x + alpha p) <= f(x) + c1 * alpha * g.p.
When no trial passes within `max_steps`, the step is rejected (alpha = 0): keeping
the last tiny step instead is a known peer bug. Runs on the host, once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from ..errors import HFBenchError


class LineSearchResult(NamedTuple):
    alpha: float  # 0.0 when rejected
    loss: float  # f at the accepted point, or f(x) when rejected
    evals: int  # objective evaluations (forward passes)
    accepted: bool


@dataclass(frozen=True, kw_only=True)
class Armijo:
    c1: float = 1e-4
    shrink: float = 0.5
    alpha0: float = 1.0
    max_steps: int = 20

    def __post_init__(self):
        if not 0 < self.c1 < 1:
            raise HFBenchError(f"line_search.c1 must lie in (0, 1), got {self.c1!r}")
        if not 0 < self.shrink < 1:
            raise HFBenchError(f"line_search.shrink must lie in (0, 1), got {self.shrink!r}")
        if not self.alpha0 > 0:
            raise HFBenchError(f"line_search.alpha0 must be > 0, got {self.alpha0!r}")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise HFBenchError(f"line_search.max_steps must be an integer >= 1, got {self.max_steps!r}")

    def search(self, f: Callable[[float], float], f0: float, slope: float) -> LineSearchResult:
        """f(alpha) evaluates the objective at x + alpha p; slope = g.p (< 0 for descent)."""
        if not slope < 0:  # not a descent direction: no alpha > 0 can pass
            return LineSearchResult(0.0, f0, 0, False)
        alpha = self.alpha0
        for k in range(1, self.max_steps + 1):
            value = f(alpha)
            if value <= f0 + self.c1 * alpha * slope:
                return LineSearchResult(alpha, value, k, True)
            alpha *= self.shrink
        return LineSearchResult(0.0, f0, self.max_steps, False)
