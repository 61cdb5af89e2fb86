"""Fault injection: a sweep that is interrupted, killed, starved of disk, fed corrupted
files or hit by a failing backend or a dying Ray worker loses no finished result.

Each fault runs the real command line (`python -m hfbench.cli run` in a subprocess)
or the real functions on a tiny suite written here: Boston housing (offline), a
13-4-1 net, plain SGD on torch, a few hundred steps per trial so that a signal
lands in the middle of a sweep. What the tests trust is read back independently of
hfbench's reader: every record file is parsed with the json module, its seed taken
from its config, and a finished record's bytes and mtime are compared before and
after a rerun. The Ray test starts one local instance (2 CPUs, no dashboard) for
the module.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import gzip
import hashlib
import http.server
import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
from rich.console import Console

import hfbench
from hfbench import data, results, suite
from hfbench.errors import HFBenchError
from hfbench.executors import get_executor
from hfbench.runner import record, run_trial
from hfbench.runner.suite_run import run_suite

TORCH = hfbench.installed_backends().get("torch")
pytestmark = [
    pytest.mark.skipif(TORCH is not None, reason=f"the fault tests run torch trials: pip install "
                                                 f"'hfbench[torch]' ({TORCH})"),
    # starting Ray and the CLI fork this process, where JAX (imported by other tests)
    # may have threads; each child execs at once, so JAX's fork warning does not apply
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
]
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
SEEDS = 4  # trials of the signal tests: one workload, one optimizer, seeds 0..3
# Their budget is training time, so that a trial lasts as long on a fast machine as on a
# slow one, and a signal sent less than TRIAL_S after a record lands within the sweep.
TRIAL_S = 0.7


def write_suite(folder, seeds: int = SEEDS, iterations: int | None = None,
                time_s: float | None = None):
    """A one-workload suite of `seeds` sgd trials on Boston housing, each to its budget:
    `iterations` steps (evaluated halfway) or `time_s` seconds of training."""
    budget = f"{{iterations: {iterations}}}" if iterations else f"{{time_s: {time_s}}}"
    every = max(1, iterations // 2) if iterations else 10**6
    path = folder / "faults.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: faults
        backends: [torch]
        seeds: {list(range(seeds))}
        device: cpu
        dtype: float32
        workloads:
          boston_mlp:
            dataset: boston
            model: {{type: mlp, sizes: [13, 4, 1], activation: tanh}}
            batch_size: 32
        optimizers:
          sgd: {{algorithm: sgd, params: {{lr: 0.01}}}}
        budget: {budget}
        eval: {{every: {every}, epoch_end: false}}
        """))
    return path


