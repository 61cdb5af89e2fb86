"""The three matching losses in jnp (the table in hfbench.losses).

For each loss: the per-example value l_i, the residual r_i = dl_i/dz_i, the data
that the closed-form Hessian H_i = d2l_i/dz_i^2 needs, H_i u, and the prediction
that evaluation compares with the targets. Every array takes z's dtype, so a
float32 backend stays float32 under jax_enable_x64.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class JaxLoss(NamedTuple):
    per_example: Callable  # (z, y) -> (B,)
    residual: Callable  # (z, y) -> (B, K), dl/dz
    hess_data: Callable  # z -> what hess_apply needs (an array or ())
    hess_apply: Callable  # (data, u) -> H u, per example
    predict: Callable  # z -> prediction in target space


def one_hot(y, k: int, dtype):
    return jax.nn.one_hot(y, k, dtype=dtype)


# softmax_cross_entropy: l = -log softmax(z)[y], r = p - onehot, H = diag(p) - p p^T.
def _softmax_value(z, y):
    logp = jax.nn.log_softmax(z, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]


def _softmax_residual(z, y):
    return jax.nn.softmax(z, axis=-1) - one_hot(y, z.shape[-1], z.dtype)


def _softmax_hess(p, u):
    return p * u - p * jnp.sum(p * u, axis=-1, keepdims=True)


# sigmoid_cross_entropy: l = sum_k softplus(z_k) - t_k z_k (stable BCE),
# r = sigmoid(z) - t, H = diag(p (1 - p)).
def _sigmoid_value(z, t):
    return jnp.sum(jax.nn.softplus(z) - t * z, axis=-1)


def _sigmoid_hess_data(z):
    p = jax.nn.sigmoid(z)
    return p * (1 - p)


# squared_error: l = 1/2 sum_k (z_k - t_k)^2, r = z - t, H = I.
def _squared_value(z, t):
    return 0.5 * jnp.sum(jnp.square(z - t), axis=-1)


LOSS_FNS = {
    "softmax_cross_entropy": JaxLoss(
        _softmax_value, _softmax_residual, lambda z: jax.nn.softmax(z, axis=-1),
        _softmax_hess, lambda z: jax.nn.softmax(z, axis=-1),
    ),
    "sigmoid_cross_entropy": JaxLoss(
        _sigmoid_value, lambda z, t: jax.nn.sigmoid(z) - t, _sigmoid_hess_data,
        lambda d, u: d * u, jax.nn.sigmoid,
    ),
    "squared_error": JaxLoss(
        _squared_value, lambda z, t: z - t, lambda z: (), lambda d, u: u, lambda z: z,
    ),
}


def loss_of(spec) -> JaxLoss:
    """The spec's loss, scaled by its loss_scale c (value, residual and H u times c)."""
    base = LOSS_FNS[spec.loss]
    c = float(spec.loss_scale)
    if c == 1:
        return base
    return JaxLoss(
        lambda z, y: c * base.per_example(z, y), lambda z, y: c * base.residual(z, y),
        base.hess_data, lambda d, u: c * base.hess_apply(d, u), base.predict,
    )


def fisher_apply(r, u):
    """M_i u = r_i (r_i . u): the empirical Fisher's per-example outer product."""
    return r * jnp.sum(r * u, axis=-1, keepdims=True)
