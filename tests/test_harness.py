"""The runner's per-step cost, counted rather than timed.

A fair harness adds no per-step work that a hand-written loop of the same model would
not do (DESIGN, "Fair measurement across methods"). Timing that here would be flaky,
so these tests count what a step costs instead: host reads (device syncs, scalar
reads, transfers to the host) and calls into the backend, on a tiny model, with the
periodic sync switched off so the counts are exact. The speed itself is reported by
`benchmarks/harness_overhead.py` against hand-written loops.
"""

from __future__ import annotations

import functools

import pytest

import hfbench
from hfbench import suite
from hfbench.runner import trial as trial_mod

STATUS = hfbench.installed_backends()
BACKENDS = [n for n in ("torch", "jax") if STATUS.get(n) is None]
STEPS = 120

SUITE = """
name: harness
backends: [{backend}]
workloads:
  tiny:
    dataset: digits
    model: {{type: mlp, sizes: [64, 8, 10], activation: relu}}
    batch_size: 32
optimizers:
  o: {{algorithm: {algorithm}, params: {params}}}
budget: {{iterations: {steps}}}
eval: {{every: null}}
"""


class Counter:
    """Wraps a backend (and its ops and problems) and counts host reads and calls."""

    READS = ("sync", "fetch", "to_host", "to_numpy")

    def __init__(self, be):
        self.be, self.reads, self.calls = be, 0, 0
        self.on = False
        for name in self.READS:
            if hasattr(be, name):
                setattr(be, name, self._count(getattr(be, name), read=True))
        for name in ("to_float",):
            setattr(be.ops, name, self._count(getattr(be.ops, name), read=True))
        for name in ("vdot", "axpy", "scale", "where", "zeros_like"):
            setattr(be.ops, name, self._count(getattr(be.ops, name)))
        make = be.problem
        be.problem = lambda spec: self._wrap_problem(make(spec))

    def _count(self, fn, read=False):
        @functools.wraps(fn)
        def counted(*a, **k):
            if self.on:
                if read:
                    self.reads += 1
                else:
                    self.calls += 1
            return fn(*a, **k)
        return counted

    def _wrap_problem(self, problem):
        for name in ("value_and_grad", "loss", "curvature", "precondition", "fuse"):
            if hasattr(problem, name):
                inner = getattr(problem, name)
                if name == "fuse":
                    setattr(problem, name, lambda fn, static, _inner=inner: self._count(_inner(fn, static)))
                else:
                    setattr(problem, name, self._count(inner))
        return problem


def _run(backend, algorithm, params, monkeypatch, tmp_path):
    counter = {}
    real_get = trial_mod.get_backend

    def get_backend(*a, **k):
        counter["c"] = Counter(real_get(*a, **k))
        return counter["c"].be

    real_train = trial_mod._train

    def train(*a, **k):  # count only the timed loop, not warm-up and evaluation
        counter["c"].on = True
        try:
            return real_train(*a, **k)
        finally:
            counter["c"].on = False

    monkeypatch.setattr(trial_mod, "get_backend", get_backend)
    monkeypatch.setattr(trial_mod, "_train", train)
    monkeypatch.setattr(trial_mod, "SYNC_INTERVAL_S", float("inf"))  # exact counts
    text = SUITE.format(backend=backend, algorithm=algorithm, params=params, steps=STEPS)
    (t,) = suite.expand(suite.loads(text))
    rec = trial_mod.run_trial(t, tmp_path)
    assert rec["status"] == "completed", rec.get("error")
    assert rec["iterations"] == STEPS and len(rec["steps"]) == STEPS
    return counter["c"], rec


@pytest.mark.skipif(not BACKENDS, reason="needs torch or jax: pip install 'hfbench[all]'")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algorithm", ["sgd", "adam"])
def test_first_order_step_has_no_host_read_and_one_fused_call(backend, algorithm, monkeypatch, tmp_path):
    c, rec = _run(backend, algorithm, "{}", monkeypatch, tmp_path)
    # the only reads: the one sync at the end of the budget (sync + one fetch of all steps)
    assert c.reads <= 3, f"{c.reads} host reads in {STEPS} steps"
    per_step = c.calls / STEPS
    if backend == "jax":
        # one jitted call a step (+3: the state made on the first step, the final sync's norm)
        assert per_step <= 1 + 3 / STEPS
    else:
        # unfused, the update's own arithmetic and nothing else: sgd is value_and_grad,
        # one axpy and the step norm's dot; adam adds its moments (2 axpys, 4 scales)
        # (+3: the state made on the first step, the norm read at the final sync)
        assert per_step <= {"sgd": 3, "adam": 9}[algorithm] + 3 / STEPS
    losses = [s["batch_loss"] for s in rec["steps"]]
    assert all(isinstance(v, float) for v in losses)  # read back, in order, as numbers


