"""Initial parameters and the canonical flat layout, all in NumPy.

Every backend starts from the bits `init_params` draws, so a torch run and a JAX
run of one seed begin at the same point.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import SpecError, unknown
from .spec import INITS, Conv2d, Dense, ModelSpec, param_shapes

SPARSE_CONNECTIONS = 15  # Martens 2010 §5


def init_params(
    spec: ModelSpec, seed: int = 0, *, init: str | None = None, dtype: str = "float32"
) -> np.ndarray:
    """The initial flat parameter vector for `spec`, drawn from `seed`.

    init="sparse" (Martens 2010 §5): each unit gets min(15, fan_in) non-zero incoming
    weights drawn from N(0, 1); biases are 0, or 0.5 for tanh units.
    init="dense": Glorot-uniform weights, U(+-sqrt(6 / (fan_in + fan_out))), for
    sigmoid, tanh and linear layers and He-normal, N(0, 2 / fan_in), for relu layers;
    biases 0. `init=None` takes the spec's default.
    """
    scheme = spec.init if init is None else init
    if scheme not in INITS:
        raise SpecError(unknown("init", scheme, INITS, "init_params: init"))
    rng = np.random.default_rng(seed)
    draw = _sparse_layer if scheme == "sparse" else _dense_layer
    parts = []
    for layer in spec.layers:
        if isinstance(layer, (Dense, Conv2d)):
            parts.extend(draw(layer, rng))
    return np.concatenate([p.reshape(-1) for p in parts]).astype(dtype)


def _fan_out(layer: Dense | Conv2d) -> int:
    if isinstance(layer, Dense):
        return layer.out_features
    return layer.out_channels * layer.kernel_size**2


def _units_by_inputs(layer: Dense | Conv2d, w_units: np.ndarray) -> np.ndarray:
    """Put a (units, fan_in) matrix into the layer's canonical weight shape."""
    if isinstance(layer, Dense):
        return w_units.T.copy()  # (in, out)
    return w_units.reshape(layer.param_shapes()[0])  # (out, in, kh, kw)


def _sparse_layer(layer: Dense | Conv2d, rng: np.random.Generator) -> list[np.ndarray]:
    w_shape, b_shape = layer.param_shapes()
    units, fan_in = b_shape[0], layer.fan_in()
    k = min(SPARSE_CONNECTIONS, fan_in)
    w = np.zeros((units, fan_in))
    for u in range(units):
        w[u, rng.choice(fan_in, size=k, replace=False)] = rng.standard_normal(k)
    bias = np.full(b_shape, 0.5 if layer.activation == "tanh" else 0.0)
    return [_units_by_inputs(layer, w), bias]


def _dense_layer(layer: Dense | Conv2d, rng: np.random.Generator) -> list[np.ndarray]:
    w_shape, b_shape = layer.param_shapes()
    fan_in = layer.fan_in()
    if layer.activation == "relu":
        w = rng.standard_normal(w_shape) * math.sqrt(2.0 / fan_in)
    else:
        bound = math.sqrt(6.0 / (fan_in + _fan_out(layer)))
        w = rng.uniform(-bound, bound, size=w_shape)
    return [w, np.zeros(b_shape)]


def unflatten(spec: ModelSpec, theta) -> list:
    """Split a flat vector into the parameter arrays, in canonical order.

    Works on anything with `.reshape` and slicing (NumPy, torch, JAX arrays).
    """
    shapes = param_shapes(spec)
    n = sum(math.prod(s) for s in shapes)
    if tuple(theta.shape) != (n,):
        raise SpecError(
            f"{spec.name or 'model'}: parameter vector has shape {tuple(theta.shape)}, "
            f"expected ({n},) for this spec; make it with models.init_params(spec, seed)"
        )
    out, start = [], 0
    for s in shapes:
        size = math.prod(s)
        out.append(theta[start : start + size].reshape(s))
        start += size
    return out


def flatten(arrays) -> np.ndarray:
    """Inverse of `unflatten` for NumPy arrays."""
    return np.concatenate([np.asarray(a).reshape(-1) for a in arrays])
