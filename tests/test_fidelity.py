"""Fidelity options: the variants that reproduce the papers' public codes, each against
a small case whose answer is computed here, independently of the code under test.

- Line search (linesearch.Armijo): `on_failure="keep_last"` (Gargiani et al.'s 0.5^10),
  `rhs="fixed"` (a right-hand side computed once at alpha0), `f_first`, the result flags;
- sgn through both backends: the trust-region ratio at the full step (`rho_point`
  "full", "taken", "taken_over_full") from a dense float64 GGN and a NumPy CG, the
  Levenberg-Marquardt move of lambda, and the floor `damping_min`;
- hf: `rho_model="undamped"`, `rho_batch="curvature"`, Martens' line search
  (c = 1e-2, rates 0.8^k, rejected after 60 failures);
- CG: the "relative" stop rule (Motokawa and Tezuka's code), the first save point at 5
  (Martens' conjgrad_1.m) and `phi="exact"`, against a NumPy CG written here;
- adaptive_hf: the warm start from 0.95 delta_{t-1}, rho at the step taken over the
  undamped model, `damping_min`;
- `ModelSpec.loss_scale` on every loss and product, and the DenseReference itself;
- LeNet's `padding="valid"` (256 features), in the zoo, the suite and on both backends.

The oracles: hand-computed values, closed forms written out below,
`hfbench.testing.reference.DenseReference` (NumPy backprop, no framework), the torch
autograd references of tests/oracles.py, and the other backend. All in float64.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math

import numpy as np
import pytest

from hfbench import HFBenchError, models
from hfbench import algorithms as algs
from hfbench.algorithms import CGConfig, CGStatus, cg_solve
from hfbench.algorithms.cg import CGState, _rule_met, make_operands
from hfbench.algorithms.linesearch import Armijo
from hfbench.errors import SpecError
from hfbench.suite import SuiteError, expand, loads
from hfbench.testing.reference import DenseReference

from conftest import backend_params, make_data, missing_backends
from oracles import Counter, WrappedProblem
from conftest import make_backend as backend_of

SOFTMAX, SIGMOID, SQUARED = "softmax_cross_entropy", "sigmoid_cross_entropy", "squared_error"


# ----------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def problem_of(name: str, spec):
    """One problem per (backend, spec): JAX compiles each spec's functions once."""
    return backend_of(name).problem(spec)


def host(be, a) -> np.ndarray:
    return np.array(be.to_numpy(a), dtype=np.float64)


