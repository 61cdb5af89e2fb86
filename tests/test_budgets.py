"""The runner's budgets, stops and evaluation schedule, step by step (issue 12).

Each test runs one tiny trial through `run_trial` and checks where it stopped and
where it evaluated against a rule computed here from the suite's numbers and the
dataset's size, not against what the runner reports about itself:

- `iterations: N` runs exactly N steps; `epochs: E` runs the first step count k with
  k * batch_size >= E * n_train; `grad_passes: G` stops at the first step whose
  cumulative gradient passes reach G; `time_s: T` at the first step whose training
  time reaches T.
- a `stop` target ends the trial, `target_reached`, at the first evaluation meeting it.
- a NaN or Inf loss at step k: `diverged`, `diverged_at == k`, steps 1..k kept, no
  final metrics, and the next trial of the suite still runs; reports count it as a
  miss (time to target inf).
- evaluations happen at step 0, at the multiples of `every`, at each epoch's end
  (n_train // batch_size steps: the index stream drops the remainder) and at the
  first step past each `time_marks` second, and at the end.

Sync points (when the runner reads the device back and checks its budgets) depend on
host time; a fake clock (`FakeClock`) makes them, and the time budget, exact: each
step takes `tick` seconds of training, nothing else takes any. With tick 0 the runner
syncs only where a budget or an evaluation forces it, so a stop one step late is
never hidden by an incidental sync.
"""

from __future__ import annotations

import math
import types
from fractions import Fraction

import numpy as np
import pytest

from hfbench import algorithms, data, results
from hfbench.runner import GRAD_EQUIV, run_trial
from hfbench.runner import trial as trial_module
from hfbench.runner.suite_run import run_suite
from hfbench.suite import expand, loads

from conftest import missing_backends

BACKENDS = [pytest.param(n, marks=pytest.mark.skipif(missing_backends(n) is not None,
                                                      reason=str(missing_backends(n))))
            for n in ("torch", "jax")]
TORCH = pytest.mark.skipif(missing_backends("torch") is not None, reason=str(missing_backends("torch")))

SUITE = """\
name: budgets
backends: [torch, jax]
seeds: [0]
device: cpu
dtype: float64
workloads:
  digits:
    dataset: digits
    model: {{type: mlp, sizes: [64, 4, 10], activation: tanh}}
    batch_size: {batch}
optimizers:
  sgd: {{algorithm: sgd, params: {{lr: 0.5}}}}
  hf: {{algorithm: hf, params: {{cg_max_iters: 4}}}}
budget: {budget}
eval: {eval}
targets: {targets}
"""
NO_EVAL = "{every: null}"


def make_trial(budget: str, eval: str = NO_EVAL, batch: int = 100, targets: str = "[]",
               optimizer: str = "sgd", backend: str = "torch"):
    text = SUITE.format(batch=batch, budget=budget, eval=eval, targets=targets)
    (trial,) = expand(loads(text, "budgets.yaml"), optimizer=optimizer, backend=backend)
    return trial


def n_train() -> int:
    """The digits training set's size, from the data layer (the runner's oracle-free input)."""
    return len(data.load("digits", seed=0).X_train)


