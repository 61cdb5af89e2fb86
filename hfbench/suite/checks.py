"""Checks that span fields: a model against its data, grids against their algorithms,
names that refer to other entries, budgets against evaluation marks.

They run on every field that passes the schema on its own, even when a sibling
field or another entry fails it, so one pass reports every problem in the file.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from .. import algorithms
from ..errors import unknown
from . import datasets, grid, models
from .errors import Problem
from .schema import BUDGET_KEYS, Optimizer, Suite, Workload

INVALID = object()  # a part that failed the schema (already reported)


class Context(NamedTuple):
    """The parts of a suite that passed the schema, for the checks between them."""

    optimizer_names: list[str]  # as written, valid or not
    optimizers: dict[str, Optimizer]
    grid_ok: dict[str, bool]
    budget: Any  # Budget, None (absent) or INVALID
    targets: Any
    eval: Any
    dtype: str = "float32"


def check(data: dict) -> list[Problem]:
    """Every cross-field problem of a suite's raw data (a dict)."""
    ctx, problems = _context(data)
    for name, raw in _entries(data, "workloads"):
        fields = partial(Workload, raw)
        if fields is not None:
            problems += check_workload(ctx, name, fields)
    return problems


def _context(data: dict) -> tuple[Context, list[Problem]]:
    optimizers, grid_ok, problems = _check_optimizers(data)
    top = partial(Suite, data, only=("budget", "targets", "eval"))
    ctx = Context(
        optimizer_names=[name for name, _ in _entries(data, "optimizers")],
        optimizers=optimizers, grid_ok=grid_ok,
        budget=top["budget"], targets=top["targets"], eval=top["eval"],
        dtype="float64" if data.get("dtype") == "float64" else "float32",
    )
    return ctx, problems


def _check_optimizers(data: dict) -> tuple[dict, dict, list[Problem]]:
    """The grid checks of every optimizer whose algorithm and params pass the schema."""
    optimizers, grid_ok, problems = {}, {}, []
    for name, raw in _entries(data, "optimizers"):
        opt = partial(Optimizer, raw) or {}
        if opt.get("algorithm", INVALID) is INVALID and opt.get("params", INVALID) is not INVALID:
            problems += grid.check_without_algorithm(name, opt["params"])
        if INVALID in (opt.get("algorithm", INVALID), opt.get("params", INVALID)):
            continue
        zips = [] if opt["zip"] is INVALID else opt["zip"]
        found = grid.check(name, opt["algorithm"], opt["params"], zips)
        optimizers[name] = Optimizer.model_construct(
            algorithm=opt["algorithm"], params=opt["params"], zip=zips)
        grid_ok[name] = not found
        problems += found
    return optimizers, grid_ok, problems


def _entries(data: dict, key: str) -> list[tuple[str, Any]]:
    section = data.get(key)
    if not isinstance(section, dict):
        return []
    return [(k, v) for k, v in section.items() if isinstance(k, str)]  # others: yamlpos reports them


