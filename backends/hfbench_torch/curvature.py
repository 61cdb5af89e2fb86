"""Curvature operators that reuse one forward pass for every product.

GGN and empirical Fisher share the form C v = (1/B) sum_i J_i^T M_i J_i v + l2 v
(Martens 2010 §4.2): M_i = H_i, the closed-form loss Hessian in z, for `ggn`, and
M_i = r_i r_i^T with r_i = dl_i/dz_i for `fisher`, since g_i = J_i^T r_i.

`curvature()` runs the forward pass once, keeping z's autograd graph and the
taps that `tangent.Linearization` needs. Each matvec is then J v by forward-mode
rules on the kept taps, the weighting by M, and one backward pass through the
kept graph for J^T: no forward pass. We do not use torch.func.linearize: it costs
about 17 gradients to trace here.

`hessian` is the true Hessian of the objective: H v = d(g . v)/dtheta with g
built once with create_graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hfbench.errors import HFBenchError

from .tangent import Linearization


class JacobianOperator:
    """C v = J^T (M (J v)) + l2 v, with M already scaled by 1/B."""

    def __init__(self, kind: str, th, z, linearization: Linearization, weigh: Callable, l2: float):
        self.kind, self.size = kind, th.numel()
        self._th, self._z, self._lin = th, z, linearization
        self._weigh, self._l2 = weigh, l2

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        check_vector(v, self._th)
        with torch.no_grad():  # J v needs no graph, even for a v that requires grad
            w = self._weigh(self._lin.jvp(v))
        out = torch.autograd.grad(self._z, self._th, w, retain_graph=True)[0]
        return out.add(v, alpha=self._l2) if self._l2 else out


class HessianOperator:
    """H v = d(g . v)/dtheta, g = grad of the objective kept with its graph."""

    kind = "hessian"

    def __init__(self, th, objective: torch.Tensor):
        self.size, self._th = th.numel(), th
        self._g = torch.autograd.grad(objective, th, create_graph=True)[0]
        self.value = objective.detach()  # f and g come with the setup: value_grad_curvature

    @property
    def grad(self) -> torch.Tensor:
        return self._g.detach()

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        check_vector(v, self._th)
        return torch.autograd.grad(self._g, self._th, v, retain_graph=True)[0]


def ggn(th, z, lin: Linearization, y, loss, l2: float) -> JacobianOperator:
    """G v = (1/B) sum_i J_i^T H_i J_i v + l2 v; H_i from `loss` in closed form."""
    state = loss.curvature_state(z.detach(), y)
    inv_b = 1.0 / z.shape[0]

    def weigh(u):
        return loss.hessian_apply(state, u) * inv_b

    return JacobianOperator("ggn", th, z, lin, weigh, l2)


def fisher(th, z, lin: Linearization, y, loss, l2: float) -> JacobianOperator:
    """F v = (1/B) sum_i g_i (g_i . v) + l2 v, with g_i = J_i^T r_i."""
    r = loss.residual(z.detach(), y)
    inv_b = 1.0 / z.shape[0]

    def weigh(u):
        return r * ((r * u).sum(dim=1, keepdim=True) * inv_b)

    return JacobianOperator("fisher", th, z, lin, weigh, l2)


def check_vector(v, like: torch.Tensor) -> None:
    """A clear error for a vector of the wrong kind, shape, dtype or device."""
    if not isinstance(v, torch.Tensor):
        raise HFBenchError(
            f"matvec: v is a {type(v).__name__}, expected a torch tensor; convert it "
            "with backend.asarray(v)"
        )
    if v.shape != like.shape or v.dtype != like.dtype or v.device != like.device:
        raise HFBenchError(
            f"matvec: v has shape {tuple(v.shape)}, {v.dtype} on {v.device}; expected "
            f"shape {tuple(like.shape)}, {like.dtype} on {like.device} (the parameters')"
        )
