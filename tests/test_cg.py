"""Preconditioned CG (hfbench.algorithms.cg / solve / lanczos) on dense test matrices.

Every backend runs the same solves in float64 on `backend.linear_operator(A)`; the
oracles are written here: numpy.linalg.solve / eigvalsh, a textbook NumPy PCG
(Nocedal and Wright Alg. 5.3) for iterates and phi, a NumPy Lanczos with full
reorthogonalization for Ritz values, the paper's stop rule and the ceil(1.3^j) grid
in exact integer arithmetic.

JAX compiles one while_loop per (CGConfig, n, preconditioned or not), about a second
each on a small CPU, so the tests share a few configs and sizes. The torch backend
runs every test twice: eager, and with its CG update fused by torch.compile
("torch-compiled", one compile per config and preconditioning, seconds each).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfbench.algorithms import CGConfig, CGState, CGStatus, cg_solve
from hfbench.algorithms.cg import _rule_met, make_operands

from conftest import backend_params, missing_backends
from conftest import make_backend as backend_of

# The configs the tests share (each is one JAX compile per size and preconditioning).
RES = CGConfig(stop="residual", tol=1e-12, max_iters=200)
MARTENS = CGConfig(stop="martens", max_iters=200)
SIZES = (8, 20)


def _with_compiled_torch() -> list:
    params = backend_params()
    torch_param = next(p for p in params if p.values == ("torch",))
    return params + [pytest.param("torch-compiled", id="torch-compiled", marks=torch_param.marks)]


@pytest.fixture(params=_with_compiled_torch())
def be(request):
    backend = backend_of(request.param)
    yield backend
    if request.param == "torch-compiled":  # a silent fallback to eager would test nothing new
        assert not backend.compiler.failures, backend.compiler.failures


# ----------------------------------------------------------------------------- oracles


def spd(rng, n: int, cond: float, spread: str = "geom") -> np.ndarray:
    """A random SPD matrix with eigenvalues from 1 to cond (geometric or linear)."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = np.geomspace(1.0, cond, n) if spread == "geom" else np.linspace(1.0, cond, n)
    a = (q * eig) @ q.T
    return 0.5 * (a + a.T)


def relerr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def np_pcg(A, b, iters: int, m_inv=None, x0=None):
    """Textbook PCG; stops early on p.Ap <= 0. -> (iterates x_0.., phi_0.., steps)."""
    m_inv = np.ones_like(b) if m_inv is None else m_inv
    x = np.zeros_like(b) if x0 is None else x0.copy()
    r = b - A @ x
    z = m_inv * r
    p, rz = z.copy(), r @ z
    xs, phis = [x.copy()], [0.5 * x @ A @ x - b @ x]
    for _ in range(iters):
        Ap = A @ p
        pAp = p @ Ap
        if not pAp > 0:
            break
        alpha = rz / pAp
        x, r = x + alpha * p, r - alpha * Ap
        z = m_inv * r
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
        xs.append(x.copy())
        phis.append(0.5 * x @ A @ x - b @ x)
    return xs, np.array(phis), len(xs) - 1


def np_lanczos_ritz(C, v, m: int) -> tuple[float, float]:
    """Extreme eigenvalues of the m x m Lanczos matrix of symmetric C from v (full reorth)."""
    Q = np.zeros((len(v), m))
    alpha, beta = np.zeros(m), np.zeros(m)
    q = v / np.linalg.norm(v)
    for j in range(m):
        Q[:, j] = q
        w = C @ q
        alpha[j] = q @ w
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)  # full reorthogonalization, twice
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        beta[j] = np.linalg.norm(w)
        q = w / beta[j]
    T = np.diag(alpha) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
    ev = np.linalg.eigvalsh(T)
    return float(ev[0]), float(ev[-1])


def martens_rule(phi, i: int, eps: float = 5e-4) -> bool:
    """Martens 2010 §4.4: i > k, phi_i < 0, (phi_i - phi_{i-k}) / phi_i < k eps."""
    k = max(10, math.ceil(0.1 * i))
    return i > k and phi[i] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * eps


