"""Checks of a suite's `reference:` block against the rest of the suite.

The schema checks each field of an entry alone; here each entry is checked against
what the suite runs: its workload and optimizer exist and the optimizer runs on that
workload, its `config` picks exactly one grid point, its metric applies to the
workload, its time mark is one the workload evaluates at, and a `kind: time` entry
has a baseline to be divided by, in the suite and among the paper's numbers.
Like `checks.py`, this works on the raw data, so every problem of the block is
reported in one pass even when other parts of the file fail the schema.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .. import algorithms
from ..errors import unknown
from . import datasets, grid
from .checks import INVALID, applicable_metrics, partial
from .errors import Problem
from .schema import (
    SPEED_METRICS, Baseline, Eval, Optimizer, Reference, ReferenceEntry, Suite, Workload,
)

ROOT = ("reference",)
ACCURACY = ("train_accuracy", "test_accuracy")


class _Workload(NamedTuple):
    runs: list[str]  # the optimizers it runs
    time_marks: list[float] | None  # None: its eval failed the schema
    epochs: float | None  # its epoch budget, if any
    metrics: list[str] | None  # None: model or dataset failed the schema


class _Context(NamedTuple):
    workloads: dict[str, _Workload]
    optimizer_names: list[str]
    grids: dict[str, tuple[str, list[dict]]]  # optimizer -> (algorithm, grid points); valid ones


def check(data: dict) -> list[Problem]:
    """Every problem of the reference block that the schema alone cannot see."""
    raw = data.get("reference")
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        return []
    ctx = _context(data)
    entries = [(i, partial(ReferenceEntry, e)) for i, e in enumerate(raw["entries"])]
    entries = [(i, e) for i, e in entries if e is not None]
    default = partial(Reference, raw, only=("baseline",))["baseline"]
    problems = []
    for i, e in entries:
        problems += _check_entry(ctx, ROOT + ("entries", i), e)
    for i, e in entries:
        if e["kind"] == "time":
            problems += _check_time(ctx, i, e, default, entries)
    return problems


# ----------------------------------------------------------------------------- the suite


def _context(data: dict) -> _Context:
    optimizer_names = [k for k in _mapping(data, "optimizers") if isinstance(k, str)]
    top = partial(Suite, data, only=("budget", "eval")) or {}
    workloads = {
        str(name): _workload(partial(Workload, raw), optimizer_names, top)
        for name, raw in _mapping(data, "workloads").items()
        if isinstance(name, str) and isinstance(raw, dict)
    }
    return _Context(workloads, optimizer_names, _grids(data))


def _mapping(data: dict, key: str) -> dict:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _workload(w: dict, optimizer_names: list[str], top: dict) -> _Workload:
    runs = w["optimizers"] if w["optimizers"] not in (None, INVALID) else optimizer_names
    ev = w["eval"] if w["eval"] is not None else top.get("eval", Eval())
    budget = w["budget"] if w["budget"] is not None else top.get("budget")
    epochs = budget.epochs if budget not in (None, INVALID) else None
    metrics = None
    if INVALID not in (w["dataset"], w["model"]):
        metrics = applicable_metrics(w["model"].model_dump(), datasets.info(w["dataset"]))
        metrics += list(SPEED_METRICS)
    return _Workload(list(runs), None if ev is INVALID else list(ev.time_marks), epochs, metrics)


def _grids(data: dict) -> dict[str, tuple[str, list[dict]]]:
    out = {}
    for name, raw in _mapping(data, "optimizers").items():
        opt = partial(Optimizer, raw) or {}
        if INVALID in (opt.get("algorithm", INVALID), opt.get("params", INVALID), opt.get("zip", INVALID)):
            continue
        if grid.check(str(name), opt["algorithm"], opt["params"], opt["zip"]):
            continue  # reported by checks.py
        out[str(name)] = (opt["algorithm"], grid.points(opt["algorithm"], opt["params"], opt["zip"]))
    return out


# ----------------------------------------------------------------------------- one entry


def _check_entry(ctx: _Context, loc: tuple, e: dict) -> list[Problem]:
    problems = _check_names(ctx, loc, e["workload"], e["optimizer"])
    w = ctx.workloads.get(e["workload"])
    if e["optimizer"] in ctx.grids and e["config"] is not INVALID:
        problems += check_config(ctx, e["optimizer"], e["config"], loc + ("config",), single=True)
    if w is not None and w.metrics is not None and e["metric"] not in (INVALID, *w.metrics):
        problems.append(Problem(loc + ("metric",), (
            f"metric {e['metric']!r} does not apply to workload {e['workload']!r}; "
            f"its metrics: {', '.join(w.metrics)}")))
    if w is not None and e["at"] is not INVALID:
        problems += _check_at(w, e["workload"], e["at"], loc + ("at",))
    return problems + _check_combination(loc, e)


def _check_names(ctx: _Context, loc: tuple, workload: Any, optimizer: Any) -> list[Problem]:
    problems = []
    if workload is not INVALID and workload not in ctx.workloads:
        problems.append(Problem(loc + ("workload",), unknown("workload", workload, ctx.workloads)))
    if optimizer is INVALID:
        return problems
    if optimizer not in ctx.optimizer_names:
        problems.append(Problem(loc + ("optimizer",), unknown("optimizer", optimizer, ctx.optimizer_names)))
    elif workload in ctx.workloads and optimizer not in ctx.workloads[workload].runs:
        runs = ", ".join(ctx.workloads[workload].runs)
        problems.append(Problem(loc + ("optimizer",), (
            f"optimizer {optimizer!r} does not run on workload {workload!r} (its optimizers: {runs})")))
    return problems


def check_config(ctx: _Context, optimizer: str, config: dict, loc: tuple, single: bool) -> list[Problem]:
    """`config` names options of the optimizer's algorithm and picks grid points of it:
    exactly one when `single` (an entry), at least one otherwise (a baseline)."""
    algorithm, points = ctx.grids[optimizer]
    defaults = algorithms.defaults(algorithm)
    bad = [k for k in config if k not in defaults]
    if bad:
        return [Problem(loc + (k,), unknown(f"{algorithm} option", k, defaults)) for k in bad]
    full = [{**{k: d.value for k, d in defaults.items()}, **p} for p in points]
    hits = [p for p in full if all(same(p[k], v) for k, v in config.items())]
    if not hits:
        values = "; ".join(f"{k}: {', '.join(_distinct(full, k))}" for k in config)
        return [Problem(loc, f"no grid point of optimizer {optimizer!r} has {_show(config)} "
                        f"(its values: {values})")]
    swept = [k for k in _swept(full) if k not in config]
    if single and len(hits) > 1:
        which = ", ".join(f"{k}: ..." for k in swept)
        return [Problem(loc, f"{_show(config)} matches {len(hits)} grid points of optimizer "
                        f"{optimizer!r}; say which one with config: {{{which}}}")]
    return []


def _distinct(points: list[dict], key: str) -> list[str]:
    return list(dict.fromkeys(repr(p[key]) for p in points))


def _swept(points: list[dict]) -> list[str]:
    return [k for k in points[0] if len(_distinct(points, k)) > 1]


def _show(config: dict) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in config.items()) + "}" if config else "{}"


def same(a: Any, b: Any) -> bool:
    """Option values equal: numbers to 1e-9 relative, true/false and strings exactly."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _check_at(w: _Workload, name: str, at: Any, loc: tuple) -> list[Problem]:
    if isinstance(at, dict) and "time_s" in at and w.time_marks is not None:
        t = at["time_s"]
        if not any(same(t, m) for m in w.time_marks):
            marks = ", ".join(format(m, "g") for m in w.time_marks) or "none"
            return [Problem(loc + ("time_s",), (
                f"workload {name!r} has no time mark at {t:g} s (its time marks: {marks}); "
                "add it to the workload's eval.time_marks, or give at: final"))]
    late = isinstance(at, dict) and "epoch" in at and w.epochs is not None
    if late and at["epoch"] > w.epochs * (1 + 1e-9):
        return [Problem(loc + ("epoch",), (
            f"epoch {at['epoch']:g} lies past workload {name!r}'s budget of {w.epochs:g} epochs"))]
    return []


