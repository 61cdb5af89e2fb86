"""The local executor: trials one after another in this process (the default).

One trial at a time is what makes a wall time on a workstation fair: no other
trial competes for the cores or the GPU while it is timed.
"""

from __future__ import annotations

from .base import Executor, NullDisplay, local_placement, write_record


class LocalExecutor(Executor):
    """Runs each trial in-process with the framework's `threads` (None: its default)."""

    name = "local"

    def __init__(self, *, threads: int | None = None, retries: int = 0, run=None):
        super().__init__(retries=retries, run=run)
        self.threads = threads

    def run_all(self, trials, results_dir, display=None) -> None:
        display = display or NullDisplay()
        for trial in trials:
            self._run_one(trial, results_dir, display)

    def _run_one(self, trial, results_dir, display) -> None:
        attempt = 1
        while True:
            on_step = display.started(trial)
            # None: no write here; the record is written below, with its placement
            rec = self.run(trial, None, on_step=on_step, threads=self.threads)
            if not self.retry_due(rec, attempt):
                break
            display.retrying(trial, rec, attempt)
            attempt += 1
        rec = write_record(results_dir, trial, rec, local_placement(self.threads, attempt))
        display.finished(trial, rec)
