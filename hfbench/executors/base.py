"""The executor interface, and what every executor shares: records, placement, retries.

An executor runs trials that are not done yet and hands each finished record to
the driver's `write_record`, which adds where the trial ran (`metadata.placement`)
and writes it atomically into the results folder. Workers never write there: on a
cluster the folder may live on the driver's disk only. Resume is the caller's
(run_suite skips done trials before anything is handed to an executor).
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from typing import Callable, Protocol

from ..errors import HFBenchError
from ..runner import record


class Display(Protocol):
    """What an executor tells the person watching (run_suite's rich progress)."""

    def started(self, trial) -> Callable | None:
        """A trial starts in this process; returns its on_step callback, if any."""

    def finished(self, trial, rec: dict) -> None:
        """A trial's final record is written."""

    def retrying(self, trial, rec: dict, attempt: int) -> None:
        """Attempt `attempt` failed and the trial is run again."""

    def running(self, running: int, queued: int) -> None:
        """Trials in flight on a cluster."""

    def note(self, text: str) -> None:
        """A one-line message (a warning about the cluster, say)."""


class NullDisplay:
    """A Display that shows nothing (library use, tests)."""

    def started(self, trial):
        return None

    def finished(self, trial, rec):
        pass

    def retrying(self, trial, rec, attempt):
        pass

    def running(self, running, queued):
        pass

    def note(self, text):
        pass


class Executor(ABC):
    """Runs trials and writes their records; `run` is the function that runs one
    trial (`hfbench.runner.trial.run_trial`'s signature), injectable for tests."""

    name = "executor"

    def __init__(self, *, retries: int = 0, run: Callable | None = None):
        if not isinstance(retries, int) or retries < 0:
            raise HFBenchError(f"retries must be an integer >= 0, got {retries!r}")
        self.retries = retries
        self.run = run or _default_run()

    @abstractmethod
    def run_all(self, trials, results_dir, display: Display | None = None) -> None:
        """Run every trial of `trials`, writing each record as it is final.

        KeyboardInterrupt stops the sweep: finished records stay, nothing half-run is
        written, and the interrupt propagates to the caller."""

    def __enter__(self):
        """Acquire what the executor runs on (Ray: start or join it) for a `with` block."""
        return self

    def __exit__(self, *exc) -> None:
        return None

    def retry_due(self, rec: dict, attempt: int) -> bool:
        """A failed trial is run again, up to `retries` more times."""
        return rec.get("status") == "failed" and attempt <= self.retries


def _default_run() -> Callable:
    from ..runner.trial import run_trial

    return run_trial


def write_record(results_dir, trial, rec: dict, placement: dict) -> dict:
    """Add the placement to the record's metadata and write it atomically (driver side)."""
    rec = dict(rec)
    rec["metadata"] = {**(rec.get("metadata") or {}), "placement": placement}
    record.write_atomic(record.path_for(results_dir, trial.id), rec)
    return rec


def failed_record(trial, exc: BaseException, wall_s: float | None = None) -> dict:
    """The record of a trial that never returned one (its worker died, its task was
    cancelled): the shape run_trial gives a trial that raised."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return {"status": "failed", "error": f"{type(exc).__name__}: {first}", "traceback": text,
            "config": trial.config(), "trial_id": trial.id, "suite": trial.suite, "wall_s": wall_s}


def local_placement(threads: int | None, attempt: int) -> dict:
    """Where a trial of the local executor ran: this process, on this host."""
    return {"executor": "local", "hostname": socket.gethostname(), "node_id": None, "node_ip": None,
            "gpu_ids": None, "cpus": threads, "threads": threads, "attempt": attempt}


def xla_flags(threads: int | None, flags: str = "") -> str:
    """XLA_FLAGS for a JAX process with `threads` CPU threads.

    XLA reads them once, when JAX starts, and has a switch for a single thread only:
    with more, JAX's CPU pool is sized to the machine whatever the count.
    """
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return flags.strip()
