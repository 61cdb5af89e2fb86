"""Errors raised on bad input.

Every error says what was wrong, where, and what would work. The CLI turns an
`HFBenchError` into a message on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HFBenchError(ValueError):
    """Base class for every user-facing error hfbench raises on bad input."""


class SpecError(HFBenchError):
    """A model spec (layers, activation, loss, shapes) is invalid."""


class BatchError(HFBenchError):
    """A batch does not fit the model spec (input width, labels, dtype)."""


class BackendError(HFBenchError):
    """A backend is unknown, not installed, or was asked for something it lacks."""


class DeviceError(BackendError):
    """A device was asked for that this machine does not have."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return " did you mean 'x'?" for the closest valid name, or ''."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def unknown(kind: str, name: str, choices: Iterable[str], where: str = "") -> str:
    """Message for an unknown name: what came, the closest valid name, all choices."""
    choices = sorted(choices)
    prefix = f"{where}: " if where else ""
    return (
        f"{prefix}unknown {kind} {name!r}{closest(name, choices)} "
        f"(choices: {', '.join(choices)})"
    )