def relerr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def np_cg(A, b, iters: int, x0=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Textbook CG (Nocedal and Wright Alg. 5.2) for exactly `iters` iterations.

    -> (iterates x_0 .. x_iters, phi_i = 1/2 x_i.A x_i - b.x_i for each).
    """
    x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.float64)
    r = b - A @ x
    p, rr = r.copy(), r @ r
    xs = [x]
    for _ in range(iters):
        Ap = A @ p
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
        xs.append(x)
    return xs, np.array([0.5 * v @ A @ v - b @ v for v in xs])


def lm(lam: float, rho: float, floor: float = 0.0) -> float:
    """Martens 2010 §4.1 (Gargiani et al.'s Alg. 4.1): < 1/4: x 3/2; > 3/4: x 2/3; floored."""
    if not math.isfinite(rho) or rho < 0.25:
        lam = lam * 1.5
    elif rho > 0.75:
        lam = lam * 2.0 / 3.0
    return max(lam, floor)


class Line:
    """f along x + a p from the dense reference, and the quadratic model of the step.

    f(a) is the NumPy objective at theta + a p on (X, Y); model(a, C) is
    a g.p + a^2/2 p.C p, the q(a p) - q(0) of Martens 2010 §4.1.
    """

    def __init__(self, spec, theta, X, Y, g, p):
        self.spec, self.theta, self.X, self.Y, self.g, self.p = spec, theta, X, Y, g, p
        self.f0 = DenseReference(spec, theta, X, Y).objective

    def f(self, a: float) -> float:
        return DenseReference(self.spec, self.theta + a * self.p, self.X, self.Y).objective

    def model(self, a: float, C) -> float:
        return a * (self.g @ self.p) + 0.5 * a * a * (self.p @ C @ self.p)

    def armijo(self, c1: float, shrink: float, trials: int) -> float:
        """The first alpha = shrink^k (k < trials) with f(alpha) <= f0 + c1 alpha g.p, else 0."""
        for k in range(trials):
            a = shrink**k
            if self.f(a) <= self.f0 + c1 * a * (self.g @ self.p):
                return a
        return 0.0


class Recording(WrappedProblem):
    """A problem whose loss() records every point it is asked about, `shift`ed above the
    truth (shift = 100 on these nets, whose losses are O(1): every trial point looks worse
    than f(x), so every Armijo test fails); gradient and curvature are the inner problem's."""

    def __init__(self, inner, shift: float = 0.0):
        super().__init__(inner)
        self.shift, self.points = shift, []

    def loss(self, x, batch):
        self.points.append(host(self.backend, x))
        return self.inner.loss(x, batch) + self.shift


# ----------------------------------------------------------------------------- 1. line search


def test_keep_last_keeps_half_to_the_tenth():
    """Gargiani et al.'s code: alpha = 1 and 10 halvings, then 0.5^10 whatever f is."""
    f = Counter(lambda a: 5.0 + a)  # never below f0 = 5
    res = Armijo(max_steps=11, shrink=0.5, on_failure="keep_last").search(f, 5.0, -2.0)
    assert f.calls == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125,
                       0.00390625, 0.001953125, 0.0009765625]
    assert res.alpha == 0.5**10 == 0.0009765625
    assert res.loss == 5.0 + 0.5**10 and res.evals == 11
    assert (res.accepted, res.satisfied) == (True, False)


def test_reject_after_the_same_failures():
    f = Counter(lambda a: 5.0 + a)
    res = Armijo(max_steps=11, shrink=0.5).search(f, 5.0, -2.0)
    got = (res.alpha, res.loss, res.evals, res.accepted, res.satisfied)
    assert got == (0.0, 5.0, 11, False, False)
    assert f.calls == [0.5**k for k in range(11)]


# f(a) = 1 - a + 0.8 a^2 with slope g.p = -1 and c1 = 0.5:
#   a     f(a)    text: 1 - 0.5 a   fixed: 1 - 0.5 * 1
#   1     0.8     0.5   fails       0.5   fails
#   1/2   0.7     0.75  passes      0.5   fails
#   1/4   0.8     0.875 passes      0.5   fails
# and min f = 1 - 1/3.2 = 0.6875 > 0.5: the fixed right-hand side is never met.
def quad_f(a: float) -> float:
    return 1.0 - a + 0.8 * a * a


def test_fixed_rhs_asks_every_trial_for_the_full_decrease():
    text = Armijo(c1=0.5, shrink=0.5, max_steps=11).search(Counter(quad_f), 1.0, -1.0)
    assert (text.alpha, text.loss, text.evals, text.satisfied) == (0.5, 0.7, 2, True)

    f = Counter(quad_f)
    fixed = Armijo(c1=0.5, shrink=0.5, max_steps=11, rhs="fixed").search(f, 1.0, -1.0)
    assert (fixed.alpha, fixed.loss, fixed.accepted, fixed.satisfied) == (0.0, 1.0, False, False)
    assert f.calls == [0.5**k for k in range(11)]

    # The SGN code's combination: fixed right-hand side, and the last trial kept.
    code = Armijo(c1=0.5, shrink=0.5, max_steps=11, rhs="fixed", on_failure="keep_last")
    res = code.search(quad_f, 1.0, -1.0)
    assert res.alpha == 0.5**10 and res.loss == quad_f(0.5**10)
    assert (res.accepted, res.satisfied) == (True, False)


def test_fixed_rhs_uses_alpha0_not_one():
    """alpha0 = 2, c1 = 0.25, slope -1: the text asks f <= 1 - 0.25 a (0.5 at a = 2, 0.75
    at a = 1); the fixed rule asks f <= 1 - 0.25 * 2 = 0.5 at every trial. f = 0.6 fails
    the text at a = 2 and passes at a = 1; it never passes the fixed rule."""
    flat = Counter(lambda a: 0.6)
    res = Armijo(c1=0.25, alpha0=2.0, shrink=0.5, max_steps=4).search(flat, 1.0, -1.0)
    assert (res.alpha, res.evals) == (1.0, 2) and flat.calls == [2.0, 1.0]
    res = Armijo(c1=0.25, alpha0=2.0, shrink=0.5, max_steps=4, rhs="fixed").search(
        Counter(lambda a: 0.6), 1.0, -1.0)
    assert (res.alpha, res.accepted) == (0.0, False)
    # f = 0.45 <= 0.5 passes the fixed test at the first trial, alpha0 = 2
    res = Armijo(c1=0.25, alpha0=2.0, max_steps=4, rhs="fixed").search(lambda a: 0.45, 1.0, -1.0)
    assert (res.alpha, res.evals, res.satisfied) == (2.0, 1, True)


def test_fixed_rhs_never_accepts_where_the_text_does_not():
    """For a descent slope and alpha <= alpha0, f0 + c1 alpha0 g.p <= f0 + c1 alpha g.p:
    the fixed test is the stricter one (they coincide at alpha0), so its step is never
    longer than the text's. Random tables of f values, both rules."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = 1.0 + rng.uniform(-1.0, 0.2, 8)
        f = lambda a, v=values: float(v[round(-math.log2(a))])  # noqa: E731
        text = Armijo(c1=0.3, max_steps=8).search(f, 1.0, -1.0)
        fixed = Armijo(c1=0.3, max_steps=8, rhs="fixed").search(f, 1.0, -1.0)
        assert fixed.alpha <= text.alpha
        if text.alpha == 1.0:  # the first trial: the same test
            assert fixed.alpha == 1.0


def test_f_first_replaces_the_first_evaluation():
    """f_first is f(x + alpha0 p) the caller already has: used, not evaluated, not counted."""
    # f itself would pass at alpha0, but f_first says the first trial failed
    f = Counter(lambda a: 0.0)
    res = Armijo(shrink=0.5).search(f, 1.0, -1.0, f_first=2.0)
    assert f.calls == [0.5] and res.evals == 1 and res.alpha == 0.5 and res.loss == 0.0
    # a passing f_first: nothing evaluated at all
    f = Counter(lambda a: 0.0)
    res = Armijo().search(f, 1.0, -1.0, f_first=0.25)
    assert f.calls == [] and (res.alpha, res.loss, res.evals, res.satisfied) == (1.0, 0.25, 0, True)
    # keep_last with one trial and a failing f_first keeps alpha0 and f_first
    res = Armijo(max_steps=1, on_failure="keep_last").search(Counter(lambda a: 0.0), 1.0, -1.0,
                                                            f_first=3.0)
    got = (res.alpha, res.loss, res.evals, res.accepted, res.satisfied)
    assert got == (1.0, 3.0, 0, True, False)
    # evals counts only the search's own calls: 1 given + 4 evaluated
    f = Counter(lambda a: 9.0)
    res = Armijo(max_steps=5).search(f, 1.0, -1.0, f_first=9.0)
    assert res.evals == 4 and f.calls == [0.5, 0.25, 0.125, 0.0625]


@pytest.mark.parametrize(
    "on_failure, fn, flags",
    [("reject", lambda a: 0.0, (True, True)), ("keep_last", lambda a: 0.0, (True, True)),
     ("reject", lambda a: 2.0, (False, False)), ("keep_last", lambda a: 2.0, (True, False))],
    ids=["reject-pass", "keep_last-pass", "reject-fail", "keep_last-fail"],
)
def test_accepted_and_satisfied_flags(on_failure, fn, flags):
    res = Armijo(max_steps=3, on_failure=on_failure).search(fn, 1.0, -1.0)
    assert (res.accepted, res.satisfied) == flags
    assert (res.alpha > 0) == res.accepted


@pytest.mark.parametrize(
    "kwargs, closest",
    [({"on_failure": "keep-last"}, "keep_last"), ({"on_failure": "rejct"}, "reject"),
     ({"rhs": "fixd"}, "fixed"), ({"rhs": "armjo"}, "armijo")],
)
def test_bad_line_search_options_suggest_the_closest(kwargs, closest):
    with pytest.raises(HFBenchError, match=f"did you mean '{closest}'"):
        Armijo(**kwargs)
    key = "ls_" + next(iter(kwargs))  # the same through sgn's flat options
    with pytest.raises(HFBenchError, match=f"did you mean '{closest}'"):
        algs.get("sgn", line_search=True, **{key: next(iter(kwargs.values()))})


def test_sgn_and_hf_line_searches_are_the_codes():
    sgn = algs.get("sgn", line_search=True, ls_on_failure="keep_last", ls_rhs="fixed")
    assert sgn.config.line_search == Armijo(c1=1e-4, shrink=0.5, alpha0=1.0, max_steps=11,
                                            on_failure="keep_last", rhs="fixed")
    assert algs.get("sgn", line_search=True).config.line_search == Armijo(
        c1=1e-4, shrink=0.5, alpha0=1.0, max_steps=11, on_failure="reject", rhs="armijo")
    # Martens' nnet_train_2.m: c = 10^-2, rate = 0.8 rate, 60 tries, then no step
    assert algs.get("hf", line_search=True).config.line_search == Armijo(
        c1=1e-2, shrink=0.8, alpha0=1.0, max_steps=60, on_failure="reject", rhs="armijo")


# ----------------------------------------------------------------------------- 2. sgn

# 3-4-1 sigmoid net, squared error: 21 weights, 8 examples. The GGN has rank <= 8, so
# CG is run for n = 21 iterations (an exact solve): part-way through, float64 CGs in
# different summation orders drift apart (1e-6 here at iteration 8), at the end not.
SGN_SPEC = models.mlp([3, 4, 1], "sigmoid", loss=SQUARED)
SGN_ITERS = SGN_SPEC.num_params


def sgn_case():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    return X, Y, rng.standard_normal(SGN_SPEC.num_params)


def gn_line(spec, theta, X, Y, lam: float, iters: int, Xc=None, Yc=None):
    """(Line along the CG direction, damped GGN): p = `iters` CG steps from zero on
    (G + lam I) p = -g, with g on (X, Y) and G on the curvature batch (Xc, Yc)."""
    ref = DenseReference(spec, theta, X, Y)
    G = ref.ggn if Xc is None else DenseReference(spec, theta, Xc, Yc).ggn
    A = G + lam * np.eye(ref.n)
    p = np_cg(A, -ref.grad, iters)[0][-1]
    return Line(spec, theta, X, Y, ref.grad, p), G


@pytest.mark.parametrize("lam0, factor", [(1e-2, 2 / 3), (1e-3, 1.5)], ids=["decrease", "increase"])
def test_sgn_trust_region_ratio_is_the_full_step_ratio(backend_name, lam0, factor):
    """rho = (f(x + p) - f(x)) / (g.p + 1/2 p.(G + lambda I) p) (Gargiani et al. Alg. 4.1),
    and lambda moves by the rule for the next step."""
    be, problem = backend_of(backend_name), problem_of(backend_name, SGN_SPEC)
    X, Y, theta = sgn_case()
    line, G = gn_line(SGN_SPEC, theta, X, Y, lam0, SGN_ITERS)
    A = G + lam0 * np.eye(theta.size)
    want = (line.f(1.0) - line.f0) / line.model(1.0, A)
    assert lm(lam0, want) == pytest.approx(lam0 * factor, rel=1e-15)  # the branch meant

    alg = algs.get("sgn", damping=lam0, cg_iters=SGN_ITERS, damping_rule="trust_region")
    batch, x = be.batch(X, Y), be.asarray(theta)
    x1, state, info = alg.step(problem, x, alg.init(x), batch)
    assert info["lambda"] == lam0 and info["alpha"] == 1.0
    assert relerr(host(be, x1) - theta, line.p) <= 1e-9
    assert info["rho"] == pytest.approx(want, rel=1e-8)
    assert state.lam == pytest.approx(lam0 * factor, rel=1e-15)
    _, _, info2 = alg.step(problem, x1, state, batch)
    assert info2["lambda"] == state.lam


@pytest.mark.parametrize("rho_point", ["full", "taken", "taken_over_full"])
def test_sgn_rho_point_with_a_line_search(backend_name, rho_point):
    """lambda = 1e-3 gives a GN step the line search must halve (alpha = 1/2 here):
    full: (f(x + p) - f) / q(p); taken: (f(x + a p) - f) / q(a p); taken_over_full:
    (f(x + a p) - f) / q(p), with q(a p) = a g.p + a^2/2 p.(G + lambda I) p."""
    lam = 1e-3
    be, problem = backend_of(backend_name), problem_of(backend_name, SGN_SPEC)
    X, Y, theta = sgn_case()
    line, G = gn_line(SGN_SPEC, theta, X, Y, lam, SGN_ITERS)
    A = G + lam * np.eye(theta.size)
    a = line.armijo(c1=1e-4, shrink=0.5, trials=11)
    assert 0 < a < 1, f"the case must make the line search shrink, got alpha = {a}"
    want = {
        "full": (line.f(1.0) - line.f0) / line.model(1.0, A),
        "taken": (line.f(a) - line.f0) / line.model(a, A),
        "taken_over_full": (line.f(a) - line.f0) / line.model(1.0, A),
    }
    assert min(abs(u - v) for u in want.values() for v in want.values() if u != v) > 1e-2

    alg = algs.get("sgn", damping=lam, cg_iters=SGN_ITERS, damping_rule="trust_region",
                   line_search=True, rho_point=rho_point)
    x = be.asarray(theta)
    x1, state, info = alg.step(problem, x, alg.init(x), be.batch(X, Y))
    assert info["alpha"] == a and info["accepted"]
    assert relerr(host(be, x1) - theta, a * line.p) <= 1e-9
    assert info["rho"] == pytest.approx(want[rho_point], rel=1e-8)
    assert state.lam == pytest.approx(lm(lam, want[rho_point]), rel=1e-15)


@pytest.mark.parametrize("on_failure", ["reject", "keep_last"])
def test_sgn_failed_line_search(backend_name, on_failure):
    """Every trial looks worse than f(x): reject leaves x; keep_last moves it by 0.5^10 p
    (the 11th trial), after trying exactly x + 0.5^k p, k = 0 .. 10."""
    lam = 1e-2
    be = backend_of(backend_name)
    problem = Recording(problem_of(backend_name, SGN_SPEC), shift=100.0)
    X, Y, theta = sgn_case()
    line, _ = gn_line(SGN_SPEC, theta, X, Y, lam, SGN_ITERS)
    alg = algs.get("sgn", damping=lam, cg_iters=SGN_ITERS, line_search=True,
                   ls_on_failure=on_failure)
    x = be.asarray(theta)
    x1, _, info = alg.step(problem, x, alg.init(x), be.batch(X, Y))
    assert len(problem.points) == 11
    for k, point in enumerate(problem.points):
        assert relerr(point - theta, 0.5**k * line.p) <= 1e-9, f"trial {k}"
    if on_failure == "reject":
        assert (info["alpha"], info["accepted"]) == (0.0, False)
        assert np.array_equal(host(be, x1), theta)
    else:
        assert (info["alpha"], info["accepted"]) == (0.5**10, True)
        assert relerr(host(be, x1) - theta, 0.5**10 * line.p) <= 1e-9


# A linear model with squared error: f is exactly quadratic with Hessian G, so for any CG
# iterate d from zero (d.A d = -g.d, A = G + lambda I) the ratio is
#   (1/2 d.G d + lambda |d|^2) / (1/2 d.G d + 1/2 lambda |d|^2)  in [1, 2]  > 3/4:
# lambda always decreases, and a floor just below it must stop it.
LSQ_SPEC = models.mlp([3, 1], [], loss=SQUARED)


def lsq_case():
    rng = np.random.default_rng(5)
    return rng.standard_normal((10, 3)), rng.standard_normal((10, 1)), rng.standard_normal(4)


def test_sgn_damping_min_floors_lambda(backend_name):
    lam0, floor = 0.12, 0.1
    be, problem = backend_of(backend_name), problem_of(backend_name, LSQ_SPEC)
    X, Y, theta = lsq_case()
    line, G = gn_line(LSQ_SPEC, theta, X, Y, lam0, 2)
    rho = (line.f(1.0) - line.f0) / line.model(1.0, G + lam0 * np.eye(4))
    assert 1.0 <= rho <= 2.0 and lam0 * 2 / 3 < floor

    batch, x = be.batch(X, Y), be.asarray(theta)
    for damping_min, lam1 in ((floor, floor), (0.0, lam0 * 2 / 3)):
        alg = algs.get("sgn", damping=lam0, cg_iters=2, damping_rule="trust_region",
                       damping_min=damping_min)
        x1, state, info = alg.step(problem, x, alg.init(x), batch)
        assert info["rho"] == pytest.approx(rho, rel=1e-10)
        assert state.lam == pytest.approx(lam1, rel=1e-15)
        _, state2, info2 = alg.step(problem, x1, state, batch)
        assert info2["lambda"] == state.lam
        assert state2.lam == pytest.approx(max(lam1 * 2 / 3, damping_min), rel=1e-15)
    # a start below the floor starts at the floor
    alg = algs.get("sgn", damping=0.05, damping_rule="trust_region", damping_min=floor)
    _, _, info = alg.step(problem, x, alg.init(x), batch)
    assert info["lambda"] == floor


# ----------------------------------------------------------------------------- 3. hf

# 3-4-2 tanh net, softmax: 26 weights; gradient batch = the first 8 examples, curvature
# batch = the last 8. CG is capped at 5 iterations: Martens' rule needs i > k >= 10, so it
# runs exactly 5, and a NumPy CG of 5 steps is the direction (no preconditioner,
# backtracking or warm start).
HF_SPEC = models.mlp([3, 4, 2], "tanh", loss=SOFTMAX)
HF_PLAIN = dict(cg_max_iters=5, backtracking=False, preconditioner=False, warm_start=False)


def hf_case():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    return X[:8], Y[:8], X[8:], Y[8:], rng.standard_normal(HF_SPEC.num_params)


def hf_batches(be):
    Xg, Yg, Xc, Yc, theta = hf_case()
    return be.batch(Xg, Yg), be.batch(Xc, Yc), be.asarray(theta)


@pytest.mark.parametrize("rho_batch", ["gradient", "curvature"])
@pytest.mark.parametrize("rho_model", ["damped", "undamped"])
def test_hf_rho_model_and_batch(backend_name, rho_model, rho_batch):
    """Martens' code: rho = (f_c(x + p) - f_c(x)) / (g.p + 1/2 p.G_c p): f on the curvature
    batch, the undamped model; g is the gradient batch's in every variant."""
    lam = 3.0
    Xg, Yg, Xc, Yc, theta = hf_case()
    line, G = gn_line(HF_SPEC, theta, Xg, Yg, lam, 5, Xc, Yc)
    C = G + (lam if rho_model == "damped" else 0.0) * np.eye(theta.size)
    on = Line(HF_SPEC, theta, Xc, Yc, line.g, line.p) if rho_batch == "curvature" else line
    want = (on.f(1.0) - on.f0) / line.model(1.0, C)

    be = backend_of(backend_name)
    alg = algs.get("hf", damping=lam, rho_model=rho_model, rho_batch=rho_batch, **HF_PLAIN)
    batch, cbatch, x = hf_batches(be)
    x1, state, info = alg.step(problem_of(backend_name, HF_SPEC), x, alg.init(x), batch, cbatch)
    assert info["cg_iters"] == 5 and relerr(host(be, x1) - theta, line.p) <= 1e-10
    assert info["rho"] == pytest.approx(want, rel=1e-8)
    assert state.lam == pytest.approx(lm(lam, want), rel=1e-15)


def test_hf_rho_batch_curvature_without_a_curvature_batch(backend_name):
    """No separate curvature batch: f on the gradient batch, no extra forward passes."""
    lam = 3.0
    Xg, Yg, _, _, theta = hf_case()
    line, G = gn_line(HF_SPEC, theta, Xg, Yg, lam, 5)
    want = (line.f(1.0) - line.f0) / line.model(1.0, G)
    be = backend_of(backend_name)
    alg = algs.get("hf", damping=lam, rho_model="undamped", rho_batch="curvature", **HF_PLAIN)
    batch, _, x = hf_batches(be)
    _, _, info = alg.step(problem_of(backend_name, HF_SPEC), x, alg.init(x), batch)
    assert info["rho"] == pytest.approx(want, rel=1e-8) and info["n_fwd"] == 1


@pytest.mark.parametrize("overrides", [{}, {"ls_c1": 0.3}, {"ls_shrink": 0.5}],
                         ids=["martens", "c1", "shrink"])
def test_hf_line_search_takes_the_first_sufficient_rate(backend_name, overrides):
    """lambda = 0.03 makes the 5-step direction too long: the accepted rate is the first
    shrink^k with f(x + a p) <= f(x) + c1 a g.p (Martens' code: c1 1e-2, shrink 0.8)."""
    lam = 0.03
    c1, shrink = overrides.get("ls_c1", 1e-2), overrides.get("ls_shrink", 0.8)
    Xg, Yg, Xc, Yc, theta = hf_case()
    line, _ = gn_line(HF_SPEC, theta, Xg, Yg, lam, 5, Xc, Yc)
    a = line.armijo(c1, shrink, 60)
    assert 0 < a < shrink, f"the case must need more than one shrink, got {a}"
    if overrides:  # the option changes the answer: the test sees it
        assert a != line.armijo(1e-2, 0.8, 60)

    be = backend_of(backend_name)
    alg = algs.get("hf", damping=lam, line_search=True, **HF_PLAIN, **overrides)
    batch, cbatch, x = hf_batches(be)
    x1, _, info = alg.step(problem_of(backend_name, HF_SPEC), x, alg.init(x), batch, cbatch)
    assert info["alpha"] == pytest.approx(a, rel=1e-14) and info["accepted"]
    assert relerr(host(be, x1) - theta, a * line.p) <= 1e-10


@pytest.mark.parametrize("trials", [60, 7])
def test_hf_line_search_rejects_after_its_trials(backend_name, trials):
    """Every trial looks worse: the rates 0.8^0 .. 0.8^59 (Martens' 60, or ls_max_trials)
    are tried along one line, then no step is taken and lambda rises (rho of a rejected
    step is 0)."""
    lam = 1.0
    be = backend_of(backend_name)
    problem = Recording(problem_of(backend_name, HF_SPEC), shift=100.0)
    extra = {} if trials == 60 else {"ls_max_trials": trials}
    alg = algs.get("hf", damping=lam, line_search=True, **HF_PLAIN, **extra)
    batch, cbatch, x = hf_batches(be)
    theta = host(be, x)
    x1, state, info = alg.step(problem, x, alg.init(x), batch, cbatch)
    assert len(problem.points) == trials and info["n_fwd"] == trials
    first = problem.points[0] - theta
    Xg, Yg, Xc, Yc, _ = hf_case()
    assert relerr(first, gn_line(HF_SPEC, theta, Xg, Yg, lam, 5, Xc, Yc)[0].p) <= 1e-10
    for k, point in enumerate(problem.points):
        # x + 0.8^k p is rounded at |theta| ~ 1: relative error ~1e-16 / 0.8^k of the step
        assert relerr(point - theta, 0.8**k * first) <= 1e-12 / 0.8**k, f"trial {k}"
    assert (info["alpha"], info["accepted"], info["rho"]) == (0.0, False, 0.0)
    assert np.array_equal(host(be, x1), theta)
    assert state.lam == pytest.approx(1.5 * lam, rel=1e-15)


# ----------------------------------------------------------------------------- 4. CG

CG_N = 100


@functools.lru_cache(maxsize=None)
def cg_system():
    """SPD A (eigenvalues 1 .. 30, geometric) and b. Well conditioned on purpose: on this
    system float64 CGs in any summation order agree to ~1e-15 in phi for every iteration,
    so the stop iteration is a property of the system, not of rounding."""
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((CG_N, CG_N)))
    A = (q * np.geomspace(1.0, 30.0, CG_N)) @ q.T
    return 0.5 * (A + A.T), rng.standard_normal(CG_N)