def _check_combination(loc: tuple, e: dict) -> list[Problem]:
    """Rules between an entry's own fields."""
    metric, at, kind = e["metric"], e["at"], e["kind"]
    problems = []
    mark = next(iter(at), None) if isinstance(at, dict) else None
    if metric == "time_s" and kind == "value":
        problems.append(Problem(loc + ("metric",), (
            "time_s is hardware-bound: give kind: time, so it is compared as a ratio to the "
            "baseline optimizer's time on the same hardware")))
    if metric in ("time_s", "iterations") and mark == "time_s":
        problems.append(Problem(loc + ("at",),
                                f"{metric} is recorded at the end of a run only; give at: final"))
    if metric == "epoch" and mark == "epoch":
        problems.append(Problem(loc + ("at",),
                                "the epoch at an epoch is that epoch; give at: final or {time_s: t}"))
    if e["convert"] not in (None, INVALID) and metric not in (INVALID, *ACCURACY):
        problems.append(Problem(loc + ("convert",), (
            f"convert maps an accuracy or an error to hfbench's accuracy; metric {metric!r} is "
            "compared as the paper prints it")))
    if e["baseline"] not in (None, INVALID) and kind == "value":
        problems.append(Problem(loc + ("baseline",),
                                "a baseline divides kind: time entries only; give kind: time"))
    return problems


