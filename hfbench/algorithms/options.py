"""Flat, named options with provenance, and the Algorithm record.

Every algorithm exposes flat keyword options (what a YAML suite can sweep). Each
default carries a one-line note saying where it comes from; a deviation from a
paper is a named option, never an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from ..errors import HFBenchError, unknown


class Default(NamedTuple):
    value: Any
    source: str


@dataclass(frozen=True)
class Algorithm:
    """`init(x) -> state` and `step(problem, x, state, batch, curvature_batch)`."""

    name: str
    config: Any
    init_fn: Callable
    step_fn: Callable
    # steps that reach every compiled path (the runner's untimed warm-up): HF's first
    # two steps trace CG's cold and warm starts; a first-order step has one path
    warmup: int = 2

    def init(self, x):
        return self.init_fn(self.config, x)

    def step(self, problem, x, state, batch, curvature_batch=None):
        """-> (x, state, info); info is a flat dict of this step's numbers."""
        return self.step_fn(self.config, problem, x, state, batch, curvature_batch)


def resolve(name: str, table: dict[str, Default], overrides: dict) -> dict:
    """Defaults merged with overrides; unknown option names get the closest match."""
    for key in overrides:
        if key not in table:
            raise HFBenchError(unknown(f"option of {name!r}", key, table, f"algorithms.get({name!r})"))
    return {k: overrides.get(k, d.value) for k, d in table.items()}


def check_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise HFBenchError(f"{name} must be an integer >= {low}, got {value!r}")
    return value