@functools.lru_cache(maxsize=None)
def cg_history():
    A, b = cg_system()
    return np_cg(A, b, 60)


def relative_rule(phi, i: int, eps: float, k_min: int, k_frac: float = 0.1) -> bool:
    """Motokawa and Tezuka's code (the TF HF code): k = max(k_min, floor(k_frac (i - 1)));
    stop when i > k + 1 and (phi_i - phi_{i-k}) / phi_i < eps."""
    k = max(k_min, math.floor(k_frac * (i - 1)))
    return i > k + 1 and phi[i] != 0 and (phi[i] - phi[i - k]) / phi[i] < eps


def martens_rule(phi, i: int, eps: float, k_min: int = 10) -> bool:
    """Martens 2010 §4.4: k = max(k_min, ceil(0.1 i)); i > k, phi_i < 0, ratio < k eps."""
    k = max(k_min, math.ceil(0.1 * i))
    return i > k and phi[i] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * eps


def first_stop(rule, phi, **kw) -> int:
    return next(i for i in range(1, len(phi)) if rule(phi, i, **kw))


# eps = 1e-10, k_min = 2: the rule first holds at i = 33, where k = floor(3.2) = 3 > k_min.
REL = dict(eps=1e-10, k_min=2)
STOPS = {"relative": (relative_rule, REL), "martens": (martens_rule, dict(eps=1e-9, k_min=4))}


