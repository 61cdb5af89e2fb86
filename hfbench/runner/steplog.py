"""Per-step records whose device scalars are read back at sync points, not per step.

A step's info may hold 0-d device scalars (the fused first-order steps report
their loss and step norm that way). Reading each on the host would sync the
device every step, a cost a hand-written loop does not pay; the log keeps them
and reads a whole stretch of steps back in one transfer when the runner syncs.

Between two syncs the device runs asynchronously, so a step's own end time is
not observed: its `time_s` is interpolated linearly by step between the two
measured sync times (the training time at a sync is exact). The record says so
(`timing` in the trial record).
"""

from __future__ import annotations

import math

HOST_TYPES = (int, float, bool, str, type(None))


class StepLog:
    def __init__(self, be):
        self.rows: list[dict] = []
        self._pending: list[tuple[dict, str]] = []  # (row, key) holding a device scalar
        self._first_unsynced = 0
        self._fetch = getattr(be, "fetch", None) or (lambda vs: [float(be.to_numpy(v)) for v in vs])

    def add(self, row: dict) -> None:
        for key, value in row.items():
            if not isinstance(value, HOST_TYPES):
                self._pending.append((row, key))
        self.rows.append(row)

    @property
    def unsynced(self) -> int:
        return len(self.rows) - self._first_unsynced

    def flush(self, t_prev: float, t_now: float, extra=()) -> list[float]:
        """Times and device values of the rows since the last flush; returns `extra`
        (device scalars the caller wants read in the same transfer) as floats."""
        rows = self.rows[self._first_unsynced:]
        for j, row in enumerate(rows, 1):
            row["time_s"] = t_prev + (t_now - t_prev) * j / len(rows)
        extra = list(extra)
        got = self._fetch([row[key] for row, key in self._pending] + extra)
        for (row, key), value in zip(self._pending, got):
            row[key] = value
        self._pending, self._first_unsynced = [], len(self.rows)
        return got[len(got) - len(extra):]

    def first_nonfinite(self, key: str, since: int) -> int | None:
        """Index of the first row from `since` on whose `key` is not finite."""
        for i in range(since, len(self.rows)):
            value = self.rows[i].get(key)
            if isinstance(value, float) and not math.isfinite(value):
                return i
        return None