class FakeClock:
    """The runner's clock (`time.perf_counter` in hfbench.runner.trial): time moves
    only by `tick` seconds per step of the algorithm."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        return self.now


class Instrumented:
    """The trial's algorithm with `hook(k, x, state, info)` after each step; k counts
    the steps of the timed run (from its own init: the warm-up runs first, on a
    throwaway copy, and has its own init)."""

    def __init__(self, alg, hook):
        self.alg, self.hook, self.k = alg, hook, 0
        self.warmup = alg.warmup

    def init(self, x):
        self.k = 0
        return self.alg.init(x)

    def step(self, problem, x, state, batch, curvature_batch=None):
        self.k += 1
        x, state, info = self.alg.step(problem, x, state, batch, curvature_batch)
        return self.hook(self.k, x, state, info)


@pytest.fixture
def run(monkeypatch):
    """`run(trial, tick=0.0, hook=None, clock=None)`: run_trial under a FakeClock
    (`clock`, or a new one of `tick`), with `hook` (k, x, state, info) -> (x, state,
    info) on each step of the run."""

    def go(trial, tick: float = 0.0, hook=None, clock=None):
        clock = clock or FakeClock(tick)
        monkeypatch.setattr(trial_module, "time", types.SimpleNamespace(
            perf_counter=clock.perf_counter, time=clock.perf_counter))
        real_get = algorithms.get

        def get(name, **params):
            def step_hook(k, x, state, info):
                clock.now += clock.tick
                return hook(k, x, state, info) if hook else (x, state, info)
            return Instrumented(real_get(name, **params), step_hook)

        monkeypatch.setattr(algorithms, "get", get)
        rec = run_trial(trial, None)
        assert rec["status"] != "failed", rec.get("traceback")
        return rec

    return go


def eval_steps(rec) -> list[int]:
    return [e["step"] for e in rec["evals"]]


# ----------------------------------------------------------------------------- budgets


@TORCH
@pytest.mark.parametrize("n", [1, 5])
def test_iterations_budget_runs_exactly_that_many_steps(run, n):
    rec = run(make_trial(f"{{iterations: {n}}}"))
    assert rec["status"] == "completed"
    assert rec["iterations"] == n
    assert [s["step"] for s in rec["steps"]] == list(range(1, n + 1))
    assert eval_steps(rec) == [0, n] and rec["evals"][-1]["why"] == "final"


@TORCH
@pytest.mark.parametrize("epochs, batch", [(2, 500), (1, 719), (0.5, 100)])
def test_epochs_budget_stops_at_the_first_step_that_sees_that_many_examples(run, epochs, batch):
    """1438 digits: 2 epochs of 500 is 5.75 steps -> 6; 1 of 719 is exactly 2; 0.5 of
    100 is 7.19 -> 8."""
    n = n_train()
    want = math.ceil(Fraction(str(epochs)) * n / batch)  # exact: no float rounding here
    rec = run(make_trial(f"{{epochs: {epochs}}}", batch=batch))
    assert rec["iterations"] == want and len(rec["steps"]) == want
    assert rec["epochs"] == pytest.approx(want * batch / n, rel=1e-12)
    assert rec["steps"][-1]["epoch"] >= epochs > (want - 1) * batch / n


@TORCH
@pytest.mark.parametrize("limit, want", [(4, 4), (3.5, 4)])
def test_grad_passes_budget_for_sgd_counts_one_gradient_a_step(run, limit, want):
    rec = run(make_trial(f"{{grad_passes: {limit}}}"))
    assert rec["iterations"] == want
    assert [s["n_grad"] for s in rec["steps"]] == list(range(1, want + 1))  # cumulative


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_passes_budget_stops_hf_at_the_first_step_past_it(run, backend):
    """hf's counts vary per step (CG iterations) and are device values on JAX: the
    trial ends at the first step whose cumulative passes reach the budget."""
    limit = 12
    rec = run(make_trial(f"{{grad_passes: {limit}}}", optimizer="hf", backend=backend))
    steps = rec["steps"]
    passes = [sum(GRAD_EQUIV[k] * s[k] for k in GRAD_EQUIV) for s in steps]
    assert passes == pytest.approx([s["grad_passes"] for s in steps])
    assert all(b > a for a, b in zip(passes, passes[1:]))  # every step costs something
    assert passes[-1] >= limit > passes[-2], passes
    assert rec["iterations"] == len(steps)


@TORCH
@pytest.mark.parametrize("limit, want", [(5, 5), (4.5, 5), (0.5, 1)])
def test_time_budget_stops_at_the_first_step_past_it(run, limit, want):
    """Each step takes exactly 1 s of the fake clock: T seconds end at step ceil(T)."""
    rec = run(make_trial(f"{{time_s: {limit}}}"), tick=1.0)
    assert rec["iterations"] == want
    assert rec["train_time_s"] == float(want)
    assert [s["time_s"] for s in rec["steps"]] == [float(k) for k in range(1, want + 1)]


@TORCH
def test_the_first_budget_reached_ends_the_trial(run):
    rec = run(make_trial("{iterations: 7, grad_passes: 20, time_s: 100}"), tick=1.0)
    assert rec["iterations"] == 7
    rec = run(make_trial("{iterations: 70, grad_passes: 6, time_s: 100}"), tick=1.0)
    assert rec["iterations"] == 6
    rec = run(make_trial("{iterations: 70, grad_passes: 60, time_s: 3}"), tick=1.0)
    assert rec["iterations"] == 3


# ----------------------------------------------------------------------------- evaluation schedule


@TORCH
@pytest.mark.parametrize("every, n", [(1, 4), (3, 10), (4, 8)])
def test_evaluations_happen_every_n_steps(run, every, n):
    rec = run(make_trial(f"{{iterations: {n}}}", eval=f"{{every: {every}}}"))
    want = sorted({0, *range(every, n + 1, every), n})
    assert eval_steps(rec) == want
    assert [e["why"] for e in rec["evals"]] == ["start"] + ["schedule"] * (len(want) - 2) + ["final"]


@TORCH
def test_evaluations_happen_at_each_epochs_end(run):
    """500 of 1438 digits a step: the stream's epoch is 2 steps (the remainder is dropped)."""
    batch, n = 500, n_train()
    per_epoch = n // batch
    rec = run(make_trial("{iterations: 7}", eval="{every: null, epoch_end: true}", batch=batch))
    assert eval_steps(rec) == [0, *range(per_epoch, 7, per_epoch), 7]