@pytest.fixture(params=backend_params())
def be(request):
    return backend_of(request.param)


def test_relative_rule_oracle_on_this_system():
    """The case discriminates: k is past k_min at the stop, the ratio is not near eps,
    and Martens' rule (k eps, ceil(0.1 i), i > k) would stop elsewhere."""
    phi = cg_history()[1]
    i = first_stop(relative_rule, phi, **REL)
    k = math.floor(0.1 * (i - 1))
    assert i == 33 and k == 3 > REL["k_min"]
    ratios = [(phi[j] - phi[j - max(2, math.floor(0.1 * (j - 1)))]) / phi[j]
              for j in range(4, i + 1)]
    assert ratios[-1] < 0.9 * REL["eps"] and min(ratios[:-1]) > 1.1 * REL["eps"]
    assert first_stop(martens_rule, phi, eps=1e-10, k_min=2) != i
    # k held at k_min (no floor(0.1 (i - 1)) growth) would stop elsewhere
    assert first_stop(relative_rule, phi, eps=1e-10, k_min=2, k_frac=0.0) != i


@pytest.mark.parametrize("phi_mode", ["recurrence", "exact"])
@pytest.mark.parametrize("stop", ["relative", "martens"])
def test_cg_stop_iteration_and_phi(be, stop, phi_mode):
    """Both phi modes stop where the rule, applied to the NumPy CG's phi, first holds; every
    phi_i is 1/2 x_i.A x_i - b.x_i of the NumPy iterates to ~1e-12."""
    A, b = cg_system()
    xs, phi = cg_history()
    rule, kw = STOPS[stop]
    want = first_stop(rule, phi, **kw)
    config = CGConfig(stop=stop, max_iters=60, phi=phi_mode, **kw)
    sol = cg_solve(be, config, be.linear_operator(A), be.asarray(b), 0.0)
    assert sol.status == CGStatus.CONVERGED and sol.num_steps == want
    scale = abs(phi[want])
    assert np.max(np.abs(sol.phi - phi[: want + 1])) <= 1e-12 * scale
    assert relerr(host(be, sol.x), xs[want]) <= 1e-10


