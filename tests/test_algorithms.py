"""The seven algorithms (hfbench.algorithms) on small nets, against oracles written here.

- exactness: hf on a linear least-squares model reaches numpy.linalg.lstsq;
- descent: every algorithm lowers the full-data loss (a NumPy forward) in 10 steps;
- torch vs JAX: 10 steps from one theta on one seeded batch stream agree at every step;
- hf: rho against a dense float64 GGN, lambda by the Levenberg-Marquardt rule, a step
  that fails Armijo is rejected;
- adaptive_hf: Eq. 3 step size, bias-corrected moments, state never mutated;
- newton: equals hf_newton run to convergence and a dense solve; refuses big nets;
- bad input: names and ranges rejected at construction.

Every backend run is cached per module (JAX compiles each problem's functions once):
the trajectories feed the descent, cross-framework and LM tests.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from hfbench import HFBenchError, models
from hfbench import algorithms as algs

from conftest import make_backend as backend_of
from conftest import missing_backends
from oracles import WrappedProblem

NAMES = ("hf", "sgn", "adaptive_hf", "hf_newton", "newton", "sgd", "adam")
HF_FAMILY = ("hf", "sgn", "adaptive_hf", "hf_newton")
SOFTMAX = "softmax_cross_entropy"

SPEC = models.mlp([6, 5, 3], "sigmoid", SOFTMAX)  # 53 weights
N_DATA, BATCH, STEPS = 256, 32, 10

# Paper defaults except where a value tuned for big nets makes no sense on 53 weights
# and 32-example batches:
# - sgn: Gargiani et al.'s rho = 1e-4: on a 32-example batch the GGN of 53 weights
#   has 38 eigenvalues below 1e-3, and 10 CG steps on G + 1e-4 I take steps that blow
#   the loss up (1.3 -> 5e3 here) and are ill-posed in float64: torch, JAX and a
#   NumPy CG on the dense G differ by 3e-5 to 6e-4 after one step, as do NumPy's
#   float64 and long-double CGs (2e-4; measured). A fixed rho = 1 keeps the
#   comparison about the code.
# - adaptive_hf: L is a Lipschitz-constant estimate; the paper's range (50 to 300)
#   makes alpha_t ~ 1e-6 here (the full-data loss moves by 7e-4 in 10 steps), so L = 1.
# Separate gradient and curvature batches go to the algorithms whose papers use them.
OVERRIDES = {
    "hf": {}, "sgn": {"damping": 1.0}, "adaptive_hf": {"L": 1.0}, "hf_newton": {},
    "newton": {}, "sgd": {}, "adam": {},
}
SEPARATE_CURVATURE_BATCH = ("hf", "adaptive_hf")


# ----------------------------------------------------------------------------- data, runs


def make_data():
    """A learnable 3-class problem: labels from a linear teacher plus noise."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_DATA, 6))
    Y = np.argmax(X @ rng.standard_normal((6, 3)) + 0.5 * rng.standard_normal((N_DATA, 3)), 1)
    return X, Y.astype(np.int64)


X_ALL, Y_ALL = make_data()
THETA0 = models.init_params(SPEC, seed=0, dtype="float64")


def index_stream(steps: int = STEPS):
    """One seeded NumPy stream: (gradient batch, curvature batch) indices per step."""
    rng = np.random.default_rng(7)
    return [(rng.choice(N_DATA, BATCH, replace=False), rng.choice(N_DATA, BATCH, replace=False))
            for _ in range(steps)]


STREAM = index_stream()


def np_loss(theta, X, Y) -> float:
    """Mean softmax cross-entropy of SPEC, in NumPy (no backend involved)."""
    W1, b1 = theta[:30].reshape(6, 5), theta[30:35]
    W2, b2 = theta[35:50].reshape(5, 3), theta[50:53]
    z = (1.0 / (1.0 + np.exp(-(X @ W1 + b1)))) @ W2 + b2
    zmax = z.max(1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(1))
    return float(np.mean(lse - z[np.arange(len(z)), Y]))