@TORCH
def test_epoch_end_and_every_together(run):
    rec = run(make_trial("{iterations: 9}", eval="{every: 3, epoch_end: true}", batch=500))
    assert eval_steps(rec) == [0, 2, 3, 4, 6, 8, 9]  # epochs end at 2, 4, 6, 8; every 3


@TORCH
def test_evaluations_happen_at_the_first_step_past_each_time_mark(run):
    """1 s a step: marks at 2 and 3.5 s are passed at steps 2 and 4 (a mark is met
    when the training time reaches it), 10 s never."""
    rec = run(make_trial("{iterations: 6}", eval="{every: null, time_marks: [3.5, 2, 10]}"), tick=1.0)
    assert eval_steps(rec) == [0, 2, 4, 6]
    at = {float(mark): row for mark, row in rec["at_time_marks"].items()}
    assert at[2.0]["step"] == 2 and at[3.5]["step"] == 4 and at[10.0] is None


@TORCH
def test_a_time_mark_at_a_scheduled_evaluation_adds_none(run):
    """A mark passed at a step evaluated anyway (every) is served by that evaluation,
    not by another one at the next sync."""
    rec = run(make_trial("{iterations: 6}", eval="{every: 2, time_marks: [2]}"), tick=1.0)
    assert eval_steps(rec) == [0, 2, 4, 6]
    assert [row["step"] for row in rec["at_time_marks"].values()] == [2]


@TORCH
def test_evaluation_time_is_not_training_time(run, monkeypatch):
    """Evaluating takes 100 fake seconds here; the training clock does not see them."""
    clock, real = FakeClock(1.0), trial_module.evaluate_full

    def slow(be, problem, x, ds):
        clock.now += 100.0
        return real(be, problem, x, ds)

    monkeypatch.setattr(trial_module, "evaluate_full", slow)
    rec = run(make_trial("{iterations: 4}", eval="{every: 1}"), clock=clock)
    assert rec["train_time_s"] == 4.0
    assert [e["time_s"] for e in rec["evals"]] == [0.0, 1.0, 2.0, 3.0, 4.0]


# ----------------------------------------------------------------------------- targets


@TORCH
def test_a_stop_target_ends_the_trial_at_the_first_evaluation_meeting_it(run):
    """sgd at lr 0.5 takes the digits train loss from ln 10 ~ 2.3 below 2.0 within
    40 steps (checked: the trial must stop before its budget)."""
    rec = run(make_trial("{iterations: 40}", eval="{every: 2}",
                         targets='[{metric: train_loss, "<=": 2.0, stop: true}]'))
    evals = rec["evals"]
    assert rec["status"] == "target_reached"
    assert evals[-1]["train_loss"] <= 2.0 and evals[-1]["why"] == "final"
    assert all(e["train_loss"] > 2.0 for e in evals[:-1])
    assert rec["iterations"] == evals[-1]["step"] < 40
    assert rec["targets"][0]["iteration"] == evals[-1]["step"]