def cli(*args, check_rc=None, **kw):
    proc = subprocess.run([sys.executable, "-m", "hfbench.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kw)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr[-3000:]
    return proc


def start(suite_path, out):
    return subprocess.Popen([sys.executable, "-m", "hfbench.cli", "run", str(suite_path),
                             "--results", str(out), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_records(out, k: int, proc, timeout_s: float = 120.0) -> None:
    deadline = time.time() + timeout_s
    while len(list(out.glob("*.json"))) < k:
        assert proc.poll() is None, f"the run ended before {k} records: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"no {k} records within {timeout_s} s"
        time.sleep(0.02)


def intact(out) -> dict:
    """{file name: record} for every *.json, parsed by the json module (a torn file raises)."""
    return {p.name: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def stamps(out) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*.json")}


def seeds_of(recs: dict) -> list[int]:
    return sorted(r["config"]["seed"] for r in recs.values())


def one_line(text: str) -> str:
    return " ".join(text.split())


def assert_finished(recs: dict, iterations: int | None = None) -> None:
    """Whole records of trials that ran their whole budget (no targets: 'completed'):
    `iterations` steps, else TRIAL_S seconds of training."""
    for name, rec in recs.items():
        assert rec["status"] == "completed", (name, rec.get("error"))
        assert len(rec["steps"]) == rec["iterations"] > 0, name
        if iterations:
            assert rec["iterations"] == iterations, name
        else:
            assert rec["train_time_s"] >= TRIAL_S, name


def no_warnings(fn, *args):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value = fn(*args)
    assert not [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
    return value


# ------------------------------------------------------------- signals: SIGINT, SIGTERM, SIGKILL


def _interrupt(tmp_path, signum, seed):
    """Run the suite, send `signum` at a seeded random point after the first or second
    record; returns (suite, folder, process, stderr, the records left)."""
    rng = random.Random(seed)
    path, out = write_suite(tmp_path, time_s=TRIAL_S), tmp_path / "r"
    k, delay = rng.randint(1, 2), rng.uniform(0.0, TRIAL_S - 0.1)
    proc = start(path, out)
    wait_for_records(out, k, proc)
    time.sleep(delay)  # mid-trial, between trials or during a record's write: the
    # next trial trains TRIAL_S seconds, so it has not finished yet
    assert proc.poll() is None, "the sweep ended before the signal: make its trials longer"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    kept = intact(out)
    assert_finished(kept)
    assert 1 <= len(kept) < SEEDS, sorted(kept)
    return path, out, proc, err, kept


def _rerun_completes(path, out, kept: dict) -> None:
    """The rerun (in this process: the CLI's startup costs seconds, and the CLI rerun is
    tested below) skips the finished trials, their files untouched, and runs the rest."""
    before = stamps(out)
    console = Console(file=io.StringIO(), width=100)
    run_suite(suite.expand(suite.load(str(path))), out, console=console, threads=1)
    said = one_line(console.file.getvalue())
    assert f"resuming: {len(kept)} of {SEEDS} trials already done" in said
    after = intact(out)
    assert seeds_of(after) == list(range(SEEDS))  # every trial once, none twice
    assert_finished(after)
    assert {k: v for k, v in stamps(out).items() if k in before} == before
    recs = no_warnings(results.records, out)
    assert sorted(r["config"]["seed"] for r in recs) == list(range(SEEDS))


@pytest.mark.parametrize("signum, seed", [(signal.SIGINT, 1), (signal.SIGTERM, 5)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_keeps_every_finished_record_and_the_rerun_resumes(tmp_path, signum, seed):
    path, out, proc, err, kept = _interrupt(tmp_path, signum, seed)
    assert proc.returncode == 128 + signum, err[-2000:]  # 130, 143: the shell's convention
    assert "Traceback" not in err
    said = one_line(err)
    assert f"interrupted: {len(kept)} of {SEEDS} trials have their records in {out}" in said
    assert "run the same command again to resume" in said
    # the interrupted trial has no record, so it is not done
    missing = [t for t in suite.expand(suite.load(str(path))) if t.seed not in seeds_of(kept)]
    assert missing and not any(record.is_done(out, t.id) for t in missing)
    assert not list(out.glob(".*.tmp"))  # the cut write (if any) cleaned up its temp file
    _rerun_completes(path, out, kept)


def test_sigkill_leaves_no_torn_record_and_a_stray_temp_file_is_ignored(tmp_path):
    path, out, proc, err, kept = _interrupt(tmp_path, signal.SIGKILL, seed=9)
    assert proc.returncode == -signal.SIGKILL
    # what a kill between a record's write and its rename leaves: a temp file, half a record
    missing = [t for t in suite.expand(suite.load(str(path))) if t.seed not in seeds_of(kept)]
    whole = next(iter(kept.values()))
    text = json.dumps(whole)
    stray = out / f".{missing[0].id}.k1ll3d.tmp"
    stray.write_text(text[: len(text) // 2])
    assert not record.is_done(out, missing[0].id)
    assert len(no_warnings(results.records, out)) == len(kept)  # not a record, not a warning
    # a rerun deletes a temp file older than any write takes, and keeps a young one (a
    # sweep writing into the same folder may own it)
    old = out / f".{missing[0].id}.0ld.tmp"
    old.write_text(text[:10])
    hour_ago = time.time() - record.STALE_TEMP_S - 1
    os.utime(old, (hour_ago, hour_ago))
    _rerun_completes(path, out, kept)
    assert not old.exists() and stray.exists()


# ------------------------------------------------------------- an unwritable or full folder


def test_results_under_a_regular_file_stop_before_any_trial(tmp_path):
    path = write_suite(tmp_path, seeds=1, iterations=5)
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    for target in (blocker / "sub", blocker):
        proc = cli("run", path, "--results", target)
        assert proc.returncode == 2, proc.stderr
        said = one_line(proc.stderr)
        assert "Traceback" not in said and str(target) in said and "results folder" in said
        assert "--results" in said  # what would work
        assert "summary" not in proc.stdout and "━" not in proc.stderr  # no trial started
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(ROOT, reason="running as root, where a read-only mode does not stop writes "
                                 "(the in-process test below simulates it)")
def test_a_read_only_results_folder_stops_before_any_trial(tmp_path):
    path = write_suite(tmp_path, seeds=1, iterations=5)
    out = tmp_path / "r"
    out.mkdir()
    out.chmod(0o555)
    try:
        proc = cli("run", path, "--results", out)
    finally:
        out.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    said = one_line(proc.stderr)
    assert "Traceback" not in said and str(out) in said and "not writable" in said
    assert not list(out.iterdir())


def _tiny_trials(tmp_path, seeds=2, iterations=3):
    return suite.expand(suite.load(str(write_suite(tmp_path, seeds=seeds, iterations=iterations))))


def _counting_run(calls, trial, results_dir, on_step=None, threads=None):
    calls.append(trial.seed)
    return run_trial(trial, results_dir, on_step=on_step, threads=threads)


def test_a_folder_that_refuses_writes_is_named_before_any_trial(tmp_path, monkeypatch):
    """Read-only (simulated: root ignores the mode bits): the probe fails, nothing runs."""
    out = tmp_path / "r"
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kw):
        if dir is not None and os.path.abspath(dir) == os.path.abspath(out):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    calls = []
    run = functools.partial(_counting_run, calls)
    with pytest.raises(HFBenchError) as info:
        run_suite(_tiny_trials(tmp_path), out, executor=get_executor("local", run=run))
    msg = str(info.value)
    assert str(out) in msg and "not writable" in msg and "Permission denied" in msg
    assert calls == [] and not list(out.iterdir())


class _FullDisk:
    """The json module, except that dump writes half its text and then finds the disk full."""

    def __getattr__(self, name):
        return getattr(json, name)

    def dump(self, obj, fh, **kw):
        text = json.dumps(obj, **kw)
        fh.write(text[: len(text) // 2])
        fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_at_the_first_record_stops_the_sweep_and_leaves_no_partial_file(tmp_path,
                                                                                      monkeypatch):
    out = tmp_path / "r"
    trials = _tiny_trials(tmp_path)
    monkeypatch.setattr(record, "json", _FullDisk())
    calls = []
    run = functools.partial(_counting_run, calls)
    with pytest.raises(HFBenchError) as info:
        run_suite(trials, out, executor=get_executor("local", run=run))
    msg = str(info.value)
    assert str(out) in msg and "No space left on device" in msg and trials[0].id in msg
    assert "resume" in msg
    assert calls == [0]  # the sweep stops: the next trials' records could not be kept either
    assert list(out.iterdir()) == []  # no partial record, no temp file


def test_records_are_readable_as_the_umask_allows(tmp_path):
    """A temp file is created 0600; the record is given the mode an ordinary file gets,
    so a shared results folder can be read by whoever may read its files."""
    path = record.path_for(tmp_path, "abc")
    record.write_atomic(path, {"status": "completed", "config": {}})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# ------------------------------------------------------------- corrupted records


def test_a_truncated_record_is_named_skipped_by_load_and_report_and_rerun(tmp_path):
    pytest.importorskip("pandas", reason="results.load needs pandas: pip install 'hfbench[results]'")
    pytest.importorskip("matplotlib", reason="the report needs matplotlib: pip install 'hfbench[report]'")
    path, out = write_suite(tmp_path, seeds=3, iterations=20), tmp_path / "r"
    run_suite(suite.expand(suite.load(str(path))), out, console=Console(file=io.StringIO()))
    names = sorted(p.name for p in out.glob("*.json"))
    torn, odd = out / names[0], out / names[1]
    text = torn.read_text()
    torn.write_text(text[: len(text) // 2])  # cut in half, as an old non-atomic writer might
    odd.write_text("[]\n")  # valid JSON, not a record (edited by hand)
    good = json.loads((out / names[2]).read_text())

    with pytest.warns(UserWarning) as seen:
        scan = results.scan(out)
    assert [r["trial_id"] for r in scan.records] == [good["trial_id"]]
    assert {os.path.basename(p) for p, _ in scan.skipped} == {torn.name, odd.name}
    said = " ".join(str(w.message) for w in seen)
    assert str(torn) in said and str(odd) in said and "unreadable JSON" in said
    with pytest.warns(UserWarning) as seen:
        frame = results.load(out)
    assert sorted(os.path.basename(str(w.message).split(":")[0]) for w in seen) == sorted(
        [torn.name, odd.name])
    assert set(frame["trial_id"]) == {good["trial_id"]}

    rep = cli("report", out, "--no-figures", "--out", tmp_path / "rep", check_rc=0)
    assert torn.name in rep.stderr and odd.name in rep.stderr and "Traceback" not in rep.stderr
    assert torn.name in (tmp_path / "rep" / "index.html").read_text()

    before = stamps(out)[names[2]]
    again = cli("run", path, "--results", out, "--threads", "1", check_rc=0)
    said = one_line(again.stderr)
    assert "resuming: 1 of 3 trials already done" in said and "Traceback" not in said
    assert torn.name in said and odd.name in said  # the rerun says why it runs them again
    recs = intact(out)
    assert seeds_of(recs) == [0, 1, 2]
    assert_finished(recs, iterations=20)
    assert stamps(out)[names[2]] == before
    assert len(no_warnings(results.records, out)) == 3


# ------------------------------------------------------------- corrupted or contended datasets


def _idx_gz(a: np.ndarray) -> bytes:
    a = np.asarray(a, np.uint8)
    return gzip.compress(bytes([0, 0, 8, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.tobytes())


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """'mnist' pointed at a tiny copy (file:// URLs, real checksums) and an empty cache."""
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (8, 28, 28)),
              "train-labels-idx1-ubyte.gz": np.arange(8) % 10,
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": np.arange(4) % 10}
    for name, a in arrays.items():
        (src / name).write_bytes(_idx_gz(a))
    info = data.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, url=(src / f.name).as_uri(), mirrors=(),
                                      sha256=_sha256(src / f.name),
                                      size_bytes=(src / f.name).stat().st_size)
                  for f in info.files)
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(info, files=files))
    monkeypatch.setenv("HFBENCH_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mnist", {f.name: f.sha256 for f in files}


def test_a_corrupted_cached_dataset_is_caught_before_the_run_with_how_to_refetch(
        tmp_path, tiny_mnist, monkeypatch, capsys):
    from hfbench import cli as hfcli

    folder, sums = tiny_mnist
    data.fetch("mnist")
    bad = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 3] ^= 0x55  # one flipped byte: same size, other content
    bad.write_bytes(bytes(raw))
    spec = tmp_path / "mnist.yaml"
    spec.write_text(textwrap.dedent("""\
        name: mnist_faults
        backends: [torch]
        device: cpu
        workloads:
          mnist_mlp:
            dataset: mnist
            model: {type: mlp, sizes: [784, 4, 10]}
            batch_size: 4
        optimizers:
          sgd: {algorithm: sgd, params: {lr: 0.1}}
        budget: {iterations: 2}
        """))
    out = tmp_path / "r"
    monkeypatch.setattr(sys, "argv", ["hfbench", "run", str(spec), "--results", str(out)])
    with pytest.raises(SystemExit) as exit_:
        hfcli.main()
    assert exit_.value.code == 2
    said = one_line(capsys.readouterr().err)
    assert f"{bad} fails its checksum: expected sha256 {sums[bad.name]}" in said
    assert "hfbench data fetch mnist" in said and "Traceback" not in said
    assert not out.exists() or not list(out.glob("*.json"))  # no trial ran
    data.fetch("mnist")  # the advice: fetch again, which replaces the bad file
    assert _sha256(bad) == sums[bad.name]
    assert data.load("mnist").X_train.shape == (8, 1, 28, 28)


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Serves `body` slowly (no range support), counting the requests."""

    body, requests = b"", []

    def do_GET(self):
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        step = len(self.body) // 40
        for i in range(0, len(self.body), step):
            self.wfile.write(self.body[i:i + step])
            self.wfile.flush()
            time.sleep(0.02)

    def log_message(self, *args):
        pass


FETCHER = """\
import dataclasses, os, sys, time
from hfbench import data
url, sha, size, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
info = data.DATASETS["olivetti_faces"]
f = dataclasses.replace(info.files[0], url=url, mirrors=(), sha256=sha, size_bytes=size)
data.DATASETS["olivetti_faces"] = dataclasses.replace(info, files=(f,))
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
print(data.fetch("olivetti_faces"), flush=True)
"""


def test_two_processes_fetching_one_dataset_end_with_one_valid_file(tmp_path):
    body = np.random.default_rng(0).bytes(400_000)
    handler = type("H", (_SlowHandler,), {"body": body, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    go = tmp_path / "go"
    sha = hashlib.sha256(body).hexdigest()
    env = {**os.environ, "HFBENCH_DATA": str(tmp_path / "cache")}
    args = [f"http://127.0.0.1:{server.server_port}/olivettifaces.mat", sha, str(len(body)), str(go)]
    try:
        procs = [subprocess.Popen([sys.executable, "-c", FETCHER, *args], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.touch()  # both start fetching within milliseconds of each other
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        server.shutdown()
        server.server_close()
    folder = tmp_path / "cache" / "olivetti_faces"
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-2000:]
        assert stdout.split()[-1] == str(folder)
    assert _sha256(folder / "olivettifaces.mat") == sha
    assert not list(folder.glob("*.part"))
    assert len(handler.requests) == 1  # the second waited for the first, then found it cached


# ------------------------------------------------------------- a failing backend


BACKEND_FAULT = """\
import sys
import hfbench.runner.trial as trial_mod
from hfbench.cli import main

real, built = trial_mod.get_backend, []


class Faulty:
    \"\"\"A backend's problem whose gradient raises at its 10th call (mid-training).\"\"\"
    fuse = None  # no fused path: every step goes through value_and_grad

    def __init__(self, problem):
        self._problem, self._calls = problem, 0

    def __getattr__(self, name):
        return getattr(self._problem, name)

    def value_and_grad(self, x, batch):
        self._calls += 1
        if self._calls == 10:
            raise RuntimeError("injected: the device was lost")
        return self._problem.value_and_grad(x, batch)


def get_backend(*args, **kw):
    be = real(*args, **kw)
    built.append(be)
    if len(built) == 2:  # the second trial's backend fails
        make = be.problem
        be.problem = lambda spec: Faulty(make(spec))
    return be


trial_mod.get_backend = get_backend
sys.argv = ["hfbench", *sys.argv[1:]]
main()
"""


def test_an_exception_inside_a_backend_fails_that_trial_and_the_rest_run(tmp_path):
    path = write_suite(tmp_path, seeds=3, iterations=20)
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-c", BACKEND_FAULT, "run", str(path), "--results",
                           str(out), "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    recs = {r["config"]["seed"]: r for r in intact(out).values()}
    assert sorted(recs) == [0, 1, 2]
    failed = [s for s, r in recs.items() if r["status"] == "failed"]
    assert len(failed) == 1, {s: r["status"] for s, r in recs.items()}
    bad = recs[failed[0]]
    assert bad["error"] == "RuntimeError: injected: the device was lost"
    assert "value_and_grad" in bad["traceback"]
    assert f"trial {bad['trial_id']}" in one_line(proc.stderr) and "injected" in proc.stderr
    assert_finished({s: r for s, r in recs.items() if s != failed[0]}, iterations=20)
    assert not record.is_done(out, bad["trial_id"])  # a rerun runs it again


# ------------------------------------------------------------- a Ray worker killed mid-trial


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="ray not installed: pip install 'hfbench[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    yield ray
    ray.shutdown()


def _kill_twice(counter, victim, trial, results_dir, on_step=None, threads=None):
    """Kills its own worker (SIGKILL) the first two times it runs `victim`."""
    if trial.id == victim:
        with open(counter, "a+") as fh:
            fh.seek(0)
            kills = len(fh.read())
            if kills < 2:
                fh.write("k")
                fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    return run_trial(trial, results_dir, on_step=on_step, threads=threads)


def test_a_ray_worker_killed_mid_trial_fails_or_retries_that_trial_only(ray_session, tmp_path):
    trials = _tiny_trials(tmp_path, seeds=3, iterations=20)
    victim = trials[1]
    out = tmp_path / "r"
    run = functools.partial(_kill_twice, str(tmp_path / "kills"), victim.id)
    recs = run_suite(trials, out, executor=get_executor("ray", run=run))  # no retries
    assert [r["status"] for r in recs] == ["completed", "failed", "completed"]
    assert "worker" in recs[1]["error"].lower(), recs[1]["error"]
    assert recs[1]["config"]["seed"] == victim.seed
    on_disk = intact(out)
    assert len(on_disk) == 3
    assert_finished({k: v for k, v in on_disk.items() if v["status"] != "failed"}, iterations=20)
    kept = {k: v for k, v in stamps(out).items() if k != f"{victim.id}.json"}

    recs = run_suite(trials, out, executor=get_executor("ray", run=run, retries=1))
    assert [r["status"] for r in recs] == ["completed"] * 3  # killed again, then retried
    assert recs[1]["metadata"]["placement"]["attempt"] == 2
    assert (tmp_path / "kills").read_text() == "kk"
    assert_finished(intact(out), iterations=20)
    assert {k: v for k, v in stamps(out).items() if k in kept} == kept