@functools.lru_cache(maxsize=None)
def problem_of(name: str, spec=SPEC):
    return backend_of(name).problem(spec)


def host(be, a) -> np.ndarray:
    return np.array(be.to_numpy(a), dtype=np.float64)  # a writable copy


def relerr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def run(backend: str, alg, steps: int = STEPS, separate: bool = False, problem=None):
    """Steps of `alg` on the shared stream -> one record per step: info, the theta it
    started from ('before'), the theta it returned and the state it returned."""
    be = backend_of(backend)
    problem = problem or problem_of(backend)
    x = be.asarray(THETA0)
    state = alg.init(x)
    out = []
    for g_idx, c_idx in STREAM[:steps]:
        batch = be.batch(X_ALL[g_idx], Y_ALL[g_idx])
        cbatch = be.batch(X_ALL[c_idx], Y_ALL[c_idx]) if separate else None
        before = host(be, x)
        x, state, info = alg.step(problem, x, state, batch, cbatch)
        out.append({"info": dict(info), "before": before, "theta": host(be, x), "state": state})
    return out


@functools.lru_cache(maxsize=None)
def trajectory(backend: str, name: str):
    """10 steps of `name` (with OVERRIDES) on the shared stream; cached per module."""
    alg = algs.get(name, **OVERRIDES[name])
    return run(backend, alg, separate=name in SEPARATE_CURVATURE_BATCH)


@pytest.fixture(scope="module")
def both():
    why = missing_backends("torch", "jax")
    if why:
        pytest.skip(f"torch vs jax needs both backends: {why}")
    return ("torch", "jax")


def oracles_module():
    pytest.importorskip("torch", reason="the dense references are built with torch autograd")
    import oracles

    return oracles


# ----------------------------------------------------------------------------- (a) exactness


@pytest.mark.parametrize("precond", [False, True], ids=["plain", "precond"])
def test_hf_reaches_least_squares_solution(backend_name, precond):
    """Linear model + squared error: the objective is quadratic, so hf with lambda -> 0
    is Newton's method; lstsq on [X, 1] is the minimizer (weights (in, out), then bias)."""
    d, k, n = 5, 2, 40
    spec = models.mlp([d, k], [], loss="squared_error")
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, k))
    W = np.linalg.lstsq(np.hstack([X, np.ones((n, 1))]), Y, rcond=None)[0]
    theta_star = np.concatenate([W[:d].ravel(), W[d]])

    be = backend_of(backend_name)
    problem, batch = problem_of(backend_name, spec), be.batch(X, Y)
    alg = algs.get("hf", damping=1e-10, preconditioner=precond)
    x = be.asarray(models.init_params(spec, 0, dtype="float64"))
    state, errs = alg.init(x), []
    for _ in range(5):
        x, state, info = alg.step(problem, x, state, batch)
        errs.append(relerr(host(be, x), theta_star))
        if errs[-1] <= 1e-8:
            break
    assert errs[-1] <= 1e-8, f"relative errors to lstsq per outer step: {errs}"


# ----------------------------------------------------------------------------- (b) descent


@pytest.mark.parametrize("name", NAMES)
def test_descent(backend_name, name):
    runs = trajectory(backend_name, name)
    before = np_loss(THETA0, X_ALL, Y_ALL)
    after = np_loss(runs[-1]["theta"], X_ALL, Y_ALL)
    assert np.isfinite(after) and after < before - 1e-3, (
        f"{name}: full-data loss {before:.6f} -> {after:.6f} after {STEPS} steps")
    # info['loss'] is the gradient batch's loss at the weights the step started from
    for rec, (g_idx, _) in zip(runs, STREAM):
        assert rec["info"]["loss"] == pytest.approx(
            np_loss(rec["before"], X_ALL[g_idx], Y_ALL[g_idx]), rel=1e-12)


# ----------------------------------------------------------------------------- (c) torch vs jax


