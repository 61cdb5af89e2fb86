"""A framework-free float64 oracle for tiny nets: exact per-example Jacobians.

Backprop by hand in NumPy (`layers`: dense, conv, max pooling, flatten), seeded
once per output unit, gives every J_i = dz_i/dtheta as a dense (K, n) matrix. From
those the dense GGN, empirical Fisher, gradient and preconditioner follow by their
definitions, with no autodiff framework involved. Only for tiny specs: J is dense.
"""

from __future__ import annotations

import numpy as np

from ..models import Conv2d, Dense, ModelSpec, unflatten
from . import layers


def _with_params(spec: ModelSpec, theta):
    """(layer, [weight, bias] or []) in order, from the canonical flat layout."""
    flat = iter(unflatten(spec, theta))
    return [(layer, [next(flat), next(flat)] if isinstance(layer, (Dense, Conv2d)) else [])
            for layer in spec.layers]


def _forward(spec: ModelSpec, theta: np.ndarray, X: np.ndarray):
    """Return z and the tape [(layer, params, input, output)] of the forward pass."""
    h = np.asarray(X).reshape(len(X), *spec.input_shape)
    tape = []
    for layer, params in _with_params(spec, theta):
        out = layers.forward(layer, params, h)
        tape.append((layer, params, h, out))
        h = out
    return h, tape


def jacobians(spec: ModelSpec, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """J with J[i, k] = d z_ik / d theta, shape (B, K, n), in canonical layout."""
    z, tape = _forward(spec, theta, X)
    B, K = z.shape
    delta = np.broadcast_to(np.eye(K), (B, K, K)).copy()  # dz_k / dz per example
    blocks = []
    for layer, params, h, out in reversed(tape):
        delta, grads = layers.backward(layer, params, h, out, delta)
        blocks.extend(reversed(grads))  # bias, then weight: the list is reversed below
    return np.concatenate(blocks[::-1], axis=2)


def loss_terms(spec: ModelSpec, z: np.ndarray, Y: np.ndarray):
    """Per-example loss l_i, r_i = dl_i/dz_i and H_i = d2l_i/dz_i2 (closed forms),
    each times spec.loss_scale."""
    c = float(spec.loss_scale)
    return tuple(c * t for t in _unit_loss_terms(spec, z, Y))


def _unit_loss_terms(spec: ModelSpec, z: np.ndarray, Y: np.ndarray):
    B, K = z.shape
    if spec.loss == "softmax_cross_entropy":
        zs = z - z.max(axis=1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        p, onehot = np.exp(logp), np.eye(K)[Y]
        H = np.einsum("bk,kl->bkl", p, np.eye(K)) - np.einsum("bk,bl->bkl", p, p)
        return -(logp * onehot).sum(1), p - onehot, H
    if spec.loss == "sigmoid_cross_entropy":
        p = 1 / (1 + np.exp(-z))
        loss = (np.logaddexp(0, z) - Y * z).sum(1)
        return loss, p - Y, np.einsum("bk,kl->bkl", p * (1 - p), np.eye(K))
    return 0.5 * ((z - Y) ** 2).sum(1), z - Y, np.broadcast_to(np.eye(K), (B, K, K))


class DenseReference:
    """Every quantity of the protocol, built densely for one (theta, X, Y)."""

    def __init__(self, spec: ModelSpec, theta, X, Y):
        self.spec, self.theta = spec, np.asarray(theta, dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        self.z, _ = _forward(spec, self.theta, X)
        self.J = jacobians(spec, self.theta, X)
        self.losses, self.r, self.H = loss_terms(spec, self.z, np.asarray(Y))
        self.per_example_grads = np.einsum("bkn,bk->bn", self.J, self.r)
        self.n = self.theta.size

    @property
    def objective(self) -> float:
        return float(self.losses.mean() + 0.5 * self.spec.l2 * self.theta @ self.theta)

    @property
    def grad(self) -> np.ndarray:
        return self.per_example_grads.mean(0) + self.spec.l2 * self.theta

    @property
    def ggn(self) -> np.ndarray:
        G = np.einsum("bkn,bkl,blm->nm", self.J, self.H, self.J) / len(self.z)
        return G + self.spec.l2 * np.eye(self.n)

    @property
    def fisher(self) -> np.ndarray:
        g = self.per_example_grads
        return g.T @ g / len(g) + self.spec.l2 * np.eye(self.n)

    @property
    def precondition(self) -> np.ndarray:
        return (self.per_example_grads**2).mean(0)
