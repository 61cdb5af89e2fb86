"""The three matching losses in torch: value, dl/dz, closed-form H u, prediction.

See `hfbench.losses` for the table. Per example, summed over outputs:

    softmax_cross_entropy  l = -log softmax(z)[y]   r = p - onehot(y)   H u = p*u - p (p.u)
    sigmoid_cross_entropy  l = sum softplus(z)-t z  r = p - t           H u = p (1 - p) u
    squared_error          l = 1/2 |z - t|^2        r = z - t           H u = u

`curvature_state` precomputes, once per `curvature()` call and detached, what H u
needs, so each Gv costs only a few elementwise ops on (B, K).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SoftmaxCrossEntropy:
    name = "softmax_cross_entropy"

    @staticmethod
    def value(z, y):
        return F.cross_entropy(z, y, reduction="none")

    @staticmethod
    def mean_value(z, y):
        """The batch mean in one op."""
        return F.cross_entropy(z, y)

    @staticmethod
    def residual(z, y):
        p = torch.softmax(z, dim=1)
        # scatter, not one_hot: one_hot may check label ranges with a host sync
        return p - torch.zeros_like(p).scatter_(1, y[:, None], 1.0)

    @staticmethod
    def curvature_state(z, y):
        return torch.softmax(z, dim=1)

    @staticmethod
    def hessian_apply(p, u):
        return p * u - p * (p * u).sum(dim=1, keepdim=True)

    @staticmethod
    def prediction(z):
        return torch.softmax(z, dim=1)


class SigmoidCrossEntropy:
    name = "sigmoid_cross_entropy"

    @staticmethod
    def value(z, t):
        # the stable softplus(z) - t z; its autograd rule gives sigmoid(z) - t exactly
        return F.binary_cross_entropy_with_logits(z, t, reduction="none").sum(dim=1)

    @staticmethod
    def residual(z, t):
        return torch.sigmoid(z) - t

    @staticmethod
    def curvature_state(z, t):
        p = torch.sigmoid(z)
        return p * (1 - p)

    @staticmethod
    def hessian_apply(h, u):
        return h * u

    @staticmethod
    def prediction(z):
        return torch.sigmoid(z)


class SquaredError:
    name = "squared_error"

    @staticmethod
    def value(z, t):
        return 0.5 * (z - t).square().sum(dim=1)

    @staticmethod
    def residual(z, t):
        return z - t

    @staticmethod
    def curvature_state(z, t):
        return None

    @staticmethod
    def hessian_apply(state, u):
        return u

    @staticmethod
    def prediction(z):
        return z


LOSSES = {cls.name: cls for cls in (SoftmaxCrossEntropy, SigmoidCrossEntropy, SquaredError)}


class Scaled:
    """c * l(z, t) (ModelSpec.loss_scale): value, residual and H u all scale by c."""

    def __init__(self, base, scale: float):
        self.base, self.scale, self.name = base, float(scale), base.name
        self.curvature_state, self.prediction = base.curvature_state, base.prediction

    def value(self, z, y):
        return self.scale * self.base.value(z, y)

    def residual(self, z, y):
        return self.scale * self.base.residual(z, y)

    def hessian_apply(self, state, u):
        return self.scale * self.base.hessian_apply(state, u)


def loss_of(spec):
    """The spec's loss, scaled when its loss_scale is not 1 (no extra op when it is)."""
    base = LOSSES[spec.loss]
    return base if spec.loss_scale == 1 else Scaled(base, spec.loss_scale)
