"""Executors: local and Ray give the same records, resume, retries, failures, Ctrl-C.

The Ray tests share one local Ray instance (2 CPUs, no dashboard) started once for
this module; they skip, naming the extra, where Ray is not installed. Trial runners
defined here are handed to the executors (their `run`), and Ray ships them to its
workers by value, since a worker cannot import this test module.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console

import hfbench
from hfbench import suite
from hfbench.errors import HFBenchError
from hfbench.executors import NullDisplay, get_executor
from hfbench.executors.ray import MISSING, task_options, unplaceable
from hfbench.runner import record, run_trial
from hfbench.runner.suite_run import run_suite

STATUS = hfbench.installed_backends()
BACKENDS = [n for n in ("torch", "jax") if STATUS.get(n) is None]
needs_backends = pytest.mark.skipif(len(BACKENDS) < 2,
                                    reason="both backends: pip install 'hfbench[all]'")
FINISHED = set(record.DONE)
# Clock readings: the only fields a record may differ in between two runs of the same trial.
TIMING = {"wall_s", "compile_s", "train_time_s", "time_s", "eval_s", "timestamp_utc"}
RAY_REASON = "ray not installed: pip install 'hfbench[ray]'"
# Starting Ray and the CLI fork this process, where JAX (imported by other tests) has
# threads; each child execs at once, so JAX's fork warning does not apply.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


def boston(optimizer="sgd", **kw):
    """Seconds-long trials: the smoke suite's 121-parameter regression net, 4 steps."""
    return suite.expand(suite.load("smoke"), workload="boston_mlp", optimizer=optimizer, **kw)


def without_timing(obj):
    """A record without its clock readings and its placement (where, not what, it ran)."""
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if k not in TIMING | {"placement"}}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def records_in(folder) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hfbench.cli", *args], capture_output=True,
                          text=True, timeout=600, env=env)


# --------------------------------------------------------------- task options (no Ray needed)


def test_a_gpu_trial_asks_for_one_whole_gpu_and_a_cpu_trial_for_its_cpus():
    trial = boston(backend="torch")[0]
    gpu = task_options(dataclasses.replace(trial, id="", device="cuda"), cpus_per_trial=1)
    assert gpu["num_gpus"] == 1 and gpu["max_retries"] == 0
    cpu = task_options(trial, cpus_per_trial=3)
    assert cpu["num_cpus"] == 3 and "num_gpus" not in cpu
    one = task_options(trial, cpus_per_trial=1)  # one thread: JAX's single-thread switch
    assert "--xla_cpu_multi_thread_eigen=false" in one["runtime_env"]["env_vars"]["XLA_FLAGS"]
    auto = dataclasses.replace(trial, id="", device="auto")
    assert task_options(auto, 1, auto_gpu=True)["num_gpus"] == 1
    assert "num_gpus" not in task_options(auto, 1, auto_gpu=False)


def test_a_trial_that_fits_no_node_is_named():
    trial = dataclasses.replace(boston(backend="torch")[0], id="", device="cuda")
    cpu_node = [{"Alive": True, "Resources": {"CPU": 4.0}}]
    assert "no node of the Ray cluster has a GPU" in unplaceable([trial], 1, False, cpu_node)
    gpu_node = [{"Alive": True, "Resources": {"CPU": 4.0, "GPU": 2.0}}]
    assert unplaceable([trial], 4, False, gpu_node) is None
    assert "largest node" in unplaceable([trial], 8, False, gpu_node)


def test_ray_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(HFBenchError, match=r"pip install 'hfbench\[ray\]'") as info:
        get_executor("ray")
    assert str(info.value) == MISSING


def test_bad_executor_options_are_refused():
    with pytest.raises(HFBenchError, match="did you mean 'ray'"):
        get_executor("rya")
    with pytest.raises(HFBenchError, match="--address.*only with --executor ray"):
        get_executor("local", address="auto")
    with pytest.raises(HFBenchError, match="retries"):
        get_executor("local", retries=-1)


# --------------------------------------------------------------- local executor


