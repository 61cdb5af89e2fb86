"""hf: Hessian-free optimization, Martens 2010 (ICML), Algorithm 1 with §4's details."""

from __future__ import annotations

from .cg import CGConfig
from .damping import LevenbergMarquardt
from .linesearch import Armijo
from .options import Algorithm, Default, resolve
from .truncated_newton import TruncatedNewtonConfig, tn_init, tn_step

DEFAULTS = {
    "damping": Default(45.0, "initial lambda of Martens' public code (the paper gives none)"),
    "curvature": Default("ggn", "§4.2: the Gauss-Newton matrix G beats the Hessian"),
    "cg_max_iters": Default(250, "Martens' public code caps CG at 250 iterations"),
    "cg_eps": Default(5e-4, "§4.4: relative-progress threshold epsilon"),
    "cg_k_min": Default(10, "§4.4: k = max(10, 0.1 i)"),
    "warm_start": Default(True, "§4.5: start CG from the previous solution"),
    "warm_start_decay": Default(0.95, "Martens' public code; the paper's text has no decay"),
    "backtracking": Default(True, "§4.6: backtrack over CG iterates saved at ceil(1.3^j)"),
    "backtrack_gamma": Default(1.3, "§4.6: gamma = 1.3"),
    "preconditioner": Default(True, "§4.7: diagonal empirical-Fisher preconditioner"),
    "precond_exponent": Default(0.75, "§4.7: exponent alpha = 0.75"),
    "rho_model": Default("damped", "§4.1: rho compares f with the damped model q"),
    "line_search": Default(False, "not in the paper; Armijo option that rejects failed steps"),
    "step_size": Default(1.0, "the paper takes the full step"),
    "profile": Default(False, "hfbench: add per-phase times t_* to info (syncs between phases)"),
}


def build(o: dict) -> TruncatedNewtonConfig:
    return TruncatedNewtonConfig(
        damping=o["damping"], damping_rule=LevenbergMarquardt(), curvature=o["curvature"],
        cg=CGConfig(stop="martens", max_iters=o["cg_max_iters"], eps=o["cg_eps"],
                    k_min=o["cg_k_min"], gamma=o["backtrack_gamma"]),
        warm_start=o["warm_start"], warm_start_decay=o["warm_start_decay"],
        preconditioner=o["preconditioner"], precond_exponent=o["precond_exponent"],
        backtracking=o["backtracking"], line_search=Armijo() if o["line_search"] else None,
        step_size=o["step_size"], profile=o["profile"], rho_model=o["rho_model"],
    )


def hf(**overrides) -> Algorithm:
    return Algorithm("hf", build(resolve("hf", DEFAULTS, overrides)), tn_init, tn_step)
