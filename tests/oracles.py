"""Independent dense float64 references for the backend tests.

Written from scratch here: nothing imports a backend, and the flat layout is sliced
again from the layer records (not with `hfbench.models.unflatten`), so a layout bug
in the core shows up as a mismatch instead of being shared by oracle and code.

Two forwards anchor each other:
- a pure-NumPy forward (no autodiff; explicit loops for conv and pooling), and
- a torch forward built from torch.nn.functional primitives, which autograd turns
  into the dense matrices the products are checked against:
    G = (1/B) sum_i J_i^T H_i J_i + l2 I      (J_i by jacrev, H_i closed form, K x K)
    H = d^2 objective / d theta^2             (torch.autograd.functional.hessian)
    F = (1/B) sum_i g_i g_i^T + l2 I,  diag = (1/B) sum_i g_i^2
  with the per-example gradients g_i from a Python loop over examples (the slow way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hfbench.models import Conv2d, Dense, Flatten, MaxPool2d, ModelSpec

try:  # the dense references need torch; the NumPy forward does not
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - jax-only installs skip the dense tests
    torch = None

SOFTMAX, SIGMOID, SQUARED = "softmax_cross_entropy", "sigmoid_cross_entropy", "squared_error"
TINY = 1e-300


def relerr(a, b) -> float:
    """|a - b| / max(|b|, tiny) on the flattened vectors (b is the reference)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    assert a.shape == b.shape, f"shape {a.shape} != reference shape {b.shape}"
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), TINY))


# ----------------------------------------------------------------------------- layout


def _shapes(layer) -> list[tuple[int, ...]]:
    if isinstance(layer, Dense):
        return [(layer.in_features, layer.out_features), (layer.out_features,)]
    if isinstance(layer, Conv2d):
        k = layer.kernel_size
        return [(layer.out_channels, layer.in_channels, k, k), (layer.out_channels,)]
    return []


def split(spec: ModelSpec, theta) -> list[tuple[object, list]]:
    """[(layer, [weight, bias] or [])] from the flat vector, in canonical order."""
    out, at = [], 0
    for layer in spec.layers:
        params = []
        for s in _shapes(layer):
            n = math.prod(s)
            params.append(theta[at : at + n].reshape(s))
            at += n
        out.append((layer, params))
    assert at == theta.shape[0], f"theta has {theta.shape[0]} entries, layout needs {at}"
    return out


# ----------------------------------------------------------------------------- NumPy


NP_ACT = {
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "linear": lambda a: a,
}