def partial(cls: type[BaseModel], raw: Any, only: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """Each field of `raw` validated on its own (by the model's own schema), or INVALID.

    So one bad field of a workload does not hide the problems of its other fields.
    """
    if not isinstance(raw, dict):
        return None
    out = {}
    for name, field in cls.model_fields.items():
        if only is not None and name not in only:
            continue
        if name not in raw:
            out[name] = INVALID if field.is_required() else field.get_default(call_default_factory=True)
            continue
        try:
            holder = cls.__pydantic_validator__.validate_assignment(cls.model_construct(), name, raw[name])
            out[name] = getattr(holder, name)
        except ValidationError:
            out[name] = INVALID
    return out


def _given(value) -> bool:
    return value is not None and value is not INVALID


def inherit(ctx: Context, name: str, w: dict, field: str) -> tuple[Any, tuple]:
    """A workload's own value of `field`, else the suite's; with the key path it came from."""
    own = w[field]
    if own is not None:
        return own, ("workloads", name, field)
    return getattr(ctx, field), (field,)


# ----------------------------------------------------------------------------- one workload


def check_workload(ctx: Context, name: str, w: dict) -> list[Problem]:
    """The checks of one workload whose fields are validated one by one (see `partial`)."""
    problems = _check_allowlist(ctx, name, w) + _check_budget(ctx, name, w)
    if INVALID in (w["dataset"], w["model"], w["loss"]):
        return problems
    loc = ("workloads", name)
    data = datasets.info(w["dataset"])
    model = w["model"].model_dump()
    loss = w["loss"] or models.default_loss(model, data)
    problems += models.check(model, loss, w["dataset"], data, loc)
    problems += _check_batches(name, w, data)
    problems += _check_targets(ctx, name, w, model, data)
    if INVALID not in (w["l2"], w["init"]):
        spec, found = models.check_builds(model, loss, w["l2"], w["init"] or models.default_init(model), loc)
        problems += found
        if spec is not None:
            problems += _check_dense(ctx, name, w, spec.num_params)
    return problems


def runs(ctx: Context, w: dict) -> list[str]:
    """The (valid) optimizers a workload runs: its allowlist, or all of them."""
    names = w["optimizers"] if _given(w["optimizers"]) else ctx.optimizer_names
    return [n for n in names if n in ctx.optimizers]


def _check_allowlist(ctx: Context, name: str, w: dict) -> list[Problem]:
    if not _given(w["optimizers"]):
        return []
    if not w["optimizers"]:
        return [Problem(("workloads", name, "optimizers"), "an empty list runs nothing; name some "
                        f"of the suite's optimizers ({', '.join(ctx.optimizer_names)}), or leave "
                        "the key out to run all of them")]
    return [
        Problem(("workloads", name, "optimizers", i), unknown("optimizer", opt, ctx.optimizer_names))
        for i, opt in enumerate(w["optimizers"]) if opt not in ctx.optimizer_names
    ]


def _check_batches(name: str, w: dict, data: datasets.DatasetInfo | None) -> list[Problem]:
    """Batches that fit the training set, and a curvature batch within the gradient batch
    (the runner draws it from the gradient batch; it would refuse both in every trial)."""
    n = data.n_train if data is not None else None
    loc = ("workloads", name)
    sizes = {}
    for key in ("batch_size", "curvature_batch_size"):
        value = w[key]
        sizes[key] = n if value == "full" else value
        if type(value) is int and n is not None and value > n:
            return [Problem(loc + (key,), f"{key} {value} exceeds the {n} training examples of "
                            f"dataset {w['dataset']!r}; use at most {n}, or 'full' for all of them")]
    b, c = sizes["batch_size"], sizes["curvature_batch_size"]
    if type(b) is int and type(c) is int and c > b:
        given = {k: f"{v!r} ({sizes[k]})" if v == "full" else str(v) for k, v in w.items()
                 if k in sizes}
        return [Problem(loc + ("curvature_batch_size",), f"curvature_batch_size "
                        f"{given['curvature_batch_size']} exceeds batch_size {given['batch_size']} "
                        f"(the curvature batch is drawn from the gradient batch); use at most {b}")]
    return []


def _check_budget(ctx: Context, name: str, w: dict) -> list[Problem]:
    budget, bloc = inherit(ctx, name, w, "budget")
    if budget is None:
        keys = ", ".join(BUDGET_KEYS)
        return [Problem(("workloads", name), f"no budget: add `budget: {{...}}` (any of {keys}) "
                        "at the top level or in this workload, or its trials never end")]
    ev, eloc = inherit(ctx, name, w, "eval")
    if budget is INVALID or ev is INVALID or budget.time_s is None:
        return []
    late = [m for m in ev.time_marks if m > budget.time_s]
    if not late:
        return []
    whose = f" of workload {name!r}" if bloc[0] == "workloads" else ""
    return [Problem(eloc + ("time_marks",), f"time marks {late} s lie past the time budget "
                    f"({budget.time_s} s){whose} and would never be reached")]


def _check_targets(ctx, name, w, model, data) -> list[Problem]:
    targets, tloc = inherit(ctx, name, w, "targets")
    if targets is INVALID:
        return []
    ok = applicable_metrics(model, data)
    return [
        Problem(tloc + (i, "metric"), f"metric {t.metric!r} does not apply to workload {name!r} "
                f"(dataset {w['dataset']!r}, model {model['type']!r}); its metrics: {', '.join(ok)}")
        for i, t in enumerate(targets) if t.metric not in ok
    ]


def applicable_metrics(model: dict, data: datasets.DatasetInfo | None) -> list[str]:
    """Losses always; accuracy for classifiers; reconstruction error for autoencoders."""
    out = ["train_loss", "test_loss"]
    if model["type"] == "autoencoder":
        return out + ["train_reconstruction_error", "test_reconstruction_error"]
    if data is None or data.targets == "labels":
        out += ["train_accuracy", "test_accuracy"]
    return out


def _check_dense(ctx: Context, name: str, w: dict, n: int) -> list[Problem]:
    """Dense Newton refuses large nets at init; say so now, before anything runs.

    The need is newton.peak_bytes of each grid point (the float64 matrix and every
    buffer a step holds with it: solver workspace, eigenvalues when asked for)."""
    from ..algorithms import newton

    problems = []
    for opt_name in runs(ctx, w):
        opt = ctx.optimizers[opt_name]
        if opt.algorithm != "newton" or not ctx.grid_ok[opt_name]:
            continue
        defaults = {k: d.value for k, d in algorithms.defaults("newton").items()}
        for point in grid.points("newton", opt.params, opt.zip):
            o = {**defaults, **point}
            damped = bool(o["damped"]) and o["damping"] > 0
            need = newton.peak_bytes(n, ctx.dtype, damped=damped,
                                     eig_diagnostics=o["eig_diagnostics"]) / 2**30
            if need > o["memory_limit_gb"]:
                label = f"optimizer {opt_name!r}" + ("" if opt_name == "newton" else " (newton)")
                problems.append(Problem(("workloads", name, "model"), (
                    f"{label} needs a dense {n} x {n} float64 matrix and its solver's buffers "
                    f"({need:.2f} GiB at peak) over its memory_limit_gb={o['memory_limit_gb']}; "
                    f"use a smaller model, raise memory_limit_gb, or leave {opt_name!r} out of "
                    "this workload's optimizers")))
                break
    return problems
