"""Preconditioned conjugate gradient as pure step functions over an immutable state.

Solves (C + lambda I) p = b, i.e. minimizes the quadratic model
    phi(p) = 1/2 p^T A p - b^T p,    A = C + lambda I,   b = -grad,
with the preconditioner M (diagonal, given as its inverse m_inv). One iteration
(Nocedal and Wright Alg. 5.3):
    alpha = r.z / p.Ap;  x += alpha p;  r -= alpha Ap;  z = M^-1 r;
    beta = r_new.z_new / r.z;  p = z + beta p.
The first alpha uses r.z, not r.r (a known peer bug). phi comes from the residual:
phi(x_0) = -1/2 x_0.(r_0 + b), then phi_{i+1} = phi_i - alpha_i/2 r_i.z_i, so it
costs no extra product. Every scalar is accumulated in float64 (`ops.vdot`).

Stop rules (`CGConfig.stop`):
- "martens" (Martens 2010 §4.4): stop at i when i > k, phi_i < 0 and
  (phi_i - phi_{i-k}) / phi_i < k * eps, with k = max(k_min, ceil(k_frac * i)).
- "relative" (Motokawa and Tezuka's public Adaptive HF code, hfoptimizer_adam.py, and
  the TF HF code it extends): stop at i when i > k + 1 and
  (phi_i - phi_{i-k}) / phi_i < eps, with k = max(k_min, floor(k_frac (i - 1))): the
  same relative progress with no k factor on eps, tested as that code's 0-based loop
  does (i counts iterations done here), and no sign test on phi. That code also ends
  CG once r.r falls below 1e-20 (float32; 1e-80 in float64), `residual_floor="auto"`.
- "fixed": exactly `iters` iterations (Gargiani et al. 2020, SGN).
- "residual": |r| <= tol * |b|.
Every rule also stops at `max_iters`, on negative curvature p.Ap <= 0 (the last
good iterate is kept) and on a non-finite p.Ap.

The iterates at ceil(first * gamma^j) are saved in a preallocated buffer for
backtracking (gamma = 1.3; first = 1 in Martens 2010 §4.6's text, 5 in his released
conjgrad_1.m, whose first save is at iteration 5), plus the last one, and the alpha/beta coefficients for the
Lanczos curvature diagnostics (`hfbench.algorithms.lanczos`).

These functions only call `ops` (the backend's VectorOps) and the operator's
matvec; the backend decides how to iterate them (`cg_solve`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import HFBenchError, unknown

STOP_RULES = ("martens", "relative", "fixed", "residual")
PHI_MODES = ("recurrence", "exact")


class CGStatus(enum.IntEnum):
    RUNNING = 0
    CONVERGED = 1
    MAX_STEPS = 2
    NEGATIVE_CURVATURE = 3
    NONFINITE = 4

    @property
    def remedy(self) -> str:
        return _REMEDIES[self]


# Plain ints for traced code (an IntEnum is not a JAX type).
RUNNING, CONVERGED, MAX_STEPS, NEGATIVE_CURVATURE, NONFINITE = (int(s) for s in CGStatus)

_REMEDIES = {
    CGStatus.RUNNING: "the solve was cut short; call cg_solve to run it to a stop rule",
    CGStatus.CONVERGED: "the stop rule was met; nothing to fix",
    CGStatus.MAX_STEPS: "hit max_iters; raise it or increase damping to make the system easier",
    CGStatus.NEGATIVE_CURVATURE: "p.Ap <= 0 (indefinite curvature); the last good iterate is "
    "returned; use kind='ggn' or a larger damping",
    CGStatus.NONFINITE: "p.Ap was NaN or Inf; check the data, the loss and the damping",
}


@dataclass(frozen=True, kw_only=True)
class CGConfig:
    """Options of one CG solve. Frozen and hashable: a static argument under jit."""

    stop: str = "martens"
    max_iters: int = 250
    iters: int = 10  # used by stop="fixed"
    tol: float = 1e-10  # used by stop="residual"
    eps: float = 5e-4  # Martens' relative-progress threshold
    k_min: int = 10
    k_frac: float = 0.1
    gamma: float = 1.3  # save iterates at ceil(save_first * gamma^j) for backtracking
    save_first: float = 1.0
    save_iterates: bool = True
    phi: str = "recurrence"  # how phi_i is computed; see cg_update
    residual_floor: float | str = 0.0  # stop once r.r < this; "auto": 1e-20 / 1e-80 by dtype

    def __post_init__(self):
        if self.stop not in STOP_RULES:
            raise HFBenchError(unknown("CG stop rule", self.stop, STOP_RULES, "cg.stop"))
        for name in ("max_iters", "iters", "k_min"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise HFBenchError(f"cg.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("tol", "eps", "k_frac"):
            if not getattr(self, name) > 0:
                raise HFBenchError(f"cg.{name} must be > 0, got {getattr(self, name)!r}")
        if not self.gamma > 1:
            raise HFBenchError(f"cg.gamma must be > 1 (Martens uses 1.3), got {self.gamma!r}")
        if not self.save_first >= 1:
            raise HFBenchError(f"cg.save_first must be >= 1 (1 in the text, 5 in Martens' code), "
                               f"got {self.save_first!r}")
        if self.phi not in PHI_MODES:
            raise HFBenchError(unknown("CG phi mode", self.phi, PHI_MODES, "cg.phi"))
        floor = self.residual_floor
        if not (floor == "auto" or (isinstance(floor, (int, float)) and not isinstance(floor, bool)
                                    and floor >= 0)):
            raise HFBenchError(f"cg.residual_floor must be a number >= 0 or 'auto' (1e-20 in "
                               f"float32, 1e-80 in float64), got {floor!r}")

    def floor_for(self, dtype) -> float:
        """The r.r floor for vectors of `dtype` (the Adaptive-HF code's numerical stop)."""
        if self.residual_floor != "auto":
            return float(self.residual_floor)
        return 1e-80 if "64" in str(dtype) else 1e-20

    @property
    def limit(self) -> int:
        """The most iterations this config can run."""
        return min(self.iters, self.max_iters) if self.stop == "fixed" else self.max_iters

    @property
    def save_points(self) -> tuple[int, ...]:
        """Iterations ceil(save_first gamma^j) <= limit, and the limit itself (ascending)."""
        return save_points(self.gamma, self.limit, self.save_first)

    def k_at(self, i: int) -> int:
        """The look-back k of the relative-progress rules at iteration i."""
        # Plain float products, as both codes compute them (MATLAB's ceil(i * 0.1) and
        # Python's (i - 1) // 10 agree with these for k_frac = 0.1).
        if self.stop == "relative":
            return max(self.k_min, math.floor(self.k_frac * (i - 1)))
        return max(self.k_min, math.ceil(self.k_frac * i))


def save_points(gamma: float, limit: int, first: float = 1.0) -> tuple[int, ...]:
    pts, j = set(), 0
    while math.ceil(first * gamma**j) <= limit:
        pts.add(math.ceil(first * gamma**j))
        j += 1
    return tuple(sorted(pts | {limit}))


class CGState(NamedTuple):
    i: Any  # iterations done (int scalar)
    x: Any
    r: Any  # b - A x
    p: Any
    rz: Any  # r.z with z = M^-1 r (float64); z itself is not kept, no step reads it
    phi: Any  # float64 buffer, phi[i] = phi(x_i); phi[0] = phi(x_0)
    alphas: Any  # float64 buffer (limit,)
    betas: Any  # float64 buffer (limit,)
    saved: Any  # (len(save_points), n) buffer of iterates, or a (1, n) dummy
    status: Any  # int scalar, a CGStatus
    num_gv: Any  # matvecs spent (int scalar)


class CGOperands(NamedTuple):
    """What a solve reads but never changes (a pytree: every leaf a device array)."""

    op: Any  # curvature operator: matvec(v) = C v
    b: Any  # right-hand side, -grad
    damping: Any  # lambda, a 0-d device array (not static: no recompile when it moves)
    m_inv: Any  # inverse diagonal preconditioner, or None
    slot: Any  # int buffer (limit + 1,): save slot of iteration i, or -1
    k_table: Any  # int buffer (limit + 1,): the rule's look-back k at iteration i
    b_norm2: Any  # b.b (float64), for the residual rule
    rr_floor: Any = 0.0  # stop once r.r < this (float64); 0: never


def apply_a(ops, operands: CGOperands, v):
    """A v = C v + lambda v."""
    return ops.axpy(operands.damping, v, operands.op.matvec(v))


def precondition(ops, operands: CGOperands, r):
    return r if operands.m_inv is None else operands.m_inv * r


def _phi(ops, operands, x, r):
    return -0.5 * (ops.vdot(x, r) + ops.vdot(x, operands.b))


def make_operands(ops, config: CGConfig, op, b, damping, m_inv=None) -> CGOperands:
    """Bundle a solve's inputs; host-side tables are built here, once per solve."""
    slot = [-1] * (config.limit + 1)
    for k, it in enumerate(config.save_points if config.save_iterates else ()):
        slot[it] = k
    k_table = [config.k_at(i) for i in range(config.limit + 1)]
    # b.b is a full pass over b; only the residual rule reads it.
    b_norm2 = ops.vdot(b, b) if config.stop == "residual" else ops.asarray(0.0, "float64")
    return CGOperands(
        op, b, ops.asarray(damping, b), m_inv, ops.asarray(slot, "int"),
        ops.asarray(k_table, "int"), b_norm2, ops.asarray(config.floor_for(b.dtype), "float64"),
    )


def cg_init(ops, config: CGConfig, operands: CGOperands, x0=None) -> CGState:
    """State before the first iteration; x0 (warm start) defaults to zero.

    A zero start costs no matvec (r = b) and has phi_0 = 0; a warm start costs one
    matvec and two dot products for phi_0.
    """
    b = operands.b
    if x0 is None:
        x, r, num_gv, phi0 = ops.zeros_like(b), b, 0, 0.0
    else:
        x, r, num_gv = x0, b - apply_a(ops, operands, x0), 1
        phi0 = _phi(ops, operands, x, r)
    z = precondition(ops, operands, r)
    rows = len(config.save_points) if config.save_iterates else 1
    phi = ops.set_if(ops.zeros((config.limit + 1,), "float64"), 0, phi0, True)
    return CGState(
        i=ops.asarray(0, "int"), x=x, r=r, p=z, rz=ops.vdot(r, z), phi=phi,
        alphas=ops.zeros((config.limit,), "float64"), betas=ops.zeros((config.limit,), "float64"),
        saved=ops.empty((rows, b.shape[0]), b), status=ops.asarray(0, "int"),
        num_gv=ops.asarray(num_gv, "int"),
    )


def cg_step(ops, config: CGConfig, operands: CGOperands, s: CGState) -> CGState:
    """One CG iteration: the operator product, the updates, then the save-point copy."""
    after = cg_update(ops, config, operands, s, cg_product(ops, config, operands, s))
    return cg_save(ops, config, operands, s, after)


def cg_product(ops, config: CGConfig, operands: CGOperands, s: CGState):
    """C p, the one curvature product of an iteration (damping is added in cg_update).

    Kept apart so that an eager backend can fuse the rest of the step (`cg_update`,
    vector algebra only) into a few compiled kernels around this opaque product.
    """
    return operands.op.matvec(s.p)


def cg_update(ops, config: CGConfig, operands: CGOperands, s: CGState, Cp) -> CGState:
    """The iteration given Cp = C p; alpha = 0 (a no-op on x) once the status is not RUNNING.

    phi follows the PCG identity phi(x + alpha p) = phi(x) - alpha p.r + alpha^2/2 p.Ap
    = phi(x) - alpha/2 r.z (since p.r = r.z and alpha = r.z / p.Ap), so it needs no
    extra dot product; phi_0 is computed from the residual in `cg_init`.
    Only x is masked (alpha = 0 would keep it, but 0 * NaN would not): r, z and p of
    a step with ok = False are never used again, since its status ends the loop, and
    a masked select per vector costs as much as an axpy.
    Reads neither `operands.op` nor the host, so it can be traced; leaves `saved`
    to `cg_save`.
    """
    Ap = ops.axpy(operands.damping, s.p, Cp)
    pAp = ops.vdot(s.p, Ap)
    finite = ops.isfinite(pAp)
    # rz = 0: the residual vanished (solved to working precision); no step to take.
    ok = finite & (pAp > 0) & (s.status == RUNNING) & (s.rz != 0)
    alpha = ops.where(ok, s.rz / ops.where(ok, pAp, 1.0), 0.0)
    x = ops.where(ok, ops.axpy(alpha, s.p, s.x), s.x)  # 0 * NaN would poison x
    r = ops.axpy(-alpha, Ap, s.r)
    z = precondition(ops, operands, r)
    rz = ops.vdot(r, z)
    beta = ops.where(ok, rz / ops.where(s.rz == 0, 1.0, s.rz), 0.0)
    i = s.i + ok  # iterations completed
    if config.phi == "exact":  # from x and r, as Martens' conjgrad_1.m does each iteration
        phi_i = _phi(ops, operands, x, r)
    else:
        phi_i = ops.get(s.phi, s.i) - 0.5 * alpha * s.rz
    status = _status(ops, config, operands, s, i, ok, finite, pAp, phi_i, r, rz)
    return CGState(
        i=i, x=x, r=r, p=ops.axpy(beta, s.p, z), rz=ops.where(ok, rz, s.rz),
        phi=ops.set_if(s.phi, i, phi_i, ok),
        alphas=ops.set_if(s.alphas, s.i, alpha, ok),
        betas=ops.set_if(s.betas, s.i, beta, ok),
        saved=s.saved, status=status, num_gv=s.num_gv + (s.status == RUNNING),
    )


def cg_save(ops, config: CGConfig, operands: CGOperands, before: CGState, after: CGState):
    """Copy x_i into the backtracking buffer when iteration i = ceil(gamma^j) was just done.

    Apart from `cg_update` so that a compiled update need not touch the (slots, n)
    buffer on every iteration: an eager caller reads the condition on the host and
    copies only at the save points.
    """
    if not config.save_iterates:
        return after
    slot = ops.get(operands.slot, after.i)
    done = (after.i > before.i) & (slot >= 0)
    return after._replace(saved=ops.set_if(after.saved, slot, after.x, done))


def _status(ops, config, operands, s, i, ok, finite, pAp, phi_i, r, rz):
    running = s.status == RUNNING
    solved = s.rz == 0  # r = 0 (x solves the system) makes p = 0 and p.Ap = 0: not curvature
    status = ops.where(running & ~finite, NONFINITE, s.status)
    status = ops.where(running & finite & (pAp <= 0) & ~solved, NEGATIVE_CURVATURE, status)
    status = ops.where(running & finite & solved, CONVERGED, status)
    done = ok & _rule_met(ops, config, operands, s, i, phi_i, r)
    if config.residual_floor != 0:
        # r.r: rz itself without a preconditioner, else one more dot
        rr = rz if operands.m_inv is None else ops.vdot(r, r)
        done = done | (ok & (rr < operands.rr_floor))
    status = ops.where(done, CONVERGED, status)
    at_limit = ok & ~done & (i >= config.limit)
    return ops.where(at_limit, MAX_STEPS, status)


def _rule_met(ops, config, operands, s, i, phi_i, r):
    if config.stop == "fixed":
        return i >= config.limit
    if config.stop == "residual":
        return ops.vdot(r, r) <= (config.tol**2) * operands.b_norm2
    k = ops.get(operands.k_table, i)
    phi_prev = ops.get(s.phi, ops.where(i > k, i - k, 0))
    if config.stop == "relative":
        ratio = (phi_i - phi_prev) / ops.where(phi_i != 0, phi_i, 1.0)
        return (i > k + 1) & (phi_i != 0) & (ratio < config.eps)  # NaN ratio: no stop
    ratio = (phi_i - phi_prev) / ops.where(phi_i < 0, phi_i, -1.0)
    return (i > k) & (phi_i < 0) & (ratio < k * config.eps)


def cg_should_continue(config: CGConfig, s: CGState):
    """The loop condition: True (a device bool) while the status is RUNNING."""
    return s.status == RUNNING