@pytest.mark.skipif(not BACKENDS, reason="needs torch or jax: pip install 'hfbench[all]'")
@pytest.mark.parametrize("backend", BACKENDS)
def test_sgn_step_reads_a_bounded_number_of_host_values(backend, monkeypatch, tmp_path):
    """sgn with the trust region and the line search branches on the host, but reads
    its CG record in one transfer, f at the full step included: one read per step, and
    one per further f evaluation of the line search."""
    params = "{cg_iters: 5, damping_rule: trust_region, line_search: true, damping: 1.0}"
    c, rec = _run(backend, "sgn", params, monkeypatch, tmp_path)
    fwd = rec["steps"][-1]["n_fwd"]  # cumulative forward passes (f evaluations)
    # per step one transfer (the CG record and f at the full step, the first of the
    # step's fwd evaluations), then one read per further evaluation; +3 for the end
    bound = fwd + 3
    assert c.reads <= bound, f"{c.reads} host reads for {STEPS} steps and {fwd} f evaluations"


DEVICE_PATH_CASES = {  # Hessian-free configurations with no host decision
    "sgn_trust_region": ("sgn", "{cg_iters: 4, damping: 1.0, damping_rule: trust_region}"),
    "sgn_cosine": ("sgn", "{cg_iters: 3, damping: 1.0, damping_rule: cosine, damping_steps: 5}"),
    "hf_newton": ("hf_newton", "{cg_stop: residual, cg_max_iters: 6}"),
    "hf_code_lm": ("hf", "{backtracking: false, preconditioner: false, step_size: 0.5, "
                         "rho_point: taken_over_full, rho_model: undamped, damping_min: 0.1, "
                         "cg_stop: relative, cg_max_iters: 8}"),
}


@pytest.mark.skipif("jax" not in BACKENDS, reason="the device path is for backends that fuse: pip install jax")
@pytest.mark.parametrize("case", sorted(DEVICE_PATH_CASES))
def test_device_path_takes_the_host_paths_steps(case, tmp_path):
    """Through the runner (info left on the device, one call a step) and step by step
    (host numbers), the same trial takes the same steps, in float64."""
    import numpy as np

    from hfbench import algorithms, data, models
    from hfbench.runner.batches import index_stream

    algorithm, params = DEVICE_PATH_CASES[case]
    text = SUITE.format(backend="jax", algorithm=algorithm, params=params, steps=12)
    text = text.replace("name: harness", "name: harness\ndtype: float64")
    (t,) = suite.expand(suite.loads(text))
    rec = trial_mod.run_trial(t, tmp_path)
    assert rec["status"] == "completed", rec.get("error")

    be = hfbench.get_backend("jax", device="cpu", dtype="float64")
    spec = t.model_spec()
    problem = be.problem(spec)
    ds = data.load(t.dataset, seed=t.seed, flatten=True)
    alg = algorithms.get(t.algorithm, **t.params)
    x = be.asarray(models.init_params(spec, seed=t.seed, dtype="float64"))
    state = alg.init(x)
    stream = index_stream(len(ds.X_train), 32, t.seed)
    for row in rec["steps"]:
        idx = next(stream).grad
        x, state, info = alg.step(problem, x, state, be.batch(ds.X_train[idx], ds.y_train[idx]))
        assert row["batch_loss"] == pytest.approx(info["loss"], rel=1e-10), (case, row["step"])
        for key in ("lambda", "rho", "loss_after", "step_norm", "ritz_min", "ritz_max", "alpha",
                    "direction_norm"):
            if key in info:
                assert row[key] == pytest.approx(info[key], rel=1e-8, nan_ok=True), (case, key)
        assert row["cg_iters"] == info["cg_iters"] and row["cg_status"] == info["cg_status"]
    assert np.isfinite(rec["final"]["train_loss"])


@pytest.mark.skipif("jax" not in BACKENDS, reason="the device path is for backends that fuse: pip install jax")
@pytest.mark.parametrize("case", sorted(DEVICE_PATH_CASES))
def test_device_path_step_is_one_call_and_no_host_read(case, monkeypatch, tmp_path):
    algorithm, params = DEVICE_PATH_CASES[case]
    c, rec = _run("jax", algorithm, params, monkeypatch, tmp_path)
    assert c.reads <= 3, f"{c.reads} host reads in {STEPS} steps"
    assert c.calls / STEPS <= 1 + 3 / STEPS
    assert all(isinstance(s["cg_status"], str) for s in rec["steps"])  # finished on the host


@pytest.mark.skipif("jax" not in BACKENDS, reason="the device path is for backends that fuse: pip install jax")
@pytest.mark.parametrize("params", [
    "{damping: 3.0, L: 1.0}",
    "{damping: 3.0, L: 1.0, rho_point: taken, rho_model: undamped, damping_min: 0.1, clamp_step: true}",
])
def test_adaptive_hf_device_path_takes_the_host_paths_steps(params, tmp_path):
    DEVICE_PATH_CASES["adaptive_hf"] = ("adaptive_hf", params)
    try:
        test_device_path_takes_the_host_paths_steps("adaptive_hf", tmp_path)
    finally:
        del DEVICE_PATH_CASES["adaptive_hf"]