def _flaky(marker, trial, results_dir, on_step=None, threads=None):
    """Fails the first time (leaving a marker file), runs the trial after that."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("flaky: first attempt")
    return run_trial(trial, results_dir, on_step=on_step, threads=threads)


def _failing_once(marker, trial, results_dir, on_step=None, threads=None):
    """Like _flaky, but fails as run_trial records a failure: a failed record, no raise."""
    try:
        return _flaky(marker, trial, results_dir, on_step, threads)
    except RuntimeError as exc:
        return {"status": "failed", "error": str(exc), "config": trial.config(), "trial_id": trial.id}


@pytest.mark.skipif(STATUS.get("torch") is not None, reason="pip install 'hfbench[torch]'")
def test_local_retries_a_failed_trial_and_records_the_placement(tmp_path):
    trial = boston(backend="torch")[0]
    run = functools.partial(_failing_once, str(tmp_path / "marker"))
    get_executor("local", retries=1, threads=1, run=run).run_all([trial], tmp_path / "r")
    rec = record.read(record.path_for(tmp_path / "r", trial.id))
    assert rec["status"] in FINISHED
    place = rec["metadata"]["placement"]
    assert place["executor"] == "local" and place["cpus"] == 1 and place["attempt"] == 2
    (tmp_path / "marker").unlink()  # without retries the first failure is final
    get_executor("local", run=run).run_all([trial], tmp_path / "s")
    assert record.read(record.path_for(tmp_path / "s", trial.id))["status"] == "failed"


class _InterruptAfter(NullDisplay):
    """A display whose `finished` raises KeyboardInterrupt (a Ctrl-C), once `ready()`."""

    def __init__(self, ready=lambda: True):
        self.ready, self.seen = ready, []

    def finished(self, trial, rec):
        self.seen.append(trial.id)
        deadline = time.time() + 60
        while not self.ready() and time.time() < deadline:
            time.sleep(0.1)
        raise KeyboardInterrupt


def _ctrl_c_at(stop_id, trial, results_dir, on_step=None, threads=None):
    if trial.id == stop_id:
        raise KeyboardInterrupt
    return run_trial(trial, results_dir, on_step=on_step, threads=threads)


@pytest.mark.skipif(STATUS.get("torch") is not None, reason="pip install 'hfbench[torch]'")
def test_local_ctrl_c_keeps_the_finished_record_and_says_how_to_resume(tmp_path):
    trials = boston(backend="torch") + boston("adam", backend="torch")
    console = Console(file=io.StringIO(), width=200)
    run = functools.partial(_ctrl_c_at, trials[1].id)
    with pytest.raises(KeyboardInterrupt):
        run_suite(trials, tmp_path, console=console, executor=get_executor("local", run=run))
    assert sorted(records_in(tmp_path)) == [trials[0].id]
    said = console.file.getvalue()
    assert "interrupted: 1 of 2 trials" in said and "again to resume" in said


# --------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for this module's Ray tests, shut down after them."""
    ray = pytest.importorskip("ray", reason=RAY_REASON)
    if STATUS.get("torch") is not None:
        pytest.skip("the Ray tests run torch trials: pip install 'hfbench[torch]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    # this module cannot be imported in a worker: send its runners by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@needs_backends
def test_ray_cli_run_gives_the_local_records_apart_from_timings_and_placement(tmp_path):
    pytest.importorskip("ray", reason=RAY_REASON)
    # The same threads on both sides (one: the Ray default), so the same arithmetic.
    local = _cli("run", "smoke", "--workload", "boston_mlp", "--optimizer", "hf", "--threads", "1",
                 "--results", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    ray = _cli("run", "smoke", "--workload", "boston_mlp", "--optimizer", "hf", "--executor", "ray",
               "--results", str(tmp_path / "ray"))
    assert ray.returncode == 0, ray.stderr
    assert "Traceback" not in ray.stderr and "summary" in ray.stdout
    a, b = records_in(tmp_path / "local"), records_in(tmp_path / "ray")
    assert sorted(a) == sorted(b) == sorted(t.id for t in boston("hf"))
    for tid, rec in b.items():
        assert rec["status"] in FINISHED, rec.get("error")
        assert without_timing(rec) == without_timing(a[tid]), rec["config"]["backend"]
        place = rec["metadata"]["placement"]
        assert place["executor"] == "ray" and place["cpus"] == 1 and place["threads"] == 1
        assert place["gpu_ids"] == [] and place["node_id"] and place["hostname"]
        assert a[tid]["metadata"]["placement"]["executor"] == "local"
        assert set(a[tid]["metadata"]["placement"]) == set(place)  # one shape for both


def test_a_trial_that_raises_is_recorded_failed_and_the_others_complete(ray_session, tmp_path):
    good = boston(backend="torch")[0]
    bad = dataclasses.replace(good, id="", backend="no_such_backend")  # fails in the worker
    recs = run_suite([good, bad], tmp_path, executor="ray")
    assert recs[0]["status"] in FINISHED
    assert recs[1]["status"] == "failed" and "no_such_backend" in recs[1]["error"]
    assert recs[1]["metadata"]["placement"]["executor"] == "ray"


def _die(trial, results_dir, on_step=None, threads=None):
    os._exit(1)  # the worker process dies without a word, as an OOM kill would leave it


def test_a_worker_that_dies_is_recorded_failed(ray_session, tmp_path):
    trial = boston(backend="torch")[0]
    get_executor("ray", run=_die).run_all([trial], tmp_path)
    rec = record.read(record.path_for(tmp_path, trial.id))
    assert rec["status"] == "failed" and "Worker" in rec["error"], rec["error"]
    assert rec["config"] == trial.config()


def _logged(log, trial, results_dir, on_step=None, threads=None):
    with open(log, "a") as fh:
        fh.write(trial.id + "\n")
    return run_trial(trial, results_dir, on_step=on_step, threads=threads)


def test_a_rerun_runs_only_the_trials_without_a_record(ray_session, tmp_path):
    trials = boston(backend="torch") + boston("adam", backend="torch")
    log = tmp_path / "submitted.log"
    run = functools.partial(_logged, str(log))
    get_executor("ray", run=run).run_all(trials, tmp_path / "r")
    kept, lost = (record.path_for(tmp_path / "r", t.id) for t in trials)
    before = kept.stat().st_mtime_ns, kept.read_bytes()
    lost.unlink()  # as if the sweep had been interrupted before this trial finished
    log.unlink()
    run_suite(trials, tmp_path / "r", executor=get_executor("ray", run=run))
    assert log.read_text().split() == [trials[1].id]
    assert (kept.stat().st_mtime_ns, kept.read_bytes()) == before
    assert record.is_done(tmp_path / "r", trials[1].id)


def test_retries_run_a_failed_trial_again_until_it_completes(ray_session, tmp_path):
    trial = boston(backend="torch")[0]
    run = functools.partial(_flaky, str(tmp_path / "marker"))  # raises in the worker the first time
    get_executor("ray", retries=1, run=run).run_all([trial], tmp_path / "r")
    rec = record.read(record.path_for(tmp_path / "r", trial.id))
    assert rec["status"] in FINISHED and rec["metadata"]["placement"]["attempt"] == 2


def _slow(pidfile, slow_id, trial, results_dir, on_step=None, threads=None):
    if trial.id != slow_id:
        return run_trial(trial, results_dir, on_step=on_step, threads=threads)
    with open(pidfile, "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(300)  # killed by the cancel long before this ends


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_keeps_finished_records_and_kills_the_running_trials(ray_session, tmp_path):
    fast, slow = boston(backend="torch")[0], boston("adam", backend="torch")[0]
    pidfile = tmp_path / "slow.pid"
    run = functools.partial(_slow, str(pidfile), slow.id)
    display = _InterruptAfter(ready=pidfile.exists)  # Ctrl-C once the slow trial runs
    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        get_executor("ray", run=run).run_all([slow, fast], tmp_path / "r", display)
    assert time.time() - t0 < 120
    assert sorted(records_in(tmp_path / "r")) == [fast.id] == display.seen
    assert _gone(int(pidfile.read_text()), within_s=30), "the slow trial's worker still runs"


@needs_backends
def test_ctrl_c_at_the_command_line_exits_130_and_says_how_to_resume(tmp_path):
    pytest.importorskip("ray", reason=RAY_REASON)
    out = tmp_path / "r"
    # a session of its own, as a terminal's foreground job: the SIGINT reaches Ray's
    # processes too; SIG_DFL, as a shell's background job would ignore it
    proc = subprocess.Popen([sys.executable, "-m", "hfbench.cli", "run", "smoke", "--workload",
                             "boston_mlp", "--executor", "ray", "--results", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: (os.setsid(), signal.signal(signal.SIGINT, signal.SIG_DFL)))
    deadline = time.time() + 300
    while not list(out.glob("*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    said = " ".join(err.split())  # rich wraps lines at the console's width
    assert "Traceback" not in said and "run the same command again to resume" in said
    kept = records_in(out)  # every record on disk is whole, and finished
    assert kept and all(r["status"] in FINISHED for r in kept.values())
    assert f"interrupted: {len(kept)} of 14 trials" in said
