"""How far each algorithm gets on a small fixed-seed workload (tracked; noise-free).

Workload: scikit-learn's digits (offline), a 64-16-10 tanh MLP, softmax
cross-entropy, batch 128, seed 0, float32, built through the suite API
(`hfbench.suite.loads` + `expand`) and run by `hfbench.runner.run_trial`, exactly as
`hfbench run` would run it. Each algorithm runs with the options in `ALGORITHMS`,
chosen so that every one reaches the target within the budget (hfbench's defaults for
hf_newton, newton and adaptive_hf, fixed lambda 32 and the Hessian, crawl or diverge
on this net):

- `ToTarget`: train loss <= `TARGET` (full training set, evaluated after every
  step), stopping there, within `BUDGET` steps: the iterations and the gradient
  passes (gradient equivalents: gradients + Gv + forward passes, the runner's count)
  at the first evaluation that met it; NaN when the budget ran out first.
- `FinalLoss`: the full training loss after `SHORT` steps.

The counts depend only on the arithmetic, so any change is a change in an algorithm,
a backend's numerics or the harness. In float32, sgn's 10 CG iterations at
rho ~ 1e-4 amplify rounding, so torch and JAX may differ by a step or so.
"""

from __future__ import annotations

import math
import tempfile

import yaml

from hfbench import suite
from hfbench.runner import run_trial

from . import _common
from ._common import BACKENDS, cache_over, cached

ALGORITHMS = {
    "sgd": {"lr": 0.5},
    "adam": {"lr": 0.01},
    "sgn": {"cg_iters": 10, "damping_rule": "trust_region", "line_search": True},
    "hf": {"cg_max_iters": 50},
    "adaptive_hf": {"curvature": "ggn", "cg_max_iters": 50},
    "hf_newton": {"damping": 1.0, "step_size": 1.0, "cg_max_iters": 50},
    "newton": {"damping": 1.0, "step_size": 1.0},
}
TARGET, BUDGET, SHORT = 0.5, 60, 10


def trial(backend: str, algorithm: str, iterations: int, target: bool):
    doc = {
        "name": "hfbench_bench", "backends": [backend], "seeds": [_common.SEED], "dtype": "float32",
        "device": _common.device(), "tf32": False,
        "workloads": {"digits": {
            "dataset": "digits", "model": {"type": "mlp", "sizes": [64, 16, 10], "activation": "tanh"},
            "loss": "softmax_cross_entropy", "batch_size": 128,
        }},
        "optimizers": {algorithm: {"algorithm": algorithm, "params": ALGORITHMS[algorithm]}},
        "budget": {"iterations": iterations},
        "eval": {"every": 1 if target else None, "epoch_end": False},
    }
    if target:
        doc["targets"] = [{"metric": "train_loss", "<=": TARGET, "stop": True}]
    (t,) = suite.expand(suite.loads(yaml.safe_dump(doc, sort_keys=False), source="hfbench_bench"))
    return t


def run(backend: str, algorithm: str, iterations: int, target: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="hfbench_bench_") as folder:
        rec = run_trial(trial(backend, algorithm, iterations, target), folder)
    if rec.get("status") not in ("completed", "budget_exhausted", "target_reached"):
        raise RuntimeError(f"{algorithm} on {backend} ended {rec.get('status')}: "
                           f"{rec.get('error', '')}\n{rec.get('traceback', '')}")
    return rec


def _to_target(backend, algorithm):
    rec = run(backend, algorithm, 4 if _common.tiny() else BUDGET, target=True)
    hit = rec["targets"][0]
    if hit is None:
        return {"iterations": math.nan, "grad_passes": math.nan}
    return {"iterations": hit["iteration"], "grad_passes": hit["grad_passes"]}


def _final(backend, algorithm):
    rec = run(backend, algorithm, 2 if _common.tiny() else SHORT, target=False)
    return {"train_loss": rec["final"]["train_loss"]}


class ToTarget:
    params = (BACKENDS, list(ALGORITHMS))
    param_names = ("backend", "algorithm")

    def setup_cache(self):
        return cache_over(self.params, _to_target)

    setup_cache.timeout = 1200

    def setup(self, cache, backend, algorithm):
        self.r = cached(cache, backend, algorithm)

    def track_iterations_to_target(self, cache, backend, algorithm):
        return self.r["iterations"]

    track_iterations_to_target.unit = "iterations"

    def track_grad_passes_to_target(self, cache, backend, algorithm):
        return self.r["grad_passes"]

    track_grad_passes_to_target.unit = "gradient passes"


class FinalLoss:
    params = (BACKENDS, list(ALGORITHMS))
    param_names = ("backend", "algorithm")

    def setup_cache(self):
        return cache_over(self.params, _final)

    setup_cache.timeout = 900

    def setup(self, cache, backend, algorithm):
        self.r = cached(cache, backend, algorithm)

    def track_final_train_loss(self, cache, backend, algorithm):
        return self.r["train_loss"]

    track_final_train_loss.unit = "train loss"
