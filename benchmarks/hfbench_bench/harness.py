"""hfbench's runner against a hand-written loop: the harness's share of an SGD step.

`SGDHarness` runs `benchmarks/harness_overhead.py`'s `measure` for one cell: SGD (lr
0.1) on MNIST-5k with the 784-64-10 ReLU MLP at batch 256, `STEPS` steps per run,
`ROUNDS` interleaved rounds (the side that goes first alternates). hfbench side: a
trial built through the suite API (`suite.loads` + `expand`), run by
`runner.run_trial`, timed by the record's own train_time_s (the runner's timed steps;
warm-up compilation and evaluations are outside it). Hand-written side: the plain
PyTorch / JAX loop of `benchmarks/handwritten` on the same initial vector, batches
and step count, after 2 untimed warm-up steps. Tracked: each side's median ms per
step and their ratio (hfbench / hand-written; issue target <= 1.3).
"""

from __future__ import annotations

from . import _common
from ._common import BACKENDS, cache_over, cached

STEPS, ROUNDS = 100, 3


def _cell(ho):
    sizes, batch = ((784, 8, 10), 16) if _common.tiny() else ((784, 64, 10), 256)
    return ho.Cell(f"mnist5k {'-'.join(map(str, sizes))} relu", dataset="mnist5k", sizes=sizes,
                   activation="relu", loss="softmax_cross_entropy", batch=batch,
                   algorithm="sgd", params={"lr": 0.1}, hand={"lr": 0.1})


def _measure(backend):
    ho = _common.script("harness_overhead")
    steps, rounds = (5, 1) if _common.tiny() else (STEPS, ROUNDS)
    device = _common.concrete_device(_common.backend(backend))
    row = ho.measure(_cell(ho), backend, steps, rounds, False, lambda s: None, device)
    return {"hfbench_ms": row.hf_ms, "hand_ms": row.hw_ms, "ratio": row.hf_ms / row.hw_ms}


class SGDHarness:
    params = (BACKENDS,)
    param_names = ("backend",)

    def setup_cache(self):
        return cache_over([self.params[0]], _measure)

    setup_cache.timeout = 900

    def setup(self, cache, backend):
        self.r = cached(cache, backend)

    def track_runner_ms_per_step(self, cache, backend):
        return self.r["hfbench_ms"]

    track_runner_ms_per_step.unit = "ms"

    def track_hand_written_ms_per_step(self, cache, backend):
        return self.r["hand_ms"]

    track_hand_written_ms_per_step.unit = "ms"

    def track_overhead_ratio(self, cache, backend):
        return self.r["ratio"]

    track_overhead_ratio.unit = "hfbench / hand-written"
