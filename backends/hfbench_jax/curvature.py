"""Curvature products that reuse one linearization (Martens 2010 §4.2; Schraudolph 2002).

curvature() runs a jitted `setup(theta, x, y) -> (lin, data)` once per outer step;
each matvec runs a jitted `matvec(lin, data, v)` that never reruns the forward pass:

    ggn:     C v = (1/B) J^T H J v + l2 v       H = blockdiag(H_i), closed form in z
    fisher:  C v = (1/B) J^T M J v + l2 v       M_i = r_i r_i^T, r_i = dl_i/dz_i
    hessian: C v = d/de grad(objective)(theta + e v) = H_obj v   (l2 I inside)

`lin` is the tangent map of `jax.linearize`, a `jax.tree_util.Partial` whose
residuals are its leaves: it crosses the jit boundary as an argument, and its
function is fixed when `setup` is traced, so the matvec's jit cache stays at one
entry across outer steps (new theta, same shapes).

The Hessian is the exception: its operator keeps (theta, x, y) and each product is
forward-over-reverse, jvp(grad f). Inside the jitted loops that use it (CG, the dense
Newton build) XLA computes the primal pass once for the whole loop, so a product
costs what a linearized one does (hf_newton and adaptive_hf steps measured the same
either way), while passing the linearization's residuals across the jit boundary
made the dense build of digits 64-8-10 (610 products) 1.3x slower than the same
build traced whole, and the setup jit cost another 0.5 ms a step. A product called
alone, outside any loop, reruns the gradient (tests and single calls only).
"""

from __future__ import annotations

from typing import Callable

import jax

from .losses import JaxLoss, fisher_apply


def gauss_newton_fns(forward: Callable, loss: JaxLoss, kind: str, l2: float):
    """(setup, matvec) for C = (1/B) J^T M J + l2 I, M = H (ggn) or r r^T (fisher)."""
    if kind == "ggn":
        data_fn = lambda z, y: loss.hess_data(z)
        apply_fn = loss.hess_apply
    else:
        data_fn = loss.residual
        apply_fn = fisher_apply

    def setup(theta, x, y):
        z, lin = jax.linearize(lambda t: forward(t, x), theta)
        return lin, data_fn(z, y)

    def matvec(lin, data, v):
        jv = lin(v)  # (B, K): J v
        u = apply_fn(data, jv) / jv.shape[0]
        (jtu,) = jax.linear_transpose(lin, v)(u)  # J^T u, the transpose of the same map
        return jtu + l2 * v if l2 else jtu

    return jax.jit(setup), jax.jit(matvec)


def hessian_fns(objective: Callable):
    """(setup, matvec) for the Hessian of objective(theta, x, y): forward-over-reverse."""

    def setup(theta, x, y):
        return None, (theta, x, y)  # nothing to precompute: see the module docstring

    def matvec(lin, data, v):
        theta, x, y = data
        return jax.jvp(jax.grad(lambda t: objective(t, x, y)), (theta,), (v,))[1]

    return setup, jax.jit(matvec)  # setup: no work, so no jit dispatch either


@jax.tree_util.register_pytree_node_class
class JaxCurvature:
    """C v for one (theta, batch), with C built by `curvature()`.

    A pytree (leaves: the linearization's residuals), so a jitted CG loop can take
    the operator as an argument instead of baking gigabytes of residuals into its
    compiled program as constants.
    """

    def __init__(self, kind: str, size: int, dtype, matvec_fn, lin, data):
        self.kind, self.size, self.dtype = kind, size, dtype
        self._matvec_fn, self._lin, self._data = matvec_fn, lin, data

    def matvec(self, v):
        """C v; v must be a 1-D array of length `size` in the backend's dtype."""
        if getattr(v, "shape", None) != (self.size,) or v.dtype != self.dtype:
            from hfbench.errors import HFBenchError

            raise HFBenchError(
                f"{self.kind} matvec: v has shape {getattr(v, 'shape', None)} and dtype "
                f"{getattr(v, 'dtype', None)}; expected ({self.size},) {self.dtype}, like "
                "the parameter vector (make it with backend.asarray or ops)"
            )
        return self._matvec_fn(self._lin, self._data, v)

    def tree_flatten(self):
        aux = (self.kind, self.size, self.dtype, self._matvec_fn)
        return (self._lin, self._data), aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*aux, *children)

    def __repr__(self) -> str:
        return f"JaxCurvature(kind={self.kind!r}, size={self.size})"
