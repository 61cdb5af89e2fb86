"""Run one trial (workload x optimizer x backend x seed) to its budget.

Training time is the wall time of the training loop (the steps and the loop's own
O(1) bookkeeping, as a hand-written loop would pay them): the device is synced
before each clock read, warm-up (compilation) steps run on a throwaway copy first
and are timed apart, and evaluation pauses the training clock. The loop does not
sync every step: it syncs at evaluations, at the iteration budget, and otherwise
every SYNC_INTERVAL_S of host time or when a time budget or mark may have passed,
and reads the steps' device scalars back then in one transfer (`steplog`).
Evaluation happens every `eval.every` iterations and at the first sync past each
`eval.time_marks` second, so both backends get the same evaluations.

Budgets (first reached ends the trial): time_s (training seconds), epochs (examples
seen / training-set size), iterations, grad_passes (gradient-equivalent passes,
GRAD_EQUIV weights below). Targets marked `stop` end the trial once all of them
are met, checked at scheduled evaluations (one met at the start evaluation is
recorded there, at 0 s, and the trial stops at its first scheduled evaluation: every
trial takes steps); `eval.epoch_end` adds an evaluation at the end of every epoch.
"""

from __future__ import annotations

import math
import time
import traceback

import numpy as np

from .. import algorithms, data, models
from ..algorithms.fused import lazy_info
from ..registry import get_backend
from . import record
from .batches import index_stream
from .evaluate import evaluate_full
from .feed import Feed
from .steplog import StepLog

# Cost of each counted operation in gradients. A Gv costs 0.9-1.2 gradients on both
# backends (benchmarks/curvature_ratios.py), a forward-only pass or a curvature setup
# about half of one.
GRAD_EQUIV = {"n_grad": 1.0, "n_gv": 1.0, "n_precond": 1.0, "n_fwd": 0.5, "n_curv": 0.5}
COUNTS = tuple(GRAD_EQUIV)
WARMUP_STEPS = 2  # default; an Algorithm's `warmup` says how many steps compile all its paths
# Longest stretch of host time between two syncs of the training loop: a time budget
# or mark is overshot by at most this (plus the device's queue), and the syncs cost
# well under 0.1% of it.
SYNC_INTERVAL_S = 0.05
TIMING_NOTE = ("device synced at evaluations and every <= %g s of training; a step's time_s "
               "between two syncs is interpolated by step" % SYNC_INTERVAL_S)


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

    def __init__(self, trial, ds, spec, be):
        self.trial, self.ds, self.spec = trial, ds, spec
        self.log, self.evals = StepLog(be, GRAD_EQUIV), []
        self.x, self.synced_from = None, 0  # the parameters at the last sync
        self.iteration, self.train_time = 0, 0.0
        self.marks = sorted(float(t) for t in (trial.eval or {}).get("time_marks", []) or [])
        self.targets = {}  # target index -> {"time_s", "iteration", "epoch"}
        self.batch_size, self.curvature_batch_size = batch_sizes(trial, len(ds.X_train))
        self.n_train = len(ds.X_train)
        self.limits = dict((trial.budget or {}))
        ev = trial.eval or {}
        self.every = int(ev["every"]) if ev.get("every") else 0
        # iterations and epochs as one step count: epoch >= E <=> step >= ceil(E n / b)
        steps = [self.limits["iterations"]] if self.limits.get("iterations") else []
        if self.limits.get("epochs"):
            steps.append(math.ceil(self.limits["epochs"] * self.n_train / self.batch_size - 1e-9))
        self._max_iterations = min(steps, default=math.inf)
        self.per_epoch = self.n_train // self.batch_size if ev.get("epoch_end") else 0

    @property
    def steps(self) -> list[dict]:
        return self.log.rows

    @property
    def epoch(self) -> float:
        return self.iteration * self.batch_size / self.n_train

    @property
    def counts(self) -> dict:
        """Cumulative counts through the last sync (exact at syncs and evaluations)."""
        return self.log.counts

    @property
    def grad_passes(self) -> float:
        return self.log.grad_passes()

    def budget_usage(self) -> list[tuple[float, float]]:
        """(used, limit) for every budget the trial sets."""
        used = {"time_s": self.train_time, "epochs": self.epoch, "iterations": self.iteration,
                "grad_passes": self.grad_passes}
        return [(used[k], v) for k, v in self.limits.items() if v is not None]

    def budget_left(self) -> bool:
        return all(value < limit for value, limit in self.budget_usage())

    def counted_budget_left(self) -> bool:
        """The budgets that need no clock: iterations, epochs, gradient passes."""
        lim = self.limits
        if self.iteration >= self._max_iterations:  # iterations and epochs, as a step count
            return False
        return "grad_passes" not in lim or self.log.known_grad_passes() < lim["grad_passes"]

    def counts_due(self) -> bool:
        """A gradient-pass budget with counts still on the device: sync to read them, so
        the budget ends on the same step in every run."""
        return self.limits.get("grad_passes") is not None and self.log.device_counts

    def next_time_limit(self) -> float:
        """The next training time at which something happens (a mark or the budget)."""
        limits = [m for m in self.marks[:1]] + ([self.limits["time_s"]] if self.limits.get("time_s") else [])
        return min(limits, default=math.inf)

    def eval_due_by_count(self) -> bool:
        return bool((self.every and self.iteration % self.every == 0)
                    or (self.per_epoch and self.iteration % self.per_epoch == 0))

    def mark_passed(self) -> bool:
        passed = False
        while self.marks and self.train_time >= self.marks[0]:
            self.marks.pop(0)
            passed = True
        return passed


