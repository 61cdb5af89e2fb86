"""JAX's `take`: a batch gathered where it is used (backends/hfbench_jax/gather.py).

The runner's batches come from `backend.take` on the device-resident training set.
On JAX the gather happens inside the fused step that uses the batch (as in a
hand-written loop), or eagerly on any other use. Either way the step must see the
rows NumPy's fancy indexing gives, and a step on a gathered batch must equal the
same step on a batch built from those rows directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import missing_backends

why = missing_backends("jax")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

if why is None:
    from hfbench import algorithms, models
    from hfbench.registry import get_backend


def _setup(dtype="float64"):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6))
    Y = rng.integers(0, 3, 50)
    spec = models.mlp([6, 5, 3], activation="tanh", loss="softmax_cross_entropy")
    be = get_backend("jax", device="cpu", dtype=dtype)
    whole = be.batch(X, Y)
    x0 = be.asarray(models.init_params(spec, seed=1, dtype=dtype))
    return be, spec, X, Y, whole, x0


def test_an_eager_use_gathers_the_rows_numpy_indexing_gives():
    be, _, X, Y, whole, _ = _setup()
    idx = np.array([7, 3, 3, 49, 0])
    b = be.take(whole, idx)
    assert b.meta.size == 5
    np.testing.assert_array_equal(np.asarray(b.x), X[idx])
    np.testing.assert_array_equal(np.asarray(b.y), Y[idx])


@pytest.mark.parametrize("algorithm", ["sgd", "adam"])
def test_a_fused_step_on_a_gathered_batch_equals_the_step_on_the_rows(algorithm):
    be, spec, X, Y, whole, x0 = _setup()
    idx = np.array([4, 9, 1, 33, 20, 20, 8])
    alg = algorithms.get(algorithm, lr=0.3)
    problem = be.problem(spec)
    gathered = be.take(whole, idx)
    assert gathered.pending  # nothing gathered before the step
    x_a, _, info_a = alg.step(problem, x0, alg.init(x0), gathered)
    assert not gathered.pending  # the fused call gathered it and handed the rows back
    np.testing.assert_array_equal(np.asarray(gathered.x), X[idx])
    direct = be.batch(X[idx], Y[idx])
    x_b, _, info_b = alg.step(problem, x0, alg.init(x0), direct)
    np.testing.assert_array_equal(np.asarray(x_a), np.asarray(x_b))
    assert float(info_a["loss"]) == float(info_b["loss"])


def test_hf_on_a_gathered_batch_equals_hf_on_the_rows():
    """hf uses its batch in the fused front half and again on the host (rho, the
    backtracking), so the batch is gathered once and reused."""
    be, spec, X, Y, whole, x0 = _setup()
    idx = np.arange(0, 50, 2)
    alg = algorithms.get("hf", cg_max_iters=5)
    problem = be.problem(spec)
    x_a, _, _ = alg.step(problem, x0, alg.init(x0), be.take(whole, idx))
    x_b, _, _ = alg.step(problem, x0, alg.init(x0), be.batch(X[idx], Y[idx]))
    np.testing.assert_allclose(np.asarray(x_a), np.asarray(x_b), rtol=0, atol=1e-12)
