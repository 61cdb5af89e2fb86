"""The host-side policies of the algorithm layer, against formulas written out here.

- Levenberg-Marquardt (Martens 2010 §4.1; Gargiani et al. 2020 Alg. 4.1):
  rho < 1/4 (or not finite) -> lambda * 3/2, rho > 3/4 -> lambda * 2/3, else unchanged;
- the scheduled rho of SGN (linear and cosine decay), at endpoints and midpoints;
- backtracking Armijo (Nocedal and Wright Alg. 3.1): the first trial alpha that
  passes, and rejection (alpha = 0, f unchanged) when none does;
- CG-iterate backtracking (Martens 2010 §4.6) over a synthetic solution record.

Nothing here touches a backend, except one short SGN run that checks the schedule
reaches `info['lambda']`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest

import hfbench
from hfbench import HFBenchError, models
from hfbench import algorithms as alg
from hfbench.algorithms.backtrack import backtrack
from hfbench.algorithms.damping import Fixed, LevenbergMarquardt, Scheduled
from hfbench.algorithms.linesearch import Armijo
from oracles import Counter

# ----------------------------------------------------------------------------- LM rule


def lm_oracle(lam: float, rho: float) -> float:
    """Martens 2010 §4.1, written out: NaN rho (a failed step) counts as rho < 1/4."""
    if not math.isfinite(rho) or rho < 0.25:
        return lam * 1.5
    if rho > 0.75:
        return lam * (2.0 / 3.0)
    return lam


@pytest.mark.parametrize(
    "rho, factor",
    [
        (-1e30, 1.5), (-1.0, 1.5), (0.0, 1.5), (0.2499999, 1.5), (float("nan"), 1.5),
        (float("-inf"), 1.5), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0), (0.7500001, 2 / 3),
        (1.0, 2 / 3), (7.0, 2 / 3),
    ],
)
def test_levenberg_marquardt_thresholds(rho, factor):
    lam = 45.0
    new = LevenbergMarquardt().update(lam, rho, step=3, lam0=45.0)
    assert new == pytest.approx(lam * factor, rel=1e-15), f"rho={rho}: {lam} -> {new}"
    assert new == pytest.approx(lm_oracle(lam, rho), rel=1e-15)


def test_levenberg_marquardt_can_rise_after_falling():
    """A peer bug gates the update so lambda can never rise again; walk a rho sequence."""
    rule, lam = LevenbergMarquardt(), 10.0
    for rho in (0.9, 0.9, 0.9, 0.1, float("nan"), 0.5, 0.8, -3.0):
        expected = lm_oracle(lam, rho)
        lam = rule.update(lam, rho, 0, 10.0)
        assert lam == pytest.approx(expected, rel=1e-15)
    assert lam == pytest.approx(10.0 * (2 / 3) ** 4 * 1.5**3, rel=1e-14)


def test_levenberg_marquardt_floor():
    assert LevenbergMarquardt(min_lambda=1.0).update(1.2, 0.9, 0, 1.2) == 1.0


def test_fixed_never_moves():
    for rho in (float("nan"), -5.0, 0.5, 9.0):
        assert Fixed().update(3.25, rho, 7, 1.0) == 3.25


@pytest.mark.parametrize(
    "kwargs",
    [dict(low=0.8, high=0.5), dict(increase=1.0), dict(decrease=1.5), dict(min_lambda=-1.0)],
)
def test_levenberg_marquardt_rejects_bad_settings(kwargs):
    with pytest.raises(HFBenchError):
        LevenbergMarquardt(**kwargs)


# ----------------------------------------------------------------------------- schedules


def schedule_oracle(kind: str, lam0: float, final: float, K: int, t: int) -> float:
    """lambda at outer step t = 1, 2, ... as gmatilde/SGN's solvers.py computes it
    (RHO_DECAY 'linear' / 'cos', K, DAMP_RHO_MIN = final), written out independently."""
    if kind == "linear":
        lam = lam0 + (final - lam0) / (K - 1) * (t - 1)
    else:
        lam = lam0 * math.cos(math.pi / 2 * (t / K))
        if t > K:
            lam = final
    return max(lam, final)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_follows_the_public_code(kind):
    lam0, final, K = 2.0, 0.5, 10
    rule = Scheduled(schedule=kind, final=final, steps=K)
    for t in range(1, 16):
        assert rule.value(t, lam0) == pytest.approx(schedule_oracle(kind, lam0, final, K, t), rel=1e-14)
    assert rule.initial(lam0) == rule.value(1, lam0)
    # update() after step index s (0-based, s steps done before it) gives step s + 2's value
    assert rule.update(123.0, 0.5, 3, lam0) == rule.value(5, lam0)


def test_cosine_schedule_at_u_0_half_1():
    """u = t / K: lambda_0 at u = 0, lambda_0 cos(pi/4) at u = 1/2, the floor at u = 1."""
    rule = Scheduled(schedule="cosine", final=1e-3, steps=8)
    assert rule.value(0, 2.0) == pytest.approx(2.0, rel=1e-15)
    assert rule.value(4, 2.0) == pytest.approx(2.0 * math.sqrt(0.5), rel=1e-15)
    assert rule.value(8, 2.0) == 1e-3
    assert rule.value(9, 2.0) == 1e-3  # held after K


def test_linear_schedule_reaches_its_end_at_step_K():
    rule = Scheduled(schedule="linear", final=0.25, steps=4)
    assert [rule.value(t, 1.0) for t in (1, 2, 3, 4, 5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.25])


def test_cosine_floors_rather_than_interpolates():
    """The code's cosine decays lambda_0 to 0 and clamps at `final`; it does not end
    at `final` smoothly (3/4 of the way, 2 cos(3 pi / 8) = 0.765 > 0.7; 7/8: 0.39 -> 0.7)."""
    rule = Scheduled(schedule="cosine", final=0.7, steps=8)
    assert rule.value(6, 2.0) == pytest.approx(2.0 * math.cos(3 * math.pi / 8), rel=1e-15)
    assert rule.value(7, 2.0) == 0.7


@pytest.mark.parametrize(
    "kwargs", [dict(schedule="exp"), dict(final=-1.0), dict(steps=0), dict(steps=2.5),
               dict(schedule="linear", steps=1), dict(steps=True)]
)
def test_schedule_rejects_bad_settings(kwargs):
    with pytest.raises(HFBenchError):
        Scheduled(**kwargs)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_sgn_schedule_reaches_info(backend_name, kind):
    """sgn with a schedule reports lambda_t of the formula at each step t (from 1)."""
    be = hfbench.get_backend(backend_name, device="cpu", dtype="float64")
    spec = models.mlp([3, 2], loss="squared_error")
    problem = be.problem(spec)
    rng = np.random.default_rng(0)
    batch = be.batch(rng.standard_normal((8, 3)), rng.standard_normal((8, 2)))
    a = alg.get("sgn", damping=1.0, damping_rule=kind, damping_final=0.1, damping_steps=4,
                cg_iters=2)
    x = be.asarray(models.init_params(spec, 0, dtype="float64"))
    state = a.init(x)
    for t in range(1, 7):
        x, state, info = a.step(problem, x, state, batch)
        assert info["lambda"] == pytest.approx(schedule_oracle(kind, 1.0, 0.1, 4, t), rel=1e-14)


# ----------------------------------------------------------------------------- Armijo


def test_armijo_accepts_first_sufficient_decrease():
    # f(a) = f0 + s a + c a^2 with s = -1, c = 4: Armijo holds iff 4 a <= 1 - c1,
    # i.e. a <= 0.249975; the trials 1, 1/2, 1/4 (= 0.25 > 0.249975), 1/8 -> 1/8.
    f0, s, c, c1 = 3.0, -1.0, 4.0, 1e-4
    f = Counter(lambda a: f0 + s * a + c * a * a)
    res = Armijo(c1=c1, shrink=0.5, alpha0=1.0, max_steps=20).search(f, f0, s)
    assert res.accepted and res.alpha == 0.125
    assert res.loss == pytest.approx(f0 + s * 0.125 + c * 0.125**2, rel=1e-15)
    assert res.evals == 4 and f.calls == [1.0, 0.5, 0.25, 0.125]
    assert res.loss <= f0 + c1 * res.alpha * s


def test_armijo_accepts_full_step_on_a_good_model():
    f = Counter(lambda a: 1.0 - 0.5 * a)  # linear, slope -0.5: alpha0 passes
    res = Armijo().search(f, 1.0, -0.5)
    assert (res.alpha, res.loss, res.evals, res.accepted) == (1.0, 0.5, 1, True)


def test_armijo_rejects_when_nothing_passes():
    """f never decreases: the step is rejected (alpha 0, f0 kept), not the last tiny one."""
    f = Counter(lambda a: 5.0 + a)
    res = Armijo(max_steps=7).search(f, 5.0, -2.0)
    assert (res.alpha, res.loss, res.accepted) == (0.0, 5.0, False)
    assert res.evals == 7 and f.calls == [0.5**k for k in range(7)]


def test_armijo_rejects_nan_objective():
    res = Armijo(max_steps=3).search(lambda a: float("nan"), 1.0, -1.0)
    assert (res.alpha, res.loss, res.accepted) == (0.0, 1.0, False)


@pytest.mark.parametrize("slope", [0.0, 1.0, float("nan")])
def test_armijo_rejects_non_descent_direction(slope):
    f = Counter(lambda a: 0.0)
    res = Armijo().search(f, 1.0, slope)
    assert (res.alpha, res.loss, res.accepted, res.evals) == (0.0, 1.0, False, 0)
    assert f.calls == []


@pytest.mark.parametrize(
    "kwargs", [dict(c1=0.0), dict(c1=1.0), dict(shrink=1.0), dict(shrink=0.0),
               dict(alpha0=0.0), dict(max_steps=0)]
)
def test_armijo_rejects_bad_settings(kwargs):
    with pytest.raises(HFBenchError):
        Armijo(**kwargs)


# ----------------------------------------------------------------------------- backtracking


class FakeSolution(NamedTuple):
    """The fields of a CGSolution that backtrack() reads."""

    x: object
    num_steps: int
    saved: list


def fake_solution(num_steps: int, points: list[int]) -> FakeSolution:
    """Iterate k is the 1-vector [k], so f can look its value up by iteration."""
    return FakeSolution(np.array([float(num_steps)]), num_steps,
                        [(p, np.array([float(p)])) for p in points])


def table_f(values: dict[int, float]):
    return Counter(lambda p: values[int(p[0])])


def test_backtrack_walks_back_while_f_decreases():
    # saved at 1, 2, 3, 4, 5, 7, 9; final iterate 11. f: 11 -> 9 -> 7 decrease, 5 rises.
    sol = fake_solution(11, [1, 2, 3, 4, 5, 7, 9])
    f = table_f({11: 3.0, 9: 2.0, 7: 1.5, 5: 1.6, 4: 0.0, 3: 0.0, 2: 0.0, 1: 0.0})
    res = backtrack(sol, f)
    assert res.iteration == 7 and res.loss == 1.5 and float(res.p[0]) == 7.0
    assert res.evals == 4 and [int(p[0]) for p in f.calls] == [11, 9, 7, 5]


def test_backtrack_keeps_final_iterate_when_previous_is_higher():
    sol = fake_solution(11, [1, 2, 3, 4, 5, 7, 9])
    f = table_f({11: 1.0, 9: 1.5})
    res = backtrack(sol, f)
    assert res.iteration == 11 and res.loss == 1.0 and res.p is sol.x and res.evals == 2


def test_backtrack_walks_back_on_a_tie():
    """Martens' code breaks only when the later iterate is strictly better
    (`if ll > lowll`), so a tie takes the earlier, shorter iterate."""
    sol = fake_solution(11, [1, 2, 3, 4, 5, 7, 9])
    f = table_f({11: 1.0, 9: 1.0, 7: 2.0})
    res = backtrack(sol, f)
    assert res.iteration == 9 and res.loss == 1.0 and res.evals == 3


def test_backtrack_walks_past_nan():
    """A NaN final iterate is not kept: the walk goes back to the finite ones."""
    sol = fake_solution(11, [1, 2, 3, 4, 5, 7, 9])
    nan = float("nan")
    f = table_f({11: nan, 9: nan, 7: 2.0, 5: 2.5})
    res = backtrack(sol, f)
    assert res.iteration == 7 and res.loss == 2.0


def test_backtrack_skips_a_nan_in_the_middle():
    sol = fake_solution(11, [1, 2, 3, 4, 5, 7, 9])
    f = table_f({11: 3.0, 9: float("nan"), 7: 2.0, 5: 2.5})
    res = backtrack(sol, f)
    assert res.iteration == 7 and res.loss == 2.0


def test_backtrack_can_reach_the_first_iterate():
    sol = fake_solution(4, [1, 2, 3, 4])  # the limit is saved too; it is the final iterate
    f = table_f({4: 4.0, 3: 3.0, 2: 2.0, 1: 1.0})
    res = backtrack(sol, f)
    assert res.iteration == 1 and res.loss == 1.0
    assert [int(p[0]) for p in f.calls] == [4, 3, 2, 1]  # the final iterate evaluated once


def test_backtrack_without_saved_iterates():
    sol = fake_solution(3, [])
    res = backtrack(sol, table_f({3: 0.5}))
    assert (res.iteration, res.loss, res.evals) == (3, 0.5, 1)
