"""The diagonal empirical Fisher, (1/B) sum_i g_i * g_i, from one backward pass.

One forward pass keeps each parametric layer's input a and pre-activation output
s; one backward pass of sum_i l_i gives delta = dl/ds for every layer at once
(example i's rows hold only example i's delta, since examples do not mix). The
per-example weight gradient is then a closed form in a and delta (Martens 2010
§4.7 uses this diagonal for his preconditioner):

    Dense:   g_i(W) = a_i delta_i^T, so sum_i g_i(W)^2 = (a^2)^T (delta^2)
             g_i(b) = delta_i,       so sum_i g_i(b)^2 = sum_i delta_i^2
    Conv2d:  g_i(W)[o, k] = sum_p delta_i[o, p] patches_i[k, p], k running over
             (in, kh, kw), the canonical kernel order, and p over output positions
             g_i(b)[o]    = sum_p delta_i[o, p]

No weight gradient of the batch is formed and no loop runs over examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hfbench.models import Conv2d, Dense

from .network import Network, Tap


def diag_fisher(network: Network, loss, theta, x, y) -> torch.Tensor:
    """(1/B) sum_i g_i * g_i in the canonical flat layout (no l2 term)."""
    taps: list[Tap] = []
    with torch.enable_grad():
        z = network(theta.detach(), x, taps)
        taps = [tap for tap in taps if isinstance(tap.layer, (Dense, Conv2d))]
        total = loss.value(z, y).sum()
        deltas = torch.autograd.grad(total, [tap.outputs for tap in taps])
    with torch.no_grad():
        parts = [p for tap, d in zip(taps, deltas) for p in _squared_grads(tap, d)]
        return torch.cat([p.reshape(-1) for p in parts]) * (1.0 / x.shape[0])


def _squared_grads(tap: Tap, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_i g_i^2 for the layer's weight and bias, in canonical shapes."""
    a = tap.inputs.detach()
    if isinstance(tap.layer, Dense):
        d2 = delta.square()
        return a.square().T @ d2, d2.sum(dim=0)
    return _conv_squared_grads(tap.layer, a, delta)


def _conv_squared_grads(layer, a: torch.Tensor, delta: torch.Tensor):
    patches = _patches(a, layer.kernel_size, layer.stride, layer.padding)  # (B, C*k*k, P)
    d = delta.flatten(2)  # (B, O, P)
    per_example = torch.bmm(d, patches.transpose(1, 2))  # (B, O, C*k*k)
    w = per_example.square().sum(dim=0).reshape(layer.param_shapes()[0])
    return w, d.sum(dim=2).square().sum(dim=0)


def _patches(a: torch.Tensor, k: int, stride: int, padding: int) -> torch.Tensor:
    """The im2col matrix of each example, (B, C*k*k, P): what F.unfold returns.

    Built from a strided view (Tensor.unfold) and one copy: bit-identical to
    F.unfold and 3 to 5 times faster on CPU here (F.unfold's im2col loops over
    examples), which keeps the LeNet preconditioner near a gradient's cost.
    """
    if padding:
        a = F.pad(a, (padding,) * 4)
    view = a.unfold(2, k, stride).unfold(3, k, stride)  # (B, C, Ho, Wo, k, k)
    b, c, ho, wo = view.shape[:4]
    return view.permute(0, 1, 4, 5, 2, 3).reshape(b, c * k * k, ho * wo)
