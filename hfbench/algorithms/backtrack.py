"""CG-iterate backtracking (Martens 2010 §4.6).

CG saved its iterates at ceil(1.3^j). Starting from the last iterate, step back to
the previous saved one as long as the later one is not strictly better (lower
f(x + p)), as Martens' code does (`if ll > lowll, break`); stop at the first earlier
iterate that is worse. A non-finite f never ends the walk and is never chosen while
a finite one has been seen: his code walks past NaN too (a NaN comparison is false),
where stopping there would keep a NaN iterate. The warm start of the next solve uses
the un-backtracked final iterate (§4.6: backtracking it hurts).
"""

from __future__ import annotations

import math

from typing import Any, Callable, NamedTuple


class BacktrackResult(NamedTuple):
    p: Any  # chosen direction
    iteration: int  # its CG iteration
    loss: float  # f(x + p)
    evals: int  # objective evaluations (forward passes)


def backtrack(solution, f: Callable[[Any], float]) -> BacktrackResult:
    """Walk back over the solve's saved iterates; f(p) is the objective at x + p."""
    cands = [(it, p) for it, p in solution.saved if it < solution.num_steps]
    cands.append((solution.num_steps, solution.x))
    it, p = cands[-1]
    best, evals = f(p), 1
    for prev_it, prev_p in reversed(cands[:-1]):
        value = f(prev_p)
        evals += 1
        if not math.isfinite(value):
            continue  # walk past it
        if math.isfinite(best) and best < value:
            break  # the later iterate is strictly better: keep it
        it, p, best = prev_it, prev_p, value
    return BacktrackResult(p, it, best, evals)
