"""Forward and backward of each layer type in NumPy, for the float64 oracle.

The backward maps a stack of cotangents delta (B, K, *out_shape), one per output
unit of the net, to the layer input's (B, K, *in_shape) and, for a parametric layer,
to the parameter blocks (B, K, n_W) and (B, K, n_b) in the canonical layout: the rows
of the per-example Jacobians J_i = dz_i/dtheta. Conv layers use im2col patches in the
OIHW kernel's (in, kh, kw) order, pooling routes each cotangent to its window's
maximum. No autodiff framework is involved, so a backend is judged by definitions.
"""

from __future__ import annotations

import numpy as np

from ..models import Conv2d, Dense, Flatten, MaxPool2d

# activation, and its derivative written in terms of the activation's output a
ACT = {
    "sigmoid": (lambda s: 1 / (1 + np.exp(-s)), lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a**2),
    "relu": (lambda s: np.maximum(s, 0), lambda a: (a > 0).astype(float)),
    "linear": (lambda s: s, lambda a: np.ones_like(a)),
}


def forward(layer, params, h):
    """The layer's output for input h (B, *in_shape)."""
    if isinstance(layer, Dense):
        return ACT[layer.activation][0](h @ params[0] + params[1])
    if isinstance(layer, Conv2d):
        P, _ = patches(h, layer.kernel_size, layer.stride, layer.padding)
        W = params[0].reshape(layer.out_channels, -1)
        s = np.einsum("oq,bqp->bop", W, P) + params[1][:, None]
        return ACT[layer.activation][0](s.reshape(len(h), layer.out_channels, *_out_hw(h, layer)))
    if isinstance(layer, MaxPool2d):
        return _pool_windows(h, layer).max(axis=-1)
    assert isinstance(layer, Flatten), layer
    return h.reshape(len(h), -1)


def backward(layer, params, h, out, delta):
    """(delta for the input, [weight block, bias block] or []) for cotangents delta."""
    B, K = delta.shape[:2]
    if isinstance(layer, Dense):
        ds = delta * ACT[layer.activation][1](out)[:, None]
        dW = np.einsum("bi,bko->bkio", h, ds).reshape(B, K, -1)
        return ds @ params[0].T, [dW, ds]
    if isinstance(layer, Conv2d):
        return _conv_backward(layer, params, h, out, delta)
    if isinstance(layer, MaxPool2d):
        return _pool_backward(layer, h, delta), []
    return delta.reshape(B, K, *h.shape[1:]), []


def _out_hw(h, layer) -> tuple[int, int]:
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    return tuple((n + 2 * p - k) // s + 1 for n in h.shape[2:])


def patches(h, k: int, stride: int, pad: int):
    """(B, C*k*k, Ho*Wo) im2col matrix of h (B, C, H, W), rows in (c, kh, kw) order,
    and the padded shape (for the transpose, `_unpatch`)."""
    hp = np.pad(h, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    B, C, H, W = hp.shape
    ho, wo = (H - k) // stride + 1, (W - k) // stride + 1
    P = np.empty((B, C, k, k, ho, wo))
    for i in range(k):
        for j in range(k):
            P[:, :, i, j] = hp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
    return P.reshape(B, C * k * k, ho * wo), hp.shape


def _unpatch(dP, layer, padded_shape, ho: int, wo: int):
    """The transpose of `patches`: (B, K, C*k*k, Ho*Wo) cotangents summed back onto
    the input (B, K, C, H, W), padding cropped."""
    B, K = dP.shape[:2]
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    C, Hp, Wp = padded_shape[1:]
    dP = dP.reshape(B, K, C, k, k, ho, wo)
    dh = np.zeros((B, K, C, Hp, Wp))
    for i in range(k):
        for j in range(k):
            dh[..., i : i + s * ho : s, j : j + s * wo : s] += dP[:, :, :, i, j]
    return dh[..., p : Hp - p, p : Wp - p]


def _conv_backward(layer, params, h, out, delta):
    B, K = delta.shape[:2]
    O = layer.out_channels
    ho, wo = out.shape[2:]
    ds = (delta * ACT[layer.activation][1](out)[:, None]).reshape(B, K, O, ho * wo)
    P, padded = patches(h, layer.kernel_size, layer.stride, layer.padding)
    W = params[0].reshape(O, -1)
    dW = np.einsum("bkop,bqp->bkoq", ds, P).reshape(B, K, -1)  # (o, c, kh, kw) order
    db = ds.sum(axis=3)
    dP = np.einsum("oq,bkop->bkqp", W, ds)
    return _unpatch(dP, layer, padded, ho, wo), [dW, db]


def _pool_windows(h, layer):
    """(B, C, Ho, Wo, size*size): every pooling window of h, flattened row-major."""
    k, s = layer.size, layer.stride or layer.size
    ho, wo = ((n - k) // s + 1 for n in h.shape[2:])
    win = np.empty(h.shape[:2] + (ho, wo, k, k))
    for i in range(k):
        for j in range(k):
            win[..., i, j] = h[:, :, i : i + s * ho : s, j : j + s * wo : s]
    return win.reshape(*win.shape[:4], k * k)


def _pool_backward(layer, h, delta):
    """Each window's cotangent to its maximum (overlapping windows add up)."""
    k, s = layer.size, layer.stride or layer.size
    arg = _pool_windows(h, layer).argmax(axis=-1)  # (B, C, Ho, Wo)
    B, C, ho, wo = arg.shape
    dh = np.zeros(delta.shape[:2] + h.shape[1:])
    b, c = np.meshgrid(np.arange(B), np.arange(C), indexing="ij")
    for r in range(ho):
        for q in range(wo):
            rows, cols = r * s + arg[:, :, r, q] // k, q * s + arg[:, :, r, q] % k
            # advanced indices around a slice: the (B, C) axes come first, then K
            np.add.at(dh, (b, slice(None), c, rows, cols), delta[:, :, :, r, q].transpose(0, 2, 1))
    return dh
