"""Fusing device work: several backend calls as one, where the backend can.

    run = fused(problem, fn, static)      # fn(problem, static, *args) -> pytree
    out = run(*args)

`fn` calls only the problem, the backend's loops and `ops`, and reads nothing on the
host, so a tracing backend can compile it whole: a problem with `fuse(fn, static)`
(JAX: one jit, `static` a hashable static argument, Batch arguments split into
arrays and metadata) does; any other backend calls `fn` as it is, which is the same
computation op by op. Used for the first-order steps (gradient, update and their
diagnostics) and for the front half of the Hessian-free steps (gradient, curvature,
preconditioner and the CG solve), so that a step costs the dispatches a
hand-written loop would make, not one per vector operation.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable


def traces(problem) -> bool:
    """Whether `fused` compiles on this problem (then host numbers would be constants)."""
    return getattr(problem, "fuse", None) is not None


def fused(problem, fn: Callable, static) -> Callable:
    fuse = getattr(problem, "fuse", None)
    if fuse is not None:
        return fuse(fn, static)
    return lambda *args: fn(problem, static, *args)


def norm(ops, x):
    """|x| for a step-norm diagnostic: one op where the backend has `norm`."""
    own = getattr(ops, "norm", None)
    return own(x) if own is not None else ops.vdot(x, x) ** 0.5


def lerp(ops, a, b, w):
    """a + w (b - a), w a Python number: one pass where the backend has `lerp`."""
    own = getattr(ops, "lerp", None)
    return own(a, b, w) if own is not None else ops.axpy(w, b - a, a)


def in_dtype(ops, s, like):
    """A scalar to add to `like`: a Python number as it is; a device scalar in like's
    dtype (JAX would promote a float32 vector plus a float64 scalar to float64)."""
    return s if isinstance(s, (int, float)) else ops.asarray(s, like)


def _first_order(problem, static, x, state, batch):
    update, config = static
    return update(problem.backend.ops, config, x, state, *problem.value_and_grad(x, batch))


def first_order_step(problem, update: Callable, config) -> Callable:
    """step(x, state, batch) -> update(ops, config, x, state, loss, g), fused."""
    return fused(problem, _first_order, (update, config))


def _loss_at(problem, static, x, p, alpha, batch):
    return problem.loss(problem.backend.ops.axpy(alpha, p, x), batch)


def loss_at(problem) -> Callable:
    """f(x + alpha p) on a batch as one call: run(x, p, alpha, batch) -> 0-d array."""
    return fused(problem, _loss_at, None)


# Whether a step may leave its info on the device (0-d arrays, CG histories, and a
# `_host` function of the row that finishes it once read back). The runner turns it
# on around its training loop and reads a stretch of steps back at each sync; a
# direct caller of `alg.step` gets host numbers, as always.
_LAZY = contextvars.ContextVar("hfbench_lazy_info", default=False)


@contextlib.contextmanager
def lazy_info():
    token = _LAZY.set(True)
    try:
        yield
    finally:
        _LAZY.reset(token)


def info_may_stay_on_device() -> bool:
    return _LAZY.get()
