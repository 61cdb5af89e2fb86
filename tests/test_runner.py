"""The runner end to end: smoke suite on both backends, resume, atomic records, results."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import hfbench
from hfbench import results, suite
from hfbench.runner import record, run_trial
from hfbench.runner.suite_run import run_suite

STATUS = hfbench.installed_backends()
BACKENDS = [n for n in ("torch", "jax") if STATUS.get(n) is None]
pytestmark = pytest.mark.skipif(
    len(BACKENDS) < 2, reason="the smoke run covers both backends: pip install 'hfbench[all]'"
)
FINISHED = {"completed", "target_reached", "budget_exhausted", "diverged"}


def smoke_trials(**kw):
    return suite.expand(suite.load("smoke"), workload="digits_mlp", **kw)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    trials = suite.expand(suite.load("smoke"))  # the whole smoke suite, end to end
    recs = run_suite(trials, out)
    return out, trials, recs


def test_smoke_runs_every_algorithm_on_both_backends(smoke_run):
    out, trials, recs = smoke_run
    assert {t.algorithm for t in trials} == set(hfbench.algorithms.ALGORITHMS)
    assert {t.backend for t in trials} == set(BACKENDS)
    for t, rec in zip(trials, recs):
        assert rec["status"] in FINISHED, (t.optimizer, t.backend, rec.get("error"))
        assert rec["iterations"] >= 1 and rec["train_time_s"] > 0
        meta = rec["metadata"]
        for key in ("hfbench_version", "git_commit", "framework_version", "device_name", "dtype",
                    "tf32", "execution_mode", "config", "seed"):
            assert key in meta, key
        assert meta["config"]["backend"] == t.backend and meta["seed"] == t.seed


def test_backends_agree_on_the_smoke_trajectories(smoke_run):
    """Same seed, same batches: torch and JAX records agree step by step (float32)."""
    _, trials, recs = smoke_run
    by_key = {(t.workload, t.optimizer, t.backend): r for t, r in zip(trials, recs)}
    for wl, opt in {(t.workload, t.optimizer) for t in trials}:
        a, b = by_key[(wl, opt, "torch")], by_key[(wl, opt, "jax")]
        la = [s["batch_loss"] for s in a["steps"]]
        lb = [s["batch_loss"] for s in b["steps"]]
        np.testing.assert_allclose(la, lb, rtol=2e-3, err_msg=f"{wl}/{opt}")
        assert [s.get("cg_iters") for s in a["steps"]] == [s.get("cg_iters") for s in b["steps"]] or opt == "sgn"


def test_results_load_long_format(smoke_run):
    out, trials, _ = smoke_run
    df = results.load(out)
    for col in results.COLUMNS:
        assert col in df.columns
    assert set(df["trial_id"]) == {t.id for t in trials}
    evals = df[df["kind"] == "eval"]
    classified = evals[evals["workload"] == "digits_mlp"]
    assert len(classified) and classified["test_accuracy"].between(0, 1).all()
    assert evals[evals["workload"] != "digits_mlp"]["test_accuracy"].isna().all()  # no accuracy
    assert evals["test_loss"].notna().all()
    steps = df[df["kind"] == "step"]
    assert (steps.groupby("trial_id")["n_grad"].diff().dropna() >= 0).all()  # cumulative


def test_same_seed_gives_identical_records(tmp_path):
    trial = next(t for t in smoke_trials(backend="torch") if t.algorithm == "hf")
    a = run_trial(trial, tmp_path / "a")
    b = run_trial(trial, tmp_path / "b")
    strip = lambda steps: [{k: v for k, v in s.items() if k != "time_s"} for s in steps]
    assert strip(a["steps"]) == strip(b["steps"])
    assert [e["test_loss"] for e in a["evals"]] == [e["test_loss"] for e in b["evals"]]


class Killed(BaseException):
    """Stands in for a kill: like KeyboardInterrupt, no `except Exception` catches it."""


def test_resume_after_interrupt_skips_done_and_leaves_no_torn_record(tmp_path, monkeypatch):
    trials = smoke_trials(backend="torch")
    calls, killed = [], []
    real = run_trial

    def interrupted(trial, results_dir, on_step=None, threads=None):
        calls.append(trial.id)

        def step_hook(run, info):
            if len(calls) == 3 and run.iteration >= 2 and not killed:
                killed.append(trial.id)
                raise Killed  # killed in the middle of the third trial
            if on_step:
                on_step(run, info)

        return real(trial, results_dir, step_hook)

    monkeypatch.setattr("hfbench.runner.suite_run.run_trial", interrupted)
    with pytest.raises(Killed):
        run_suite(trials, tmp_path)
    done = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert done == sorted(calls[:2])
    assert not list(tmp_path.glob(".*.tmp")), "a temporary record was left behind"
    for p in tmp_path.glob("*.json"):
        json.loads(p.read_text())  # every record on disk is whole
    calls.clear()
    run_suite(trials, tmp_path)
    assert set(calls) == {t.id for t in trials} - set(done)  # completed ones were skipped
    assert all(record.is_done(tmp_path, t.id) for t in trials)


def test_a_torn_or_failed_record_is_rerun(tmp_path):
    trial = smoke_trials(backend="torch")[0]
    path = record.path_for(tmp_path, trial.id)
    path.write_text('{"status": "compl')  # torn by a crash of an older version
    assert not record.is_done(tmp_path, trial.id)
    record.write_atomic(path, {"status": "failed"})
    assert not record.is_done(tmp_path, trial.id)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hfbench.cli", *args], capture_output=True,
                          text=True, timeout=900, cwd=cwd)


def test_cli_dry_run_and_bad_input(tmp_path):
    proc = _cli("run", "smoke", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    n = len(suite.expand(suite.load("smoke")))
    assert f"{n} trials" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(suite.resolve("smoke").read_text().replace("{algorithm: hf,", "{algorithm: hff,", 1))
    proc = _cli("run", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "bad.yaml:" in proc.stderr and "did you mean 'hf'" in proc.stderr
    proc = _cli("run", "no_such_suite")
    assert proc.returncode == 2 and "no_such_suite" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_refuses_missing_data_and_missing_gpu_before_running(tmp_path):
    env = {**os.environ, "HFBENCH_DATA": str(tmp_path / "empty_cache")}
    proc = subprocess.run([sys.executable, "-m", "hfbench.cli", "run", "gargiani2020", "--workload",
                           "fashion_mnist", "--results", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "train-images-idx3-ubyte.gz" in proc.stderr and "hfbench data fetch" in proc.stderr
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))
    if hfbench.installed_backends().get("torch") is None:
        import torch

        if not torch.cuda.is_available():
            proc = _cli("run", "smoke", "--backend", "torch", "--device", "cuda", "--results", str(tmp_path / "c"))
            assert proc.returncode == 2 and "cuda" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_runs_a_filtered_suite_and_resumes(tmp_path):
    args = ("run", "smoke", "--workload", "boston_mlp", "--optimizer", "sgd", "--backend", "torch",
            "--results", str(tmp_path))
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert "summary" in first.stdout
    second = _cli(*args)
    assert second.returncode == 0 and "already done, skipped" in second.stderr
