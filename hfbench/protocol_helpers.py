"""What a backend may use besides the protocol: option checks and the eager loop.

A backend depends on `hfbench.protocol` and on this module, not on the registry or
the algorithm layer. The option checks are framework-free, so a backend's
`resolve_options` hook (see `hfbench.protocol`) can run them without importing its
framework; `python_iterate` is the loop an eager backend's `iterate` runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .devices import parse_device
from .errors import BackendError, closest
from .protocol import DTYPES


def resolve_common(backend: str, options: Mapping, defaults: Mapping,
                   optional: Mapping | None = None) -> dict:
    """`options` with unknown keys refused, completed with `defaults` (`optional` keys
    are accepted but not filled in), and the options every backend shares checked:
    device (canonical form), dtype, tf32, threads. The backend checks its own after."""
    known = {**defaults, **(optional or {})}
    check_options(backend, {k: v for k, v in options.items() if k not in known}, known)
    out = {**defaults, **options}
    out["device"] = parse_device(out["device"], where=f"{backend} backend")
    check_dtype(out["dtype"])
    check_flag(backend, "tf32", out["tf32"])
    check_threads(backend, out["threads"])
    return out


def check_options(backend: str, unknown_options: Mapping, accepted: Iterable[str]) -> None:
    """Refuse constructor options a backend does not know, with the closest valid one."""
    if unknown_options:
        accepted = list(accepted)
        names = sorted(unknown_options)
        raise BackendError(
            f"{backend} backend: unknown option(s) {', '.join(map(repr, names))}"
            f"{closest(names[0], accepted)} (accepted: {', '.join(accepted)})"
        )


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise BackendError(
            f"dtype {dtype!r} is not supported{closest(str(dtype), DTYPES)} (choices: "
            f"{', '.join(DTYPES)}); float64 is the reference precision for tests"
        )


def check_flag(backend: str, name: str, value) -> bool:
    """A true/false option: a bool, not a truthy string ("false" would read as on)."""
    if not isinstance(value, bool):
        raise BackendError(f"{backend} backend: {name} must be true or false, got {value!r}")
    return value


def check_threads(backend: str, value) -> int | None:
    """None (the framework's own choice) or an integer >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise BackendError(f"{backend} backend: threads must be an integer >= 1, got {value!r}")
    return value


def python_iterate(loop, ops, config, operands, x0, sync_every: bool = False, step=None):
    """Reference loop for eager backends: the same step functions, iterated in Python.

    `loop` is an `hfbench.algorithms.solve.Loop` (init, step, cont, checks_from).
    The stop condition (a device bool) is read on the host only from
    `loop.checks_from` on; before that, a step that finds the solve stopped is a
    masked no-op, so the result is identical, only later. `step` replaces
    `loop.step` (same signature), e.g. with one whose update is compiled.
    """
    step = step or loop.step
    state = loop.init(ops, config, operands, x0)
    first = 0 if sync_every else loop.checks_from(config, operands)
    for it in range(config.limit):
        if it >= first and not bool(loop.cont(ops, config, operands, state)):
            break
        state = step(ops, config, operands, state)
    return state
