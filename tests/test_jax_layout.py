"""The JAX backend's flat-vector plumbing (backends/hfbench_jax/network.py, issue 8).

`join` writes a list of layer arrays back into one vector; the gradient is taken in
the layers' arrays and joined, rather than differentiated through unflatten's
slices (which XLA on a CPU turns into a slower whole-vector fusion). Checked here
against NumPy and against JAX's own gradient through the slices:
- join(unflatten(spec, v), v) is v, for a conv net's mixed shapes, in both dtypes;
- the problem's gradient, l2 included, equals jax.grad of the objective taken in the
  flat vector (the pre-join way), to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import missing_backends

why = missing_backends("jax")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

if why is None:
    import jax

    from hfbench import models
    from hfbench.registry import get_backend
    from hfbench.testing.conformance import _conv_specs, _data, _specs
    from hfbench_jax.network import join


def _conv_spec():
    return _conv_specs()[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_join_inverts_unflatten(dtype):
    be = get_backend("jax", device="cpu", dtype=dtype)  # float64 needs the backend's x64
    spec = _conv_spec()
    v = np.random.default_rng(0).standard_normal(spec.num_params).astype(dtype)
    parts = models.unflatten(spec, be.asarray(v))
    assert len({p.shape for p in parts}) > 2  # kernels, biases and dense weights
    got = np.asarray(jax.jit(join)(parts, be.asarray(v)))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, v)


@pytest.mark.parametrize("spec", [s for s in _specs() if s.l2] if why is None else [],
                         ids=lambda s: s.name or "model")
def test_joined_gradient_equals_the_gradient_through_the_slices(spec):
    be = get_backend("jax", device="cpu", dtype="float64")
    X, Y = _data(spec, np.random.default_rng(1), batch=7)
    problem, batch = be.problem(spec), be.batch(X, Y)
    x = be.asarray(models.init_params(spec, seed=3, dtype="float64"))
    loss, g = problem.value_and_grad(x, batch)
    want_loss, want_g = jax.value_and_grad(problem._objective)(x, batch.x, batch.y)
    assert spec.l2 > 0
    np.testing.assert_allclose(float(loss), float(want_loss), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(g), np.asarray(want_g), rtol=1e-12, atol=1e-15)
