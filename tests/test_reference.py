"""The NumPy oracle itself, against central differences (so it is anchored to definitions)."""

import numpy as np
import pytest

from hfbench import models
from hfbench.testing.reference import DenseReference, _forward, loss_terms

SPECS = [
    models.mlp([4, 3, 5, 3], ["tanh", "sigmoid"], "softmax_cross_entropy", l2=0.01),
    models.mlp([3, 4, 2], "relu", "sigmoid_cross_entropy"),
    models.mlp([3, 2], [], "squared_error", l2=0.1),
]


def _targets(spec, rng, b):
    if spec.loss == "softmax_cross_entropy":
        return rng.integers(0, spec.output_size, b)
    return rng.uniform(size=(b, spec.output_size))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_reference_matches_finite_differences(spec):
    rng = np.random.default_rng(0)
    theta = models.init_params(spec, seed=1, dtype="float64")
    X, Y = rng.normal(size=(6, spec.input_size)), _targets(spec, rng, 6)
    ref, h, eye = DenseReference(spec, theta, X, Y), 1e-6, np.eye(theta.size)

    def objective(t):
        z, _ = _forward(spec, t, X)
        return loss_terms(spec, z, Y)[0].mean() + 0.5 * spec.l2 * t @ t

    def z_of(t):
        return _forward(spec, t, X)[0]

    fd_grad = np.array([(objective(theta + h * e) - objective(theta - h * e)) / (2 * h) for e in eye])
    fd_J = np.stack([(z_of(theta + h * e) - z_of(theta - h * e)) / (2 * h) for e in eye], -1)
    assert np.allclose(ref.grad, fd_grad, rtol=1e-6, atol=1e-8)
    assert np.allclose(ref.J, fd_J, rtol=1e-6, atol=1e-8)
    # the closed-form loss Hessian against differences of the closed-form dl/dz
    z = z_of(theta)
    for k in range(spec.output_size):
        dz = np.zeros_like(z)
        dz[:, k] = h
        fd_H = (loss_terms(spec, z + dz, Y)[1] - loss_terms(spec, z - dz, Y)[1]) / (2 * h)
        assert np.allclose(ref.H[:, :, k], fd_H, rtol=1e-6, atol=1e-8)
