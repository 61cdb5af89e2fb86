"""Optional per-phase wall-clock split of an outer step (syncing before each read).

Off by default: the syncs it adds change what they measure a little, so it is for
profiling runs (`profile=True`), not for the timed training of a benchmark.
"""

from __future__ import annotations

import time


class Phases:
    def __init__(self, backend, enabled: bool):
        self.be, self.enabled, self.times = backend, enabled, {}
        self._last = self._now() if enabled else 0.0

    def _now(self) -> float:
        self.be.sync()
        return time.perf_counter()

    def mark(self, name: str) -> None:
        """Charge the time since the previous mark to `name`."""
        if self.enabled:
            now = self._now()
            self.times[f"t_{name}"] = self.times.get(f"t_{name}", 0.0) + now - self._last
            self._last = now
