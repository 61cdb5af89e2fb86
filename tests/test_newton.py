"""Dense Newton (hfbench.algorithms.newton) and the backends' dense capability.

- the device-built matrix (batched products over chunks of basis vectors) equals the
  float64 oracle Hessian, GGN and Fisher on tiny nets, for any chunk size;
- a Newton step equals the NumPy float64 step solve(H + lambda I, g) of the oracle
  matrix, damped (Cholesky) and plain (LU);
- the solver fallbacks: Cholesky -> LU when A is indefinite, least squares on an
  exactly zero row or an exactly singular A, the torch product loop for an operator
  vmap cannot trace, and the host fallback for a backend without `dense`;
- eigenvalue diagnostics are deferred (a callable in info) and match numpy's eigvalsh;
- the memory check refuses before allocating, and its estimate is what a step
  allocates, within 20 % (peak RSS of a step in a fresh process, on the CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hfbench import HFBenchError, models
from hfbench import algorithms as algs
from hfbench.algorithms import dense as dense_mod
from hfbench.algorithms import newton as newton_mod

from conftest import CASES_BY_ID, make_backend, make_setup
from oracles import reference, relerr

ROOT = Path(__file__).resolve().parents[1]
MATRIX_CASES = ("mlp_sigmoid_softmax", "mlp_relu_squared", "autoencoder_squared_l2",
                "conv_relu_pool")
TANH_L2 = models.mlp([4, 3, 3], "tanh", "softmax_cross_entropy", l2=0.01)  # 27 weights


def host(be, a) -> np.ndarray:
    return np.asarray(be.to_numpy(a), dtype=np.float64)


def oracle_setup(backend_name, spec, seed=0, zero_inputs=0):
    """A float64 problem on `spec` with generic weights and data, and its oracle."""
    be = make_backend(backend_name, "float64")
    rng = np.random.default_rng(seed)
    theta = 0.7 * rng.standard_normal(spec.num_params)
    X = rng.standard_normal((6, spec.input_size))
    X[:, :zero_inputs] = 0.0  # inputs zero on the whole batch: exactly zero rows of H
    Y = rng.integers(0, spec.output_size, 6)
    problem = be.problem(spec)
    ref = reference(spec, theta, X, Y)
    return be, problem, be.asarray(theta), be.batch(X, Y), theta, ref


# ----------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("case_id", MATRIX_CASES)
@pytest.mark.parametrize("kind", ["hessian", "ggn", "fisher"])
def test_dense_matrix_equals_the_oracle(backend_name, case_id, kind):
    s = make_setup(backend_name, "float64", CASES_BY_ID[case_id])
    want = reference(s.case.spec, s.theta, s.X, s.Y).matrix(kind)
    op = s.problem.curvature(s.x, s.batch, kind)
    n = op.size
    for chunk in (1, 7, n):  # a chunk of one, chunks that do not divide n, one chunk
        got = s.numpy(s.backend.dense.matrix(op, chunk))
        assert relerr(got, want) <= 1e-10, (chunk, relerr(got, want))
    A, zero_row = s.backend.dense.prepare(op, 0.5, 7)
    assert relerr(s.numpy(A), 0.5 * (want + want.T) + 0.5 * np.eye(n)) <= 1e-10
    assert not s.backend.to_numpy(zero_row)


def test_torch_product_loop_for_an_operator_vmap_cannot_trace():
    pytest.importorskip("torch")
    be = make_backend("torch", "float64")
    M = np.random.default_rng(0).standard_normal((9, 9))

    class HostOperator:  # its product goes through NumPy: vmap cannot trace that
        kind, size = "dense", 9

        def matvec(self, v):
            return be.asarray(M @ be.to_numpy(v))

    got = be.to_numpy(be.dense.matrix(HostOperator(), 4))
    assert np.allclose(got, M, rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------- the step


def _reference_step(ref, lam, alpha=0.5):
    H = 0.5 * (ref.hessian + ref.hessian.T)
    return -alpha * np.linalg.solve(H + lam * np.eye(len(H)), ref.grad)


@pytest.mark.parametrize("damped, solver", [(True, "cholesky"), (False, "lu")])
def test_newton_step_equals_the_numpy_float64_step(backend_name, damped, solver):
    be, problem, x, batch, theta, ref = oracle_setup(backend_name, TANH_L2)
    eig = np.linalg.eigvalsh(ref.hessian)
    assert eig[0] < 0 < eig[-1] and np.abs(eig).min() > 1e-6  # indefinite, nonsingular
    alg = algs.get("newton", damped=damped, damping=1.0)
    x_new, state, info = alg.step(problem, x, alg.init(x), batch)
    want = _reference_step(ref, 1.0 if damped else 0.0)
    assert info["solver"] == solver and info["n_gv"] == theta.size and state.step == 1
    assert relerr(host(be, x_new) - theta, want) <= 1e-9
    assert info["step_norm"] == pytest.approx(np.linalg.norm(want), rel=1e-9)
    assert "deferred" not in info and "eig_min" not in info  # diagnostics are opt-in


def test_cholesky_falls_back_to_lu_when_the_damping_is_too_small(backend_name):
    be, problem, x, batch, theta, ref = oracle_setup(backend_name, TANH_L2)
    lam = 0.5 * -np.linalg.eigvalsh(ref.hessian)[0]  # H + lam I stays indefinite
    alg = algs.get("newton", damped=True, damping=lam)
    x_new, _, info = alg.step(problem, x, alg.init(x), batch)
    assert info["solver"] == "lu" and info["n_gv"] == 2 * theta.size  # A was built twice
    assert relerr(host(be, x_new) - theta, _reference_step(ref, lam)) <= 1e-9


def test_zero_rows_go_straight_to_least_squares(backend_name):
    spec = models.mlp([5, 4, 3], "tanh", "softmax_cross_entropy")
    be, problem, x, batch, theta, ref = oracle_setup(backend_name, spec, zero_inputs=2)
    zero = ~ref.hessian.any(axis=1)
    assert zero.sum() == 8  # the weights out of the two dead inputs
    alg = algs.get("newton", damped=False)
    x_new, _, info = alg.step(problem, x, alg.init(x), batch)
    assert info["solver"] == "lstsq" and info["n_gv"] == theta.size  # LU was skipped
    want = -0.5 * np.linalg.lstsq(ref.hessian, ref.grad, rcond=None)[0]
    assert relerr(host(be, x_new) - theta, want) <= 1e-8


class MatrixProblem:
    """A problem whose curvature is a given dense matrix and whose gradient is fixed."""

    def __init__(self, backend, M, g):
        self.backend, self._M, self._g = backend, np.asarray(M), np.asarray(g)

    def value_and_grad(self, x, batch):
        return self.backend.asarray(np.float64(0.0)), self.backend.asarray(self._g)

    def curvature(self, x, batch, kind):
        return self.backend.linear_operator(self._M)


class WithoutDense:
    """A backend as a third party might ship it: everything but the `dense` capability."""

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        if name == "dense":
            raise AttributeError(name)
        return getattr(self._backend, name)


def singular_matrix(n=6, seed=0):
    """A symmetric, exactly singular matrix with no zero row, and a right-hand side.

    Rows 0 and 1 are equal: whatever the pivoting, LU's multiplier between them is
    exactly 1 and their difference exactly zero, so LU meets an exactly zero pivot.
    """
    S = np.random.default_rng(seed).standard_normal((n - 1, n - 1))
    E = np.eye(n - 1)[[0, *range(n - 1)]]  # e_0, e_0, e_1, ..., e_{n-2}
    return E @ (S + S.T) @ E.T, np.arange(1.0, n + 1)


@pytest.mark.parametrize("wrap", [lambda be: be, WithoutDense], ids=["dense", "host-fallback"])
def test_an_exactly_singular_matrix_ends_in_least_squares(backend_name, wrap):
    be = wrap(make_backend(backend_name, "float64"))
    M, g = singular_matrix()
    x = be.asarray(np.zeros(len(g)))
    alg = algs.get("newton", damped=False, step_size=1.0)
    x_new, _, info = alg.step(MatrixProblem(be, M, g), x, alg.init(x), None)
    assert info["solver"] == "lstsq" and info["n_gv"] == 2 * len(g)  # LU failed: rebuilt
    want = -np.linalg.lstsq(M, g, rcond=None)[0]
    assert relerr(host(be, x_new), want) <= 1e-10


@pytest.mark.parametrize("wrap", [lambda be: be, WithoutDense], ids=["dense", "host-fallback"])
def test_each_solver_on_a_well_posed_system(backend_name, wrap):
    be = wrap(make_backend(backend_name, "float64"))
    rng = np.random.default_rng(1)
    M = rng.standard_normal((8, 8))
    M = M @ M.T + np.eye(8)
    b = rng.standard_normal(8)
    dense = dense_mod.capability(be, be.asarray(b))
    assert isinstance(dense, dense_mod.HostDense) == isinstance(be, WithoutDense)
    op = be.linear_operator(M)
    assert relerr(host(be, dense.matrix(op, 3)), M) <= 1e-14
    for solver in dense_mod.SOLVERS:
        A, _ = dense.prepare(op, 2.0, 3)
        p, ok = dense.solve(A, be.asarray(b), solver)
        assert be.ops.to_float(ok)
        assert relerr(host(be, p), np.linalg.solve(M + 2 * np.eye(8), b)) <= 1e-12, solver
    A, _ = dense.prepare(op, -50.0, 3)  # indefinite: Cholesky says so
    assert not be.ops.to_float(dense.solve(A, be.asarray(b), "cholesky")[1])


def test_host_fallback_takes_the_same_step_as_the_device(backend_name):
    be = make_backend(backend_name, "float64")
    M, g = singular_matrix(seed=3)
    M = M - 2.0 * np.eye(len(g))  # indefinite, nonsingular
    steps = []
    for backend in (be, WithoutDense(be)):
        x = backend.asarray(np.zeros(len(g)))
        alg = algs.get("newton", damped=True, damping=0.5)
        x_new, _, info = alg.step(MatrixProblem(backend, M, g), x, alg.init(x), None)
        steps.append((host(be, x_new), info["solver"]))
    assert steps[0][1] == steps[1][1] == "lu"
    assert relerr(steps[1][0], steps[0][0]) <= 1e-12


# ----------------------------------------------------------------------------- diagnostics


def test_eig_diagnostics_are_deferred_and_correct(backend_name):
    be, problem, x, batch, theta, ref = oracle_setup(backend_name, TANH_L2)
    alg = algs.get("newton", damped=True, damping=1.0, eig_diagnostics=True)
    x_new, _, info = alg.step(problem, x, alg.init(x), batch)
    assert "eig_min" not in info and callable(info["deferred"])
    out = info["deferred"]()  # what the runner does once the training clock is stopped
    want = np.linalg.eigvalsh(0.5 * (ref.hessian + ref.hessian.T) + np.eye(theta.size))
    assert set(out) == {"eig_min", "eig_max"}
    assert out["eig_min"] == pytest.approx(want[0], rel=1e-10, abs=1e-12)
    assert out["eig_max"] == pytest.approx(want[-1], rel=1e-10)
    assert isinstance(out["eig_min"], float)
    assert out == info["deferred"]()  # rebuilds the same matrix: callable more than once


# ----------------------------------------------------------------------------- memory


def test_peak_bytes_counts_the_matrix_the_chunk_and_the_solver():
    n, sq = 5000, 5000 * 5000 * 8  # big enough that the chunk is its 1/8 share
    chunk = dense_mod.chunk_bytes(n, "float32")
    assert 0 < chunk <= sq / 8
    table = {"cholesky": 1.0, "lu": 1.0, "lstsq": 3.0, "eigvalsh": 2.5}
    assert newton_mod.peak_bytes(n, "float32", damped=True, matrices=table) == sq + chunk
    assert newton_mod.peak_bytes(n, "float32", damped=False, matrices=table) == 3 * sq
    assert newton_mod.peak_bytes(n, "float32", damped=True, eig_diagnostics=True,
                                 matrices=table) == 2.5 * sq
    for name in ("torch", "jax"):  # the default plans for every built-in backend
        try:
            be = make_backend(name)
        except Exception:  # not installed here
            continue
        for s, count in be.dense.matrices.items():
            assert count <= newton_mod.BUILTIN_MATRICES[s], (name, s)


def test_chunks_share_of_the_peak_and_small_nets_in_one_chunk():
    """Big nets: a chunk's temporaries at most 1/8 of the matrix (the matrix dominates
    the peak); small nets: one chunk, not a product dispatch per few rows."""
    for n in (7_960, 50_000):
        assert dense_mod.chunk_bytes(n, "float32") <= n * n * 8 / 8
    assert dense_mod.chunk_bytes(10**6, "float32") <= dense_mod.CHUNK_CAP
    assert dense_mod.chunk_rows(610, "float32") == 610  # digits 64-8-10
    assert dense_mod.chunk_rows(610, "float64") == 610


def test_wang2024_newton_entries_fit_the_default_limit():
    n = models.mlp([784, 10, 10]).num_params  # suites/wang2024.yaml
    limit = algs.defaults("newton")["memory_limit_gb"].value
    for damped in (True, False):
        assert newton_mod.peak_bytes(n, "float32", damped=damped) / 2**30 < limit
        algs.get("newton", damped=damped).init(np.zeros(n, dtype=np.float32))  # no refusal


def test_newton_refuses_before_allocating(backend_name):
    be = make_backend(backend_name, "float32")

    class Shape:  # init may read the length and dtype, nothing else
        shape, dtype = (50_000,), "float32"

    with pytest.raises(HFBenchError) as err:
        algs.get("newton").init(Shape())  # an 18.6 GiB matrix: refused, not allocated
    need = newton_mod.peak_bytes(50_000, "float32", damped=True) / 2**30
    msg = str(err.value)
    assert f"{need:.2f} GiB" in msg and "memory_limit_gb=2.0" in msg and "hf_newton" in msg
    x = be.asarray(np.zeros(100))
    with pytest.raises(HFBenchError, match="hf_newton"):
        algs.get("newton", memory_limit_gb=1e-6).init(x)


def test_an_unplanned_least_squares_solve_is_checked_before_allocating(backend_name, monkeypatch):
    """Damped Newton plans for Cholesky and LU; least squares needs more, so the step
    checks it against the limit before running it."""
    # at n = 100 the one-chunk floor alone outweighs least squares; without it the
    # plan is the matrix plus a 1/8 chunk, as on the nets where the check matters
    monkeypatch.setattr(dense_mod, "CHUNK_FLOOR", 0)
    be = make_backend(backend_name, "float64")
    n, lam = 100, 1.0
    M = np.diag(np.r_[-lam, np.full(n - 1, 2.0)])  # M + lam I has a zero row
    g = np.r_[0.0, np.ones(n - 1)]
    planned = newton_mod.peak_bytes(n, "float64", damped=True, matrices=be.dense.matrices)
    lstsq = be.dense.matrices["lstsq"] * n * n * 8
    assert planned < lstsq
    x = be.asarray(np.zeros(n))
    problem = MatrixProblem(be, M, g)
    tight = algs.get("newton", damping=lam, memory_limit_gb=(planned + lstsq) / 2 / 2**30)
    with pytest.raises(HFBenchError, match="hf_newton"):
        tight.step(problem, x, tight.init(x), None)
    roomy = algs.get("newton", damping=lam, step_size=1.0)
    x_new, _, info = roomy.step(problem, x, roomy.init(x), None)
    assert info["solver"] == "lstsq"
    assert relerr(host(be, x_new), -np.r_[0.0, np.full(n - 1, 1 / 3)]) <= 1e-12


MEASURE = r"""
import json, sys
import numpy as np
import hfbench
from hfbench import algorithms, models
from hfbench.algorithms import newton

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))