FLOAT_KEYS = ("loss", "lambda", "alpha", "step_norm", "loss_after")
INT_KEYS = ("cg_iters", "n_gv", "n_grad", "n_fwd", "accepted", "cg_status", "backtrack_iter", "t")


@pytest.mark.parametrize(
    "name, torch_mode",
    [(n, "torch") for n in NAMES] + [(n, "torch-compiled") for n in HF_FAMILY],
)
def test_same_trajectory_on_torch_and_jax(both, name, torch_mode):
    t_run, j_run = trajectory(torch_mode, name), trajectory("jax", name)
    if torch_mode == "torch-compiled":
        assert not backend_of(torch_mode).compiler.failures
    for step, (t, j) in enumerate(zip(t_run, j_run)):
        ti, ji = t["info"], j["info"]
        where = f"{name}, step {step}"
        assert ti.keys() == ji.keys(), where
        for key in INT_KEYS:
            if key in ji:
                assert ti[key] == ji[key], f"{where}: {key} torch {ti[key]} jax {ji[key]}"
        for key in FLOAT_KEYS:
            if key in ji and ji[key] is not None:
                assert ti[key] == pytest.approx(ji[key], rel=1e-8, abs=1e-300), (
                    f"{where}: {key} torch {ti[key]!r} jax {ji[key]!r}")
        if "rho" in ji and math.isfinite(ji["rho"]):
            assert ti["rho"] == pytest.approx(ji["rho"], rel=1e-8), where
        err = relerr(t["theta"], j["theta"])
        assert err <= 1e-8, f"{where}: theta differs by {err:.2e}"


# ----------------------------------------------------------------------------- (d) adaptive_hf


def eq3(d_norm: float, t: int, L: float, sigma: float, eps: float) -> float:
    """Motokawa and Tezuka 2020, Eq. 3, with beta1 = eps / (eps + 2 sigma)."""
    b1 = eps / (eps + 2 * sigma)
    return (4 * (d_norm**2 * (1 - b1) - d_norm * (b1 - b1**t) * sigma)
            / (3 * L * (1 - b1**t) ** 2 * sigma))


def test_adaptive_hf_step_size_follows_eq3(backend_name):
    runs = trajectory(backend_name, "adaptive_hf")
    o = {k: d.value for k, d in algs.defaults("adaptive_hf").items()} | OVERRIDES["adaptive_hf"]
    alphas = []
    for t, rec in enumerate(runs, start=1):
        info = rec["info"]
        assert info["t"] == t
        want = eq3(info["direction_norm"], t, o["L"], o["sigma"], o["eps"])
        assert info["alpha"] == pytest.approx(want, rel=1e-12), f"step {t}"
        alphas.append(info["alpha"])
    assert all(a != b for a, b in zip(alphas, alphas[1:])), f"alpha_t repeats: {alphas}"


def test_adaptive_hf_moments_bias_corrected_and_not_mutated(backend_name):
    """beta1 = 0.5, beta2 = 0.9, so the bias corrections are large (2x and 10x at t = 1).

    From the states: d_t = (m_t - b1 m_{t-1}) / (1 - b1) must have the reported norm,
    v_t must be b2 v_{t-1} + (1 - b2) d_t^2, and the step must be
    alpha_t * m_hat / (sqrt(v_hat) + mu) with the hats divided by (1 - b^t).
    """
    L, sigma, eps, b2, mu = 10.0, 1.0, 2.0, 0.9, 1e-8
    b1 = eps / (eps + 2 * sigma)
    be = backend_of(backend_name)
    alg = algs.get("adaptive_hf", L=L, sigma=sigma, eps=eps, beta2=b2, mu=mu)
    problem = problem_of(backend_name)
    x = be.asarray(THETA0)
    state = alg.init(x)
    m_prev = v_prev = np.zeros_like(THETA0)
    alphas = []
    for t, (g_idx, c_idx) in enumerate(STREAM[:4], start=1):
        batch, cbatch = (be.batch(X_ALL[i], Y_ALL[i]) for i in (g_idx, c_idx))
        kept = None if state.m is None else (host(be, state.m), host(be, state.v))
        theta = host(be, x)
        x, state, info = alg.step(problem, x, state, batch, cbatch)
        if kept is not None:  # the previous state's arrays are untouched by step()
            assert np.array_equal(kept[0], m_prev) and np.array_equal(kept[1], v_prev)
        m, v = host(be, state.m), host(be, state.v)
        d = (m - b1 * m_prev) / (1 - b1)
        assert np.linalg.norm(d) == pytest.approx(info["direction_norm"], rel=1e-10)
        np.testing.assert_allclose(v, b2 * v_prev + (1 - b2) * d * d, rtol=1e-10, atol=0)
        alpha = eq3(np.linalg.norm(d), t, L, sigma, eps)
        assert info["alpha"] == pytest.approx(alpha, rel=1e-10) and info["beta1"] == b1
        step = alpha * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + mu)
        np.testing.assert_allclose(host(be, x) - theta, step, rtol=1e-9, atol=1e-14)
        alphas.append(info["alpha"])
        if t == 1:
            check_adaptive_rho(info, d, g_idx, c_idx)
        m_prev, v_prev = m, v
    assert len(set(alphas)) == len(alphas), f"alpha_t repeats: {alphas}"


