"""Run one trial (workload x optimizer x backend x seed) to its budget.

Training time is wall time of `alg.step` calls only: the device is synced before
each clock read, warm-up (compilation) steps run on a throwaway copy first and are
timed apart, and evaluation pauses the training clock. Evaluation happens every
`eval.every` iterations and at the first step past each `eval.time_marks` second,
so both backends get the same evaluations.

Budgets (first reached ends the trial): time_s (training seconds), epochs (examples
seen / training-set size), iterations, grad_passes (gradient-equivalent passes,
GRAD_EQUIV weights below). Targets marked `stop` end the trial once all of them
are met; `eval.epoch_end` adds an evaluation at the end of every epoch.
"""

from __future__ import annotations

import math
import time
import traceback

import numpy as np

from .. import algorithms, data, models
from ..registry import get_backend
from . import record
from .batches import index_stream
from .evaluate import evaluate_full

# Cost of each counted operation in gradients. A Gv costs 0.9-1.2 gradients on both
# backends (benchmarks/curvature_ratios.py), a forward-only pass or a curvature setup
# about half of one.
GRAD_EQUIV = {"n_grad": 1.0, "n_gv": 1.0, "n_precond": 1.0, "n_fwd": 0.5, "n_curv": 0.5}
COUNTS = tuple(GRAD_EQUIV)
WARMUP_STEPS = 2  # hf's first two steps trace both CG variants (cold and warm start)


def build_model(trial) -> models.ModelSpec:
    """The ModelSpec of a trial (the suite layer builds it from the model entry)."""
    return trial.model_spec()


def batch_sizes(trial, n_train: int) -> tuple[int, int | None]:
    """(gradient, curvature) batch sizes; "full" means the whole training set."""
    b = n_train if trial.batch_size == "full" else int(trial.batch_size)
    c = trial.curvature_batch_size
    c = n_train if c == "full" else (None if c is None else int(c))
    return b, (None if c == b else c)


class _Run:
    """The mutable bookkeeping of one trial (local to run_trial, never shared)."""

    def __init__(self, trial, ds, spec):
        self.trial, self.ds, self.spec = trial, ds, spec
        self.steps, self.evals = [], []
        self.counts = dict.fromkeys(COUNTS, 0)
        self.iteration, self.train_time = 0, 0.0
        self.marks = sorted(float(t) for t in (trial.eval or {}).get("time_marks", []) or [])
        self.targets = {}  # target index -> {"time_s", "iteration", "epoch"}
        self.batch_size, self.curvature_batch_size = batch_sizes(trial, len(ds.X_train))

    @property
    def epoch(self) -> float:
        return self.iteration * self.batch_size / len(self.ds.X_train)

    @property
    def grad_passes(self) -> float:
        return sum(GRAD_EQUIV[k] * v for k, v in self.counts.items())

    def budget_usage(self) -> list[tuple[float, float]]:
        """(used, limit) for every budget the trial sets."""
        b = self.trial.budget or {}
        used = {"time_s": self.train_time, "epochs": self.epoch, "iterations": self.iteration,
                "grad_passes": self.grad_passes}
        return [(used[k], b[k]) for k in used if b.get(k) is not None]

    def budget_left(self) -> bool:
        return all(value < limit for value, limit in self.budget_usage())


def run_trial(trial, results_dir, on_step=None) -> dict:
    """Run `trial`, write its record atomically into `results_dir`, return the record."""
    started = time.time()
    try:
        rec = _run(trial, on_step)
    except (KeyboardInterrupt, SystemExit):
        raise  # no record: an interrupted trial is rerun, never half-counted
    except Exception as exc:  # a failed trial is recorded, and the suite goes on
        rec = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(), "config": trial.config()}
    rec.update(trial_id=trial.id, suite=trial.suite, wall_s=time.time() - started)
    record.write_atomic(record.path_for(results_dir, trial.id), rec)
    return rec


def _run(trial, on_step) -> dict:
    be = get_backend(trial.backend, device=trial.device, dtype=trial.dtype, tf32=trial.tf32)
    spec = build_model(trial)
    ds = data.load(trial.dataset, seed=trial.seed, **_data_options(spec))
    problem = be.problem(spec)
    alg = algorithms.get(trial.algorithm, **trial.params)
    x = be.asarray(models.init_params(spec, seed=trial.seed, dtype=trial.dtype))
    run = _Run(trial, ds, spec)
    stream = index_stream(len(ds.X_train), run.batch_size, trial.seed, run.curvature_batch_size)
    compile_s = _warm_up(be, problem, alg, x, ds, run)
    state, status = alg.init(x), "budget_exhausted"
    _evaluate(be, problem, x, run, "start")
    while run.budget_left():
        idx = next(stream)
        x, state, info = _timed_step(be, problem, alg, x, state, ds, idx, run)
        if on_step:
            on_step(run, info)
        if not math.isfinite(info["loss"]) or not _finite(be, x):
            status = "diverged"
            break
        if _eval_due(run):
            _evaluate(be, problem, x, run, "schedule")
            if _stop_targets_met(run):
                status = "target_reached"
                break
    if status != "diverged":
        _evaluate(be, problem, x, run, "final")
        status = _final_status(trial, run, status)
    return _summary(trial, be, run, status, compile_s)


