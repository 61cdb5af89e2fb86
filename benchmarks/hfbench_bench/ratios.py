"""Cost ratios, measured in one process with the calls interleaved, so that load drift
on a shared machine hits both sides of a ratio alike (tracked, not timed, by asv).

The method of `benchmarks/curvature_ratios.py` and `benchmarks/cg_overhead.py`
(`_common.interleaved`): one warm-up call of each (compilation), then rounds that call
each in turn, every call waited for on its own result; the ratio of medians.

- `CurvatureRatios`: one Gv (GGN), Hv (Hessian), Fisher.v, `precondition()` and
  `curvature("ggn")` setup, each over one `value_and_grad`, `RATIO_ROUNDS` rounds.
  The operators are set up once, before the rounds. Issue #2's floors: Gv <= 1.25
  (torch), <= 1.2 (JAX); precondition <= 1.5.
- `CGOverhead`: a fixed-length CG solve of `CG_ITERS` iterations on (G + I) p = -g,
  with HF's buffers, over `CG_ITERS` times one Gv of the same operator (3 Gv per
  round), `CG_ROUNDS` rounds; 1.0 means the loop costs nothing beyond its products.
  Issue #3's floors (at 50 iterations, batch 1000): <= 1.05 on the autoencoder,
  <= 2 on a small MLP.

Models and data: see `_common`. All measured once, in `setup_cache`.
"""

from __future__ import annotations

from hfbench.algorithms import CGConfig, cg_solve

from . import _common
from ._common import BACKENDS, MODEL_NAMES, Work, cache_over, cached, interleaved

RATIO_ROUNDS, CG_ITERS, CG_ROUNDS = 10, 20, 5
PRODUCTS = {"Gv": "ggn", "Hv": "hessian", "Fv": "fisher"}


def _curvature_ratios(backend, model):
    w = Work(backend, model)
    p, x, batch = w.problem, w.x, w.batch
    ops = {name: w.run(lambda k=kind: p.curvature(x, batch, k)) for name, kind in PRODUCTS.items()}
    fns = {"grad": lambda: p.value_and_grad(x, batch),
           **{name: (lambda op=op: op.matvec(w.v)) for name, op in ops.items()},
           "precondition": lambda: p.precondition(x, batch),
           "curvature": lambda: p.curvature(x, batch, "ggn")}
    med = interleaved(w.block, fns, 2 if _common.tiny() else RATIO_ROUNDS)
    return {k: t / med["grad"] for k, t in med.items() if k != "grad"}


def _cg_overhead(backend, model):
    w = Work(backend, model)
    iters = 3 if _common.tiny() else CG_ITERS
    _, g = w.run(lambda: w.problem.value_and_grad(w.x, w.batch))
    op = w.run(lambda: w.problem.curvature(w.x, w.batch, "ggn"))
    b, cfg = w.be.ops.scale(-1.0, g), CGConfig(stop="fixed", iters=iters, max_iters=iters)
    fns = {"gv": lambda: op.matvec(g), "cg": lambda: cg_solve(w.be, cfg, op, b, 1.0).x}
    med = interleaved(w.block, fns, 2 if _common.tiny() else CG_ROUNDS, {"gv": 3})
    return {"ratio": med["cg"] / (iters * med["gv"]), "gv_s": med["gv"], "cg_s": med["cg"]}


class CurvatureRatios:
    params = (BACKENDS, MODEL_NAMES)
    param_names = ("backend", "model")

    def setup_cache(self):
        return cache_over(self.params, _curvature_ratios)

    setup_cache.timeout = 1200

    def setup(self, cache, backend, model):
        self.r = cached(cache, backend, model)

    def track_gv_over_grad(self, cache, backend, model):
        return self.r["Gv"]

    def track_hv_over_grad(self, cache, backend, model):
        return self.r["Hv"]

    def track_fisher_v_over_grad(self, cache, backend, model):
        return self.r["Fv"]

    def track_precondition_over_grad(self, cache, backend, model):
        return self.r["precondition"]

    def track_curvature_setup_over_grad(self, cache, backend, model):
        return self.r["curvature"]

    track_gv_over_grad.unit = track_hv_over_grad.unit = track_fisher_v_over_grad.unit = "gradients"
    track_precondition_over_grad.unit = track_curvature_setup_over_grad.unit = "gradients"


class CGOverhead:
    params = (BACKENDS, MODEL_NAMES)
    param_names = ("backend", "model")

    def setup_cache(self):
        return cache_over(self.params, _cg_overhead)

    setup_cache.timeout = 1200

    def setup(self, cache, backend, model):
        self.r = cached(cache, backend, model)

    def track_cg_overhead(self, cache, backend, model):
        return self.r["ratio"]

    track_cg_overhead.unit = "solve / (iterations x Gv)"
