"""Executors: where the trials of a sweep run.

`local` (the default) runs them one after another in this process. `ray` runs each
as a Ray task, on this machine's GPUs and CPUs or on a cluster's (pip install
'hfbench[ray]'). Both hand every record to the driver, which writes it atomically
into the same results folder, so resume, `hfbench report` and `hfbench.results`
see no difference between them.
"""

from __future__ import annotations

from ..errors import HFBenchError, unknown
from .base import Display, Executor, NullDisplay

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "Display", "Executor", "NullDisplay", "get_executor"]


def get_executor(name: str = "local", *, threads: int | None = None, retries: int = 0, run=None,
                 address: str | None = None, cpus_per_trial: int | None = None,
                 num_cpus: int | None = None) -> Executor:
    """The executor `name` with its options; Ray options given to `local` are an error.

    threads: the framework's CPU threads per trial; retries: how many times a failed
    trial runs again; run: the function that runs one trial (run_trial's signature).
    address, cpus_per_trial, num_cpus: see RayExecutor.
    """
    if name == "local":
        ray_only = {"--address": address, "--cpus-per-trial": cpus_per_trial, "num_cpus": num_cpus}
        given = [k for k, v in ray_only.items() if v is not None]
        if given:
            raise HFBenchError(f"{', '.join(given)}: only with --executor ray (the local executor "
                               "runs one trial at a time in this process; its threads are --threads)")
        from .local import LocalExecutor

        return LocalExecutor(threads=threads, retries=retries, run=run)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(address=address, cpus_per_trial=cpus_per_trial, num_cpus=num_cpus,
                           threads=threads, retries=retries, run=run)
    raise HFBenchError(unknown("executor", name, EXECUTORS))