def check_adaptive_rho(info, d, g_idx, c_idx):
    """rho at the CG direction d (their Alg. 1 order): f on the gradient batch, the
    damped model with the Hessian of the curvature batch."""
    oracles = oracles_module()
    ref = oracles.reference(SPEC, THETA0, X_ALL[g_idx], Y_ALL[g_idx])
    H = oracles.reference(SPEC, THETA0, X_ALL[c_idx], Y_ALL[c_idx]).hessian
    model = 0.5 * d @ (H + info["lambda"] * np.eye(d.size)) @ d + ref.grad @ d
    f_d = np_loss(THETA0 + d, X_ALL[g_idx], Y_ALL[g_idx])
    assert info["rho"] == pytest.approx((f_d - ref.loss) / model, rel=1e-8)


# ----------------------------------------------------------------------------- sgd, adam


def oracle_grad(theta, X, Y) -> np.ndarray:
    """The gradient of the mean loss by torch autograd on the oracle's own forward."""
    oracles = oracles_module()
    import torch

    t, x, y = oracles.tensors(theta, X, Y)
    t.requires_grad_(True)
    return torch.autograd.grad(oracles.objective_fn(SPEC, x, y)(t), t)[0].numpy()


@pytest.mark.parametrize("nesterov", [False, True], ids=["polyak", "nesterov"])
def test_sgd_momentum_against_formula(backend_name, nesterov):
    lr, mu = 0.1, 0.9
    runs = run(backend_name, algs.get("sgd", lr=lr, momentum=mu, nesterov=nesterov), steps=3)
    x, vel = THETA0.copy(), np.zeros_like(THETA0)
    for rec, (g_idx, _) in zip(runs, STREAM):
        g = oracle_grad(x, X_ALL[g_idx], Y_ALL[g_idx])
        vel = mu * vel + g
        x = x - lr * (g + mu * vel if nesterov else vel)
        assert relerr(rec["theta"], x) <= 1e-12


def test_adam_against_formula(backend_name):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    runs = run(backend_name, algs.get("adam", lr=lr), steps=3)
    x, m, v = THETA0.copy(), np.zeros_like(THETA0), np.zeros_like(THETA0)
    for t, (rec, (g_idx, _)) in enumerate(zip(runs, STREAM), start=1):
        g = oracle_grad(x, X_ALL[g_idx], Y_ALL[g_idx])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x = x - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        assert relerr(rec["theta"], x) <= 1e-12, f"step {t}"


# ----------------------------------------------------------------------------- (e) newton