@TORCH
def test_a_stop_target_met_at_the_start_stops_at_the_first_scheduled_evaluation(run):
    """Met before any step (time 0, as recorded); the trial still takes its first
    evaluation interval of steps, so no record is empty."""
    rec = run(make_trial("{iterations: 10}", eval="{every: 3}",
                         targets='[{metric: train_loss, "<=": 1.0e6, stop: true}]'))
    assert rec["status"] == "target_reached" and rec["iterations"] == 3
    assert rec["targets"][0]["iteration"] == 0 and rec["targets"][0]["time_s"] == 0.0


@TORCH
def test_a_target_without_stop_only_records_when(run):
    rec = run(make_trial("{iterations: 40}", eval="{every: 2}",
                         targets='[{metric: train_loss, "<=": 2.0}]'))
    assert rec["status"] == "target_reached" and rec["iterations"] == 40
    first = next(e for e in rec["evals"] if e["train_loss"] <= 2.0)
    assert rec["targets"][0]["iteration"] == first["step"] < 40


@TORCH
def test_stopping_on_a_stop_target_is_target_reached_even_with_another_target_unmet(run):
    """The trial ended because its stop target was met, not because its budget ran out."""
    rec = run(make_trial("{iterations: 40}", eval="{every: 2}",
                         targets='[{metric: train_loss, "<=": 2.0, stop: true}, '
                                 '{metric: test_accuracy, ">=": 1.0}]'))
    assert rec["iterations"] < 40
    assert rec["status"] == "target_reached"
    assert rec["targets"][1] is None


@TORCH
def test_a_target_is_met_by_an_evaluation_equal_to_it(run):
    """`<=` and `>=` include the bound: thresholds set to the exact losses of a first
    run (at step 4, and at step 0) are met at those very evaluations of a second run
    (same seed, same numbers: tests/test_determinism.py)."""
    first = run(make_trial("{iterations: 6}", eval="{every: 2}"))
    losses = {e["step"]: e["train_loss"] for e in first["evals"]}
    assert losses[0] > losses[2] > losses[4] > losses[6]
    targets = f'[{{metric: train_loss, "<=": {losses[4]!r}}}, {{metric: train_loss, ">=": {losses[0]!r}}}]'
    rec = run(make_trial("{iterations: 6}", eval="{every: 2}", targets=targets))
    assert [hit["iteration"] for hit in rec["targets"]] == [4, 0]


@TORCH
def test_an_unmet_target_exhausts_the_budget(run):
    rec = run(make_trial("{iterations: 4}", eval="{every: 2}",
                         targets='[{metric: train_loss, "<=": 0.0, stop: true}]'))
    assert rec["status"] == "budget_exhausted" and rec["iterations"] == 4
    assert rec["targets"] == [None]


# ----------------------------------------------------------------------------- divergence


def poison(at: int, value: float, weights: bool = True):
    """A hook that makes step `at`'s loss `value` (NaN, inf) and, with `weights`, its
    result non-finite too (as a real blow-up does)."""

    def hook(k, x, state, info):
        if k == at:
            info = {**info, "loss": info["loss"] * value}
            x = x * value if weights else x
        return x, state, info

    return hook


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_at_step_k_is_diverged_at_k(run, backend, bad):
    """The loss goes bad at step 3 of 8; with no evaluation the runner first syncs at
    step 8 and must trace it back to step 3."""
    rec = run(make_trial("{iterations: 8}", backend=backend,
                         targets='[{metric: train_loss, "<=": 1.0e6}]'), hook=poison(3, bad))
    assert rec["status"] == "diverged"
    assert rec["diverged_at"] == 3 and rec["iterations"] == 3
    losses = [s["batch_loss"] for s in rec["steps"]]
    assert len(losses) == 3 and np.isfinite(losses[:2]).all() and not np.isfinite(losses[2])
    assert rec["final"] is None


