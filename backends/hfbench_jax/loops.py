"""The JAX backend owns the algorithm layer's loops: one jitted `lax.while_loop`.

`loop` (a NamedTuple of module-level functions), `ops` and `config` (frozen) are
static and hashable, so the compiled loop is cached across outer steps; every
array, the curvature operator's residuals and lambda included, is an argument.
"""

from __future__ import annotations

from functools import partial

import jax


@partial(jax.jit, static_argnums=(0, 1, 2))
def _iterate(loop, ops, config, operands, x0):
    state = loop.init(ops, config, operands, x0)
    return jax.lax.while_loop(
        lambda s: loop.cont(ops, config, operands, s),
        lambda s: loop.step(ops, config, operands, s),
        state,
    )


def iterate(loop, ops, config, operands, x0=None):
    """Run `loop` to its stop condition; returns the final state (on the device)."""
    return _iterate(loop, ops, config, operands, x0)