class _Clock:
    """Training time in segments that end at a sync (evaluation is outside them)."""

    def __init__(self, be, run):
        self.be, self.run = be, run
        self.t0 = self.last_sync = time.perf_counter()

    def restart(self) -> None:
        self.t0 = self.last_sync = time.perf_counter()

    def sync_due(self) -> bool:
        now = time.perf_counter()
        # host time is a lower bound of device time: past a limit here means past it there
        return (now - self.last_sync >= SYNC_INTERVAL_S
                or self.run.train_time + (now - self.t0) >= self.run.next_time_limit())

    def sync(self, x) -> list[float]:
        """Sync on x, close the segment, read the pending step scalars and |x|^2."""
        run, ops = self.run, self.be.ops
        norm2 = ops.vdot(x, x)
        self.be.sync(x, norm2)
        now = time.perf_counter()
        before, run.train_time = run.train_time, run.train_time + (now - self.t0)
        self.t0 = self.last_sync = now
        return run.log.flush(before, run.train_time, [norm2])


def run_trial(trial, results_dir, on_step=None, threads: int | None = None) -> dict:
    """Run `trial`, write its record atomically into `results_dir`, return the record.

    results_dir None: return the record without writing it (an executor's driver
    writes it, with the placement, when the trial ran in a worker on another host).
    threads: the framework's CPU thread count (torch; JAX takes it from XLA_FLAGS at
    start-up), an execution setting recorded in the metadata, not part of the trial.
    """
    started = time.time()
    try:
        rec = _run(trial, on_step, threads)
    except (KeyboardInterrupt, SystemExit):
        raise  # no record: an interrupted trial is rerun, never half-counted
    except Exception as exc:  # a failed trial is recorded, and the suite goes on
        rec = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(), "config": trial.config()}
    rec.update(trial_id=trial.id, suite=trial.suite, wall_s=time.time() - started)
    if results_dir is not None:
        record.write_atomic(record.path_for(results_dir, trial.id), rec)
    return rec