@pytest.mark.parametrize("floor_at", [6, 12])
def test_residual_floor_stops_where_r_dot_r_first_falls_below(be, floor_at):
    """residual_floor ends the solve after the first iteration whose new residual has
    r.r below the floor (the Adaptive-HF code checks |r|^2 before each iteration);
    the residuals come from a NumPy CG written out here."""
    A, b = cg_system()
    xs, _ = cg_history()
    rr = [float((b - A @ x) @ (b - A @ x)) for x in xs]
    floor = 0.5 * (rr[floor_at] + rr[floor_at - 1])  # between iterations floor_at - 1 and floor_at
    assert rr[floor_at] < floor < min(rr[:floor_at])
    config = CGConfig(stop="relative", max_iters=60, residual_floor=floor, eps=1e-30)
    sol = cg_solve(be, config, be.linear_operator(A), be.asarray(b), 0.0)
    assert sol.status == CGStatus.CONVERGED and sol.num_steps == floor_at


def test_residual_floor_auto_by_dtype():
    assert CGConfig(residual_floor="auto").floor_for("float32") == 1e-20
    assert CGConfig(residual_floor="auto").floor_for("torch.float64") == 1e-80
    assert CGConfig().floor_for("float32") == 0.0
    with pytest.raises(HFBenchError, match="residual_floor"):
        CGConfig(residual_floor=-1.0)
    assert algs.get("adaptive_hf").config.cg.residual_floor == "auto"  # the public code's
    assert algs.get("hf").config.cg.residual_floor == 0.0  # Martens has none


def constructed_phi(limit: int) -> np.ndarray:
    """A phi history with fast and stalled phases (25 iterations each), positive and
    decreasing at first (a warm start can give that), and an exact 0 inside a stall."""
    rng = np.random.default_rng(2)
    incr = rng.uniform(0.5, 1.5, limit) * np.where(np.arange(limit) % 50 < 25, 1.0, 1e-6)
    phi = np.concatenate([[0.0], -np.cumsum(incr)])
    phi[1:15] = np.linspace(1.4, 0.1, 14)
    phi[40] = 0.0
    # ratios over k = 10 near 3e-4: below k eps = 1e-3 (Martens' scaling) but above eps
    phi[60:100] = phi[59] - 1.5e-3 * np.arange(1, 41)
    # a stall with one drop between 108 and 109: at i = 120 the rule looks back k = 11 to
    # 109 (after the drop) and stops; a k of floor(0.1 i) = 12 would see the drop
    phi[100:135] = phi[99] - 1e-7 * np.arange(1, 36)
    phi[109:135] -= 1.0
    phi[150:230] = phi[149] - 1e-7 * np.arange(1, 81)  # a long stall where k = 14 .. 22
    return phi


