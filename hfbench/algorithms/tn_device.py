"""A Hessian-free step with no host decision, as one device call.

Without backtracking and without a line search, nothing in a step of the truncated
Newton family (`truncated_newton`) needs the host: the front half (gradient,
curvature, preconditioner, CG), the update x + a p, and, for the Levenberg-Marquardt
rule, f at the new point, rho and the next lambda (`damping.reduction_ratio_on`,
`LevenbergMarquardt.update_on`) all run on the device. On a backend that fuses
(JAX), a step is then one jitted call and no host read, as in a hand-written JAX
loop; the runner reads the step's numbers back at its next sync (`fused.lazy_info`),
and the CG record's host work (Ritz values, the status name) runs then, outside the
training clock. Same arithmetic as the host path, so the same trajectory.
"""

from __future__ import annotations

import numpy as np

from .cg import CGStatus
from .damping import reduction_ratio_on
from .front import front
from .fused import fused, info_may_stay_on_device
from .lanczos import ritz_values


def applies_to_any(problem) -> bool:
    """The runner lets info stay on the device, and the backend fuses."""
    return info_may_stay_on_device() and hasattr(problem, "fuse")


def applies(config, problem) -> bool:
    return (applies_to_any(problem) and not config.profile
            and config.line_search is None and not config.backtracking)


def _device(problem, static, x, lam, p_prev, batch, cbatch):
    config, fc = static
    ops = problem.backend.ops
    fr = front(problem, fc, x, lam, p_prev, batch, cbatch)
    s, a = fr.cg, config.step_size
    x_new = ops.axpy(a, s.x, x)
    out = {"loss": fr.loss, "cg_iters": s.i, "n_gv": s.num_gv, "status": s.status,
           "alphas": s.alphas, "betas": s.betas, "step_norm": a * fr.xx**0.5}
    lam_next = lam
    if config.damping_rule.uses_rho:  # without a line search, every rho_point is at a p
        f_new = problem.loss(x_new, batch)
        f0, f1 = fr.loss, f_new
        if config.rho_batch == "curvature" and cbatch is not None:
            f0, f1 = problem.loss(x, cbatch), problem.loss(x_new, cbatch)
        pAp = 2.0 * (ops.get(s.phi, s.i) - fr.gx)  # phi = 1/2 p.Ap + g.p
        if config.rho_model == "undamped":
            pAp = pAp - lam * fr.xx
        m = 1.0 if config.rho_point == "taken_over_full" else a
        rho = reduction_ratio_on(ops, f0, f1, 0.5 * m * m * pAp + m * fr.gx)
        lam_next = config.damping_rule.update_on(ops, lam, rho)
        out.update(rho=rho, loss_after=f_new)
    return x_new, s.x, lam_next, out


def step(config, fc, problem, x, state, batch, curvature_batch):
    """(x_new, p, next lambda, info) with info's numbers left on the device."""
    p_prev = state.p_prev if config.warm_start else None
    x_new, p, lam_next, out = fused(problem, _device, (config, fc))(
        x, state.lam, p_prev, batch, curvature_batch)
    uses_rho = config.damping_rule.uses_rho
    if not uses_rho:  # fixed or scheduled: the host knows lambda
        lam_next = config.damping_rule.update(state.lam, float("nan"), state.step, float(config.damping))
    curv_rho = uses_rho and config.rho_batch == "curvature" and curvature_batch is not None
    info = {
        "loss": out["loss"], "cg_iters": out["cg_iters"], "lambda": state.lam,
        "alpha": config.step_size, "accepted": True, "step_norm": out["step_norm"],
        "backtrack_iter": out["cg_iters"], "n_grad": 1, "n_gv": out["n_gv"],
        "n_fwd": (1 + 2 * curv_rho) if uses_rho else 0, "n_curv": 1,
        "n_precond": int(config.preconditioner),
        "_status": out["status"], "_alphas": out["alphas"], "_betas": out["betas"],
        "_host": finish,
    }
    if uses_rho:
        info.update(rho=out["rho"], loss_after=out["loss_after"])
    return x_new, p, lam_next, info


def finish(row: dict) -> dict:
    """The host half of the CG record, once the row's values are read back."""
    n = int(row["cg_iters"])
    ritz = ritz_values(np.asarray(row.pop("_alphas"))[:n], np.asarray(row.pop("_betas"))[:n])
    status = CGStatus(int(row.pop("_status"))).name.lower()
    return {"cg_status": status, "ritz_min": ritz.min, "ritz_max": ritz.max, "cond_est": ritz.cond}
