"""The interleaved ratio method: kernels timed in alternation, in one process.

The issues state their floors as ratios (Gv / gradient <= 1.25, a CG solve /
(n x Gv) <= 1.05). On a shared machine the load drifts over seconds, so medians
taken in separate blocks (all the gradients, then all the Gvs) differ by the drift
alone: a standalone Gv moved by 30% between two blocks of one run on the 2-core CI
VM. Timed as alternating calls, one of each per round, both sides see the same load,
and the ratio of their medians over rounds holds still when each time does not.

pytest-benchmark times one function per test. Here that function is one round
(`Interleaved.round`), run by `benchmark.pedantic` for a fixed number of rounds, so
the round's statistics are pytest-benchmark's own; the per-kernel times and ratios
go into `benchmark.extra_info` (`Interleaved.summary`) and so into
`--benchmark-json`, where `benchmarks/curvature_ratios.py` and
`benchmarks/cg_overhead.py` read them.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


class Interleaved:
    """Named kernels timed one after another in rounds, each synced on its own result.

    repeat[k] calls of kernel k per round (a cheap kernel repeated, so its median
    rests on more samples); `warm_up` makes the first, compiling calls apart.
    """

    def __init__(self, sync: Callable, kernels: dict[str, Callable], repeat: dict | None = None):
        self.sync, self.kernels, self.repeat = sync, dict(kernels), dict(repeat or {})
        self.rounds: list[dict[str, list[float]]] = []
        self.first_call_s: dict[str, float] = {}

    def _timed(self, fn: Callable) -> float:
        t = time.perf_counter()
        self.sync(fn())  # JAX dispatches asynchronously: wait on the result itself
        return time.perf_counter() - t

    def warm_up(self) -> None:
        """One call of each kernel (compilation, caches), kept out of the medians."""
        self.first_call_s = {k: self._timed(fn) for k, fn in self.kernels.items()}

    def round(self) -> None:
        """One round: every kernel in turn, repeat[k] times each. What pedantic times."""
        self.rounds.append({
            k: [self._timed(fn) for _ in range(self.repeat.get(k, 1))]
            for k, fn in self.kernels.items()
        })

    def medians(self) -> dict[str, float]:
        """Median seconds per call of each kernel, over every call of every round."""
        return {k: statistics.median(t for r in self.rounds for t in r[k]) for k in self.kernels}

    def summary(self, reference: str, per: dict[str, float] | None = None) -> dict:
        """Medians, and each kernel's ratio to `reference` (divided by per[k] if given).

        ratio: median(k) / median(reference), the issues' definition.
        ratio_rounds: the same ratio within each round (means of its repeats), whose
        spread shows how far the load moved the pair; the first-call extra is
        the first call minus the median (compilation and cold caches).
        """
        per = per or {}
        med = self.medians()
        mean = lambda ts: sum(ts) / len(ts)  # noqa: E731
        ratio = {k: med[k] / med[reference] / per.get(k, 1) for k in med if k != reference}
        by_round = {
            k: [mean(r[k]) / mean(r[reference]) / per.get(k, 1) for r in self.rounds]
            for k in ratio
        }
        return {
            "reference": reference, "rounds": len(self.rounds), "median_s": med,
            "ratio": ratio, "ratio_rounds": by_round,
            "first_call_s": self.first_call_s,
            "first_call_extra_s": {k: self.first_call_s[k] - med[k] for k in med
                                   if k in self.first_call_s},
        }
