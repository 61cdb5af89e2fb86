"""The front half of a Hessian-free step: everything up to and including CG.

    f, g = value_and_grad(x; gradient batch)           (Martens 2010 Alg. 1, lines 2-3)
    C    = curvature(x; curvature batch)               (§4.2, §4.5)
    M^-1 = (diag F + l2 + lambda)^-alpha, optional     (§4.7)
    p    = CG on (C + lambda I) p = -g from x0         (§4.4-4.6)

None of it depends on a value the host decides, so a tracing backend runs it as one
call (`fused`): on JAX one jit instead of a dozen dispatches, which on a small net is
most of a step's time. The host then reads every scalar it branches on in one
transfer (`host_solution`; where the backend can `pack`, the front packs those
scalars into one device buffer, so that transfer is one read, not one per value).
g.p and p.p of the final iterate come along, since the reduction ratio, the line
search and the step norm need them whenever the step is not backtracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from .cg import CGConfig, CGState, CGStatus, make_operands
from .lanczos import RitzValues, ritz_values
from .solve import CG_LOOP, CGSolution


@dataclass(frozen=True)
class FrontConfig:
    """What the front half needs of an algorithm's config (hashable: a static argument)."""

    cg: CGConfig
    curvature: str = "ggn"
    preconditioner: bool = False
    precond_exponent: float = 0.75
    warm_start_decay: float = 1.0
    # f(x + a x_cg) on the gradient batch, when the step will surely need it (a line
    # search's first trial, rho without backtracking): computed here, it costs no
    # dispatch and no read of its own
    f_at_step: float | None = None


class Front(NamedTuple):
    loss: Any  # f(x) on the gradient batch, 0-d
    g: Any
    cg: CGState
    gx: Any  # g.x_cg (float64, 0-d)
    xx: Any  # x_cg.x_cg
    f_step: Any = None  # f(x + f_at_step x_cg), when asked for
    host: Any = None  # _host_values packed into one float64 array, where ops can pack


def front(problem, fc: FrontConfig, x, lam, p_prev, batch, cbatch,
          mark: Callable[[str], None] = lambda name: None) -> Front:
    """The device work of one step; p_prev (or None) is the warm start before decay."""
    ops = problem.backend.ops
    both = getattr(problem, "value_grad_curvature", None)
    if cbatch is None and both is not None:  # one batch: a backend may share the work
        loss, g, op = both(x, batch, fc.curvature)
        mark("curvature")
    else:
        loss, g = problem.value_and_grad(x, batch)
        mark("grad")
        op = problem.curvature(x, batch if cbatch is None else cbatch, fc.curvature)
        mark("curvature")
    m_inv = None
    if fc.preconditioner:
        d = problem.precondition(x, batch)
        m_inv = (d + (problem.spec.l2 + lam)) ** (-fc.precond_exponent)
    mark("precondition")
    x0 = None if p_prev is None else ops.scale(fc.warm_start_decay, p_prev)
    operands = make_operands(ops, fc.cg, op, ops.scale(-1.0, g), lam, m_inv)
    s = problem.backend.iterate(CG_LOOP, fc.cg, operands, x0)
    mark("cg")
    f_step = None
    if fc.f_at_step is not None:
        f_step = problem.loss(ops.axpy(fc.f_at_step, s.x, x), batch)
    return Front(loss, g, s, ops.vdot(g, s.x), ops.vdot(s.x, s.x), f_step)


def front_for_host(problem, fc: FrontConfig, x, lam, p_prev, batch, cbatch) -> Front:
    """`front` for a caller that decides on the host (host_solution next): where the
    backend can `pack`, everything the host reads travels as one float64 buffer and
    the rest of the CG state stays behind, so the fused call returns g, x_cg and the
    saved iterates, not 19 arrays. (On a CPU each output of a jitted call costs ~2 us
    and each array read back ~9 us: on a 2 ms sgn step the difference was ~0.1 ms.)"""
    fr = front(problem, fc, x, lam, p_prev, batch, cbatch)
    pack = getattr(problem.backend.ops, "pack", None)
    if pack is None:
        return fr
    values = _host_values(fr)
    shapes = [None if v is None else tuple(v.shape) for v in values]
    if shapes != _host_layout(fc):  # shapes are static: this runs once, while tracing
        raise AssertionError(f"front: host values of shapes {shapes}, expected {_host_layout(fc)}")
    s = fr.cg
    kept = CGState(i=None, x=s.x, r=None, p=None, rz=None, phi=None, alphas=None, betas=None,
                   saved=s.saved, status=None, num_gv=None)
    return Front(None, fr.g, kept, None, None, None, host=pack(values))


def _host_values(fr: Front) -> list:
    """What the host reads of a front, in host_solution's order."""
    s = fr.cg
    return [fr.loss, s.i, s.status, s.num_gv, s.phi, s.alphas, s.betas, fr.gx, fr.xx, fr.f_step]


def _host_layout(fc: FrontConfig) -> list:
    """The shapes of _host_values: scalars, and CG's histories of limit + 1 (phi) and
    limit values (a history of one value is still an array, not a scalar)."""
    n = fc.cg.limit
    return [(), (), (), (), (n + 1,), (n,), (n,), (), (), None if fc.f_at_step is None else ()]


def host_solution(backend, fc: FrontConfig, fr: Front, ritz: bool = True):
    """(f(x), the CG record, g.x_cg, |x_cg|^2, f_step or None), every scalar read in one
    transfer. ritz=False leaves the record's Ritz values out (NaN), for a caller that
    computes them later, outside the training clock, from the record's `lanczos`."""
    s = fr.cg
    if fr.host is None:
        values = to_host(backend, _host_values(fr))
    else:
        values = _unpack(backend.to_numpy(fr.host), _host_layout(fc))
    loss, i, status, num_gv, phi, alphas, betas, gx, xx, f_step = values
    n = int(i)
    points = fc.cg.save_points if fc.cg.save_iterates else ()
    alphas, betas = np.asarray(alphas, dtype=np.float64)[:n], np.asarray(betas, dtype=np.float64)[:n]
    sol = CGSolution(
        x=s.x, status=CGStatus(int(status)), num_steps=n, num_gv=int(num_gv),
        phi=np.asarray(phi, dtype=np.float64)[: n + 1],
        saved=[(p, s.saved[k]) for k, p in enumerate(points) if p <= n],
        ritz=ritz_values(alphas, betas) if ritz else _NO_RITZ,
        lanczos=(alphas, betas),
    )
    return float(loss), sol, float(gx), float(xx), (None if f_step is None else float(f_step))


_NO_RITZ = RitzValues(float("nan"), float("nan"), float("nan"))


def _unpack(buf, shapes: list) -> list:
    """A packed float64 buffer split by `shapes`: a () entry as a number, a 1-D one as
    an array, None as None (every value packed is exact in float64; counts come back
    through int())."""
    out, at = [], 0
    for shape in shapes:
        if shape is None:
            out.append(None)
            continue
        n = math.prod(shape)
        out.append(buf[at] if shape == () else buf[at:at + n])
        at += n
    if at != len(buf):
        raise ValueError(f"unpack: the buffer holds {len(buf)} values, the layout {at}")
    return out


def to_host(backend, values: list) -> list:
    get = getattr(backend, "to_host", None)
    if get is not None:
        return get(values)
    return [v if v is None or isinstance(v, (int, float)) else backend.to_numpy(v) for v in values]