name, damped = sys.argv[1], sys.argv[2] == "1"
opts = {"compile": False} if name == "torch" else {}
if name == "torch":
    import torch
    torch.set_num_threads(1)
be = hfbench.get_backend(name, device="cpu", dtype="float32", **opts)
spec = models.mlp([64, 40, 10], "relu", "softmax_cross_entropy")  # n = 3,010
rng = np.random.default_rng(0)
X = rng.standard_normal((32, 64))
X[:, :4] = 0.0  # inputs dead on the batch: plain Newton's H has zero rows (lstsq)
Y = rng.integers(0, 10, 32)
problem, batch = be.problem(spec), be.batch(X, Y)
x = be.asarray(models.init_params(spec, seed=0))
alg = algorithms.get("newton", damped=damped)
state = alg.init(x)
be.sync(alg.step(problem, x, state, batch)[0])  # compiles and warms every cache
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
base = status("VmRSS")
out = alg.step(problem, x, state, batch)
be.sync(out[0])
n = spec.num_params
print(json.dumps({"measured": status("VmHWM") - base, "solver": out[2]["solver"],
                  "estimate": newton.peak_bytes(n, "float32", damped=damped,
                                                matrices=be.dense.matrices),
                  "matrix": n * n * 8}))
"""


def _can_reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or not _can_reset_peak_rss(),
                    reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")
@pytest.mark.parametrize("damped, solver", [(True, "cholesky"), (False, "lstsq")])
def test_memory_estimate_is_what_a_step_allocates(backend_name, damped, solver):
    """Peak RSS growth during one step (after a warm-up step) against peak_bytes.

    A fresh process, so nothing else allocates; glibc told to map every block over 64
    KiB on its own (MALLOC_MMAP_THRESHOLD_), so a freed matrix goes back to the OS and
    the next step's matrix shows up in RSS instead of reusing a cached heap.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "backends"),
                                           os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", MEASURE, backend_name, str(int(damped))],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["solver"] == solver
    ratio = got["measured"] / got["estimate"]
    assert got["measured"] > got["matrix"]  # the step really holds the matrix
    assert 0.8 <= ratio <= 1.2, got
