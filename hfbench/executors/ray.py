"""The Ray executor: each trial is one Ray task, on one machine or a cluster.

Timing fidelity decides the resources a task asks for. A GPU trial takes one whole
GPU (`num_gpus=1`), so no two timed trials share a device. A CPU trial takes
`cpus_per_trial` CPUs and runs its framework with that many threads (torch through
run_trial's `threads`, JAX through XLA_FLAGS set before it starts in the worker), so
trials that share a node do not oversubscribe its cores.

The worker returns the record; the driver writes it (workers on other hosts cannot
see the results folder). Ray is imported here only inside functions: hfbench's core
never imports it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

from ..errors import HFBenchError
from .base import Executor, NullDisplay, failed_record, write_record, xla_flags

MISSING = "Ray is not installed: pip install 'hfbench[ray]'"
WAIT_S = 0.5  # ray.wait's timeout: how soon a Ctrl-C is seen while trials run


def import_ray():
    """The ray module, or an HFBenchError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise HFBenchError(MISSING) from None
    return ray


def is_gpu_trial(trial, auto_gpu: bool = False) -> bool:
    """cuda, cuda:N (and gpu) run on a GPU; auto does where the cluster has GPUs."""
    device = str(trial.device).lower()
    return device.startswith(("cuda", "gpu")) or (device == "auto" and auto_gpu)


def task_options(trial, cpus_per_trial: int, auto_gpu: bool = False) -> dict:
    """The Ray task options of one trial (see the module docstring for why)."""
    opts = {"num_cpus": cpus_per_trial, "max_retries": 0,  # --retries decides, not Ray
            "name": f"hfbench {trial.workload}/{trial.optimizer}/{trial.backend}/s{trial.seed}"}
    if is_gpu_trial(trial, auto_gpu):
        opts["num_gpus"] = 1
    flags = xla_flags(cpus_per_trial, "${XLA_FLAGS}")  # Ray expands ${..} from the worker's env
    if flags != "${XLA_FLAGS}":
        opts["runtime_env"] = {"env_vars": {"XLA_FLAGS": flags}}
    return opts


