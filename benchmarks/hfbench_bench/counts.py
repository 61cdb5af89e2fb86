"""What one hf step does (tracked), per backend and model: counts, and where the time goes.

- `HFStepCounts`: CG iterations and Gv products of the step `steps.HFStep` times (hf
  at its defaults, from the seed-0 start and the initial state, on `_common`'s
  batch). Noise-free: a change is a change in the algorithm or its numerics.
- `HFStepSplit`: the same step with `profile=True`, which syncs the device between
  phases and records their wall-clock times (`hfbench.algorithms.phases`): gradient
  and curvature setup (one shared forward pass where the backend can), the
  preconditioner, CG, backtracking over CG's saved iterates, and the final update;
  and their total. Median seconds over 3 steps after a warm-up step, all from the
  same point. The phase syncs cost a little, so `total` may exceed `steps.HFStep`.
"""

from __future__ import annotations

import statistics

from hfbench import algorithms

from . import _common
from ._common import BACKENDS, MODEL_NAMES, Work, cache_over, cached

PHASES = ["grad_curvature", "precondition", "cg", "backtrack", "update", "total"]


def _counts(backend, model):
    w = Work(backend, model)
    alg = algorithms.get("hf")
    _, _, info = alg.step(w.problem, w.x, alg.init(w.x), w.batch)
    return {"cg_iters": int(info["cg_iters"]), "n_gv": int(info["n_gv"])}


def _split(backend, model):
    w = Work(backend, model)
    alg = algorithms.get("hf", profile=True)
    state = alg.init(w.x)
    rows = []
    for _ in range(1 if _common.tiny() else 4):  # the first (compiling) one is dropped below
        _, _, info = alg.step(w.problem, w.x, state, w.batch)
        t = {k[2:]: v for k, v in info.items() if k.startswith("t_")}
        rows.append({
            "grad_curvature": t.get("grad", 0.0) + t.get("curvature", 0.0),
            "precondition": t.get("precondition", 0.0), "cg": t.get("cg", 0.0),
            "backtrack": t.get("backtrack", 0.0) + t.get("line_search", 0.0),
            "update": t.get("update", 0.0), "total": sum(t.values()),
        })
    rows = rows[1:] or rows
    return {p: statistics.median(r[p] for r in rows) for p in PHASES}


class HFStepCounts:
    params = (BACKENDS, MODEL_NAMES)
    param_names = ("backend", "model")

    def setup_cache(self):
        return cache_over(self.params, _counts)

    setup_cache.timeout = 900

    def setup(self, cache, backend, model):
        self.r = cached(cache, backend, model)

    def track_cg_iters(self, cache, backend, model):
        return self.r["cg_iters"]

    track_cg_iters.unit = "iterations"

    def track_gv_products(self, cache, backend, model):
        return self.r["n_gv"]

    track_gv_products.unit = "Gv"


class HFStepSplit:
    params = (BACKENDS, MODEL_NAMES, PHASES)
    param_names = ("backend", "model", "phase")

    def setup_cache(self):
        return cache_over(self.params[:2], _split)

    setup_cache.timeout = 900

    def setup(self, cache, backend, model, phase):
        self.r = cached(cache, backend, model)

    def track_phase_seconds(self, cache, backend, model, phase):
        return self.r[phase]

    track_phase_seconds.unit = "seconds"