def _run(trial, on_step, threads=None) -> dict:
    extra = {} if threads is None else {"threads": threads}
    be = get_backend(trial.backend, **trial.backend_kwargs(), **extra)
    spec = build_model(trial)
    ds = data.load(trial.dataset, seed=trial.seed, **_data_options(spec))
    problem = be.problem(spec)
    alg = algorithms.get(trial.algorithm, **trial.params)
    x = be.asarray(models.init_params(spec, seed=trial.seed, dtype=trial.dtype))
    run = _Run(trial, ds, spec, be)
    feed = Feed(be, ds, trial.dtype)
    stream = index_stream(len(ds.X_train), run.batch_size, trial.seed, run.curvature_batch_size)
    with lazy_info():  # compile the paths the timed loop will take
        compile_s = _warm_up(be, problem, alg, x, feed, run)
    state = alg.init(x)
    _evaluate(be, problem, x, run, "start")
    with lazy_info():  # steps may leave their numbers on the device until a sync
        status, diverged_at = _train(be, problem, alg, x, state, feed, stream, run, on_step)
    if status != "diverged":
        if run.evals and run.evals[-1]["step"] == run.iteration:
            run.evals[-1]["why"] = "final"  # evaluated at this very step already
        else:
            _evaluate(be, problem, run.x, run, "final")
        status = _final_status(trial, run, status)
    return _summary(trial, be, run, status, compile_s, diverged_at)


def _train(be, problem, alg, x, state, feed, stream, run, on_step):
    """The timed loop; returns (status, the step that diverged or None)."""
    clock = _Clock(be, run)
    while True:
        x, state, info = alg.step(problem, x, state, *feed(next(stream)))
        _record(run, info)
        if "deferred" in info:  # diagnostics computed outside the training clock
            clock_out = _sync(clock, run, x)
            run.steps[-1].update(info["deferred"]())
            clock.restart()
        else:
            clock_out = None
        eval_due = run.eval_due_by_count()
        count_due = eval_due or not run.counted_budget_left() or run.counts_due()
        if clock_out is None and not (count_due or clock.sync_due()):
            continue
        norm2 = clock_out if clock_out is not None else _sync(clock, run, x)
        run.x = x
        bad = run.log.first_nonfinite("batch_loss", run.synced_from)
        if bad is not None or not math.isfinite(norm2):
            return "diverged", _diverged(run, bad)
        run.synced_from = len(run.steps)
        if on_step:  # the step's info, its loss as read back at this sync
            on_step(run, {**info, "loss": run.steps[-1].get("batch_loss")})
        marked = run.mark_passed()  # also when evaluating anyway, so no mark is left for later
        if eval_due or marked:
            _evaluate(be, problem, x, run, "schedule")
            if _stop_targets_met(run):
                return "target_reached", None
        if not run.budget_left():
            return "budget_exhausted", None
        clock.restart()  # the checks, progress and evaluation above are not training


def _sync(clock, run, x) -> float:
    (norm2,) = clock.sync(x)
    return norm2


def _record(run, info) -> None:
    """The step's row: its own counts (cumulative once flushed) and every number it reports."""
    run.iteration += 1
    row = {"step": run.iteration, "epoch": run.epoch, "time_s": None, **_NO_COUNTS, **info}
    row["batch_loss"] = row.pop("loss")
    hook = row.pop("_host", None)
    row.pop("deferred", None)
    run.log.add(row, hook)


_NO_COUNTS = dict.fromkeys(COUNTS, 0)


def _diverged(run, bad) -> int:
    """The step whose loss went non-finite (or, for non-finite weights after finite
    losses, the last step); later steps of the stretch are dropped from the record."""
    step = run.steps[bad]["step"] if bad is not None else run.iteration
    del run.steps[step:]
    run.iteration = step
    return step


def _final_status(trial, run, status) -> str:
    """target_reached: every target met, or the `stop` ones, which ended the trial;
    completed: budget used, no targets set; budget_exhausted: budget used with a
    target still unmet."""
    if status == "target_reached" or _targets_met(run):
        return "target_reached"
    return "completed" if not trial.targets else "budget_exhausted"


