"""Properties every backend's products keep, whatever the model.

- G and F are symmetric PSD, H symmetric (matrices built column by column from matvec);
- matvec is linear;
- matvec reuses curvature()'s forward pass (problem.n_forward does not move);
- evaluate() reports the right keys, with values equal to a NumPy forward's;
- a float32 backend returns float32 arrays, a float64 one float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from hfbench import models

import oracles
from oracles import relerr

KINDS = ("ggn", "hessian", "fisher")
PSD_KINDS = ("ggn", "fisher")


def dense(setup, kind: str) -> np.ndarray:
    """C as a dense float64 matrix, column j = C e_j."""
    op = setup.problem.curvature(setup.x, setup.batch, kind=kind)
    eye = np.eye(op.size, dtype=setup.backend.dtype)
    return np.stack([setup.numpy(op.matvec(setup.backend.asarray(e))) for e in eye], axis=1)


def assert_symmetric(M: np.ndarray, what: str) -> None:
    asym = np.abs(M - M.T).max() / np.abs(M).max()
    assert asym <= 1e-12, f"{what}: max |M - M^T| / max |M| = {asym:.3e}"


@pytest.mark.parametrize("kind", PSD_KINDS)
def test_symmetric_psd(small64, kind):
    M = dense(small64, kind)
    assert_symmetric(M, kind)
    eig = np.linalg.eigvalsh(0.5 * (M + M.T))
    lo, hi = eig.min(), eig.max()
    assert lo >= -1e-10 * hi, f"{kind}: eigenvalues in [{lo:.3e}, {hi:.3e}]"


def test_hessian_symmetric(small64):
    assert_symmetric(dense(small64, "hessian"), "hessian")


@pytest.mark.parametrize("kind", KINDS)
def test_matvec_linear(small64, kind):
    """C (a u + b w) = a C u + b C w."""
    op = small64.problem.curvature(small64.x, small64.batch, kind=kind)
    (u, u64), (w, w64) = small64.vectors(2, seed=11)
    a, b = 0.7, -2.5
    both = op.matvec(small64.backend.asarray(a * u64 + b * w64))
    parts = a * small64.numpy(op.matvec(u)) + b * small64.numpy(op.matvec(w))
    err = relerr(small64.numpy(both), parts)
    assert err <= 1e-12, f"{kind}: C(au + bw) vs aCu + bCw relative error {err:.3e}"


@pytest.mark.parametrize("kind", KINDS)
def test_matvec_reuses_forward(backend, few_case, kind):
    """curvature() does the forward pass; matvec never runs (or traces) it again
    (JAX's Hessian: traces it once, into its own compiled product).

    A fresh problem, so a JAX matvec is compiled inside the window: one that
    recomputed the forward pass would trace it, and n_forward would move.
    """
    problem = backend.problem(few_case.spec)
    X, Y = few_case.data()
    op = problem.curvature(backend.asarray(few_case.theta()), backend.batch(X, Y), kind=kind)
    before = problem.n_forward
    rng = np.random.default_rng(5)
    for _ in range(3):
        backend.to_numpy(op.matvec(backend.asarray(rng.standard_normal(op.size))))
    # JAX's Hessian product is jvp(grad f) by design (backends/hfbench_jax/curvature.py):
    # its forward pass is traced into the product's program once, at its compile, and
    # XLA computes it once per jitted loop of products; never traced again after that
    allowed = 1 if (backend.name, kind) == ("jax", "hessian") else 0
    assert problem.n_forward - before <= allowed, (
        f"{kind}: n_forward went from {before} to {problem.n_forward} over 3 matvecs"
    )


def test_forward_counter_counts(backend):
    """n_forward is alive: a fresh problem's first curvature() runs (or traces) a forward."""
    problem = backend.problem(models.mlp([4, 3, 3], "tanh", name="counter"))
    rng = np.random.default_rng(0)
    batch = backend.batch(rng.standard_normal((5, 4)), np.arange(5) % 3)
    before = problem.n_forward
    assert isinstance(before, int)
    problem.curvature(backend.asarray(rng.standard_normal(27)), batch, kind="ggn")
    assert problem.n_forward > before, "curvature() did not count its forward pass"


def expected_keys(spec) -> set[str]:
    keys = {"loss", "objective"}
    if spec.loss == "softmax_cross_entropy":
        keys.add("accuracy")
    if spec.reconstruct:
        keys.add("reconstruction_error")
    return keys


def test_evaluate_matches_numpy(harness, tol):
    """evaluate(): accuracy only for softmax CE, reconstruction_error only for autoencoders."""
    spec = harness.case.spec
    got = harness.problem.evaluate(harness.x, harness.batch)
    want = oracles.np_evaluate(spec, harness.theta, harness.X, harness.Y)
    assert set(got) == expected_keys(spec), f"keys {sorted(got)}"
    assert set(want) == set(got)  # the oracle's own bookkeeping
    for key, value in got.items():
        assert isinstance(value, float), f"{key}: {type(value).__name__}, expected float"
        err = relerr(value, want[key])
        assert err <= tol["value"], f"evaluate()[{key!r}] = {value!r} vs numpy {want[key]!r}"


def test_output_dtypes(harness):
    """Every array a backend returns has its dtype (float32 stays float32 under jax x64)."""
    p, x, b = harness.problem, harness.x, harness.batch
    value, grad = p.value_and_grad(x, b)
    v, _ = harness.vectors(1)[0]
    outputs = {
        "asarray": x, "loss": p.loss(x, b), "value": value, "grad": grad,
        "precondition": p.precondition(x, b),
        **{kind: p.curvature(x, b, kind=kind).matvec(v) for kind in KINDS},
    }
    for name, out in outputs.items():
        got = harness.numpy(out).dtype
        assert got == np.dtype(harness.dtype), f"{name} is {got}, backend runs {harness.dtype}"
    assert harness.numpy(value).shape == () and harness.numpy(grad).shape == x.shape


def test_flat_images_accepted(backend_name, conv_case, make_setup):
    """Conv nets take (N, C*H*W) batches as (N, C, H, W), in C, H, W order."""
    image = make_setup(backend_name, "float64", conv_case)
    flat = make_setup(backend_name, "float64", conv_case, flat_x=True)
    g_image = image.numpy(image.problem.value_and_grad(image.x, image.batch)[1])
    g_flat = flat.numpy(flat.problem.value_and_grad(flat.x, flat.batch)[1])
    assert relerr(g_flat, g_image) <= 1e-14