def test_relative_rule_on_constructed_history(be):
    """cg._rule_met with stop="relative" against the rule written out, at every i <= 260."""
    ops, limit = be.ops, 260
    config = CGConfig(stop="relative", max_iters=limit, eps=1e-4, k_min=10)
    b = be.asarray(np.ones(3))
    operands = make_operands(ops, config, be.linear_operator(np.eye(3)), b, 0.0)
    phi = constructed_phi(limit)
    state = CGState(*[None] * len(CGState._fields))._replace(phi=ops.asarray(phi, "float64"))
    got = [bool(be.to_numpy(_rule_met(ops, config, operands, state, ops.asarray(i, "int"),
                                      ops.asarray(phi[i], "float64"), b)))
           for i in range(1, limit + 1)]
    want = {i: relative_rule(phi, i, eps=1e-4, k_min=10) for i in range(1, limit + 1)}
    wrong = [i for i, g in enumerate(got, start=1) if g != want[i]]
    assert not wrong, f"rule differs at i = {wrong[:10]}"
    # both outcomes before and after k leaves k_min (from i = 111 on)
    early, late = [want[i] for i in range(1, 111)], [want[i] for i in range(111, limit + 1)]
    assert any(early) and not all(early) and any(late) and not all(late)
    # i = k + 1 = 11 never stops; i = 12 does: phi_12 > 0 and below phi_2 gives a negative
    # ratio, and the code tests no sign (Martens' rule would need phi_i < 0)
    assert (want[11], want[12]) == (False, True) and phi[12] > 0
    assert want[39] and not want[40] and phi[40] == 0.0  # phi_i = 0: no stop
    assert not any(want[i] for i in range(70, 100))  # ratios between eps and k eps
    assert want[120] and not want[119]  # k = floor(0.1 (i - 1)) = 11 at i = 120


SAVE5 = (5, 7, 9, 11, 15, 19, 25, 32, 41, 54, 60)  # ceil(5 * 1.3^j) <= 60, and 60


def test_save_points_from_five():
    """Martens' conjgrad_1.m saves at ceil(5 * 1.3^j): 5, 6.5, 8.45, 10.985, 14.28,
    18.56, 24.13, 31.37, 40.79, 53.02 -> the ceilings above (plus the limit)."""
    assert CGConfig(save_first=5, stop="fixed", iters=60, max_iters=60).save_points == SAVE5
    points = algs.get("hf", backtrack_first=5).config.cg.save_points
    assert points[:10] == SAVE5[:10] and points[-1] == 250
    assert algs.get("hf").config.cg.save_points[:6] == (1, 2, 3, 4, 5, 7)  # the text's
    with pytest.raises(HFBenchError):
        CGConfig(save_first=0.5)


def test_saved_iterates_from_five(be):
    A, b = cg_system()
    xs, _ = cg_history()
    config = CGConfig(save_first=5, stop="fixed", iters=60, max_iters=60)
    sol = cg_solve(be, config, be.linear_operator(A), be.asarray(b), 0.0)
    assert [it for it, _ in sol.saved] == list(SAVE5) and sol.num_steps == 60
    for it, x in sol.saved:
        assert relerr(host(be, x), xs[it]) <= 1e-10, f"iterate {it}"


# ----------------------------------------------------------------------------- 5. adaptive_hf

# HF_SPEC with the Hessian of the curvature batch (torch autograd, tests/oracles.py) and
# CG capped at 3 iterations (the relative rule needs i > k + 1 >= 12, so it runs all 3).
AHF = dict(L=1.0, cg_max_iters=3)


def oracles_module():
    pytest.importorskip("torch", reason="the dense Hessian is built with torch autograd")
    import oracles

    return oracles


def hessian(spec, theta, X, Y) -> np.ndarray:
    return oracles_module().reference(spec, theta, X, Y).hessian


def eq3(d_norm: float, t: int, L: float, sigma: float, eps: float) -> float:
    """Motokawa and Tezuka 2020, Eq. 3, with beta1 = eps / (eps + 2 sigma)."""
    b1 = eps / (eps + 2 * sigma)
    return (4 * (d_norm**2 * (1 - b1) - d_norm * (b1 - b1**t) * sigma)
            / (3 * L * (1 - b1**t) ** 2 * sigma))


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_adaptive_hf_warm_start(backend_name, warm):
    """Step 2's CG starts from 0.95 d_1 (one extra product) by default, from 0 without."""
    be = backend_of(backend_name)
    problem = problem_of(backend_name, HF_SPEC)
    Xg, Yg, Xc, Yc, theta = hf_case()
    batch, cbatch, x = hf_batches(be)
    # lambda = 3 (H + 3 I has eigenvalues >= 1.8 here); at the default 10, 3 CG steps
    # nearly solve the system, and the start would matter only at 1e-4
    lam = 3.0
    alg = algs.get("adaptive_hf", warm_start=warm, damping=lam, **AHF)
    ref = DenseReference(HF_SPEC, theta, Xg, Yg)
    A1 = hessian(HF_SPEC, theta, Xc, Yc) + lam * np.eye(theta.size)
    d1 = np_cg(A1, -ref.grad, 3)[0][-1]
    x1, state, info = alg.step(problem, x, alg.init(x), batch, cbatch)
    assert info["n_gv"] == 3 and relerr(host(be, state.d_prev), d1) <= 1e-10

    line = Line(HF_SPEC, theta, Xg, Yg, ref.grad, d1)
    lam2 = lm(lam, (line.f(1.0) - line.f0) / line.model(1.0, A1))
    theta1 = host(be, x1)
    ref1 = DenseReference(HF_SPEC, theta1, Xg, Yg)
    A2 = hessian(HF_SPEC, theta1, Xc, Yc) + lam2 * np.eye(theta.size)
    d2_warm = np_cg(A2, -ref1.grad, 3, x0=0.95 * d1)[0][-1]
    d2_cold = np_cg(A2, -ref1.grad, 3)[0][-1]
    assert relerr(d2_warm, d2_cold) > 1e-3  # the start matters after 3 iterations

    _, state2, info2 = alg.step(problem, x1, state, batch, cbatch)
    assert info2["lambda"] == pytest.approx(lam2, rel=1e-15)
    assert info2["n_gv"] == (4 if warm else 3)
    assert relerr(host(be, state2.d_prev), d2_warm if warm else d2_cold) <= 1e-10


