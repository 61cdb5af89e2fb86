"""The vector algebra of the algorithm layer (hfbench.protocol.VectorOps) on jax arrays.

Every function is a plain jnp expression, so it runs eagerly and also traces
inside a jitted `lax.while_loop` body. Scalars never leave the device except
through `to_float`.
"""

from __future__ import annotations

import jax.numpy as jnp


class JaxOps:
    """VectorOps on 1-D jax arrays; results keep the dtype of the vector operands."""

    def zeros_like(self, x):
        return jnp.zeros_like(x)

    def vdot(self, a, b):
        """a . b accumulated in float64 (CG drifts in float32; DESIGN "known traps").

        Needs jax_enable_x64, which JaxBackend turns on.
        """
        return jnp.vdot(a.astype(jnp.float64), b.astype(jnp.float64))

    def axpy(self, alpha, x, y):
        """alpha * x + y. alpha is cast to x's dtype first: a float64 CG scalar
        would otherwise promote a float32 vector to float64."""
        return _like(alpha, x) * x + y

    def scale(self, alpha, x):
        return _like(alpha, x) * x

    def where(self, cond, a, b):
        return jnp.where(cond, a, b)

    def to_float(self, s) -> float:
        return float(s)  # a host read (a sync) by design


def _like(alpha, x):
    return jnp.asarray(alpha, dtype=x.dtype)
