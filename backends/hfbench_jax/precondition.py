"""The diagonal empirical Fisher from one backward pass (Martens 2010 §4.7).

    d = (1/B) sum_i g_i * g_i          (no l2; g_i = grad of example i's loss)

A zero perturbation eps_l is added to each parametric layer's pre-activation
s_l; the gradient of sum_i l_i in the eps list is delta_l = dl_i/ds_l for every
example at once (the parameters are constants of that backward, so no parameter
cotangents are formed). Per layer, with a the layer's input:

    Dense:  d_W = (a^2)^T (delta^2),  d_b = sum_i delta_i^2
    Conv2d: g_i = delta_i (as (O, P)) @ patches(a_i)^T (as (P, C*k*k)),
            d_W = sum_i g_i^2 reshaped to (O, C, k, k),
            d_b = sum_i (sum_p delta_ip)^2

No loop or vmap over examples: the per-example conv gradients are one einsum.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from hfbench.models import Dense, ModelSpec

from .losses import JaxLoss
from .network import CONV_DIMS, parametric, preactivation_shapes


def precondition_fn(spec: ModelSpec, forward: Callable, loss: JaxLoss, precision=None):
    """A jitted (theta, x, y) -> the flat diagonal in the canonical layout."""
    layers = parametric(spec)

    def precondition(theta, x, y):
        n = x.shape[0]
        eps = [jnp.zeros(s, theta.dtype) for s in preactivation_shapes(spec, n)]

        def total_loss(eps):
            z, inputs = forward(theta, x, eps=eps, record=True)
            return jnp.sum(loss.per_example(z, y)), inputs

        deltas, inputs = jax.grad(total_loss, has_aux=True)(eps)
        parts = []
        for layer, a, delta in zip(layers, inputs, deltas):
            parts.extend(_squared_grads(layer, a, delta, precision))
        return jnp.concatenate([p.reshape(-1) for p in parts]) / n

    return jax.jit(precondition)


def _squared_grads(layer, a, delta, precision):
    if isinstance(layer, Dense):
        return _dense_squared(a, delta, precision)
    return _conv_squared(layer, a, delta, precision)


def _dense_squared(a, delta, precision):
    """sum_i (a_i delta_i^T)^2 = (a^2)^T (delta^2); the bias gradient is delta_i."""
    sq = jnp.square(delta)
    return [jnp.dot(jnp.square(a).T, sq, precision=precision), jnp.sum(sq, axis=0)]


def _conv_squared(layer, a, delta, precision):
    """Per-example kernel gradients from unfolded patches, squared, summed over i."""
    n, out = delta.shape[:2]
    k = layer.kernel_size
    patches = unfold(a, k, layer.stride, layer.padding)  # (B, C*k*k, H'*W')
    g = jnp.einsum("bop,bkp->bok", delta.reshape(n, out, -1), patches, precision=precision)
    d_w = jnp.sum(jnp.square(g), axis=0).reshape(layer.param_shapes()[0])
    d_b = jnp.sum(jnp.square(jnp.sum(delta, axis=(2, 3))), axis=0)
    return [d_w, d_b]


def unfold(a, k: int, stride: int, padding: int):
    """(B, C, H, W) -> (B, C*k*k, H'*W'), features in (c, kh, kw) order: the OIHW
    kernel's row-major (in, kh, kw) layout (checked against per-example autodiff).

    Precision HIGHEST always: the patches are a copy done as a convolution with a
    one-hot kernel, and TF32 would round the copied inputs.
    """
    p = lax.conv_general_dilated_patches(
        a, (k, k), (stride, stride), [(padding, padding)] * 2,
        dimension_numbers=CONV_DIMS, precision=lax.Precision.HIGHEST,
    )
    return p.reshape(p.shape[0], p.shape[1], -1)