def _np_conv(h, w, b, stride: int, pad: int):
    """Cross-correlation, NCHW input, OIHW kernel, one output pixel at a time."""
    h = np.pad(h, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    ho, wo = ((n - k) // stride + 1 for n in h.shape[2:])
    out = np.empty((h.shape[0], w.shape[0], ho, wo))
    for r in range(ho):
        for c in range(wo):
            patch = h[:, :, r * stride : r * stride + k, c * stride : c * stride + k]
            out[:, :, r, c] = np.einsum("nikl,oikl->no", patch, w) + b
    return out


def _np_pool(h, size: int, stride: int):
    ho, wo = ((n - size) // stride + 1 for n in h.shape[2:])
    out = np.empty(h.shape[:2] + (ho, wo))
    for r in range(ho):
        for c in range(wo):
            win = h[:, :, r * stride : r * stride + size, c * stride : c * stride + size]
            out[:, :, r, c] = win.max(axis=(2, 3))
    return out


def _np_layer(layer, params, h):
    if isinstance(layer, Dense):
        return NP_ACT[layer.activation](h @ params[0] + params[1])
    if isinstance(layer, Conv2d):
        a = _np_conv(h, params[0], params[1], layer.stride, layer.padding)
        return NP_ACT[layer.activation](a)
    if isinstance(layer, MaxPool2d):
        return _np_pool(h, layer.size, layer.stride or layer.size)
    assert isinstance(layer, Flatten)
    return h.reshape(h.shape[0], -1)


def np_forward(spec: ModelSpec, theta, X) -> np.ndarray:
    """z (B, K) in float64 NumPy, no autodiff."""
    h = np.asarray(X, np.float64).reshape(len(X), *spec.input_shape)
    for layer, params in split(spec, np.asarray(theta, np.float64)):
        h = _np_layer(layer, params, h)
    return h


def np_example_losses(loss: str, z, Y) -> np.ndarray:
    """l_i, summed over outputs, in stable forms."""
    if loss == SOFTMAX:
        zmax = z.max(axis=1, keepdims=True)
        logz = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        return logz - z[np.arange(len(z)), Y]
    if loss == SIGMOID:
        return (np.logaddexp(0.0, z) - Y * z).sum(axis=1)
    assert loss == SQUARED
    return 0.5 * ((z - Y) ** 2).sum(axis=1)


def np_evaluate(spec: ModelSpec, theta, X, Y) -> dict[str, float]:
    """The evaluate() dict: loss, objective, accuracy (softmax CE), reconstruction_error."""
    theta = np.asarray(theta, np.float64)
    z = np_forward(spec, theta, X)
    loss = float(np_example_losses(spec.loss, z, Y).mean())
    out = {"loss": loss, "objective": loss + 0.5 * spec.l2 * float(theta @ theta)}
    if spec.loss == SOFTMAX:
        out["accuracy"] = float(np.mean(z.argmax(axis=1) == Y))
    if spec.reconstruct:
        pred = NP_ACT["sigmoid"](z) if spec.loss == SIGMOID else z
        out["reconstruction_error"] = float(((pred - Y) ** 2).sum(axis=1).mean())
    return out


# ----------------------------------------------------------------------------- torch


def _t_act(name: str, a):
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}.get(
        name, lambda u: u
    )(a)


def _t_layer(layer, params, h):
    if isinstance(layer, Dense):
        return _t_act(layer.activation, h @ params[0] + params[1])
    if isinstance(layer, Conv2d):
        a = F.conv2d(h, params[0], params[1], stride=layer.stride, padding=layer.padding)
        return _t_act(layer.activation, a)
    if isinstance(layer, MaxPool2d):
        return F.max_pool2d(h, layer.size, layer.stride or layer.size)
    return h.reshape(h.shape[0], -1)


def forward(spec: ModelSpec, theta, X):
    """z (B, K) as a torch float64 function of theta."""
    h = X.reshape(X.shape[0], *spec.input_shape)
    for layer, params in split(spec, theta):
        h = _t_layer(layer, params, h)
    return h


def example_losses(loss: str, z, Y):
    if loss == SOFTMAX:
        return torch.logsumexp(z, dim=1) - z.gather(1, Y[:, None])[:, 0]
    if loss == SIGMOID:
        return (F.softplus(z) - Y * z).sum(dim=1)
    return 0.5 * ((z - Y) ** 2).sum(dim=1)


def loss_hessians(loss: str, z):
    """H_i = d^2 l_i / dz_i^2 as explicit (B, K, K) matrices (closed forms)."""
    b, k = z.shape
    if loss == SOFTMAX:
        p = torch.softmax(z, dim=1)
        return torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    if loss == SIGMOID:
        p = torch.sigmoid(z)
        return torch.diag_embed(p * (1 - p))
    return torch.eye(k, dtype=z.dtype).expand(b, k, k)


def loss_residuals(loss: str, z, Y):
    """r_i = dl_i/dz_i in closed form: p - onehot, p - t, z - t."""
    if loss == SOFTMAX:
        return torch.softmax(z, dim=1) - F.one_hot(Y, z.shape[1]).to(z.dtype)
    if loss == SIGMOID:
        return torch.sigmoid(z) - Y
    return z - Y


def tensors(theta, X, Y):
    """float64 torch copies (int64 labels stay integer)."""
    Y = np.asarray(Y)
    y = torch.as_tensor(Y, dtype=torch.int64 if Y.dtype.kind == "i" else torch.float64)
    return (torch.as_tensor(np.asarray(theta), dtype=torch.float64),
            torch.as_tensor(np.asarray(X), dtype=torch.float64), y)


def objective_fn(spec: ModelSpec, X, Y):
    """theta -> (1/B) sum_i l_i + l2/2 |theta|^2."""
    def f(theta):
        z = forward(spec, theta, X)
        return example_losses(spec.loss, z, Y).mean() + 0.5 * spec.l2 * (theta @ theta)
    return f


def per_example_grads(spec: ModelSpec, theta, X, Y):
    """(B, P): g_i = grad of l_i alone, one backward pass per example (the slow way)."""
    rows = []
    for i in range(X.shape[0]):
        t = theta.detach().clone().requires_grad_(True)
        li = example_losses(spec.loss, forward(spec, t, X[i : i + 1]), Y[i : i + 1]).sum()
        rows.append(torch.autograd.grad(li, t)[0])
    return torch.stack(rows)


@dataclass
class Reference:
    """Dense float64 NumPy references for one (spec, theta, X, Y)."""

    loss: float  # the objective, l2 included
    grad: np.ndarray
    ggn: np.ndarray
    hessian: np.ndarray
    fisher: np.ndarray
    diag: np.ndarray
    jac: np.ndarray  # (B, K, P) per-example output Jacobians
    per_example: np.ndarray  # (B, P) per-example loss gradients
    z: np.ndarray

    def matrix(self, kind: str) -> np.ndarray:
        return {"ggn": self.ggn, "hessian": self.hessian, "fisher": self.fisher}[kind]


def reference(spec: ModelSpec, theta, X, Y) -> Reference:
    """Every dense quantity the products are tested against, in float64."""
    theta, X, Y = tensors(theta, X, Y)
    f = objective_fn(spec, X, Y)
    t = theta.clone().requires_grad_(True)
    value = f(t)
    grad = torch.autograd.grad(value, t)[0]
    z = forward(spec, theta, X).detach()
    jac = torch.func.jacrev(lambda th: forward(spec, th, X))(theta)  # (B, K, P)
    eye = torch.eye(theta.numel(), dtype=torch.float64)
    b = X.shape[0]
    ggn = torch.einsum("bkp,bkl,blq->pq", jac, loss_hessians(spec.loss, z), jac) / b
    hess = torch.autograd.functional.hessian(f, theta, vectorize=True)  # vmap: fast
    g = per_example_grads(spec, theta, X, Y)
    np_ = lambda a: a.detach().numpy()  # noqa: E731
    return Reference(
        loss=float(value.detach()), grad=np_(grad), ggn=np_(ggn + spec.l2 * eye), hessian=np_(hess),
        fisher=np_(g.T @ g / b + spec.l2 * eye), diag=np_((g**2).mean(0)), jac=np_(jac),
        per_example=np_(g), z=np_(z),
    )


# ----------------------------------------------------------------------------- test doubles


class Counter:
    """f(alpha) that records every alpha it is called with."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, alpha):
        self.calls.append(alpha)
        return self.fn(alpha)


class WrappedProblem:
    """A backend problem whose gradient, curvature and preconditioner are the inner
    problem's; subclasses change loss(). It has no `fuse` or `value_grad_curvature`,
    so an algorithm takes its unfused path and calls loss() itself."""

    def __init__(self, inner):
        self.inner = inner
        self.spec, self.backend = inner.spec, inner.backend

    def value_and_grad(self, x, batch):
        return self.inner.value_and_grad(x, batch)

    def curvature(self, x, batch, kind="ggn"):
        return self.inner.curvature(x, batch, kind)

    def precondition(self, x, batch):
        return self.inner.precondition(x, batch)

    def loss(self, x, batch):
        return self.inner.loss(x, batch)
