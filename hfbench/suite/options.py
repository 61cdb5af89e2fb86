"""A suite's `backend_options`: checked by each backend's own hook, merged per trial.

    backend_options: {torch: {compile: false}}        # the suite's, for every workload
    workloads:
      big:
        ...
        backend_options: {torch: {compile: true}}     # this workload's, over the suite's

The mapping is keyed by backend, so each option goes to the backend that knows it. A
workload's options override the suite's option by option. The values are checked
when the suite loads by the backend's `resolve_options` hook (`hfbench.registry.
option_resolver`, no framework imported), one option at a time so that an error
names that option's line; the trial then holds the resolved options (the backend's
defaults filled in), so they enter its config and id. A backend without a hook gets
its options as written and checks them when it is built (`runner.suite_run.preflight`,
which names the lines they came from).

device, dtype and tf32 have keys of their own and threads is an execution setting,
not part of a trial; they are refused here so each has one spelling.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import DeviceError, HFBenchError
from ..registry import option_resolver
from .errors import Problem, SuiteError

RESERVED = {
    "device": "the suite's `device:` key (or a workload's)",
    "dtype": "the suite's `dtype:` key",
    "tf32": "the suite's `tf32:` key",
    "threads": "`hfbench run --threads N` (an execution setting, not part of a trial)",
}
ROOT = ("backend_options",)


def resolve(backend: str, *levels: dict) -> dict:
    """A backend's options for one trial: `levels` merged in order (later ones win),
    resolved by the backend's hook (checked, defaults filled in), less RESERVED keys
    (a trial has fields of its own for those). Without a hook, as written."""
    merged: dict[str, Any] = {}
    for level in levels:
        merged.update(level or {})
    hook = option_resolver(backend)
    resolved = hook(merged) if hook is not None else merged
    return {k: v for k, v in resolved.items() if k not in RESERVED}


def check_option(backend: str, key: str, value: Any) -> str | None:
    """What is wrong with one option of a backend, or None (also when it cannot be
    checked now: the backend has no hook)."""
    if key in RESERVED:
        return f"{key!r} is not a backend option here; set it with {RESERVED[key]}"
    hook = option_resolver(backend)
    if hook is None:
        return None
    try:
        hook({key: value})
    except (TypeError, ValueError) as exc:  # HFBenchError is a ValueError
        return _settable_only(str(exc))
    return None


def _settable_only(message: str) -> str:
    """The hook's "(accepted: a, b)" lists every option of its backend, RESERVED ones
    too; here only the others can be set."""
    def keep(match):
        names = [n for n in match.group(1).split(", ") if n not in RESERVED]
        if not names:
            return "(this backend takes no options here; remove the key)"
        return f"(accepted here: {', '.join(names)})"

    return re.sub(r"\(accepted: ([^)]*)\)", keep, message)


# ----------------------------------------------------------------------------- checks


def check(data: dict, backends: tuple[str, ...]) -> list[Problem]:
    """Every problem of the suite's and the workloads' backend_options (raw data);
    `backends`: the valid backend names (the schema reports the others)."""
    top = _level(data.get("backend_options"), backends)
    problems = _check_level(top, ROOT) or _check_merged({}, top, ROOT)
    base = {} if problems else top  # a bad suite-level option is reported once, there
    workloads = data.get("workloads")
    for name, raw in (workloads.items() if isinstance(workloads, dict) else ()):
        if not isinstance(name, str):
            continue  # yamlpos reports a key that is not a name
        own = _level(raw.get("backend_options") if isinstance(raw, dict) else None, backends)
        loc = ("workloads", str(name), "backend_options")
        found = _check_level(own, loc)
        problems += found or _check_merged(base, own, loc)
    return problems


def _level(raw: Any, backends: tuple[str, ...]) -> dict[str, dict]:
    """The {backend: {option: value}} entries whose shape passes the schema."""
    if not isinstance(raw, dict):
        return {}
    return {b: {k: v for k, v in o.items() if isinstance(k, str)}  # others: yamlpos reports them
            for b, o in raw.items() if b in backends and isinstance(o, dict)}


def _check_level(level: dict[str, dict], loc: tuple) -> list[Problem]:
    problems = []
    for backend, opts in level.items():
        for key, value in opts.items():
            message = check_option(backend, key, value) if isinstance(key, str) else None
            if message:
                problems.append(Problem(loc + (backend, key), message))
    return problems


def _check_merged(base: dict, level: dict, loc: tuple) -> list[Problem]:
    """Each backend's options of `level` together, over `base` (the suite's, for a
    workload), for rules that involve two options at once."""
    problems = []
    for backend, opts in level.items():
        try:
            resolve(backend, base.get(backend, {}), opts)
        except (TypeError, ValueError) as exc:
            problems.append(Problem(loc + (backend,), str(exc)))
    return problems


# ----------------------------------------------------------------------------- at build time


def build_located(trial, build):
    """`build(trial.backend, **trial.backend_kwargs())`; when the backend refuses an
    option its hook could not check at load time, a SuiteError naming the line each
    refused option was set at (from `trial.origins`)."""
    kwargs = trial.backend_kwargs()
    try:
        return build(trial.backend, **kwargs)
    except DeviceError as exc:  # a GPU this machine lacks: name the line that asked for it
        where = trial.origins.get("device")
        raise (DeviceError(f"{where}: {exc}") if where else exc) from None
    except HFBenchError as exc:
        raise _located(trial, build, kwargs, exc) from None


def _located(trial, build, kwargs: dict, exc: HFBenchError) -> HFBenchError:
    set_here = [k for k in trial.backend_options if k in trial.origins]
    if not set_here:
        return exc
    base = {k: v for k, v in kwargs.items() if k in RESERVED}
    if _refusal(build, trial.backend, base) is not None:
        return exc  # not the options: a missing GPU, an uninstalled framework
    found = {k: _refusal(build, trial.backend, {**base, k: kwargs[k]}) for k in set_here}
    lines = [f"{trial.origins[k]}: {why}" for k, why in found.items() if why is not None]
    return SuiteError(lines or [f"{trial.origins[k]}: {exc}" for k in set_here])


def _refusal(build, backend: str, kwargs: dict) -> str | None:
    try:
        build(backend, **kwargs)
    except HFBenchError as exc:
        return str(exc)
    return None
