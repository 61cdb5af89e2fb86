"""Every backend against dense float64 references, on every tiny model.

The references (tests/oracles.py) are built from explicit Jacobians, closed-form
loss Hessians, autograd Hessians and per-example gradients from a Python loop.
They are first anchored among themselves (NumPy forward, closed forms against
autograd, G == H for linear models, finite differences), then each backend's loss,
gradient, Gv, Hv, Fisher.v and preconditioner is compared with them.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the dense oracles are written in torch: pip install 'hfbench[torch]'"
)
import oracles  # noqa: E402  (needs torch)
from oracles import relerr  # noqa: E402

KINDS = ("ggn", "hessian", "fisher")
N_VECTORS = 3


@functools.lru_cache(maxsize=None)
def _reference(case, dtype: str, seed: int = 0) -> oracles.Reference:
    """The dense references at exactly the values a `dtype` backend holds."""
    theta = case.theta(seed).astype(dtype).astype(np.float64)
    X, Y = case.data(seed)
    X = X.astype(dtype).astype(np.float64)
    Y = Y if Y.dtype.kind == "i" else Y.astype(dtype).astype(np.float64)
    return oracles.reference(case.spec, theta, X, Y)


def assert_close(actual, expected, bound: float, what: str) -> None:
    err = relerr(actual, expected)
    assert err <= bound, f"{what}: relative error {err:.3e} > {bound:.0e}"


# ----------------------------------------------------------------------------- the oracles


def test_oracle_forward_matches_numpy(case):
    """The torch reference forward and loss agree with a NumPy forward written apart."""
    theta, (X, Y) = case.theta(), case.data()
    z_np = oracles.np_forward(case.spec, theta, X)
    ref = _reference(case, "float64")
    assert_close(ref.z, z_np, 1e-13, "torch vs numpy forward")
    loss_np = oracles.np_evaluate(case.spec, theta, X, Y)["objective"]
    assert_close(ref.loss, loss_np, 1e-13, "torch vs numpy objective")


def test_oracle_closed_forms_match_autograd(case):
    """H_i (K x K) and r_i = dl_i/dz_i in closed form equal autograd's in z."""
    _, X, Y = oracles.tensors(case.theta(), *case.data())
    z = torch.as_tensor(_reference(case, "float64").z)
    H = oracles.loss_hessians(case.spec.loss, z)
    r = oracles.loss_residuals(case.spec.loss, z, Y)
    for i in range(z.shape[0]):

        def li(zi, i=i):
            return oracles.example_losses(case.spec.loss, zi[None], Y[i : i + 1]).sum()

        assert_close(H[i], torch.autograd.functional.hessian(li, z[i]), 1e-13, f"H_{i}")
        assert_close(r[i], torch.func.grad(li)(z[i]), 1e-13, f"r_{i}")


def test_oracle_per_example_grads(case):
    """The looped g_i equal J_i^T r_i, and their mean plus l2 theta is the gradient."""
    ref = _reference(case, "float64")
    _, _, Y = oracles.tensors(case.theta(), *case.data())
    r = oracles.loss_residuals(case.spec.loss, torch.as_tensor(ref.z), Y).numpy()
    assert_close(ref.per_example, np.einsum("bkp,bk->bp", ref.jac, r), 1e-12, "g_i vs J_i^T r_i")
    mean = ref.per_example.mean(0) + case.spec.l2 * case.theta()
    assert_close(mean, ref.grad, 1e-12, "mean g_i + l2 theta vs grad")
    assert_close(np.diag(ref.fisher) - case.spec.l2, ref.diag, 1e-12, "diag(F) vs diag")


def test_oracle_ggn_equals_hessian_for_linear_models(linear_case):
    """A net linear in theta has zero second derivative, so G = H exactly."""
    ref = _reference(linear_case, "float64")
    assert_close(ref.ggn, ref.hessian, 1e-12, "G vs H on a linear model")


def test_oracle_grad_matches_finite_differences(case):
    """Central differences along a random direction anchor the autograd gradient."""
    theta, (X, Y) = case.theta(), case.data()
    d = np.random.default_rng(3).standard_normal(theta.size)
    h = 1e-5

    def f(t):
        return oracles.np_evaluate(case.spec, t, X, Y)["objective"]

    fd = (f(theta + h * d) - f(theta - h * d)) / (2 * h)
    assert_close(_reference(case, "float64").grad @ d, fd, 1e-7, "grad.d vs central difference")


# ----------------------------------------------------------------------------- backends


def test_loss_and_grad(harness, tol):
    ref = _reference(harness.case, harness.dtype)
    p, x, b = harness.problem, harness.x, harness.batch
    value, grad = p.value_and_grad(x, b)
    assert_close(harness.numpy(p.loss(x, b)), ref.loss, tol["value"], "loss()")
    assert_close(harness.numpy(value), ref.loss, tol["value"], "value_and_grad value")
    assert_close(harness.numpy(grad), ref.grad, tol["value"], "value_and_grad grad")


@pytest.mark.parametrize("kind", KINDS)
def test_curvature_matvec(harness, tol, kind):
    """C v for several random v against the dense matrix times v."""
    ref = _reference(harness.case, harness.dtype)
    op = harness.problem.curvature(harness.x, harness.batch, kind=kind)
    assert op.kind == kind and op.size == harness.case.spec.num_params
    M = ref.matrix(kind)
    for j, (v, v64) in enumerate(harness.vectors(N_VECTORS)):
        assert_close(harness.numpy(op.matvec(v)), M @ v64, tol["product"], f"{kind} v[{j}]")


def test_precondition(harness, tol):
    """(1/B) sum_i g_i^2 against per-example gradients from a loop over examples."""
    d = harness.problem.precondition(harness.x, harness.batch)
    ref = _reference(harness.case, harness.dtype)
    assert_close(harness.numpy(d), ref.diag, tol["product"], "precondition")
