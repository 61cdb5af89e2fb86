"""Model specs, the canonical flat layout and initialization (NumPy only, no backend).

The expected shapes are written from the papers' descriptions of each network, not
read from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hfbench import models
from hfbench.models import Conv2d, Dense, Flatten, MaxPool2d, ModelSpec


def conv(o, i, k):
    return [(o, i, k, k), (o,)]


def dense(i, o):
    return [(i, o), (o,)]


PAPER_MODELS = {
    # Martens 2010 §6: MNIST autoencoder 784-1000-500-250-30, mirrored decoder
    "autoencoder": (
        lambda: models.autoencoder([784, 1000, 500, 250, 30]),
        [s for a, b in zip([784, 1000, 500, 250, 30, 250, 500, 1000],
                           [1000, 500, 250, 30, 250, 500, 1000, 784]) for s in dense(a, b)],
    ),
    "mlp": (
        lambda: models.mlp([784, 20, 20, 20, 10]),
        dense(784, 20) + dense(20, 20) + dense(20, 20) + dense(20, 10),
    ),
    # Gargiani et al. 2020 §4.4: conv 6@5x5, pool, conv 16@5x5, pool, fc 120, 84, 10
    "gargiani_fashion_cnn": (
        models.gargiani_fashion_cnn,
        conv(6, 1, 5) + conv(16, 6, 5) + dense(16 * 4 * 4, 120) + dense(120, 84) + dense(84, 10),
    ),
    # Gargiani et al. 2020 §4.5: conv 32@3x3, pool, conv 64@3x3, pool, conv 64@3x3, fc 64, 10
    "gargiani_cifar_cnn": (
        models.gargiani_cifar_cnn,
        conv(32, 3, 3) + conv(64, 32, 3) + conv(64, 64, 3) + dense(64 * 4 * 4, 64)
        + dense(64, 10),
    ),
    # LeNet-5 on 28x28 (padding 2): conv 6@5x5, pool, conv 16@5x5, pool, fc 120, 84, 10
    "lenet": (
        models.lenet,
        conv(6, 1, 5) + conv(16, 6, 5) + dense(16 * 5 * 5, 120) + dense(120, 84) + dense(84, 10),
    ),
}


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_paper_model_shapes(name):
    build, shapes = PAPER_MODELS[name]
    spec = build()
    theta = np.zeros(spec.num_params, dtype=np.float32)
    got = [tuple(a.shape) for a in models.unflatten(spec, theta)]
    assert got == shapes
    assert spec.num_params == sum(math.prod(s) for s in shapes)


def test_martens_autoencoder_size():
    """784-1000-500-250-30 and its mirror: 2,837,314 weights and biases."""
    assert models.autoencoder([784, 1000, 500, 250, 30]).num_params == 2_837_314


SMALL_SPECS = {
    "mlp": models.mlp([5, 4, 3], ["tanh"]),
    "conv": ModelSpec(
        input_shape=(2, 6, 6), loss="squared_error",
        layers=(Conv2d(in_channels=2, out_channels=3, kernel_size=3), MaxPool2d(size=2),
                Flatten(), Dense(in_features=12, out_features=2)),
    ),
}


@pytest.mark.parametrize("init", ["sparse", "dense"])
@pytest.mark.parametrize("key", SMALL_SPECS)
def test_init_deterministic(key, init):
    spec = SMALL_SPECS[key]
    a = models.init_params(spec, seed=3, init=init)
    b = models.init_params(spec, seed=3, init=init)
    c = models.init_params(spec, seed=4, init=init)
    assert a.dtype == np.float32 and a.shape == (spec.num_params,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    d = models.init_params(spec, seed=3, init=init, dtype="float64")
    assert d.dtype == np.float64
    np.testing.assert_array_equal(d.astype(np.float32), a)


@pytest.mark.parametrize("key", SMALL_SPECS)
def test_layout_round_trip(key):
    """unflatten slices row-major, layer by layer, weight then bias; flatten inverts it."""
    spec = SMALL_SPECS[key]
    theta = np.arange(spec.num_params, dtype=np.float64)
    arrays = models.unflatten(spec, theta)
    np.testing.assert_array_equal(models.flatten(arrays), theta)
    start = 0
    for a in arrays:
        want = np.arange(start, start + a.size).reshape(a.shape)  # row-major
        np.testing.assert_array_equal(a, want)
        start += a.size


def test_dense_weight_is_in_by_out():
    """Dense W is (in, out): W[i, j] connects input i to unit j."""
    spec = models.mlp([3, 2], loss="squared_error")
    w, b = models.unflatten(spec, np.arange(8.0))
    assert w.shape == (3, 2) and w[2, 1] == 5.0 and list(b) == [6.0, 7.0]


def _weights_by_unit(spec, theta):
    """[(layer, (units, fan_in) weights, bias)] for each parametric layer."""
    arrays = models.unflatten(spec, theta)
    out = []
    for layer in (lay for lay in spec.layers if isinstance(lay, (Dense, Conv2d))):
        w, b = arrays.pop(0), arrays.pop(0)
        w_units = w.T if isinstance(layer, Dense) else w.reshape(w.shape[0], -1)
        out.append((layer, w_units, b))
    return out


SPARSE_SPECS = {
    "wide": models.mlp([40, 20, 8, 3], ["sigmoid", "tanh"], init="sparse"),  # fan_in 40, 20, 8
    "conv": ModelSpec(
        input_shape=(1, 6, 6), loss="softmax_cross_entropy", init="sparse",
        layers=(Conv2d(in_channels=1, out_channels=4, kernel_size=3, activation="tanh"),  # 9
                Conv2d(in_channels=4, out_channels=3, kernel_size=3),  # fan_in 36
                Flatten(), Dense(in_features=12, out_features=2)),
    ),
}


@pytest.mark.parametrize("key", SPARSE_SPECS)
def test_sparse_init_structure(key):
    """Martens 2010 §5: min(15, fan_in) non-zero incoming weights per unit; biases 0 (tanh 0.5)."""
    spec = SPARSE_SPECS[key]
    theta = models.init_params(spec, seed=0)
    for layer, w, b in _weights_by_unit(spec, theta):
        nonzero = np.count_nonzero(w, axis=1)
        assert np.all(nonzero == min(15, w.shape[1])), (layer, nonzero)
        assert np.all(b == (0.5 if layer.activation == "tanh" else 0.0)), (layer, b)


def test_sparse_init_weights_standard_normal():
    spec = models.mlp([200, 300, 100], init="sparse")
    theta = models.init_params(spec, seed=1)
    nz = np.concatenate([w[w != 0] for _, w, _ in _weights_by_unit(spec, theta)])
    assert nz.size == 400 * 15
    assert abs(nz.mean()) < 0.05 and abs(nz.std() - 1.0) < 0.05


def test_dense_init_glorot_uniform():
    """sigmoid/tanh/linear layers: U(+-sqrt(6 / (fan_in + fan_out))), biases 0."""
    spec = models.mlp([300, 200, 100], "tanh")
    for layer, w, b in _weights_by_unit(spec, models.init_params(spec, seed=0, init="dense")):
        bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
        assert abs(w.mean()) < 0.01 * bound and np.all(b == 0)


def test_dense_init_he_normal_for_relu():
    """relu layers: N(0, 2 / fan_in)."""
    spec = models.mlp([400, 200, 10], "relu")
    layer, w, b = _weights_by_unit(spec, models.init_params(spec, seed=0, init="dense"))[0]
    std = math.sqrt(2.0 / layer.in_features)
    assert abs(w.std() - std) < 0.02 * std and abs(w.mean()) < 0.01 * std
    assert np.all(b == 0)
