"""Run a list of trials with resume, a progress display and a summary table.

Resume: a trial whose record exists with a finished status is skipped (its id is
a hash of its resolved config, so any change of settings makes a new trial).
Failed trials and trials without a whole record (interrupted, or a file torn or
edited since) are run again; an unreadable record is named before it is replaced.

Faults: the results folder is checked writable before any trial starts. Ctrl-C
(SIGINT) and SIGTERM (a scheduler's stop, `kill`) end the sweep alike: the finished
records stay, the running trial writes none, and the message says how to resume.
"""

from __future__ import annotations

import contextlib
import math
import signal
import statistics
import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..executors import Executor, get_executor
from . import record
from .trial import run_trial


def preflight(trials) -> None:
    """Bad input found before any trial runs (exit 2 at the CLI, not a failed trial):
    a downloaded dataset missing from the cache, a device this machine lacks, or a
    backend option its backend refuses (named at the suite line that set it)."""
    from .. import data
    from ..data.download import require
    from ..registry import get_backend
    from ..suite.options import build_located

    for name in sorted({t.dataset for t in trials}):
        info = data.get_info(name)
        if info.files:
            require(info)  # names the missing file, its SHA-256 and the folder
    builds = {}  # one build per backend and set of options, the same ones the trials use
    for t in trials:
        builds.setdefault((t.backend, repr(sorted(t.backend_kwargs().items()))), t)
    for key in sorted(builds):
        build_located(builds[key], get_backend)


def _fraction(run) -> float:
    return min(1.0, max((used / limit for used, limit in run.budget_usage() if limit), default=0.0))


def run_suite(trials, results_dir, console: Console | None = None, threads: int | None = None,
              executor: str | Executor = "local", retries: int = 0, **executor_options) -> list[dict]:
    """Run `trials` (skipping finished ones) on `executor`; returns every trial's record.

    threads: the framework's CPU threads for every trial (see run_trial); retries: how
    many times a failed trial runs again; executor: "local" (in this process), "ray",
    or an Executor; executor_options: the executor's own (address, cpus_per_trial).
    A KeyboardInterrupt, or SIGTERM (raised as Terminated, a KeyboardInterrupt), keeps
    the finished records, says so and propagates. A results folder that cannot be
    written raises record.RecordError (an HFBenchError) before any trial starts, or at
    the first record that cannot be written (a full disk), which ends the sweep.
    """
    console = console or Console(stderr=True)
    if not isinstance(executor, Executor):  # run_trial looked up now, so tests can patch it
        executor = get_executor(executor, threads=threads, retries=retries, run=run_trial,
                                **executor_options)
    with sigterm_as_interrupt():
        todo = pending(trials, results_dir)
        if todo:  # a folder of finished records may be read-only: only a sweep must write
            record.check_writable(results_dir)
            record.remove_stale_temps(results_dir)
        _say_resume(console, trials, todo, results_dir)
        if todo:
            _run_all(executor, trials, todo, results_dir, console)
    return [record.read(record.path_for(results_dir, t.id)) for t in trials]


def _say_resume(console, trials, todo, results_dir) -> None:
    """How many trials are done; which records are unreadable and so run again."""
    if len(todo) < len(trials):
        _say(console, f"resuming: {len(trials) - len(todo)} of {len(trials)} trials already "
                      "done, skipped")
    for t in todo:
        path = record.path_for(results_dir, t.id)
        _, why = record.check(path)
        if why:
            _say(console, f"warning: {path}: {why}; trial {_label(t)} runs again")


def _run_all(executor, trials, todo, results_dir, console) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            executor.run_all(todo, results_dir, _ProgressDisplay(progress, console, len(todo)))
    except KeyboardInterrupt:
        done = sum(record.is_done(results_dir, t.id) for t in trials)
        _say(console, f"interrupted: {done} of {len(trials)} trials have their records in "
                      f"{results_dir}; run the same command again to resume (finished trials "
                      "are skipped)")
        raise


