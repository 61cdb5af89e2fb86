"""The functional forward pass z = f(theta, X) of a `ModelSpec`, in torch.

Layers follow `hfbench.models.spec`: Dense s = h W + b with W (in, out); Conv2d
s = W * h + b, a cross-correlation on NCHW inputs with an OIHW kernel; each
parametric layer then applies its activation. MaxPool2d has no padding; Flatten
keeps (C, H, W) order. Parameters come from one flat vector through
`models.unflatten`, so they are views: the gradient lands in the flat layout.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from hfbench import models
from hfbench.models import Conv2d, Dense, MaxPool2d


def _identity(s: torch.Tensor) -> torch.Tensor:
    return s


ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": _identity,
}


class Tap(NamedTuple):
    """A parametric layer's input a and pre-activation output s, kept for closed forms."""

    layer: Dense | Conv2d
    inputs: torch.Tensor
    outputs: torch.Tensor


class Network:
    """f(theta, X) for one spec; `calls` counts how often the forward pass ran."""

    def __init__(self, spec: models.ModelSpec):
        self.spec = spec
        self.calls = 0

    def __call__(self, theta: torch.Tensor, x: torch.Tensor, taps: list | None = None):
        """Return z (N, K). With `taps`, append a Tap per parametric layer.

        In tap mode every pre-activation output requires grad even when theta
        does not, so one backward pass can ask for dl/ds per layer (the deltas)
        without computing any weight gradient.
        """
        self.calls += 1
        params = iter(models.unflatten(self.spec, theta))
        h = x.reshape(x.shape[0], *self.spec.input_shape)
        for layer in self.spec.layers:
            if isinstance(layer, (Dense, Conv2d)):
                s = linear(layer, h, next(params), next(params))
                if taps is not None:
                    s = _tap(taps, layer, h, s)
                h = ACTIVATIONS[layer.activation](s)
            elif isinstance(layer, MaxPool2d):
                h = F.max_pool2d(h, layer.size, layer.stride or layer.size)
            else:  # Flatten
                h = h.flatten(1)
        return h


def linear(layer: Dense | Conv2d, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """The affine part of a parametric layer: h W + b, or conv2d(h, W) + b."""
    if isinstance(layer, Dense):
        return torch.addmm(b, h, w)
    return F.conv2d(h, w, b, stride=layer.stride, padding=layer.padding)


def _tap(taps: list, layer, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    if not s.requires_grad:  # the first layer when theta is a constant: make s a leaf
        s = s.detach().requires_grad_()
    taps.append(Tap(layer, h, s))
    return s
