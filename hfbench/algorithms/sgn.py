"""sgn: stochastic generalized Gauss-Newton, Gargiani et al. 2020, Algorithms 1-2.

GGN on one mini-batch for gradient and curvature, a fixed small number of CG
iterations from zero, LM parameter rho = 1e-4. The paper says the other
hyperparameters kept "the default values"; its public code's saved runs had the
trust-region adaptation and the line search on. We default to the paper's text
(both off) and make both options; each suite says which it reproduces.
"""

from __future__ import annotations

from .cg import CGConfig
from .damping import Fixed, LevenbergMarquardt, Scheduled
from .linesearch import Armijo
from .options import Algorithm, Default, check_int, resolve
from .truncated_newton import TruncatedNewtonConfig, tn_init, tn_step
from ..errors import HFBenchError, unknown

DAMPING_RULES = ("fixed", "trust_region", "linear", "cosine")

DEFAULTS = {
    "damping": Default(1e-4, "§4: Levenberg-Marquardt parameter rho = 1e-4"),
    "cg_iters": Default(10, "§4: the benchmarks sweep 2, 3, 5, 10 CG iterations"),
    "damping_rule": Default("fixed", "paper text; 'trust_region' is Alg. 4.1 (1/4, 3/4)"),
    "damping_final": Default(0.0, "end value of the 'linear'/'cosine' schedules"),
    "damping_steps": Default(1000, "length of the 'linear'/'cosine' schedules, in steps"),
    "line_search": Default(False, "paper text; True is Nocedal-Wright Alg. 3.1 (Armijo)"),
    "ls_c1": Default(1e-4, "Nocedal-Wright's sufficient-decrease constant"),
    "ls_shrink": Default(0.5, "backtracking factor of the line search"),
    "preconditioner": Default(False, "optional; Martens' diagonal (diag + lambda)^0.75"),
    "step_size": Default(1.0, "full GN step, as in the paper"),
    "profile": Default(False, "hfbench: add per-phase times t_* to info (syncs between phases)"),
}


def _damping_rule(o):
    rule = o["damping_rule"]
    if rule not in DAMPING_RULES:
        raise HFBenchError(unknown("damping_rule", rule, DAMPING_RULES, "sgn"))
    if rule == "fixed":
        return Fixed()
    if rule == "trust_region":
        return LevenbergMarquardt()
    return Scheduled(schedule=rule, final=o["damping_final"], steps=o["damping_steps"])


def build(o: dict) -> TruncatedNewtonConfig:
    iters = check_int("sgn.cg_iters", o["cg_iters"])
    ls = Armijo(c1=o["ls_c1"], shrink=o["ls_shrink"]) if o["line_search"] else None
    return TruncatedNewtonConfig(
        damping=o["damping"], damping_rule=_damping_rule(o), curvature="ggn",
        cg=CGConfig(stop="fixed", iters=iters, max_iters=iters, save_iterates=False),
        warm_start=False, preconditioner=o["preconditioner"], backtracking=False,
        line_search=ls, step_size=o["step_size"], profile=o["profile"], rho_model="damped",
    )


def sgn(**overrides) -> Algorithm:
    return Algorithm("sgn", build(resolve("sgn", DEFAULTS, overrides)), tn_init, tn_step)