def test_newton_equals_hf_newton_run_to_convergence(backend_name):
    be = backend_of(backend_name)
    problem = problem_of(backend_name)
    g_idx, _ = STREAM[0]
    batch = be.batch(X_ALL[g_idx], Y_ALL[g_idx])
    x = be.asarray(THETA0)
    common = dict(damping=32.0, step_size=0.5)
    newton = algs.get("newton", damped=True, **common)
    hfn = algs.get("hf_newton", cg_stop="residual", cg_tol=1e-12, **common)
    xn, _, info_n = newton.step(problem, x, newton.init(x), batch)
    xh, _, info_h = hfn.step(problem, x, hfn.init(x), batch)
    assert info_h["cg_status"] == "converged", info_h["cg_status"]
    step_n, step_h = host(be, xn) - THETA0, host(be, xh) - THETA0
    assert relerr(step_h, step_n) <= 1e-8
    assert info_n["solver"] == "cholesky"  # H + lambda I is positive definite here
    # and both equal the dense solve with torch autograd's Hessian
    oracles = oracles_module()
    ref = oracles.reference(SPEC, THETA0, X_ALL[g_idx], Y_ALL[g_idx])
    want = -0.5 * np.linalg.solve(ref.hessian + 32.0 * np.eye(THETA0.size), ref.grad)
    assert relerr(step_n, want) <= 1e-8


def last_good_cg_iterate(A, b, max_iters: int = 500) -> tuple[np.ndarray, int]:
    """Textbook CG from 0 on A x = b, stopped before the first p.Ap <= 0."""
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for i in range(max_iters):
        Ap = A @ p
        if not p @ Ap > 0:
            return x, i
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
    raise AssertionError("no negative curvature met")


def test_hf_newton_stops_at_negative_curvature(backend_name):
    """lambda = 0 on a sigmoid net: H is indefinite (eigenvalues down to -0.16 on this
    batch); CG stops at p.Ap <= 0 and the step is alpha times its last good iterate."""
    oracles = oracles_module()
    rec = run(backend_name, algs.get("hf_newton", damping=0.0), steps=1)[0]
    info = rec["info"]
    g_idx, _ = STREAM[0]
    ref = oracles.reference(SPEC, THETA0, X_ALL[g_idx], Y_ALL[g_idx])
    assert np.linalg.eigvalsh(ref.hessian)[0] < 0
    x_good, iters = last_good_cg_iterate(ref.hessian, -ref.grad)
    assert info["cg_status"] == "negative_curvature" and info["cg_iters"] == iters
    step = rec["theta"] - THETA0
    assert np.all(np.isfinite(step)) and relerr(step, 0.5 * x_good) <= 1e-9


def test_newton_refuses_before_allocating():
    from hfbench.algorithms import newton as newton_mod

    n = 20_000  # a 20000 x 20000 float64 matrix is 2.98 GiB > the 2 GiB default
    alg = algs.get("newton")
    with pytest.raises(HFBenchError) as err:
        alg.init(np.zeros(n))  # init reads only the length: nothing n x n is made
    msg = str(err.value)
    need = newton_mod.peak_bytes(n, "float64", damped=True) / 2**30
    assert "hf_newton" in msg and f"{need:.2f} GiB" in msg, msg


def test_newton_refuses_on_a_tiny_limit(backend_name):
    be = backend_of(backend_name)
    alg = algs.get("newton", memory_limit_gb=1e-9)
    with pytest.raises(HFBenchError, match="hf_newton") as err:
        alg.init(be.asarray(THETA0))
    assert "GiB" in str(err.value)


# ----------------------------------------------------------------------------- (f) bad input


def test_unknown_algorithm_suggests_closest():
    with pytest.raises(HFBenchError, match="did you mean 'hf'") as err:
        algs.get("hff")
    for name in NAMES:
        assert name in str(err.value)  # the valid names are listed
    with pytest.raises(HFBenchError, match="did you mean 'adaptive_hf'"):
        algs.defaults("adaptive-hf")


