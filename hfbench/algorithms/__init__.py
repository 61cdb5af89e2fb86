"""The shared algorithm layer: CG, damping, line search, and the seven algorithms.

    alg = hfbench.algorithms.get("hf", damping=45.0)
    state = alg.init(x)
    x, state, info = alg.step(problem, x, state, batch, curvature_batch=None)
"""

from __future__ import annotations

from ..errors import HFBenchError, unknown
from . import adaptive_hf as _ahf
from . import first_order as _fo
from . import hf as _hf
from . import hf_newton as _hfn
from . import newton as _newton
from . import sgn as _sgn
from .cg import CGConfig, CGState, CGStatus, cg_init, cg_should_continue, cg_step
from .options import Algorithm, Default
from .solve import CG_LOOP, CGSolution, Loop, cg_solve, python_iterate

ALGORITHMS = {
    "hf": (_hf.hf, _hf.DEFAULTS),
    "sgn": (_sgn.sgn, _sgn.DEFAULTS),
    "adaptive_hf": (_ahf.adaptive_hf, _ahf.DEFAULTS),
    "hf_newton": (_hfn.hf_newton, _hfn.DEFAULTS),
    "newton": (_newton.newton, _newton.DEFAULTS),
    "sgd": (_fo.sgd, _fo.SGD_DEFAULTS),
    "adam": (_fo.adam, _fo.ADAM_DEFAULTS),
}


def _entry(name: str):
    if name not in ALGORITHMS:
        raise HFBenchError(unknown("algorithm", name, ALGORITHMS, "algorithms.get"))
    return ALGORITHMS[name]


def get(name: str, **overrides) -> Algorithm:
    """The algorithm `name` with the paper's defaults, overridden by `overrides`."""
    return _entry(name)[0](**overrides)


def defaults(name: str) -> dict[str, Default]:
    """Each option's default value and a one-line note on where it comes from."""
    return dict(_entry(name)[1])


__all__ = [
    "ALGORITHMS", "Algorithm", "CGConfig", "CGSolution", "CGState", "CGStatus", "CG_LOOP",
    "Default", "Loop", "cg_init", "cg_should_continue", "cg_solve", "cg_step", "defaults", "get",
    "python_iterate",
]
