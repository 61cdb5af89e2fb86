"""Per-step records whose device values are read back at sync points, not per step.

A step's info may hold device values: 0-d scalars (a fused first-order step's loss
and step norm, a device-side Hessian-free step's loss, rho, lambda and CG counts)
or small arrays (CG's alpha/beta history), plus `_host`, a function of the row that
runs once its values are on the host (Ritz values from the alphas and betas, a
status name from its code). Reading each value on the host would sync the device
every step, a cost a hand-written loop does not pay; the log keeps them and reads a
whole stretch of steps back in one transfer when the runner syncs.

Counts (n_grad, n_gv, ...) may be device values too (a CG solve's product count),
so a row holds its step's own counts until the flush, which turns them into the
cumulative counts and gradient passes the record reports.

Between two syncs the device runs asynchronously, so a step's own end time is not
observed: its `time_s` is interpolated linearly by step between the two measured
sync times (the training time at a sync is exact). The record says so (`timing`).
"""

from __future__ import annotations

import math

import numpy as np

HOST_TYPES = (int, float, bool, str, type(None))


class StepLog:
    def __init__(self, be, weights: dict[str, float]):
        self.rows: list[dict] = []
        self.weights = weights
        self.counts = dict.fromkeys(weights, 0)  # cumulative, through the last flushed row
        self.unflushed = dict.fromkeys(weights, 0)  # host-known counts since then
        self.device_counts = False  # a row since the last flush has a device count
        self._pending: list[tuple[dict, str]] = []  # (row, key) holding a device value
        self._hooks: list[tuple[dict, object]] = []
        self._first_unsynced = 0
        self._get = _getter(be)

    def add(self, row: dict, hook=None) -> None:
        for key, value in row.items():
            if not isinstance(value, HOST_TYPES):
                self._pending.append((row, key))
        for key in self.weights:
            value = row[key]
            if isinstance(value, HOST_TYPES):
                self.unflushed[key] += value
            else:
                self.device_counts = True
        if hook is not None:
            self._hooks.append((row, hook))
        self.rows.append(row)

    def grad_passes(self, counts=None) -> float:
        counts = self.counts if counts is None else counts
        return sum(self.weights[k] * v for k, v in counts.items())

    def known_grad_passes(self) -> float:
        """Gradient passes through the last step, from what the host knows now."""
        return self.grad_passes({k: self.counts[k] + self.unflushed[k] for k in self.counts})

    def flush(self, t_prev: float, t_now: float, extra=()) -> list:
        """Times, device values and cumulative counts of the rows since the last flush;
        returns `extra` (device values read in the same transfer) on the host."""
        rows = self.rows[self._first_unsynced:]
        for j, row in enumerate(rows, 1):
            row["time_s"] = t_prev + (t_now - t_prev) * j / len(rows)
        extra = list(extra)
        got = self._get([row[key] for row, key in self._pending] + extra)
        for (row, key), value in zip(self._pending, got):
            row[key] = _plain(value)
        for row, hook in self._hooks:
            row.update(hook(row))
        for row in rows:  # per-step counts -> cumulative, in step order
            for key in self.weights:
                self.counts[key] += row[key]
                row[key] = self.counts[key]
            row["grad_passes"] = self.grad_passes()
        self._pending, self._hooks, self._first_unsynced = [], [], len(self.rows)
        self.unflushed, self.device_counts = dict.fromkeys(self.weights, 0), False
        return [_plain(v) for v in got[len(got) - len(extra):]]

    def first_nonfinite(self, key: str, since: int) -> int | None:
        """Index of the first row from `since` on whose `key` is not finite."""
        for i in range(since, len(self.rows)):
            value = self.rows[i].get(key)
            if isinstance(value, float) and not math.isfinite(value):
                return i
        return None


def _getter(be):
    """Device values to host values in one transfer where the backend can."""
    to_host = getattr(be, "to_host", None)
    if to_host is not None:
        return lambda values: list(to_host(values)) if values else []
    fetch = getattr(be, "fetch", None)

    def get(values):
        scalars = [v for v in values if getattr(v, "ndim", 0) == 0]
        if fetch is not None and len(scalars) == len(values):
            return fetch(values)
        return [be.to_numpy(v) for v in values]

    return get


def _plain(value):
    """A host value as a Python number when 0-d (int codes stay ints), else an array."""
    a = np.asarray(value)
    if a.ndim:
        return a
    item = a.item()
    return item if isinstance(item, (bool, int)) else float(item)