@pytest.mark.parametrize(
    "name, option, closest",
    [("hf", "dampng", "damping"), ("sgn", "cg_iter", "cg_iters"), ("adam", "beta_2", "beta2"),
     ("adaptive_hf", "sigm", "sigma"), ("newton", "memory_limit", "memory_limit_gb")],
)
def test_unknown_option_suggests_closest(name, option, closest):
    with pytest.raises(HFBenchError, match=f"did you mean '{closest}'"):
        algs.get(name, **{option: 1})


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("hf", {"damping": -1.0}), ("sgn", {"damping": -1e-4}), ("hf_newton", {"damping": -32.0}),
        ("newton", {"damping": -1.0}), ("adaptive_hf", {"damping": -10.0}),
        ("adam", {"beta2": 1.0}), ("adam", {"beta2": 1.5}), ("adam", {"beta1": 1.0}),
        ("adam", {"lr": 0.0}), ("sgd", {"lr": -0.1}), ("sgd", {"momentum": 1.0}),
        ("sgn", {"cg_iters": 0}), ("sgn", {"cg_iters": 2.5}), ("sgn", {"damping_rule": "cosin"}),
        ("adaptive_hf", {"beta2": 1.0}), ("adaptive_hf", {"L": 0.0}),
        ("adaptive_hf", {"sigma": -1.0}), ("hf", {"cg_max_iters": 0}),
        ("hf", {"warm_start_decay": 1.5}), ("hf", {"curvature": "hessain"}),
        ("hf_newton", {"cg_stop": "resid"}), ("newton", {"memory_limit_gb": 0.0}),
    ],
)
def test_out_of_range_rejected_at_construction(name, overrides):
    with pytest.raises(HFBenchError) as err:
        algs.get(name, **overrides)
    assert str(err.value)


def dead_input_problem(backend: str):
    """A linear least-squares model whose second input is always 0 (as MNIST's border
    pixels are): those weights get zero gradient, zero curvature and a zero diagonal."""
    spec = models.mlp([3, 2], [], loss="squared_error")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    X[:, 1] = 0.0
    be = backend_of(backend)
    return be, problem_of(backend, spec), be.batch(X, Y), X, Y


def test_adaptive_hf_zero_mu_is_refused():
    """mu = 0 makes m_hat / (sqrt(v_hat) + mu) 0/0 wherever delta is exactly 0 (dead inputs)."""
    with pytest.raises(HFBenchError, match=r"adaptive_hf\.mu must be > 0"):
        algs.get("adaptive_hf", mu=0.0, curvature="ggn")


def test_hf_zero_damping_is_refused():
    """From lambda = 0 the LM rule can never rise, and (diag + 0)^-0.75 is inf on a zero entry."""
    with pytest.raises(HFBenchError, match="could never rise"):
        algs.get("hf", damping=0.0)
    with pytest.raises(HFBenchError, match="preconditioner"):
        algs.get("sgn", damping=0.0, preconditioner=True)


def test_hf_tiny_damping_reaches_min_norm_solution_with_dead_input(backend_name):
    """The dead-input least-squares problem behind the refusals still solves with lambda > 0."""
    alg = algs.get("hf", damping=1e-10, preconditioner=False)
    be, problem, batch, X, Y = dead_input_problem(backend_name)
    W = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]  # min norm
    theta_star = np.concatenate([W[:3].ravel(), W[3]])
    x = be.asarray(np.zeros(problem.spec.num_params))
    state = alg.init(x)
    for _ in range(3):
        x, state, info = alg.step(problem, x, state, batch)
        assert info["cg_status"] != "nonfinite"
    assert relerr(host(be, x), theta_star) <= 1e-8


# ----------------------------------------------------------------------------- (g) hf details


HF_INFO_KEYS = {"loss", "cg_iters", "lambda", "rho", "step_norm", "n_grad", "n_gv", "n_fwd",
                "accepted", "ritz_min", "ritz_max", "cond_est"}


