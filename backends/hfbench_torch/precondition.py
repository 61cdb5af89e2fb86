"""The diagonal empirical Fisher, (1/B) sum_i g_i * g_i, from one backward pass.

One forward pass keeps each parametric layer's input a and pre-activation output
s; one backward pass of sum_i l_i gives delta = dl/ds for every layer at once
(example i's rows hold only example i's delta, since examples do not mix). The
per-example weight gradient is then a closed form in a and delta (Martens 2010
§4.7 uses this diagonal for his preconditioner):

    Dense:   g_i(W) = a_i delta_i^T, so sum_i g_i(W)^2 = (a^2)^T (delta^2)
             g_i(b) = delta_i,       so sum_i g_i(b)^2 = sum_i delta_i^2
    Conv2d:  g_i(W)[o, k] = sum_p delta_i[o, p] patches_i[k, p], patches from
             F.unfold (k runs over (in, kh, kw), the canonical kernel order)
             g_i(b)[o]    = sum_p delta_i[o, p]

No weight gradient of the batch is formed and no loop runs over examples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hfbench.models import Dense

from .network import Network, Tap


def diag_fisher(network: Network, loss, theta, x, y) -> torch.Tensor:
    """(1/B) sum_i g_i * g_i in the canonical flat layout (no l2 term)."""
    taps: list[Tap] = []
    with torch.enable_grad():
        z = network(theta.detach(), x, taps)
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
    k = layer.kernel_size
    patches = F.unfold(a, k, padding=layer.padding, stride=layer.stride)  # (B, C*k*k, P)
    d = delta.flatten(2)  # (B, O, P)
    per_example = torch.bmm(d, patches.transpose(1, 2))  # (B, O, C*k*k)
    w = per_example.square().sum(dim=0).reshape(layer.param_shapes()[0])
    return w, d.sum(dim=2).square().sum(dim=0)