@TORCH
def test_a_non_finite_loss_alone_is_divergence(run):
    """A NaN loss with finite weights (the step's number, not the state) still diverges."""
    rec = run(make_trial("{iterations: 6}", eval="{every: 2}"), hook=poison(5, math.nan, weights=False))
    assert rec["status"] == "diverged" and rec["diverged_at"] == 5


@TORCH
def test_non_finite_weights_after_a_finite_loss_are_divergence(run):
    """The last step's loss was finite but its result is NaN: diverged at that step,
    not a completed trial with NaN final metrics."""
    def hook(k, x, state, info):
        return (x * math.nan if k == 4 else x), state, info

    rec = run(make_trial("{iterations: 4}"), hook=hook)
    assert rec["status"] == "diverged" and rec["diverged_at"] == 4 and rec["final"] is None


@TORCH
def test_divergence_is_found_at_the_sync_of_its_stretch(run):
    """Syncs at 2, 4 (evaluations): a NaN at step 3 is step 3, seen at the sync at 4,
    and no evaluation of the poisoned weights is kept as a result."""
    rec = run(make_trial("{iterations: 8}", eval="{every: 2}"), hook=poison(3, math.nan))
    assert rec["diverged_at"] == 3 and eval_steps(rec) == [0, 2]


def real_divergence(backend: str):
    """sgd at lr 1000 on Boston housing (squared error, float32): the loss blows up
    geometrically and overflows to inf within a few steps."""
    text = SUITE.format(batch=32, budget="{iterations: 60}", eval="{every: 20}",
                        targets='[{metric: train_loss, "<=": 1.0e6}]')
    text = text.replace("dataset: digits", "dataset: boston").replace("[64, 4, 10], activation: tanh",
                                                                     "[13, 8, 1], activation: sigmoid")
    text = text.replace("dtype: float64", "dtype: float32").replace("lr: 0.5", "lr: 1000.0")
    return expand(loads(text, "budgets.yaml"), optimizer="sgd", backend=backend)[0]


@pytest.mark.skipif(missing_backends("torch", "jax") is not None,
                    reason=str(missing_backends("torch", "jax")))
def test_a_real_blow_up_diverges_at_the_same_step_on_both_backends(tmp_path):
    """Two independent implementations of one trial agree on where it blew up, and the
    suite goes on to the next trial after it."""
    ok = make_trial("{iterations: 2}")
    try:
        trials = [real_divergence("torch"), real_divergence("jax"), ok]
        recs = run_suite(trials, tmp_path)
    except ImportError as exc:
        pytest.skip(f"boston needs an optional package: {exc}")
    (torch_rec, jax_rec, ok_rec) = recs
    for rec in (torch_rec, jax_rec):
        assert rec["status"] == "diverged", rec.get("error")
        losses = [s["batch_loss"] for s in rec["steps"]]
        first_bad = next(i for i, v in enumerate(losses, 1) if not math.isfinite(float(v)))
        assert rec["diverged_at"] == first_bad == len(losses) < 60
    assert torch_rec["diverged_at"] == jax_rec["diverged_at"]
    assert ok_rec["status"] == "completed" and ok_rec["iterations"] == 2
    # reports: a diverged trial is a miss, its target met at step 0 notwithstanding
    assert torch_rec["targets"][0] is not None  # met at the start evaluation, before the blow-up
    pytest.importorskip("pandas", reason="results.trials needs the results extra (pandas)")
    table = results.trials(tmp_path)
    diverged = table[table["status"] == "diverged"]
    assert len(diverged) == 2
    for unit in ("time_s", "iterations", "epochs", "grad_passes"):
        col = f"target.train_loss<=1e+06.{unit}"
        assert (diverged[col] == math.inf).all(), (col, diverged[col].tolist())
    assert diverged["final.train_loss"].isna().all()
    assert set(diverged["diverged_at"]) == {float(torch_rec["diverged_at"])}