@pytest.mark.parametrize("name", HF_FAMILY)
def test_hf_family_info(backend_name, name):
    for step, rec in enumerate(trajectory(backend_name, name)):
        info = rec["info"]
        # sgn's and hf_newton's default damping is fixed: rho is neither computed nor reported
        fixed = name in ("sgn", "hf_newton")
        required = HF_INFO_KEYS - {"rho"} if fixed else HF_INFO_KEYS
        missing = required - info.keys()
        assert not missing, f"{name} step {step}: info lacks {sorted(missing)}"
        if fixed:
            assert "rho" not in info
        assert info["cg_iters"] >= 1 and info["n_grad"] == 1
        assert 0 < info["ritz_min"] <= info["ritz_max"], (info["ritz_min"], info["ritz_max"])
        assert info["cond_est"] == pytest.approx(info["ritz_max"] / info["ritz_min"], rel=1e-12)
        assert info["step_norm"] == pytest.approx(np.linalg.norm(rec["theta"] - rec["before"]),
                                                  rel=1e-10)


def test_hf_gv_count(backend_name):
    """A cold first solve costs cg_iters products; each warm-started one costs one more."""
    runs = trajectory(backend_name, "hf")
    assert runs[0]["info"]["n_gv"] == runs[0]["info"]["cg_iters"]
    for rec in runs[1:]:
        assert rec["info"]["n_gv"] == rec["info"]["cg_iters"] + 1


def test_sgn_solves_from_zero_with_fixed_iterations(backend_name):
    for rec in trajectory(backend_name, "sgn"):
        assert rec["info"]["cg_iters"] == rec["info"]["n_gv"] == 10


def test_preconditioned_curvature_diagnostics(backend_name):
    """sgn with Martens' preconditioner and as many CG steps as weights: the Ritz values
    in info are the extreme eigenvalues of M^-1 (G + lambda I), with
    M = (diag F + lambda)^0.75 from the dense per-example gradients."""
    oracles = oracles_module()
    lam, n = 0.5, THETA0.size
    alg = algs.get("sgn", damping=lam, cg_iters=n, preconditioner=True)
    info = run(backend_name, alg, steps=1)[0]["info"]
    g_idx, _ = STREAM[0]
    ref = oracles.reference(SPEC, THETA0, X_ALL[g_idx], Y_ALL[g_idx])
    s = (ref.diag + lam) ** -0.375  # M^-1/2
    ev = np.linalg.eigvalsh(s[:, None] * (ref.ggn + lam * np.eye(n)) * s[None, :])
    assert info["ritz_min"] == pytest.approx(ev[0], rel=1e-8)
    assert info["ritz_max"] == pytest.approx(ev[-1], rel=1e-8)


def lm_oracle(lam: float, rho: float) -> float:
    if not math.isfinite(rho) or rho < 0.25:
        return 1.5 * lam
    return lam * 2 / 3 if rho > 0.75 else lam


@functools.lru_cache(maxsize=None)
def lm_trajectory(backend: str):
    # lambda_0 = 0.1 instead of 45: from 45 every step has rho ~ 2 (the damped model
    # of a heavily damped step), so only one branch of the rule would be exercised;
    # from 0.1 this stream gives rho > 3/4, 1/4 < rho < 3/4 and rho < 0 (measured).
    return run(backend, algs.get("hf", damping=0.1), separate=True)


def test_hf_lambda_follows_levenberg_marquardt(backend_name):
    branches = set()
    runs_ = (trajectory(backend_name, "hf"), lm_trajectory(backend_name),
             trajectory(backend_name, "adaptive_hf"))
    for runs in runs_:
        for rec, nxt in zip(runs, runs[1:] + [None]):
            lam, rho = rec["info"]["lambda"], rec["info"]["rho"]
            lam_next = rec["state"].lam  # the lambda the next step will use
            if nxt is not None:
                assert nxt["info"]["lambda"] == lam_next
            assert lam_next == pytest.approx(lm_oracle(lam, rho), rel=1e-14), (
                f"lambda {lam}, rho {rho} -> {lam_next}")
            branches.add(round(lm_oracle(1.0, rho), 6))
    assert branches == {1.5, 1.0, round(2 / 3, 6)}, f"branches exercised: {branches}"