def test_adaptive_hf_rho_taken_undamped(backend_name):
    """The public code: rho = (f(x_new) - f(x)) / (g.d + 1/2 d.H d), x_new the updated
    weights (t = 1: x + alpha_1 d / (|d| + mu), elementwise), H undamped."""
    be = backend_of(backend_name)
    Xg, Yg, Xc, Yc, theta = hf_case()
    batch, cbatch, x = hf_batches(be)
    lam, o = 10.0, {k: v.value for k, v in algs.defaults("adaptive_hf").items()}
    ref = DenseReference(HF_SPEC, theta, Xg, Yg)
    H = hessian(HF_SPEC, theta, Xc, Yc)
    d = np_cg(H + lam * np.eye(theta.size), -ref.grad, 3)[0][-1]
    alpha = eq3(np.linalg.norm(d), 1, AHF["L"], o["sigma"], o["eps"])
    x_new = theta + alpha * d / (np.abs(d) + o["mu"])  # m_hat = d, sqrt(v_hat) = |d| at t = 1
    f_new = DenseReference(HF_SPEC, x_new, Xg, Yg).objective
    want = (f_new - ref.objective) / (ref.grad @ d + 0.5 * d @ H @ d)
    default = (DenseReference(HF_SPEC, theta + d, Xg, Yg).objective - ref.objective) / (
        ref.grad @ d + 0.5 * d @ (H + lam * np.eye(theta.size)) @ d)
    assert abs(want - default) > 0.1  # the options change the answer

    alg = algs.get("adaptive_hf", rho_point="taken", rho_model="undamped", **AHF)
    x1, state, info = alg.step(problem_of(backend_name, HF_SPEC), x, alg.init(x), batch, cbatch)
    assert relerr(host(be, x1), x_new) <= 1e-12
    assert info["rho"] == pytest.approx(want, rel=1e-8)
    assert state.lam == pytest.approx(lm(lam, want), rel=1e-15)


def test_adaptive_hf_damping_min(backend_name):
    """On the quadratic LSQ_SPEC rho at x + d lies in [1, 2]: lambda falls, floored at 0.1."""
    lam0, floor = 0.12, 0.1
    be, problem = backend_of(backend_name), problem_of(backend_name, LSQ_SPEC)
    X, Y, theta = lsq_case()
    line, G = gn_line(LSQ_SPEC, theta, X, Y, lam0, 2)  # H = G: the model is linear in theta
    rho = (line.f(1.0) - line.f0) / line.model(1.0, G + lam0 * np.eye(4))
    assert 1.0 <= rho <= 2.0
    batch, x = be.batch(X, Y), be.asarray(theta)
    alg = algs.get("adaptive_hf", damping=lam0, damping_min=floor, cg_max_iters=2, L=1.0)
    x1, state, info = alg.step(problem, x, alg.init(x), batch)
    assert info["rho"] == pytest.approx(rho, rel=1e-10)
    assert state.lam == floor  # 0.12 * 2/3 = 0.08 < 0.1
    _, state2, info2 = alg.step(problem, x1, state, batch)
    assert info2["lambda"] == floor and info2["rho"] > 0.75 and state2.lam == floor


# ----------------------------------------------------------------------------- 6. loss_scale

L2 = 0.1
SCALE_CASES = [(loss, c) for loss in (SOFTMAX, SIGMOID, SQUARED) for c in (2.0, 0.5)]


def scaled_spec(loss: str, c: float):
    return dataclasses.replace(models.mlp([3, 4, 2], "tanh", loss, l2=L2), loss_scale=c)


@pytest.mark.parametrize("loss", [SOFTMAX, SIGMOID, SQUARED])
def test_dense_reference_scales_by_hand(loss):
    """DenseReference of a scaled spec, against the per-example losses written out on the
    NumPy forward of tests/oracles.py (c = 2: squared error is sum (z - t)^2)."""
    oracles = oracles_module()
    spec = scaled_spec(loss, 2.0)
    theta = 0.5 * np.random.default_rng(3).standard_normal(spec.num_params)
    X, Y = make_data(spec, 6, seed=3)
    z = oracles.np_forward(spec, theta, X)
    ref = DenseReference(spec, theta, X, Y)
    if loss == SQUARED:
        losses, r, H = ((z - Y) ** 2).sum(1), 2 * (z - Y), np.broadcast_to(2 * np.eye(2), (6, 2, 2))
    elif loss == SIGMOID:
        p = 1 / (1 + np.exp(-z))
        losses = 2 * (np.log1p(np.exp(z)) - Y * z).sum(1)
        r, H = 2 * (p - Y), np.stack([2 * np.diag(q * (1 - q)) for q in p])
    else:
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        losses = 2 * (np.log(np.exp(z).sum(1)) - z[np.arange(6), Y])
        r = 2 * (p - np.eye(2)[Y])
        H = np.stack([2 * (np.diag(q) - np.outer(q, q)) for q in p])
    np.testing.assert_allclose(ref.losses, losses, rtol=1e-12)
    np.testing.assert_allclose(ref.r, r, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ref.H, H, rtol=1e-12, atol=1e-15)
    assert ref.objective == pytest.approx(losses.mean() + 0.5 * L2 * theta @ theta, rel=1e-13)


@pytest.mark.parametrize("loss, c", SCALE_CASES, ids=[f"{l}-{c}" for l, c in SCALE_CASES])
def test_loss_scale_on_every_product(backend_name, loss, c):
    """With loss_scale c, the data parts scale by c (objective, gradient, GGN, Hessian)
    or c^2 (Fisher, preconditioner diagonal); the l2 parts do not. The scaled backend
    against the scaled DenseReference, and both against c * (unscaled - l2) + l2."""
    spec, unit = scaled_spec(loss, c), scaled_spec(loss, 1.0)
    theta = 0.5 * np.random.default_rng(4).standard_normal(spec.num_params)
    X, Y = make_data(spec, 5, seed=4)
    ref, ref1 = DenseReference(spec, theta, X, Y), DenseReference(unit, theta, X, Y)
    eye, pen = L2 * np.eye(theta.size), 0.5 * L2 * theta @ theta
    want = {
        "objective": c * (ref1.objective - pen) + pen,
        "grad": c * (ref1.grad - L2 * theta) + L2 * theta,
        "ggn": c * (ref1.ggn - eye) + eye,
        "fisher": c * c * (ref1.fisher - eye) + eye,
        "diag": c * c * ref1.precondition,
    }
    if importlib.util.find_spec("torch") is not None:  # the dense Hessian needs autograd
        H1 = oracles_module().reference(unit, theta, X, Y).hessian  # l2 included
        want["hessian"] = c * (H1 - eye) + eye
    assert ref.objective == pytest.approx(want["objective"], rel=1e-13)
    for key, got in (("grad", ref.grad), ("ggn", ref.ggn), ("fisher", ref.fisher),
                     ("diag", ref.precondition)):
        assert relerr(got, want[key]) <= 1e-13, f"DenseReference {key}"

    be = backend_of(backend_name)
    problem, batch, x = problem_of(backend_name, spec), be.batch(X, Y), be.asarray(theta)
    value, grad = problem.value_and_grad(x, batch)
    assert be.ops.to_float(value) == pytest.approx(want["objective"], rel=1e-12)
    assert be.ops.to_float(problem.loss(x, batch)) == pytest.approx(want["objective"], rel=1e-12)
    assert relerr(host(be, grad), want["grad"]) <= 1e-11
    assert relerr(host(be, problem.precondition(x, batch)), want["diag"]) <= 1e-11
    metrics = problem.evaluate(x, batch)  # what the runner records: the scaled objective
    assert metrics["objective"] == pytest.approx(want["objective"], rel=1e-12)
    assert metrics["loss"] == pytest.approx(want["objective"] - pen, rel=1e-12)
    vs = np.random.default_rng(5).standard_normal((2, theta.size))
    for kind in ("ggn", "hessian", "fisher"):
        if kind not in want:
            continue
        op = problem.curvature(x, batch, kind)
        for v in vs:
            assert relerr(host(be, op.matvec(be.asarray(v))), want[kind] @ v) <= 1e-11, kind


