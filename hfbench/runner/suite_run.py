"""Run a list of trials with resume, a progress display and a summary table.

Resume: a trial whose record exists with a finished status is skipped (its id is
a hash of its resolved config, so any change of settings makes a new trial).
Failed trials and trials without a record (interrupted) are run again.
"""

from __future__ import annotations

import math
import statistics

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import record
from .trial import run_trial


def preflight(trials) -> None:
    """Bad input found before any trial runs (exit 2 at the CLI, not a failed trial):
    a downloaded dataset missing from the cache, or a device this machine lacks."""
    from .. import data
    from ..data.download import require
    from ..registry import get_backend

    for name in sorted({t.dataset for t in trials}):
        info = data.get_info(name)
        if info.files:
            require(info)  # names the missing file, its SHA-256 and the folder
    for key in sorted({(t.backend, t.device, t.dtype, t.tf32) for t in trials}):
        backend, device, dtype, tf32 = key
        get_backend(backend, device=device, dtype=dtype, tf32=tf32)


def _fraction(run) -> float:
    return min(1.0, max((used / limit for used, limit in run.budget_usage() if limit), default=0.0))


def run_suite(trials, results_dir, console: Console | None = None,
              threads: int | None = None) -> list[dict]:
    """Run `trials` (skipping finished ones); returns every trial's record.

    threads: the framework's CPU threads for every trial (see run_trial)."""
    console = console or Console(stderr=True)
    todo = [t for t in trials if not record.is_done(results_dir, t.id)]
    if len(todo) < len(trials):
        console.print(f"resuming: {len(trials) - len(todo)} of {len(trials)} trials already done, skipped")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("trials", total=len(todo), status="")
        current = progress.add_task("", total=1000, status="")
        for trial in todo:
            label = f"{trial.workload}/{trial.optimizer}/{trial.backend}/s{trial.seed}"
            progress.update(current, description=label, completed=0, status="warming up")

            def on_step(run, info, _label=label):
                progress.update(current, completed=int(1000 * _fraction(run)),
                                status=f"it {run.iteration} loss {info['loss']:.4g}")

            rec = run_trial(trial, results_dir, on_step=on_step, threads=threads)
            if rec["status"] == "failed":
                console.print(f"[red]trial {trial.id} ({label}) failed:[/] {rec['error']}")
            progress.advance(overall)
    return [record.read(record.path_for(results_dir, t.id)) for t in trials]


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