def unplaceable(trials, cpus_per_trial: int, auto_gpu: bool, nodes: list[dict]) -> str | None:
    """Why some trial fits on no live node of the cluster; None when all fit."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    cpus = max((r.get("CPU", 0) for r in alive), default=0)
    gpus = max((r.get("GPU", 0) for r in alive), default=0)
    gpu_trial = next((t for t in trials if is_gpu_trial(t, auto_gpu)), None)
    if gpu_trial is not None and gpus < 1:
        return (f"trial {gpu_trial.id} runs on device {gpu_trial.device!r}, and no node of the "
                "Ray cluster has a GPU (start Ray with --num-gpus, or run with --device cpu)")
    if cpus_per_trial > cpus:
        return (f"--cpus-per-trial {cpus_per_trial}: the largest node of the Ray cluster has "
                f"{cpus:g} CPUs")
    return None


def check_devices(trials) -> None:
    """Ray gives a task one GPU of its choosing, visible as cuda:0: an index cannot hold."""
    for t in trials:
        if str(t.device).startswith("cuda:") and t.device != "cuda:0":
            raise HFBenchError(f"trial {t.id}: device {t.device!r}: with --executor ray each GPU "
                               "trial gets one whole GPU that Ray picks; use --device cuda")


def _trial_task(run, trial, threads):
    """In the worker: run the trial without writing it; return (record, placement)."""
    if "XLA_FLAGS" in os.environ:  # ${XLA_FLAGS} of an unset variable leaves a leading blank
        os.environ["XLA_FLAGS"] = os.environ["XLA_FLAGS"].strip()
    rec = run(trial, None, threads=threads)
    return rec, _worker_placement(threads)


def _worker_placement(threads) -> dict:
    import ray

    ctx = ray.get_runtime_context()
    return {"executor": "ray", "hostname": socket.gethostname(), "node_id": ctx.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "gpu_ids": list(ctx.get_accelerator_ids().get("GPU", [])),
            "cpus": ctx.get_assigned_resources().get("CPU"), "threads": threads}


def _unknown_placement() -> dict:
    """A task that returned nothing (its worker died) ran somewhere Ray no longer says."""
    keys = ("hostname", "node_id", "node_ip", "gpu_ids", "cpus", "threads")
    return {"executor": "ray", **dict.fromkeys(keys)}


class RayExecutor(Executor):
    """Trials as Ray tasks on a local instance sized to this machine (address None)
    or on the cluster at `address` ("auto" or HOST:PORT); reuses a connected session."""

    name = "ray"

    def __init__(self, *, address: str | None = None, cpus_per_trial: int | None = None,
                 num_cpus: int | None = None, threads: int | None = None, retries: int = 0, run=None):
        self.ray = import_ray()
        super().__init__(retries=retries, run=run)
        self.cpus_per_trial = _cpus_per_trial(cpus_per_trial, threads)
        self.address, self.num_cpus = address, num_cpus
        self._owned = self._local = False  # Ray started or joined here; a local instance

    def __enter__(self):
        """Start or join Ray now (the CLI does, before JAX starts: Ray's fork of its own
        processes would warn about JAX's threads); left on exit."""
        self._owned = self._connect()
        return self

    def __exit__(self, *exc) -> None:
        if self._owned:
            self.ray.shutdown()
        self._owned = False

    def run_all(self, trials, results_dir, display=None) -> None:
        display = display or NullDisplay()
        trials = list(trials)
        if not trials:
            return
        check_devices(trials)
        with contextlib.nullcontext() if self.ray.is_initialized() else self:
            self._check_cluster(trials, display)
            _Sweep(self, results_dir, display).run(trials)

    def _connect(self) -> bool:
        """Start or join Ray; True when this call did (and so its exit shuts it down)."""
        ray = self.ray
        if ray.is_initialized():
            return False  # the caller's session (a notebook, the tests)
        quiet = {"log_to_driver": False,  # workers' output would tear the progress display;
                 "logging_level": logging.WARNING}  # errors come back in the records
        try:
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, **quiet)
        except ConnectionError as exc:
            raise HFBenchError(f"cannot reach a Ray cluster at {self.address!r}: {exc}; start one "
                               "with `ray start --head`, or drop --address to start one here") from None
        self._local = not self.address
        return True

    def _check_cluster(self, trials, display) -> None:
        why = unplaceable(trials, self.cpus_per_trial, self._auto_gpu(), self.ray.nodes())
        if why and self._local:  # an instance started here does not grow
            raise HFBenchError(why)
        if why:  # a joined cluster may grow (autoscaler); say why trials may wait
            display.note(f"warning: {why}; those trials wait until a node that fits joins")

    def _auto_gpu(self) -> bool:
        return self.ray.cluster_resources().get("GPU", 0) >= 1

    def slots(self) -> int:
        """How many trials the cluster runs at once (CPU-bound count; every trial takes CPUs)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1) // self.cpus_per_trial))


def _cpus_per_trial(cpus_per_trial, threads) -> int:
    """CPUs a trial reserves, which are also its framework threads: --threads alone
    sets both, and the two may not disagree."""
    if cpus_per_trial is not None and threads is not None and cpus_per_trial != threads:
        raise HFBenchError(f"--threads {threads} and --cpus-per-trial {cpus_per_trial} disagree: with "
                           "--executor ray a trial's threads are the CPUs it reserves; give one of them")
    n = cpus_per_trial or threads or 1
    if not isinstance(n, int) or n < 1:
        raise HFBenchError(f"--cpus-per-trial must be an integer >= 1, got {n!r}")
    return n


class _Sweep:
    """One sweep's tasks in flight: submit, collect as they finish, retry, stop."""

    def __init__(self, executor: RayExecutor, results_dir, display):
        self.ex, self.ray, self.results_dir, self.display = executor, executor.ray, results_dir, display
        self.task = self.ray.remote(_trial_task)
        self.auto_gpu, self.slots = executor._auto_gpu(), executor.slots()
        self.pending: dict = {}  # ObjectRef -> (trial, attempt)

    def run(self, trials) -> None:
        for trial in trials:
            self.submit(trial, 1)
        try:
            while self.pending:
                n = len(self.pending)  # an estimate: Ray does not say which tasks started
                self.display.running(min(n, self.slots), max(0, n - self.slots))
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    self.collect(ref)
            self.display.running(0, 0)
        except KeyboardInterrupt:
            self.stop()
            raise
        except BaseException:  # a record that cannot be written (a full disk): stop the rest
            self.cancel()
            raise

    def submit(self, trial, attempt: int) -> None:
        cpus = self.ex.cpus_per_trial
        opts = task_options(trial, cpus, self.auto_gpu)
        self.pending[self.task.options(**opts).remote(self.ex.run, trial, cpus)] = (trial, attempt)

    def result(self, ref, trial) -> tuple[dict, dict]:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # worker died, task cancelled or raised
            return failed_record(trial, exc), _unknown_placement()

    def collect(self, ref) -> None:
        trial, attempt = self.pending.pop(ref)
        rec, placement = self.result(ref, trial)
        if self.ex.retry_due(rec, attempt):
            self.display.retrying(trial, rec, attempt)
            self.submit(trial, attempt + 1)
            return
        rec = write_record(self.results_dir, trial, rec, {**placement, "attempt": attempt})
        self.display.finished(trial, rec)

    def stop(self) -> None:
        """Ctrl-C: keep the records already finished, cancel (kill) every other task.

        A failure seen now is not kept: in a terminal the workers get the SIGINT too,
        so it may be the Ctrl-C itself (a rerun runs a failed trial anyway)."""
        refs = list(self.pending)
        done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
        for ref in done:
            trial, attempt = self.pending.pop(ref)
            rec, placement = self.result(ref, trial)
            if rec.get("status") != "failed":
                write_record(self.results_dir, trial, rec, {**placement, "attempt": attempt})
        self.cancel()

    def cancel(self) -> None:
        """Cancel (kill) every task still in flight; their trials get no record."""
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