def _final_status(trial, run, status) -> str:
    """target_reached: every target met; completed: budget used, no targets set;
    budget_exhausted: budget used with a target still unmet."""
    if _targets_met(run):
        return "target_reached"
    return "completed" if not trial.targets else "budget_exhausted"


def _data_options(spec) -> dict:
    """Autoencoders reconstruct their inputs; dense nets take flat inputs, conv nets images."""
    opts = {"flatten": len(spec.input_shape) == 1}
    if spec.reconstruct:
        opts["task"] = "reconstruction"
    return opts


def _batch(be, ds, idx):
    return be.batch(ds.X_train[idx], ds.y_train[idx])


def _warm_up(be, problem, alg, x, ds, run) -> float:
    """Compile and warm caches on a throwaway copy of the start; returns seconds."""
    stream = index_stream(len(ds.X_train), run.batch_size, run.trial.seed + 10**6,
                          run.curvature_batch_size)
    be.sync()
    t = time.perf_counter()
    xw, state = x, alg.init(x)
    for _ in range(WARMUP_STEPS):
        idx = next(stream)
        cb = None if idx.curvature is None else _batch(be, ds, idx.curvature)
        xw, state, _ = alg.step(problem, xw, state, _batch(be, ds, idx.grad), cb)
    be.sync(xw)
    return time.perf_counter() - t


def _timed_step(be, problem, alg, x, state, ds, idx, run):
    be.sync(x)
    t = time.perf_counter()
    batch = _batch(be, ds, idx.grad)
    cbatch = None if idx.curvature is None else _batch(be, ds, idx.curvature)
    x, state, info = alg.step(problem, x, state, batch, cbatch)
    be.sync(x)
    run.train_time += time.perf_counter() - t
    run.iteration += 1
    for k in COUNTS:
        run.counts[k] += int(info.get(k, 0))
    run.steps.append(_step_row(run, info))
    return x, state, info


def _step_row(run, info) -> dict:
    keep = ("loss", "cg_iters", "lambda", "rho", "alpha", "accepted", "cond_est", "cg_status")
    row = {"step": run.iteration, "epoch": run.epoch, "time_s": run.train_time,
           "grad_passes": run.grad_passes, **run.counts}
    row.update({("batch_loss" if k == "loss" else k): info[k] for k in keep if k in info})
    return row


def _finite(be, x) -> bool:
    return bool(np.isfinite(be.ops.to_float(be.ops.vdot(x, x))))


def _eval_due(run) -> bool:
    ev = run.trial.eval or {}
    every = ev.get("every")
    if every and run.iteration % int(every) == 0:
        return True
    per_epoch = len(run.ds.X_train) // run.batch_size
    if ev.get("epoch_end") and run.iteration % per_epoch == 0:
        return True
    if run.marks and run.train_time >= run.marks[0]:
        while run.marks and run.train_time >= run.marks[0]:
            run.marks.pop(0)
        return True
    return False


def _evaluate(be, problem, x, run, why) -> None:
    t = time.perf_counter()
    row = {"step": run.iteration, "epoch": run.epoch, "time_s": run.train_time,
           "grad_passes": run.grad_passes, "why": why, **run.counts}
    row.update(evaluate_full(be, problem, x, run.ds))
    row["eval_s"] = time.perf_counter() - t
    run.evals.append(row)
    _check_targets(run, row)


def _check_targets(run, row) -> None:
    for i, tgt in enumerate(run.trial.targets or []):
        metric, op, value = _target(tgt)
        got = row.get(metric)
        if i in run.targets or got is None or not math.isfinite(got):
            continue
        if (got >= value) if op == ">=" else (got <= value):
            run.targets[i] = {"metric": metric, "op": op, "value": value,
                              "time_s": row["time_s"], "iteration": row["step"], "epoch": row["epoch"]}


def _target(tgt) -> tuple[str, str, float]:
    return tgt["metric"], tgt["op"], float(tgt["value"])


def _targets_met(run) -> bool:
    return bool(run.trial.targets) and len(run.targets) == len(run.trial.targets)


def _stop_targets_met(run) -> bool:
    """All targets marked `stop` are met (and there is at least one)."""
    stops = [i for i, t in enumerate(run.trial.targets or []) if t.get("stop")]
    return bool(stops) and all(i in run.targets for i in stops)


def _summary(trial, be, run, status, compile_s) -> dict:
    final = run.evals[-1] if run.evals else {}
    return {
        "status": status,
        "metadata": record.metadata(be, trial),
        "config": trial.config(),
        "compile_s": compile_s,
        "train_time_s": run.train_time,
        "iterations": run.iteration,
        "epochs": run.epoch,
        "targets": [run.targets.get(i) for i in range(len(trial.targets or []))],
        "at_time_marks": _at_marks(trial, run.evals),
        "final": {k: v for k, v in final.items() if k not in ("why",)},
        "diverged_at": run.iteration if status == "diverged" else None,
        "steps": run.steps,
        "evals": run.evals,
    }


def _at_marks(trial, evals) -> dict:
    """The metrics of the first evaluation at or after each time mark (Gargiani Tables 1-3)."""
    out = {}
    for mark in (trial.eval or {}).get("time_marks", []) or []:
        hit = next((e for e in evals if e["time_s"] >= float(mark)), None)
        out[str(mark)] = None if hit is None else {k: v for k, v in hit.items() if k != "why"}
    return out