# ----------------------------------------------------------------------------- time entries


def _check_time(ctx: _Context, i: int, e: dict, default: Any, entries: list) -> list[Problem]:
    """The baseline of a kind: time entry runs on its workload and has a paper number."""
    own = e["baseline"] is not None
    base = e["baseline"] if own else default
    if INVALID in (base, e["workload"], e["metric"], e["at"]) or e["workload"] not in ctx.workloads:
        return []
    loc = ROOT + ("entries", i, "baseline") if own else ROOT + ("baseline",)
    if base.optimizer not in ctx.optimizer_names:
        message = unknown("baseline optimizer", base.optimizer, ctx.optimizer_names)
        return [Problem(loc + ("optimizer",), message)]
    runs = ctx.workloads[e["workload"]].runs
    if base.optimizer not in runs:
        return [Problem(loc + ("optimizer",), (
            f"baseline optimizer {base.optimizer!r} does not run on workload {e['workload']!r} "
            f"(its optimizers: {', '.join(runs)}); name one that does in this entry's baseline"))]
    problems = []
    if base.optimizer in ctx.grids:
        problems += check_config(ctx, base.optimizer, base.config, loc + ("config",), single=False)
    if not any(is_baseline_of(e, other, base) for _, other in entries):
        problems.append(Problem(ROOT + ("entries", i), (
            f"no entry of the baseline {describe(base)} for workload {e['workload']!r}, metric "
            f"{e['metric']!r} at {at_label(e['at'])} in this block: a kind: time entry is compared "
            "as a ratio to it; add the paper's number for it, or name another baseline")))
    return problems


def is_baseline_of(entry: dict, other: dict, base: Baseline) -> bool:
    """Whether paper number `other` is one of `entry`'s baseline numbers (both as field
    dicts). A field of `other` that failed the schema matches anything: it is reported
    once, and not again as a missing baseline."""
    def fits(key, want) -> bool:
        return other[key] is INVALID or other[key] == want

    config = other["config"]
    return (fits("kind", "time") and fits("optimizer", base.optimizer)
            and all(fits(k, entry[k]) for k in ("workload", "metric", "at"))
            and (config is INVALID
                 or all(k in config and same(config[k], v) for k, v in base.config.items())))


def describe(base: Baseline) -> str:
    return repr(base.optimizer) + (f" {_show(base.config)}" if base.config else "")


def at_label(at: Any) -> str:
    """final, '25 s' or 'epoch 7'."""
    if isinstance(at, dict) and "time_s" in at:
        return f"{at['time_s']:g} s"
    if isinstance(at, dict) and "epoch" in at:
        return f"epoch {at['epoch']:g}"
    return "final"
