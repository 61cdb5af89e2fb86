"""Running CG: the backend owns the loop, this module turns its state into a record.

`backend.iterate(loop, config, operands, x0)` runs `loop.init`, then `loop.step`
while `loop.cont` holds: JAX in one jitted `lax.while_loop`, torch as a Python
loop (`python_iterate`, which lives beside the protocol in `hfbench.protocol_helpers`)
that reads the stop condition on the host only from iteration
`loop.checks_from(config, operands)` on, to save syncs.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from ..protocol_helpers import python_iterate  # re-exported: the loop lives beside the protocol
from .cg import (
    CGConfig,
    CGState,
    CGStatus,
    cg_init,
    cg_product,
    cg_save,
    cg_should_continue,
    cg_step,
    cg_update,
    make_operands,
)
from .lanczos import RitzValues, ritz_values


class Loop(NamedTuple):
    """Module-level pure functions (stable identities: static under jit)."""

    init: Callable
    step: Callable
    cont: Callable
    checks_from: Callable  # (config, operands) -> first iteration that needs a host check
    # Optional split, step = finish(state, update(state, product(state))), for eager
    # backends that compile `update` (vector algebra, no host reads) between the
    # opaque operator `product` and the eager bookkeeping `finish`.
    product: Callable | None = None
    update: Callable | None = None
    finish: Callable | None = None


def _cg_checks_from(config: CGConfig, operands) -> int:
    # An indefinite operator can stop CG at any step, so it is watched from the start;
    # otherwise no rule can fire before k_min (Martens) or the count (fixed).
    if getattr(operands.op, "kind", "") == "hessian" or config.stop == "residual":
        return 0
    return config.limit if config.stop == "fixed" else config.k_min


def _cont(ops, config, operands, state):
    return cg_should_continue(config, state)


CG_LOOP = Loop(cg_init, cg_step, _cont, _cg_checks_from, cg_product, cg_update, cg_save)


class CGSolution(NamedTuple):
    """A solve's record: the iterate, why it stopped, and its statistics."""

    x: Any  # final iterate (device array)
    status: CGStatus
    num_steps: int
    num_gv: int
    phi: np.ndarray  # phi(x_0), ..., phi(x_num_steps), float64
    saved: list  # [(iteration, iterate)] at ceil(gamma^j), ascending
    ritz: RitzValues
    lanczos: tuple | None = None  # (alphas, betas) of the steps taken, float64 host arrays


def cg_solve(backend, config: CGConfig, op, b, damping, m_inv=None, x0=None) -> CGSolution:
    """Solve (op + damping I) x = b with preconditioned CG; see `hfbench.algorithms.cg`."""
    ops = backend.ops
    operands = make_operands(ops, config, op, b, damping, m_inv)
    state: CGState = backend.iterate(CG_LOOP, config, operands, x0)
    return _solution(backend, config, state)


def _solution(backend, config: CGConfig, s: CGState) -> CGSolution:
    n = int(backend.to_numpy(s.i))
    phi, alphas, betas = (np.asarray(backend.to_numpy(a)) for a in (s.phi, s.alphas, s.betas))
    points = config.save_points if config.save_iterates else ()
    saved = [(p, s.saved[k]) for k, p in enumerate(points) if p <= n]
    return CGSolution(
        x=s.x, status=CGStatus(int(backend.to_numpy(s.status))), num_steps=n,
        num_gv=int(backend.to_numpy(s.num_gv)), phi=phi[: n + 1], saved=saved,
        ritz=ritz_values(alphas[:n], betas[:n]),
    )
