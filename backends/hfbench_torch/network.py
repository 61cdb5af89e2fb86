"""The functional forward pass z = f(theta, X) of a `ModelSpec`, in torch.

Layers follow `hfbench.models.spec`: Dense s = h W + b with W (in, out); Conv2d
s = W * h + b, a cross-correlation on NCHW inputs with an OIHW kernel; each
parametric layer then applies its activation. MaxPool2d has no padding; Flatten
keeps (C, H, W) order. Parameters come from one flat vector through
`torch.split`, so they are views: the gradient lands in the flat layout.
"""

from __future__ import annotations

import math
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
    """What a layer's closed forms need, kept from one forward pass.

    Dense / Conv2d: inputs = the layer input a, outputs = the pre-activation s.
    MaxPool2d: inputs = None, outputs = the argmax indices of each window.
    """

    layer: Dense | Conv2d | MaxPool2d
    inputs: torch.Tensor | None
    outputs: torch.Tensor


class Network:
    """f(theta, X) for one spec; `calls` counts how often the forward pass ran."""

    def __init__(self, spec: models.ModelSpec):
        self.spec = spec
        self.calls = 0
        self._shapes = models.param_shapes(spec)
        self._sizes = [math.prod(s) for s in self._shapes]
        self._dense_only = all(isinstance(layer, Dense) for layer in spec.layers)
        self._acts = [None if getattr(layer, "activation", "linear") == "linear"
                      else ACTIVATIONS[layer.activation] for layer in spec.layers]

    def _dense(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The MLP forward pass with nothing but its ops (the common case, on a small net
        every Python call shows in a step's time)."""
        p = self.unflatten(theta)
        h = x if x.dim() == 2 else x.reshape(x.shape[0], -1)
        for i, act in enumerate(self._acts):
            h = torch.addmm(p[2 * i + 1], h, p[2 * i])
            if act is not None:
                h = act(h)
        return h

    def __call__(self, theta: torch.Tensor, x: torch.Tensor, taps: list | None = None):
        """Return z (N, K). With `taps`, append a Tap per Dense, Conv2d and MaxPool2d.

        In tap mode every pre-activation output requires grad even when theta
        does not, so one backward pass can ask for dl/ds per layer (the deltas)
        without computing any weight gradient.
        """
        self.calls += 1
        if taps is None and self._dense_only:
            return self._dense(theta, x)
        params = iter(self.unflatten(theta))
        h = x if x.dim() == 1 + len(self.spec.input_shape) else x.reshape(x.shape[0], *self.spec.input_shape)
        for layer in self.spec.layers:
            if isinstance(layer, (Dense, Conv2d)):
                s = linear(layer, h, next(params), next(params))
                if taps is not None:
                    s = _tap(taps, layer, h, s)
                h = ACTIVATIONS[layer.activation](s)
            elif isinstance(layer, MaxPool2d):
                h = _max_pool(layer, h, taps)
            else:  # Flatten
                h = h.flatten(1)
        return h

    def unflatten(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """The parameter arrays as views of theta, in canonical order.

        One split rather than a slice per array (as `models.unflatten` does): the
        backward of a split writes the flat gradient once, while each slice's
        backward fills a zero vector of the full length and adds it in, which
        cost about a quarter of a gradient on the autoencoder.
        """
        # split_with_sizes skips Tensor.split's Python wrapper, and a bias part is
        # already its own shape: a view and its backward node cost a small net's step
        # about 10%
        parts = theta.split_with_sizes(self._sizes)
        return [p if len(s) == 1 else p.view(s) for p, s in zip(parts, self._shapes)]


def linear(layer: Dense | Conv2d, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
    """The affine part of a parametric layer: h W + b, or conv2d(h, W) + b."""
    if isinstance(layer, Conv2d):
        return F.conv2d(h, w, b, stride=layer.stride, padding=layer.padding)
    return h @ w if b is None else torch.addmm(b, h, w)


def _max_pool(layer: MaxPool2d, h: torch.Tensor, taps: list | None) -> torch.Tensor:
    stride = layer.stride or layer.size
    if taps is None:
        return F.max_pool2d(h, layer.size, stride)
    out, indices = F.max_pool2d(h, layer.size, stride, return_indices=True)
    taps.append(Tap(layer, None, indices))
    return out


def _tap(taps: list, layer, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    if not s.requires_grad:  # the first layer when theta is a constant: make s a leaf
        s = s.detach().requires_grad_()
    taps.append(Tap(layer, h, s))
    return s