def _data_options(spec) -> dict:
    """Autoencoders reconstruct their inputs; dense nets take flat inputs, conv nets images."""
    opts = {"flatten": len(spec.input_shape) == 1}
    if spec.reconstruct:
        opts["task"] = "reconstruction"
    return opts


def _warm_up(be, problem, alg, x, feed, run) -> float:
    """Compile and warm caches on a throwaway copy of the start; returns seconds."""
    stream = index_stream(run.n_train, run.batch_size, run.trial.seed + 10**6,
                          run.curvature_batch_size)
    be.sync()
    t = time.perf_counter()
    xw, state = x, alg.init(x)
    for _ in range(getattr(alg, "warmup", WARMUP_STEPS)):
        xw, state, info = alg.step(problem, xw, state, *feed(next(stream)))
        info.pop("deferred", lambda: None)()
    be.sync(xw)
    return time.perf_counter() - t


def _evaluate(be, problem, x, run, why) -> None:
    t = time.perf_counter()
    row = {"step": run.iteration, "epoch": run.epoch, "time_s": run.train_time,
           "grad_passes": run.grad_passes, "why": why, **run.counts}
    row.update(evaluate_full(be, problem, x, run.ds))
    row["eval_s"] = time.perf_counter() - t
    run.evals.append(row)
    _check_targets(run, row)


def _check_targets(run, row) -> None:
    """Record the first evaluation that meets each target, in every unit a
    time-to-target can be read in (seconds, iterations, epochs, gradient passes)."""
    for i, tgt in enumerate(run.trial.targets or []):
        metric, op, value = _target(tgt)
        got = row.get(metric)
        if i in run.targets or got is None or not math.isfinite(got):
            continue
        if (got >= value) if op == ">=" else (got <= value):
            run.targets[i] = {"metric": metric, "op": op, "value": value,
                              "time_s": row["time_s"], "iteration": row["step"], "epoch": row["epoch"],
                              "grad_passes": row["grad_passes"]}


def _target(tgt) -> tuple[str, str, float]:
    return tgt["metric"], tgt["op"], float(tgt["value"])


def _targets_met(run) -> bool:
    return bool(run.trial.targets) and len(run.targets) == len(run.trial.targets)


def _stop_targets_met(run) -> bool:
    """All targets marked `stop` are met (and there is at least one)."""
    stops = [i for i, t in enumerate(run.trial.targets or []) if t.get("stop")]
    return bool(stops) and all(i in run.targets for i in stops)


def _summary(trial, be, run, status, compile_s, diverged_at) -> dict:
    # a diverged trial has no final metrics: its last finite evaluation is not one
    final = run.evals[-1] if run.evals and status != "diverged" else None
    return {
        "status": status,
        "metadata": {**record.metadata(be, trial), "backend_options": _backend_options(be, trial)},
        "config": trial.config(),
        "timing": TIMING_NOTE,
        "compile_s": compile_s,
        "train_time_s": run.train_time,
        "iterations": run.iteration,
        "epochs": run.epoch,
        "targets": [run.targets.get(i) for i in range(len(trial.targets or []))],
        "at_time_marks": _at_marks(trial, run.evals),
        "final": None if final is None else {k: v for k, v in final.items() if k != "why"},
        "diverged_at": diverged_at,
        "steps": run.steps,
        "evals": run.evals,
    }


def _backend_options(be, trial) -> dict:
    """The options the backend was built with, as it resolved them ("auto" -> its device),
    where it says (`options`); else as the trial asked for them."""
    return dict(getattr(be, "options", None) or trial.backend_kwargs())


def _at_marks(trial, evals) -> dict:
    """The metrics of the first evaluation at or after each time mark (Gargiani Tables 1-3)."""
    out = {}
    for mark in (trial.eval or {}).get("time_marks", []) or []:
        hit = next((e for e in evals if e["time_s"] >= float(mark)), None)
        out[str(mark)] = None if hit is None else {k: v for k, v in hit.items() if k != "why"}
    return out