@pytest.mark.parametrize("rho_model", ["damped", "undamped"])
def test_hf_rho_against_dense_model(backend_name, rho_model):
    """rho = (f(x + p) - f(x)) / (q(p) - q(0)), f on the gradient batch, q from the dense
    GGN of the curvature batch (torch autograd), damped or not; the second step's CG is
    warm-started, so its phi history starts at phi(x0) != 0."""
    oracles = oracles_module()
    alg = algs.get("hf", damping=0.3, rho_model=rho_model)
    for rec, (g_idx, c_idx) in zip(run(backend_name, alg, steps=2, separate=True), STREAM):
        info, theta, p = rec["info"], rec["before"], rec["theta"] - rec["before"]
        ref_g = oracles.reference(SPEC, theta, X_ALL[g_idx], Y_ALL[g_idx])
        G = oracles.reference(SPEC, theta, X_ALL[c_idx], Y_ALL[c_idx]).ggn
        f0, f1 = ref_g.loss, np_loss(rec["theta"], X_ALL[g_idx], Y_ALL[g_idx])
        damp = info["lambda"] if rho_model == "damped" else 0.0
        model = 0.5 * p @ (G + damp * np.eye(p.size)) @ p + ref_g.grad @ p
        assert info["alpha"] == 1.0 and info["accepted"]
        assert info["loss"] == pytest.approx(f0, rel=1e-12)
        assert info["loss_after"] == pytest.approx(f1, rel=1e-12)
        assert info["rho"] == pytest.approx((f1 - f0) / model, rel=1e-8)


class AlwaysWorse(WrappedProblem):
    """A problem whose loss() at any trial point is 1 above f(x): Armijo must fail."""

    def loss(self, x, batch):
        return self.inner.loss(x, batch) + 1.0


def test_hf_line_search_rejects_failed_step(backend_name):
    be = backend_of(backend_name)
    problem = AlwaysWorse(problem_of(backend_name))
    alg = algs.get("hf", line_search=True, damping=1.0)
    g_idx, _ = STREAM[0]
    batch = be.batch(X_ALL[g_idx], Y_ALL[g_idx])
    x = be.asarray(THETA0)
    x1, state, info = alg.step(problem, x, alg.init(x), batch)
    assert info["accepted"] is False and info["alpha"] == 0.0 and info["step_norm"] == 0.0
    assert np.array_equal(host(be, x1), THETA0), "a rejected step must leave theta unchanged"
    assert state.lam == pytest.approx(1.5, rel=1e-15)  # rejected: lambda rises
    # and with the real objective the same step passes
    x2, _, info2 = alg.step(problem_of(backend_name), x, alg.init(x), batch)
    assert info2["accepted"] is True and info2["alpha"] > 0
    assert np_loss(host(be, x2), X_ALL[g_idx], Y_ALL[g_idx]) < info2["loss"]


@pytest.mark.parametrize("name", NAMES)
def test_defaults_have_sources(name):
    table = algs.defaults(name)
    assert table, name
    for option, entry in table.items():
        assert isinstance(entry.source, str) and entry.source.strip(), f"{name}.{option}"
    alg = algs.get(name)  # the defaults construct
    assert alg.name == name


def test_defaults_are_the_papers():
    d = {name: {k: v.value for k, v in algs.defaults(name).items()} for name in NAMES}
    assert d["hf"]["damping"] == 45.0 and d["hf"]["cg_max_iters"] == 250
    assert d["hf"]["cg_eps"] == 5e-4 and d["hf"]["cg_k_min"] == 10
    assert d["hf"]["backtrack_gamma"] == 1.3 and d["hf"]["precond_exponent"] == 0.75
    assert d["hf"]["warm_start_decay"] == 0.95
    assert d["sgn"]["damping"] == 1e-4
    assert d["hf_newton"]["damping"] == 32.0 and d["newton"]["damping"] == 32.0
    assert d["adaptive_hf"]["curvature"] == "hessian"
    assert (d["adam"]["beta1"], d["adam"]["beta2"], d["adam"]["eps"]) == (0.9, 0.999, 1e-8)
