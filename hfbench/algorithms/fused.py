"""Fusing a first-order step: the gradient and the update as one backend call.

    step = first_order_step(problem, update, config)
    x, state, info = step(x, state, batch)

`update(ops, config, x, state, loss, g) -> (x, state, info)` is pure vector algebra
(info: 0-d device scalars, never read here). A backend whose problem offers
`fuse_first_order(update, config)` compiles value_and_grad and the update together
(JAX: one jit, with config static and the state an argument); any other backend
gets the plain composition, which still makes no host read.
"""

from __future__ import annotations

from typing import Callable


def first_order_step(problem, update: Callable, config) -> Callable:
    fuse = getattr(problem, "fuse_first_order", None)
    if fuse is not None:
        return fuse(update, config)
    ops = problem.backend.ops

    def step(x, state, batch):
        return update(ops, config, x, state, *problem.value_and_grad(x, batch))

    return step