def test_loss_scale_leaves_the_reconstruction_error(backend_name):
    """Martens' reconstruction error, mean_i sum_k (pred - t)^2, is a metric of the
    predictions: loss_scale scales the loss, not it (NumPy forward of tests/oracles.py)."""
    oracles = oracles_module()
    spec = dataclasses.replace(models.autoencoder([4, 2], loss=SQUARED), loss_scale=2.0)
    theta = 0.5 * np.random.default_rng(7).standard_normal(spec.num_params)
    X, Y = make_data(spec, 5, seed=7)
    z = oracles.np_forward(spec, theta, X)
    be = backend_of(backend_name)
    metrics = problem_of(backend_name, spec).evaluate(be.asarray(theta), be.batch(X, Y))
    assert metrics["reconstruction_error"] == pytest.approx(((z - Y) ** 2).sum(1).mean(), rel=1e-12)
    assert metrics["loss"] == pytest.approx(((z - Y) ** 2).sum(1).mean(), rel=1e-12)  # c = 2


@pytest.mark.parametrize("value", [0, 0.0, -1.0, float("nan"), float("inf"), True, "2", None])
def test_bad_loss_scale_raises(value):
    with pytest.raises(SpecError, match="loss_scale"):
        dataclasses.replace(models.mlp([3, 2], loss=SQUARED), loss_scale=value)


SUITE = """\
name: t
backends: [torch]
seeds: [0]
workloads:
  boston:
    dataset: boston
    model: {type: mlp, sizes: [13, 8, 1]}
    batch_size: 32
  boston2:
    dataset: boston
    model: {type: mlp, sizes: [13, 8, 1]}
    batch_size: 32
    loss_scale: 2
  digits_lenet:
    dataset: mnist5k
    model: {type: lenet, padding: valid}
    batch_size: 32
  digits_lenet_same:
    dataset: mnist5k
    model: {type: lenet}
    batch_size: 32
optimizers:
  sgd: {algorithm: sgd, params: {lr: 0.1}}
budget: {iterations: 10}
"""


def trials_by_workload(text: str = SUITE) -> dict:
    return {t.workload: t for t in expand(loads(text, source="x.yaml"))}


def test_suite_loss_scale_reaches_the_trial():
    trials = trials_by_workload()
    assert trials["boston2"].loss_scale == 2.0 and trials["boston2"].model_spec().loss_scale == 2.0
    assert trials["boston"].loss_scale == 1.0 and trials["boston"].model_spec().loss_scale == 1.0
    assert trials["boston"].model_spec().loss == SQUARED
    assert trials["boston"].id != trials["boston2"].id  # results of the two never collide


@pytest.mark.parametrize("value", ["0", "-1", ".nan", "true", "'2'"])
def test_suite_bad_loss_scale(value):
    text = SUITE.replace("loss_scale: 2", f"loss_scale: {value}")
    with pytest.raises(SuiteError, match=r"x\.yaml:13 workloads\.boston2\.loss_scale"):
        loads(text, source="x.yaml")


# ----------------------------------------------------------------------------- 7. lenet padding

# conv 6@5x5, conv 16@5x5 (6 in), fc flat -> 120, 120 -> 84, 84 -> 10; weights + biases
LENET_VALID = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 120 + 120) + (120 * 84 + 84) \
    + (84 * 10 + 10)
LENET_SAME = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) \
    + (84 * 10 + 10)


def test_lenet_padding_shapes():
    valid, same = models.lenet(padding="valid"), models.lenet()
    # 28 -conv5-> 24 -pool2-> 12 -conv5-> 8 -pool2-> 4: 16 * 4 * 4 = 256
    assert valid.shapes[:5] == ((6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 4, 4), (256,))
    # padded by 2: 28 -> 28 -> 14 -> 10 -> 5: 16 * 5 * 5 = 400
    assert same.shapes[:5] == ((6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,))
    assert valid.num_params == LENET_VALID == 44426
    assert same.num_params == LENET_SAME == 61706
    assert models.lenet(padding="same") == same


@pytest.mark.parametrize("padding", ["full", "VALID", 2, None])
def test_lenet_bad_padding(padding):
    with pytest.raises(SpecError, match="padding"):
        models.lenet(padding=padding)


def test_suite_lenet_padding():
    trials = trials_by_workload()
    assert trials["digits_lenet"].model_spec() == models.lenet(padding="valid")
    assert trials["digits_lenet"].model_spec().num_params == LENET_VALID
    assert trials["digits_lenet_same"].model_spec() == models.lenet()
    bad = SUITE.replace("padding: valid", "padding: vald")
    with pytest.raises(SuiteError, match=r"x\.yaml:16 workloads\.digits_lenet\.model\.padding"):
        loads(bad, source="x.yaml")


def test_lenet_valid_on_both_backends():
    """The valid LeNet's objective and gradient agree between torch and JAX, with the
    NumPy forward of tests/oracles.py (loops over output pixels) and torch autograd on
    the oracles' own forward."""
    why = missing_backends("torch", "jax")
    if why:
        pytest.skip(f"torch vs jax needs both backends: {why}")
    oracles = oracles_module()
    import torch

    spec = models.lenet(padding="valid")
    rng = np.random.default_rng(6)
    theta = models.init_params(spec, 0, dtype="float64")
    theta = theta + 0.01 * rng.standard_normal(spec.num_params)  # no zero weights
    X, Y = rng.standard_normal((3, 1, 28, 28)), np.array([1, 7, 3])
    t, xt, yt = oracles.tensors(theta, X, Y)
    t.requires_grad_(True)
    g_ref = torch.autograd.grad(oracles.objective_fn(spec, xt, yt)(t), t)[0].numpy()
    f_ref = oracles.np_evaluate(spec, theta, X, Y)["objective"]
    for name in ("torch", "jax"):
        be = backend_of(name)
        value, grad = problem_of(name, spec).value_and_grad(be.asarray(theta), be.batch(X, Y))
        assert be.ops.to_float(value) == pytest.approx(f_ref, rel=1e-12), name
        assert relerr(host(be, grad), g_ref) <= 1e-11, name