def _say(console, text: str) -> None:
    """One line, never wrapped (a log is grepped), never read as markup (paths have [])."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C; `exit_code` is the shell's 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.exit_code = 128 + signum


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises Terminated (a KeyboardInterrupt), so the sweep
    stops as on Ctrl-C. A second SIGTERM gets the previous handler (the default ends
    the process at once). Signal handlers live in the main thread only: elsewhere,
    and where SIGTERM does not exist, nothing changes."""
    sigterm = getattr(signal, "SIGTERM", None)
    previous = signal.getsignal(sigterm) if sigterm is not None else None
    if (sigterm is None or previous is signal.SIG_IGN  # ignored by whoever started us: keep it so
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    restore = previous if previous is not None else signal.SIG_DFL  # None: set outside Python

    def handler(signum, frame):
        signal.signal(signum, restore)
        raise Terminated(signum)

    signal.signal(sigterm, handler)
    try:
        yield
    finally:
        signal.signal(sigterm, restore)


def pending(trials, results_dir) -> list:
    """The trials without a finished record in `results_dir`, in order."""
    return [t for t in trials if not record.is_done(results_dir, t.id)]


def _label(trial) -> str:
    return f"{trial.workload}/{trial.optimizer}/{trial.backend}/s{trial.seed}"


class _ProgressDisplay:
    """run_suite's display for any executor: a bar over the trials, and the current
    trial's progress (local) or the count in flight (ray)."""

    def __init__(self, progress: Progress, console: Console, total: int):
        self.progress, self.console = progress, console
        self.overall = progress.add_task("trials", total=total, status="")
        self.current = progress.add_task("", total=1000, status="")

    def started(self, trial):
        label, progress, current = _label(trial), self.progress, self.current
        progress.update(current, description=label, completed=0, status="warming up")

        def on_step(run, info):
            progress.update(current, completed=int(1000 * _fraction(run)),
                            status=f"it {run.iteration} loss {info['loss']:.4g}")

        return on_step

    def finished(self, trial, rec) -> None:
        if rec["status"] == "failed":
            self.console.print(f"[red]trial {trial.id} ({_label(trial)}) failed:[/] "
                               f"{escape(str(rec['error']))}", soft_wrap=True)
        self.progress.advance(self.overall)

    def retrying(self, trial, rec, attempt) -> None:
        self.console.print(f"[yellow]trial {trial.id} ({_label(trial)}) failed (attempt {attempt}), "
                           f"running it again:[/] {escape(str(rec['error']))}", soft_wrap=True)

    def running(self, running, queued) -> None:
        # no trial runs in this process: the overall bar says what is in flight
        self.progress.update(self.current, visible=False)
        self.progress.update(self.overall, status=f"{running} running, {queued} queued")

    def note(self, text) -> None:
        _say(self.console, text)


def summary_table(records: list[dict]) -> Table:
    """Mean (and spread over seeds) of the final metrics per workload/optimizer/backend."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        if rec is None:
            continue
        cfg = rec.get("config", {})
        groups.setdefault((cfg.get("workload"), cfg.get("optimizer"), cfg.get("backend")), []).append(rec)
    table = Table(title="hfbench summary (mean ± std over seeds; final evaluation)")
    for col in ("workload", "optimizer", "backend", "trials", "status", "train loss", "test loss",
                "test metric", "train time (s)", "iterations"):
        table.add_column(col)
    for key, recs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        table.add_row(*map(str, key), str(len(recs)), _statuses(recs), *_metric_cells(recs))
    return table


def _statuses(recs) -> str:
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _metric_cells(recs) -> list[str]:
    finals = [r.get("final") or {} for r in recs]
    names = ("test_accuracy", "test_reconstruction_error")
    metric = next((m for m in names if any(m in f for f in finals)), None)
    shown = "-" if metric is None else f"{metric[5:]} {_mean_std([f.get(metric) for f in finals])}"
    return [_mean_std([f.get("train_loss") for f in finals]),
            _mean_std([f.get("test_loss") for f in finals]), shown,
            _mean_std([r.get("train_time_s") for r in recs], ".1f"),
            _mean_std([r.get("iterations") for r in recs], ".0f")]


def _mean_std(values, fmt=".4g") -> str:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return "-"
    if len(vals) == 1:
        return format(vals[0], fmt)
    return f"{format(statistics.mean(vals), fmt)} ± {format(statistics.stdev(vals), fmt)}"
