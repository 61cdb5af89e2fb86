"""J v from one recorded forward pass, by forward-mode rules written per layer.

With the layer inputs a, the activation slopes sigma'(s) and the max-pool argmax
indices kept from the forward pass of `curvature()`, the tangent of z along v
(the parameter direction, split like theta into dW, db) is, layer by layer:

    Dense / Conv2d:  ds = linear(a, dW) + db + linear(dh, W)
    activation:      dh = sigma'(s) * ds
    MaxPool2d:       dh = dh at each window's argmax
    Flatten:         dh = dh flattened

so J v costs the matmuls (convs) of about two forward passes and runs no
forward pass of its own. Why not autograd: the double-backward trick gets J v
from the VJP of a kept J^T u0 graph, but torch's conv double backward always
also computes the unneeded input gradient (about three extra convs per layer),
and it pays for create_graph at setup; these rules do neither.
"""

from __future__ import annotations

import torch

from hfbench.models import Conv2d, Dense, MaxPool2d

from .network import Network, Tap, linear


def slope(activation: str, s: torch.Tensor) -> torch.Tensor | None:
    """sigma'(s), or None for a linear unit (the slope is 1)."""
    if activation == "sigmoid":
        p = torch.sigmoid(s)
        return p * (1 - p)
    if activation == "tanh":
        return 1 - torch.tanh(s).square()
    if activation == "relu":
        return (s > 0).to(s.dtype)  # 0 at s == 0, as autograd's relu rule
    return None


class Linearization:
    """v -> J v at fixed theta and batch, from the taps of one forward pass."""

    def __init__(self, network: Network, theta: torch.Tensor, taps: list[Tap]):
        self._net = network
        self._params = [p.detach() for p in network.unflatten(theta.detach())]
        self._steps = [_step(tap) for tap in taps]

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        """The tangent dz = J v, shaped like z."""
        params, dparams = iter(self._params), iter(self._net.unflatten(v))
        steps, dh = iter(self._steps), None
        for layer in self._net.spec.layers:
            if isinstance(layer, (Dense, Conv2d)):
                a, scale = next(steps)
                w, _ = next(params), next(params)
                ds = linear(layer, a, next(dparams), next(dparams))
                if dh is not None:  # the input's tangent; zero for the data layer
                    ds = _add_linear(layer, ds, dh, w)
                dh = ds if scale is None else ds * scale
            elif isinstance(layer, MaxPool2d):
                _, indices = next(steps)
                dh = _gather_windows(dh, indices)
            elif dh is not None:  # Flatten
                dh = dh.flatten(1)
        return dh


def _step(tap: Tap) -> tuple:
    """What jvp keeps per layer: (input, slope) or (None, argmax indices)."""
    if isinstance(tap.layer, MaxPool2d):
        return None, tap.outputs
    return tap.inputs.detach(), slope(tap.layer.activation, tap.outputs.detach())


def _add_linear(layer, ds: torch.Tensor, dh: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """ds + linear(dh, W), fused into one addmm for dense layers."""
    if isinstance(layer, Dense):
        return torch.addmm(ds, dh, w)
    return ds + linear(layer, dh, w, None)


def _gather_windows(dh: torch.Tensor | None, indices: torch.Tensor):
    if dh is None:
        return None
    picked = dh.flatten(2).gather(2, indices.flatten(2))
    return picked.view(indices.shape)
