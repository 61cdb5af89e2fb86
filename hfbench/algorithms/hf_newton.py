"""hf_newton: Hessian-free Newton with the true Hessian, as Wang and Huang compare it.

CG on (H + lambda I) p = -g with a negative-curvature guard: when p.Ap <= 0, CG
stops and returns its last good iterate (reported as cg_status). Wang and Huang
use a fixed lambda = 32 and write "we all set lambda = 0.5", which we read as the
step size alpha = 0.5 of the second-order methods.
"""

from __future__ import annotations

from .cg import CGConfig
from .damping import Fixed, LevenbergMarquardt
from .options import Algorithm, Default, resolve
from .truncated_newton import TruncatedNewtonConfig, tn_init, tn_step

DEFAULTS = {
    "damping": Default(32.0, "Wang and Huang, Table 1: lambda = 32 for Newton and HF-Newton"),
    "adaptive_damping": Default(False, "fixed lambda as in Wang and Huang; True: Martens' LM rule"),
    "step_size": Default(0.5, "Wang and Huang's 'lambda = 0.5', read as the step size alpha"),
    "cg_max_iters": Default(250, "as hf (Martens' cap)"),
    "cg_stop": Default("martens", "as hf; 'residual' runs CG to a tolerance"),
    "cg_tol": Default(1e-10, "relative residual for cg_stop='residual'"),
    "profile": Default(False, "hfbench: add per-phase times t_* to info (syncs between phases)"),
}


def build(o: dict) -> TruncatedNewtonConfig:
    return TruncatedNewtonConfig(
        damping=o["damping"], damping_rule=LevenbergMarquardt() if o["adaptive_damping"] else Fixed(),
        curvature="hessian",
        cg=CGConfig(stop=o["cg_stop"], max_iters=o["cg_max_iters"], tol=o["cg_tol"], save_iterates=False),
        warm_start=False, preconditioner=False, backtracking=False, line_search=None,
        step_size=o["step_size"], profile=o["profile"],
    )


def hf_newton(**overrides) -> Algorithm:
    return Algorithm("hf_newton", build(resolve("hf_newton", DEFAULTS, overrides)), tn_init, tn_step)
