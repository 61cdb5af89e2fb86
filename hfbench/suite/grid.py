"""An optimizer entry's hyperparameter grid: its axes, its points, and their checks.

    params: {cg_iters: [2, 3, 5, 10], damping: 1e-4, line_search: true}
    zip:    [[lr, momentum]]          # these lists advance together

Every list value is an axis; a zip group is one axis whose lists have equal length.
The grid is the product of the axes, in the order the params are written (a zip
group sits where its first member is). A scalar is the same in every point. No
algorithm option takes a list, so a list always means a sweep.

Each value is checked alone against its algorithm (`hfbench.algorithms.get(alg,
**{name: value})`) so an error points at the value's own line; then every full
point is checked, for rules that involve two options at once.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from .. import algorithms
from ..errors import HFBenchError, closest, unknown
from .errors import Problem

MAX_POINT_ERRORS = 3  # per optimizer; a bad combination repeats across many points
# Per optimizer. The papers' grids have at most a few dozen points; five lists of 100
# values would be 10^10, and listing (or checking) them would never end.
MAX_POINTS = 10_000


def axes(params: dict[str, Any], zips: list[list[str]]) -> list[tuple[tuple[str, ...], list[tuple]]]:
    """[(names, [values per point, ...]), ...]: one entry per axis, in file order."""
    grouped = {name: tuple(group) for group in zips for name in group}
    out, done = [], set()
    for name, value in params.items():
        if name in done:
            continue
        names = grouped.get(name, (name,))
        done.update(names)
        columns = [_as_list(params[n]) for n in names]
        out.append((names, list(zip(*columns))))
    return out


def points(algorithm: str, params: dict[str, Any], zips: list[list[str]]) -> list[dict[str, Any]]:
    """Every grid point as {option: value}, with ints promoted where the option is a float.

    The promotion makes `lr: 1` and `lr: 1.0` the same trial (and the same trial id).
    """
    defaults = algorithms.defaults(algorithm)
    ax = axes(params, zips)
    grid = []
    for combo in itertools.product(*(values for _, values in ax)):
        point = {}
        for (names, _), values in zip(ax, combo):
            point.update(zip(names, values))
        grid.append({k: _promote(v, defaults[k].value) for k, v in point.items()})
    return grid


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _promote(value, default):
    if type(default) is float and type(value) is int:
        return float(value)
    return value


# ----------------------------------------------------------------------------- checks


def check(name: str, algorithm: str, params: dict, zips: list[list[str]]) -> list[Problem]:
    """All problems of one optimizer entry's params and zip groups."""
    loc = ("optimizers", name)
    defaults = algorithms.defaults(algorithm)
    problems = []
    for key, value in params.items():
        problems += _check_param(algorithm, defaults, key, value, loc + ("params", key))
    problems += _check_zips(params, zips, loc + ("zip",))
    if problems:
        return problems  # the full points would only repeat these
    n = size(params, zips)
    if n > MAX_POINTS:
        return [Problem(loc + ("params",), f"the grid has {n:,} points, over the {MAX_POINTS:,} "
                        "one optimizer may sweep; sweep fewer values, zip lists that advance "
                        "together, or split it into several optimizers")]
    return _check_points(algorithm, params, zips, loc + ("params",))


def size(params: dict[str, Any], zips: list[list[str]]) -> int:
    """The number of grid points, without listing them."""
    return math.prod(len(values) for _, values in axes(params, zips))


def check_without_algorithm(name: str, params: dict) -> list[Problem]:
    """The params of an optimizer whose algorithm is missing or unknown: those that no
    algorithm takes (the rest are checked once the algorithm is fixed)."""
    every = sorted({k for a in algorithms.ALGORITHMS for k in algorithms.defaults(a)})
    return [
        Problem(("optimizers", name, "params", key), f"unknown option {key!r}: no algorithm takes "
                f"it{closest(key, every)} (each algorithm's options: hfbench.algorithms.defaults(name))")
        for key in params if key not in every
    ]


def _check_param(algorithm, defaults, key, value, loc) -> list[Problem]:
    if key not in defaults:
        return [Problem(loc, unknown(f"{algorithm} option", key, defaults))]
    if isinstance(value, list) and not value:
        return [Problem(loc, "an empty list sweeps nothing; give a value or a non-empty list")]
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    problems = []
    for i, item in items:
        where = loc if i is None else loc + (i,)
        message = _check_value(algorithm, key, item, defaults[key].value)
        if message:
            problems.append(Problem(where, message))
    return problems


def _check_value(algorithm: str, key: str, value, default) -> str | None:
    expected = _expected_type(default)
    if expected and not _is(value, default):
        return f"expected {expected} (the default is {default!r}), got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    try:
        algorithms.get(algorithm, **{key: _promote(value, default)})
    except HFBenchError as exc:
        return str(exc)
    return None


def _expected_type(default) -> str | None:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(type(default))


def _is(value, default) -> bool:
    if type(default) is float:
        return type(value) in (int, float)
    return type(value) is type(default)


def _check_zips(params: dict, zips: list[list[str]], loc) -> list[Problem]:
    problems, seen = [], set()
    lists = [k for k, v in params.items() if isinstance(v, list)]
    for g, group in enumerate(zips):
        for j, key in enumerate(group):
            where = loc + (g, j)
            if key not in lists:
                what = "is not a list-valued param" if key in params else "is not in params"
                problems.append(Problem(where, f"{key!r} {what}; a zip group names params whose "
                                        f"lists advance together{_choices(key, lists)}"))
            elif key in seen:
                problems.append(Problem(where, f"{key!r} is in two zip groups; put it in one"))
            seen.add(key)
        lengths = {k: len(params[k]) for k in group if k in lists}
        if len(set(lengths.values())) > 1:
            sizes = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            problems.append(Problem(loc + (g,), f"zipped lists must have the same length, got {sizes}"))
        if len(group) < 2:
            problems.append(Problem(loc + (g,), "a zip group needs at least two params"))
    return problems


def _choices(key: str, lists: list[str]) -> str:
    if not lists:
        return " (no param here has a list value)"
    return f"{closest(key, lists)} (list-valued params: {', '.join(lists)})"


def _check_points(algorithm: str, params: dict, zips: list[list[str]], loc) -> list[Problem]:
    bad = []
    for point in points(algorithm, params, zips):
        try:
            algorithms.get(algorithm, **point)
        except HFBenchError as exc:
            bad.append(f"the grid point {_show(point)} is rejected: {exc}")
    problems = [Problem(loc, text) for text in bad[:MAX_POINT_ERRORS]]
    if len(bad) > MAX_POINT_ERRORS:
        problems.append(Problem(loc, f"... and {len(bad) - MAX_POINT_ERRORS} more grid points are rejected"))
    return problems


def _show(point: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in point.items()) + "}"