def grid(num: int, den: int, limit: int) -> list[int]:
    """{ceil((num/den)^j) <= limit} U {limit}, in exact integer arithmetic."""
    pts, j = set(), 0
    while -(-(num**j) // den**j) <= limit:
        pts.add(-(-(num**j) // den**j))
        j += 1
    return sorted(pts | {limit})


def solve(be, config, A, b, damping=0.0, m_inv=None, x0=None):
    arr = lambda v: None if v is None else be.asarray(v)
    return cg_solve(be, config, be.linear_operator(A), be.asarray(b), damping, arr(m_inv), arr(x0))


def host(be, a) -> np.ndarray:
    return np.asarray(be.to_numpy(a), dtype=np.float64)


def saved_dict(be, sol) -> dict[int, np.ndarray]:
    return {it: host(be, x) for it, x in sol.saved}


# ----------------------------------------------------------------------------- dense solves


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("precond", [False, True], ids=["plain", "jacobi"])
def test_cg_matches_dense_solve(be, n, precond):
    rng = np.random.default_rng(n)
    for cond, damping in ((10.0, 0.0), (1e3, 0.0), (1e3, 0.37)):
        A, b = spd(rng, n, cond), rng.standard_normal(n)
        Ad = A + damping * np.eye(n)
        m_inv = 1.0 / np.diag(Ad) if precond else None
        sol = solve(be, RES, A, b, damping, m_inv)
        want = np.linalg.solve(Ad, b)
        err = relerr(host(be, sol.x), want)
        assert sol.status == CGStatus.CONVERGED, sol.status.remedy
        assert err <= 1e-9, f"cond {cond:g}, damping {damping}: rel err {err:.2e}"
        assert sol.num_gv == sol.num_steps  # a zero start costs no product
        assert len(sol.phi) == sol.num_steps + 1 and sol.phi[0] == 0.0
        assert sol.phi[-1] == pytest.approx(-0.5 * b @ want, rel=1e-12)


@pytest.mark.parametrize("precond", [False, True], ids=["plain", "jacobi"])
def test_cg_exact_in_n_steps(be, precond):
    """Well conditioned, so finite precision keeps CG's n-step termination."""
    n = 20
    rng = np.random.default_rng(1)
    A, b = spd(rng, n, 10.0, "lin"), rng.standard_normal(n)
    m_inv = rng.uniform(0.5, 2.0, n) if precond else None
    sol = solve(be, CGConfig(stop="fixed", iters=n), A, b, 0.0, m_inv)
    assert sol.num_steps == n and sol.num_gv == n
    err = relerr(host(be, sol.x), np.linalg.solve(A, b))
    assert err <= 1e-8, f"after n = {n} steps: rel err {err:.2e}"


def test_cg_iterates_match_textbook_pcg(be):
    n = 20
    rng = np.random.default_rng(2)
    A, b, m_inv = spd(rng, n, 100.0), rng.standard_normal(n), rng.uniform(0.2, 3.0, n)
    sol = solve(be, RES, A, b, 0.0, m_inv)
    xs, phis, _ = np_pcg(A, b, sol.num_steps, m_inv)
    # Early iterates agree to rounding; late ones carry CG's rounding drift.
    np.testing.assert_allclose(sol.phi[:10], phis[:10], rtol=1e-12, atol=1e-14)
    for it, x in saved_dict(be, sol).items():
        if it <= 10:
            assert relerr(x, xs[it]) <= 1e-11, f"iterate {it}"


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_phi_is_the_model_at_each_iterate(be, warm):
    """phi[j] = 1/2 x_j.A x_j - b.x_j at every saved iterate, through a long solve
    (phi costs no product, so it is carried along; it must not drift away)."""
    n = 20
    rng = np.random.default_rng(16)
    A, b = spd(rng, n, 1e4), rng.standard_normal(n)
    x0 = rng.standard_normal(n) if warm else None
    sol = solve(be, RES, A, b, 0.0, x0=x0)
    assert sol.num_steps > 2 * n  # long enough for drift to show
    for it, x in list(saved_dict(be, sol).items()) + [(sol.num_steps, host(be, sol.x))]:
        true = 0.5 * x @ A @ x - b @ x
        assert sol.phi[it] == pytest.approx(true, rel=1e-10), f"iterate {it}"


def test_pcg_with_identity_equals_plain_cg(be):
    n = 20
    rng = np.random.default_rng(3)
    # Moderate conditioning: XLA may fuse "ones * r" differently (rounding), and an
    # ill-conditioned solve would amplify that late in the run.
    A, b = spd(rng, n, 30.0), rng.standard_normal(n)
    plain = solve(be, MARTENS, A, b, 0.1)
    pcg = solve(be, MARTENS, A, b, 0.1, m_inv=np.ones(n))
    assert plain.num_steps == pcg.num_steps > 10 and plain.status == pcg.status
    np.testing.assert_allclose(pcg.phi, plain.phi, rtol=1e-13, atol=0)
    assert relerr(host(be, pcg.x), host(be, plain.x)) <= 1e-12
    sp, sq = saved_dict(be, plain), saved_dict(be, pcg)
    assert sp.keys() == sq.keys()
    for it in sp:
        assert relerr(sq[it], sp[it]) <= 1e-12, f"iterate {it}"


# ----------------------------------------------------------------------------- Martens' rule


def constructed_phi(limit: int) -> np.ndarray:
    """A phi history with every case: positive phi, fast progress, stalls, i > 100."""
    rng = np.random.default_rng(0)
    incr = rng.uniform(0.5, 1.5, limit) * np.where(np.arange(limit) % 60 < 30, 1.0, 1e-4)
    phi = np.concatenate([[0.0], -np.cumsum(incr)])
    phi[1:4] = [0.3, 0.1, 0.05]  # phi > 0 at first (a warm start can do that)
    phi[140:200] = phi[139] - 1e-6 * np.arange(1, 61)  # a stall where k = 14..20
    return phi


def test_martens_rule_on_constructed_history(be):
    """cg._rule_met against the paper's rule, on every i of a constructed history."""
    ops, limit = be.ops, 260
    config = CGConfig(stop="martens", max_iters=limit)
    b = be.asarray(np.ones(3))
    operands = make_operands(ops, config, be.linear_operator(np.eye(3)), b, 0.0)
    phi = constructed_phi(limit)
    state = CGState(*[None] * len(CGState._fields))._replace(phi=ops.asarray(phi, "float64"))
    got = [
        bool(be.to_numpy(_rule_met(ops, config, operands, state, ops.asarray(i, "int"),
                                   ops.asarray(phi[i], "float64"), b)))
        for i in range(1, limit + 1)
    ]
    want = [martens_rule(phi, i) for i in range(1, limit + 1)]
    wrong = [i + 1 for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not wrong, f"rule differs from the paper at i = {wrong[:10]}"
    # the history exercises both outcomes, before and after k leaves 10 (i > 100)
    assert any(want[:100]) and not all(want[:100]) and any(want[100:]) and not all(want[100:])


@pytest.mark.parametrize("eps", [5e-4, 5e-3])
def test_martens_stop_fires_at_first_i(be, eps):
    """A solve stops at the first i where the rule holds on its own phi history."""
    n = 20
    rng = np.random.default_rng(4)
    A, b = spd(rng, n, 1e4), rng.standard_normal(n)
    config = MARTENS if eps == 5e-4 else CGConfig(stop="martens", max_iters=200, eps=eps)
    sol = solve(be, config, A, b)
    first = next((i for i in range(1, len(sol.phi)) if martens_rule(sol.phi, i, eps)), None)
    assert sol.status == CGStatus.CONVERGED and first is not None
    assert sol.num_steps == first, f"stopped at {sol.num_steps}, the rule first holds at {first}"


# ----------------------------------------------------------------------------- saved iterates


@pytest.mark.parametrize(
    "gamma, limit, num, den",
    [(1.3, 250, 13, 10), (1.3, 10, 13, 10), (1.3, 40, 13, 10), (2.0, 20, 2, 1), (1.5, 7, 3, 2)],
)
def test_save_points_grid(gamma, limit, num, den):
    config = CGConfig(max_iters=limit, gamma=gamma)
    assert list(config.save_points) == grid(num, den, limit)


def test_save_points_of_martens_default():
    pts = CGConfig().save_points  # Martens' 250-iteration cap
    assert pts[:12] == (1, 2, 3, 4, 5, 7, 9, 11, 14, 18, 24, 31) and pts[-1] == 250
    assert CGConfig(stop="fixed", iters=10, max_iters=250).save_points == (1, 2, 3, 4, 5, 7, 9, 10)


CAPPED_AT = (1, 4, 11, 24, 40)


def test_saved_iterates_are_the_iterates(be):
    """sol.saved holds iterate j at each ceil(1.3^j): equal to capped solves and NumPy PCG."""
    n, limit = 30, 40
    rng = np.random.default_rng(5)
    A, b = spd(rng, n, 1e3), rng.standard_normal(n)
    sol = solve(be, CGConfig(stop="residual", tol=1e-14, max_iters=limit), A, b)
    assert sol.status == CGStatus.MAX_STEPS and sol.num_steps == limit
    saved = saved_dict(be, sol)
    assert sorted(saved) == grid(13, 10, limit)
    assert relerr(saved[limit], host(be, sol.x)) == 0.0
    # NumPy PCG agrees to rounding until CG's finite-precision drift sets in (on this
    # geometric spectrum, past ~14 iterations; measured 1e-11 at 14, 1e-5 at 18).
    xs, _, _ = np_pcg(A, b, limit)
    for it, x in saved.items():
        if it <= 14:
            assert relerr(x, xs[it]) <= 1e-9, f"iterate {it} vs NumPy PCG"
    # The same backend capped at iteration j computes the same iterate j.
    for cap in CAPPED_AT:
        capped = solve(be, CGConfig(stop="residual", tol=1e-14, max_iters=cap), A, b)
        assert capped.num_steps == cap
        assert relerr(saved[cap], host(be, capped.x)) <= 1e-12, f"iterate {cap} vs capped solve"


def test_saved_stop_at_the_last_iteration_done(be):
    """A solve that stops early saves only the grid points it reached."""
    n = 20
    rng = np.random.default_rng(6)
    A, b = spd(rng, n, 10.0), rng.standard_normal(n)
    sol = solve(be, RES, A, b)
    assert sol.num_steps < RES.max_iters
    assert [it for it, _ in sol.saved] == [p for p in grid(13, 10, 200) if p <= sol.num_steps]


def test_save_iterates_off(be):
    n = 8
    rng = np.random.default_rng(7)
    A, b = spd(rng, n, 10.0), rng.standard_normal(n)
    sol = solve(be, CGConfig(stop="fixed", iters=5, save_iterates=False), A, b)
    assert sol.saved == [] and sol.num_steps == 5


# ----------------------------------------------------------------------------- warm start


def test_warm_start_at_the_solution(be):
    n = 20
    rng = np.random.default_rng(8)
    A, b = spd(rng, n, 100.0), rng.standard_normal(n)
    xstar = np.linalg.solve(A, b)
    sol = solve(be, RES, A, b, x0=xstar)
    assert sol.status == CGStatus.CONVERGED and sol.num_steps <= 1
    assert sol.num_gv == sol.num_steps + 1  # the warm start's residual costs one product
    assert sol.phi[0] == pytest.approx(-0.5 * b @ xstar, rel=1e-12)  # phi* = -1/2 b.x*
    assert relerr(host(be, sol.x), xstar) <= 1e-12


def test_warm_start_from_elsewhere_reaches_the_solution(be):
    n = 20
    rng = np.random.default_rng(9)
    A, b, x0 = spd(rng, n, 1e3), rng.standard_normal(n), rng.standard_normal(n)
    for damping in (0.0, 0.5):
        Ad = A + damping * np.eye(n)
        sol = solve(be, RES, A, b, damping, x0=x0)
        assert sol.status == CGStatus.CONVERGED
        assert relerr(host(be, sol.x), np.linalg.solve(Ad, b)) <= 1e-9
        assert sol.num_gv == sol.num_steps + 1
        assert sol.phi[0] == pytest.approx(0.5 * x0 @ Ad @ x0 - b @ x0, rel=1e-12)
        _, phis, _ = np_pcg(Ad, b, 5, x0=x0)
        np.testing.assert_allclose(sol.phi[:6], phis, rtol=1e-12)


def test_zero_residual_is_converged_not_negative_curvature(be):
    """r = 0 exactly (an exact warm start, or a zero gradient) is a solved system.

    p = r = 0 makes p.Ap = 0; that is not negative curvature, and the remedy the
    NEGATIVE_CURVATURE status prints ("use kind='ggn' or a larger damping") misleads.
    """
    A = np.diag([1.0, 2.0, 4.0, 8.0])
    x0 = np.array([1.0, -1.0, 2.0, 0.5])  # A x0 is exact in binary floating point
    b = A @ x0
    at_solution = solve(be, CGConfig(stop="residual", tol=1e-12), A, b, x0=x0)
    zero_rhs = solve(be, CGConfig(stop="residual", tol=1e-12), A, np.zeros(4))
    for what, sol, x in (("exact warm start", at_solution, x0), ("b = 0", zero_rhs, 0 * x0)):
        assert sol.num_steps == 0 and np.array_equal(host(be, sol.x), x), what
        assert sol.status == CGStatus.CONVERGED, f"{what}: status {sol.status.name}"


# ----------------------------------------------------------------------------- negative curvature


def indefinite(rng, n: int):
    """Eigenvalues 1..10 and one -50, with b nearly orthogonal to the negative direction,
    so CG takes a few positive-curvature steps before p.Ap turns negative."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = np.linspace(1.0, 10.0, n)
    eig[0] = -50.0
    return (q * eig) @ q.T, q @ np.r_[1e-3, rng.standard_normal(n - 1)], q[:, 0]


@pytest.mark.parametrize("config", [MARTENS, RES], ids=["martens", "residual"])
def test_negative_curvature_returns_last_good_iterate(be, config):
    n = 20
    A, b, _ = indefinite(np.random.default_rng(10), n)
    sol = solve(be, config, A, b, 0.0)
    xs, phis, steps = np_pcg(A, b, 200)
    assert steps < n, "the construction should meet p.Ap <= 0 early"
    assert sol.status == CGStatus.NEGATIVE_CURVATURE, sol.status.name
    assert sol.num_steps == steps >= 2
    assert sol.num_gv == steps + 1  # the product that found p.Ap <= 0 is counted
    x = host(be, sol.x)
    assert np.all(np.isfinite(x)) and relerr(x, xs[steps]) <= 1e-12
    assert np.all(np.diff(sol.phi) < 0), f"phi not decreasing: {sol.phi}"
    np.testing.assert_allclose(sol.phi, phis, rtol=1e-12)


def test_negative_curvature_at_the_first_step(be):
    n = 20
    A, _, v = indefinite(np.random.default_rng(10), n)
    sol = solve(be, MARTENS, A, v, 0.0)  # b along the negative eigenvector: b.Ab < 0
    assert sol.status == CGStatus.NEGATIVE_CURVATURE and sol.num_steps == 0
    assert np.array_equal(host(be, sol.x), np.zeros(n)) and list(sol.phi) == [0.0]


def test_damping_removes_negative_curvature(be):
    n = 20
    A, b, _ = indefinite(np.random.default_rng(10), n)
    sol = solve(be, RES, A, b, 60.0)  # A + 60 I is SPD (eigenvalues 10..70)
    assert sol.status == CGStatus.CONVERGED
    assert relerr(host(be, sol.x), np.linalg.solve(A + 60.0 * np.eye(n), b)) <= 1e-9


def test_nonfinite_curvature_is_reported(be):
    n = 8
    A = np.eye(n)
    A[2, 2] = np.nan
    sol = solve(be, MARTENS, A, np.ones(n))
    assert sol.status == CGStatus.NONFINITE and sol.num_steps == 0
    assert np.all(np.isfinite(host(be, sol.x)))


# ----------------------------------------------------------------------------- Lanczos


def test_ritz_values_after_n_steps_are_the_eigenvalues(be):
    n = 20
    rng = np.random.default_rng(11)
    A, b = spd(rng, n, 10.0, "lin"), rng.standard_normal(n)
    config = CGConfig(stop="fixed", iters=n)
    for damping in (0.0, 0.5):
        sol = solve(be, config, A, b, damping)
        ev = np.linalg.eigvalsh(A + damping * np.eye(n))
        assert sol.ritz.min == pytest.approx(ev[0], rel=1e-8)
        assert sol.ritz.max == pytest.approx(ev[-1], rel=1e-8)
        assert sol.ritz.cond == pytest.approx(ev[-1] / ev[0], rel=1e-8)


def test_preconditioned_ritz_values_are_those_of_minv_a(be):
    """M^-1 A with A = D^1/2 B D^1/2, M = D: a badly scaled A, a well conditioned M^-1 A."""
    n = 20
    rng = np.random.default_rng(12)
    B, b = spd(rng, n, 10.0, "lin"), rng.standard_normal(n)
    d = np.geomspace(0.1, 10.0, n)
    A = np.sqrt(d)[:, None] * B * np.sqrt(d)[None, :]
    sol = solve(be, CGConfig(stop="fixed", iters=n), A, b, 0.0, m_inv=1.0 / d)
    ev = np.sort(np.linalg.eigvals(np.diag(1.0 / d) @ A).real)
    assert sol.ritz.min == pytest.approx(ev[0], rel=1e-8)
    assert sol.ritz.max == pytest.approx(ev[-1], rel=1e-8)


@pytest.mark.parametrize("precond", [False, True], ids=["plain", "diag"])
def test_ritz_values_after_m_steps_match_lanczos(be, precond):
    """After m < n steps: the extreme eigenvalues of the Lanczos T_m of M^-1/2 A M^-1/2."""
    n, m, damping = 20, 6, 0.25
    rng = np.random.default_rng(13)
    A, b = spd(rng, n, 100.0), rng.standard_normal(n)
    d = rng.uniform(0.3, 3.0, n) if precond else np.ones(n)
    sol = solve(be, CGConfig(stop="fixed", iters=m), A, b, damping, 1.0 / d if precond else None)
    s = 1.0 / np.sqrt(d)
    lo, hi = np_lanczos_ritz(s[:, None] * (A + damping * np.eye(n)) * s[None, :], s * b, m)
    assert sol.ritz.min == pytest.approx(lo, rel=1e-10)
    assert sol.ritz.max == pytest.approx(hi, rel=1e-10)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from(SIZES),
       log_cond=st.floats(0.0, 3.0), damping=st.sampled_from([0.0, 1e-3, 1.0]),
       precond=st.booleans())
def test_cg_solves_random_spd_systems(be, seed, n, log_cond, damping, precond):
    rng = np.random.default_rng(seed)
    A, b = spd(rng, n, 10.0**log_cond), rng.standard_normal(n)
    Ad = A + damping * np.eye(n)
    m_inv = rng.uniform(0.2, 5.0, n) if precond else None
    sol = solve(be, RES, A, b, damping, m_inv)
    assert sol.status == CGStatus.CONVERGED
    assert relerr(host(be, sol.x), np.linalg.solve(Ad, b)) <= 1e-9
    assert np.all(np.diff(sol.phi) <= 1e-12 * abs(sol.phi[-1]))  # phi never rises


# ----------------------------------------------------------------------------- torch vs jax


@pytest.fixture(scope="module")
def both():
    why = missing_backends("torch", "jax")
    if why:
        pytest.skip(f"torch vs jax needs both backends: {why}")
    return backend_of("torch"), backend_of("jax")


@pytest.mark.parametrize("precond", [False, True], ids=["plain", "diag"])
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_same_cg_on_torch_and_jax(both, precond, warm):
    """Every phi, saved iterate and the final iterate agree to rounding (1e-12)."""
    # Rounding differences (a matvec summed in another order) grow about 10x per
    # iteration once CG's extreme Ritz values converge, so the run is short and the
    # system moderate (measured: <= 3e-15 here; 1e-11 after 12 steps at cond 100).
    n, iters = 20, 10
    rng = np.random.default_rng(14)
    A, b = spd(rng, n, 30.0), rng.standard_normal(n)
    m_inv = rng.uniform(0.3, 3.0, n) if precond else None
    x0 = 0.1 * rng.standard_normal(n) if warm else None
    t, j = (solve(be, CGConfig(stop="fixed", iters=iters), A, b, 0.3, m_inv, x0) for be in both)
    assert t.num_steps == j.num_steps == iters and t.num_gv == j.num_gv
    scale = np.abs(j.phi).max()
    np.testing.assert_allclose(t.phi, j.phi, rtol=1e-12, atol=1e-12 * scale)
    st_, sj = saved_dict(both[0], t), saved_dict(both[1], j)
    assert st_.keys() == sj.keys()
    for it in sj:
        assert relerr(st_[it], sj[it]) <= 1e-12, f"iterate {it}"
    assert relerr(host(both[0], t.x), host(both[1], j.x)) <= 1e-12
    assert t.ritz.min == pytest.approx(j.ritz.min, rel=1e-10)
    assert t.ritz.max == pytest.approx(j.ritz.max, rel=1e-10)


@pytest.mark.parametrize("config", [MARTENS, RES], ids=["martens", "residual"])
def test_same_stop_on_torch_and_jax(both, config):
    n = 20
    rng = np.random.default_rng(15)
    A, b = spd(rng, n, 30.0), rng.standard_normal(n)
    t, j = (solve(be, config, A, b, 0.1) for be in both)
    assert (t.num_steps, t.status, t.num_gv) == (j.num_steps, j.status, j.num_gv)
    np.testing.assert_allclose(t.phi, j.phi, rtol=1e-12, atol=1e-12 * np.abs(j.phi).max())
