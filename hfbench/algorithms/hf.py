"""hf: Hessian-free optimization, Martens 2010 (ICML), Algorithm 1 with §4's details.

Defaults follow the paper's text where it speaks; the options below also express
what his released code (nnet_train_2.m, conjgrad_1.m) does where it differs: a line
search after backtracking, rho with the undamped model on the curvature mini-batch
at the backtracked step, the first saved CG iterate at 5. `suites/martens2010.yaml`
runs the code's settings and lists the text's beside them.
"""

from __future__ import annotations

from .cg import CGConfig
from .damping import LevenbergMarquardt
from .linesearch import Armijo
from .options import Algorithm, Default, check_int, resolve
from .truncated_newton import TruncatedNewtonConfig, tn_init, tn_step

DEFAULTS = {
    "damping": Default(45.0, "initial lambda of Martens' public code (the paper gives none)"),
    "damping_min": Default(0.0, "no floor in Martens' text or code; Motokawa and Tezuka's HF "
                                "code stops moving lambda at 0.1"),
    "curvature": Default("ggn", "§4.2: the Gauss-Newton matrix G beats the Hessian"),
    "cg_max_iters": Default(250, "Martens' public code caps CG at 250 iterations"),
    "cg_stop": Default("martens", "§4.4; 'relative' is the TF HF code's rule (no k factor on eps)"),
    "cg_eps": Default(5e-4, "§4.4: relative-progress threshold epsilon"),
    "cg_k_min": Default(10, "§4.4: k = max(10, 0.1 i)"),
    "cg_residual_stop": Default(False, "none in Martens' text or code; True ends CG once "
                                       "r.r < 1e-20 (float32) / 1e-80 (float64), the TF HF code's"),
    "cg_phi": Default("recurrence", "phi_i by recurrence; 'exact' recomputes -x.(r + b)/2 each "
                                    "iteration as conjgrad_1.m does"),
    "warm_start": Default(True, "§4.5: start CG from the previous solution"),
    "warm_start_decay": Default(0.95, "Martens' public code; the paper's text has no decay"),
    "backtracking": Default(True, "§4.6: backtrack over CG iterates saved at ceil(1.3^j)"),
    "backtrack_gamma": Default(1.3, "§4.6: gamma = 1.3"),
    "backtrack_first": Default(1.0, "§4.6 text: ceil(gamma^j); conjgrad_1.m saves at ceil(5 gamma^j)"),
    "preconditioner": Default(True, "§4.7: diagonal empirical-Fisher preconditioner"),
    "precond_exponent": Default(0.75, "§4.7: exponent alpha = 0.75"),
    "rho_model": Default("damped", "§4.1: rho compares f with the model q; Martens' code "
                                   "disables the damping there ('undamped')"),
    "rho_batch": Default("gradient", "the text does not say; his code takes f on the "
                                     "curvature mini-batch ('curvature')"),
    "rho_point": Default("taken", "the text has no line search; his code takes rho at the "
                                  "backtracked step before it ('full'); 'taken_over_full' is "
                                  "the TF HF code's (f at w + lr p over q(p))"),
    "line_search": Default(False, "not in the paper; his code always runs one (c 1e-2, "
                                  "shrink 0.8, 60 tries, then rejects)"),
    "ls_c1": Default(1e-2, "Martens' code: c = 10^-2"),
    "ls_shrink": Default(0.8, "Martens' code: rate = 0.8 rate"),
    "ls_max_trials": Default(60, "Martens' code tests rates 0.8^0 ... 0.8^59, then rejects"),
    "step_size": Default(1.0, "the paper takes the full step"),
    "profile": Default(False, "hfbench: add per-phase times t_* to info (syncs between phases)"),
}


def build(o: dict) -> TruncatedNewtonConfig:
    # built (and so checked) even when off: a typo in an ls_* option is an error either way
    ls = Armijo(c1=o["ls_c1"], shrink=o["ls_shrink"], alpha0=o["step_size"],
                max_steps=check_int("hf.ls_max_trials", o["ls_max_trials"]))
    return TruncatedNewtonConfig(
        damping=o["damping"], damping_rule=LevenbergMarquardt(min_lambda=o["damping_min"]),
        curvature=o["curvature"],
        cg=CGConfig(stop=o["cg_stop"], max_iters=o["cg_max_iters"], eps=o["cg_eps"],
                    k_min=o["cg_k_min"], gamma=o["backtrack_gamma"],
                    save_first=o["backtrack_first"], phi=o["cg_phi"],
                    residual_floor="auto" if o["cg_residual_stop"] else 0.0,
                    save_iterates=o["backtracking"]),
        warm_start=o["warm_start"], warm_start_decay=o["warm_start_decay"],
        preconditioner=o["preconditioner"], precond_exponent=o["precond_exponent"],
        backtracking=o["backtracking"], line_search=ls if o["line_search"] else None,
        step_size=o["step_size"],
        profile=o["profile"], rho_model=o["rho_model"], rho_batch=o["rho_batch"],
        rho_point=o["rho_point"],
    )


def hf(**overrides) -> Algorithm:
    return Algorithm("hf", build(resolve("hf", DEFAULTS, overrides)), tn_init, tn_step)
