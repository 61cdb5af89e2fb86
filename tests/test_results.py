"""The results layer: scan, labels and config ids, the trials table, load, CSV export.

Records are built by hand with known numbers and written with the runner's own
writer, so every expected value below is worked out from the record, not read back
from the code under test. Two real runs (one per backend) check what only the
runner can produce: provenance metadata, every per-step scalar of adaptive_hf, and
gradient passes in target hits.
"""

from __future__ import annotations

import copy
import json
import math
import re
import socket
import sys
import warnings

import pytest

import hfbench
from hfbench import results
from hfbench.errors import HFBenchError
from hfbench.runner import record

pd = pytest.importorskip("pandas", reason="the results frames need pandas: pip install 'hfbench[results]'")

HF_OPTIONS = {"damping": 10.0, "cg_max_iters": 250, "cg_stop": "martens", "profile": False}
SGN_OPTIONS = {"damping": 0.0001, "cg_iters": 3, "line_search": True}


def make_record(trial_id, *, optimizer="hf", algorithm=None, options=None, seed=0, backend="torch",
                status="completed", **extra) -> dict:
    """A record shaped as the runner writes it, two steps and two evaluations long."""
    config = {
        "suite": "unit", "workload": "digits_mlp", "optimizer": optimizer,
        "algorithm": algorithm or optimizer, "params": {},
        "options": copy.deepcopy(HF_OPTIONS if options is None else options),
        "backend": backend, "seed": seed, "device": "cpu", "dtype": "float32", "tf32": False,
        "dataset": "digits", "batch_size": 64, "curvature_batch_size": 32,
        "budget": {"iterations": 2}, "budget_scale": 1.0, "targets": [],
        "eval": {"every": 2, "epoch_end": False, "time_marks": []},
    }
    steps = [
        {"step": 1, "epoch": 0.5, "time_s": 0.1, "batch_loss": 2.0, "n_grad": 1, "n_gv": 4,
         "n_fwd": 1, "n_precond": 0, "n_curv": 1, "grad_passes": 6.0},
        {"step": 2, "epoch": 1.0, "time_s": 0.2, "batch_loss": 1.5, "n_grad": 2, "n_gv": 10,
         "n_fwd": 2, "n_precond": 0, "n_curv": 2, "grad_passes": 14.0},
    ]
    evals = [
        {"step": 0, "epoch": 0.0, "time_s": 0.0, "grad_passes": 0.0, "why": "start",
         "train_loss": 2.3, "test_loss": 2.4, "test_accuracy": 0.1},
        {"step": 2, "epoch": 1.0, "time_s": 0.2, "grad_passes": 14.0, "why": "final",
         "train_loss": 1.4, "test_loss": 1.6, "test_accuracy": 0.6},
    ]
    rec = {
        "status": status, "metadata": {}, "config": config, "compile_s": 0.5,
        "train_time_s": 0.2, "iterations": 2, "epochs": 1.0, "targets": [], "at_time_marks": {},
        "final": {k: v for k, v in evals[-1].items() if k != "why"}, "diverged_at": None,
        "steps": steps, "evals": evals, "trial_id": trial_id, "suite": "unit",
    }
    rec.update(extra)
    return rec


def write(folder, *recs) -> None:
    for rec in recs:
        record.write_atomic(record.path_for(folder, rec["trial_id"]), rec)


def by_id(df) -> dict:
    return {row["trial_id"]: row for _, row in df.iterrows()}


# ----------------------------------------------------------------------------- labels, ids


def test_one_option_set_is_labelled_by_the_optimizer_name(tmp_path):
    write(tmp_path, make_record("a", seed=0), make_record("b", seed=1),
          make_record("c", backend="jax"))  # a backend difference is a column, not a label
    t = results.trials(tmp_path)
    assert list(t["label"]) == ["hf", "hf", "hf"]
    rows = by_id(t)
    assert rows["a"]["config_id"] == rows["b"]["config_id"]  # seeds of one configuration
    assert rows["a"]["config_id"] != rows["c"]["config_id"]
    assert re.fullmatch(r"[0-9a-f]{10}", rows["a"]["config_id"])


def test_labels_name_only_the_options_that_differ(tmp_path):
    write(tmp_path,
          make_record("d10", options={**HF_OPTIONS, "damping": 10.0}),
          make_record("d1", options={**HF_OPTIONS, "damping": 1.0}),
          make_record("d1jax", options={**HF_OPTIONS, "damping": 1.0}, backend="jax"),
          make_record("sgn", optimizer="sgn", options=SGN_OPTIONS))
    labels = {k: row["label"] for k, row in by_id(results.trials(tmp_path)).items()}
    assert labels == {"d10": "hf(damping=10)", "d1": "hf(damping=1)", "d1jax": "hf(damping=1)",
                      "sgn": "sgn"}


def test_labels_format_ints_floats_and_sort_keys(tmp_path):
    a = {**SGN_OPTIONS, "cg_iters": 5, "damping": 0.5}
    b = {**SGN_OPTIONS, "cg_iters": 10, "damping": 1e-05}
    c = {**SGN_OPTIONS, "cg_iters": 10.0, "damping": 1e-05}  # 10.0 is the setting 10
    write(tmp_path, *(make_record(n, optimizer="sgn", options=o) for n, o in
                      (("a", a), ("b", b), ("c", c))))
    rows = by_id(results.trials(tmp_path))
    assert rows["a"]["label"] == "sgn(cg_iters=5, damping=0.5)"
    assert rows["b"]["label"] == rows["c"]["label"] == "sgn(cg_iters=10, damping=1e-05)"
    assert rows["b"]["config_id"] == rows["c"]["config_id"]


def test_labels_stay_apart_where_g_would_round_them_together(tmp_path):
    write(tmp_path, make_record("a", options={**HF_OPTIONS, "damping": 0.1234561}),
          make_record("b", options={**HF_OPTIONS, "damping": 0.1234564}))
    assert set(results.trials(tmp_path)["label"]) == {"hf(damping=0.1234561)", "hf(damping=0.1234564)"}


def test_param_columns_keep_grid_points_apart(tmp_path):
    grid = [(d, s) for d in (1.0, 10.0) for s in (0, 1)]
    write(tmp_path, *(make_record(f"d{d:g}s{s}", seed=s, options={**HF_OPTIONS, "damping": d,
                                                                  "layers": [8, 4]})
                      for d, s in grid))
    t = results.trials(tmp_path)
    assert sorted(zip(t["param.damping"], t["seed"])) == sorted(grid)
    assert (t.groupby(["label", "seed"]).size() == 1).all()  # no two grid points mixed
    assert set(t["param.cg_stop"]) == {"martens"}
    assert set(t["param.layers"]) == {"[8, 4]"}  # lists as their JSON text
    steps = results.load(tmp_path)
    assert (steps.groupby(["label", "seed"])["trial_id"].nunique() == 1).all()
    assert set(steps["param.damping"]) == {1.0, 10.0}


def test_config_id_ignores_the_seed_and_nothing_else():
    base = make_record("x")["config"]
    same = {**base, "seed": 7, "suite": "other", "params": {"damping": 10}}
    assert results.config_id(same) == results.config_id(base)
    for key, value in (("dtype", "float64"), ("device", "cuda"), ("batch_size", 32),
                       ("budget_scale", 0.5), ("options", {**HF_OPTIONS, "cg_max_iters": 10})):
        assert results.config_id({**base, key: value}) != results.config_id(base), key


# ----------------------------------------------------------------------------- the trials row


def test_trials_columns_and_order(tmp_path):
    write(tmp_path, make_record("z", optimizer="sgn", options=SGN_OPTIONS),
          make_record("y", seed=1), make_record("x", seed=0, backend="jax"),
          make_record("w", seed=0))
    t = results.trials(tmp_path)
    head = ["trial_id", "suite", "workload", "optimizer", "algorithm", "backend", "device", "dtype",
            "seed", "status", "budget_scale", "label", "config_id", "diverged_at", "train_time_s",
            "compile_s", "iterations", "epochs", "grad_passes"]
    assert list(t.columns[:len(head)]) == head
    assert list(t["trial_id"]) == ["x", "w", "y", "z"]  # hf/jax, hf/torch s0, s1, then sgn
    row = by_id(t)["w"]
    assert (row["final.train_loss"], row["final.test_loss"], row["final.test_accuracy"]) == (1.4, 1.6, 0.6)
    assert row["grad_passes"] == 14.0 and row["dtype"] == "float32" and row["budget_scale"] == 1.0


def test_failed_and_diverged_trials(tmp_path):
    failed = {"status": "failed", "error": "RuntimeError: boom", "trial_id": "f", "suite": "unit",
              "config": make_record("f")["config"]}
    diverged = make_record("d", status="diverged", final=None, diverged_at=2)
    write(tmp_path, failed, diverged)
    rows = by_id(results.trials(tmp_path))
    assert math.isnan(rows["f"]["final.test_loss"]) and math.isnan(rows["f"]["iterations"])
    assert math.isnan(rows["d"]["final.train_loss"]) and rows["d"]["diverged_at"] == 2
    assert rows["d"]["grad_passes"] == 14.0  # spent up to the divergence: the last step's
    steps = results.load(tmp_path)
    assert list(steps[steps["trial_id"] == "f"]["kind"]) == ["trial"]


def _target_record(trial_id, status="target_reached", hits=None, **kw):
    rec = make_record(trial_id, status=status, **kw)
    rec["config"]["targets"] = [{"metric": "test_accuracy", "op": ">=", "value": 0.5, "stop": True},
                                {"metric": "test_loss", "op": "<=", "value": 1e-3, "stop": False}]
    hit = {"metric": "test_accuracy", "op": ">=", "value": 0.5, "time_s": 0.2, "iteration": 2,
           "epoch": 1.0, "grad_passes": 14.0}
    rec["targets"] = [hit, None] if hits is None else hits
    return rec


def test_targets_hit_missed_and_diverged(tmp_path):
    old_hit = {"metric": "test_accuracy", "op": ">=", "value": 0.5, "time_s": 0.2, "iteration": 2,
               "epoch": 1.0}  # written before hits carried grad_passes
    write(tmp_path, _target_record("hit"), _target_record("old", hits=[old_hit, None]),
          _target_record("div", status="diverged", final=None, diverged_at=2),
          {"status": "failed", "trial_id": "fail", "config": _target_record("fail")["config"]})
    rows = by_id(results.trials(tmp_path))
    acc, loss = "target.test_accuracy>=0.5", "target.test_loss<=0.001"
    assert [rows["hit"][f"{acc}.{u}"] for u in ("time_s", "iterations", "epochs", "grad_passes")] == [
        0.2, 2, 1.0, 14.0]
    assert rows["old"][f"{acc}.grad_passes"] == 14.0  # from the evaluation at step 2
    for unit in ("time_s", "iterations", "epochs", "grad_passes"):
        assert rows["hit"][f"{loss}.{unit}"] == math.inf  # missed
        assert rows["div"][f"{acc}.{unit}"] == math.inf  # hit, then diverged
        assert rows["fail"][f"{acc}.{unit}"] == math.inf


def test_time_marks(tmp_path):
    rec = make_record("m")
    rec["config"]["eval"]["time_marks"] = [0.1, 2, 100]
    at = {"step": 1, "epoch": 0.5, "time_s": 0.12, "grad_passes": 6.0, "n_grad": 1, "eval_s": 0.01,
          "train_loss": 1.9, "test_loss": 2.0, "test_accuracy": 0.3}
    rec["at_time_marks"] = {"0.1": at, "2": None, "100": None}
    write(tmp_path, rec, make_record("no_marks"))
    rows = by_id(results.trials(tmp_path))
    m = rows["m"]
    assert (m["mark.0.1s.test_accuracy"], m["mark.0.1s.train_loss"], m["mark.0.1s.epoch"]) == (0.3, 1.9, 0.5)
    assert math.isnan(m["mark.2s.epoch"]) and math.isnan(m["mark.100s.epoch"])  # never reached
    assert math.isnan(m["mark.2s.test_accuracy"])
    assert "mark.0.1s.eval_s" not in rows["m"] and "mark.0.1s.n_grad" not in rows["m"]
    assert math.isnan(rows["no_marks"]["mark.0.1s.test_accuracy"])


def test_cost_means_from_cumulative_counts(tmp_path):
    rec = make_record("c", iterations=3, train_time_s=1.5)
    cum = {"n_grad": [1, 2, 3], "n_gv": [3, 8, 10], "n_fwd": [1, 2, 4], "n_precond": [0, 0, 0],
           "n_curv": [1, 2, 3]}
    rec["steps"] = [{"step": i + 1, **{k: v[i] for k, v in cum.items()}, "t_cg": t, "t_grad": 0.05}
                    for i, t in enumerate((0.1, 0.3, 0.2))]
    write(tmp_path, rec)
    row = by_id(results.trials(tmp_path))["c"]
    # increments: n_gv 3, 5, 2 -> 10/3; n_fwd 1, 1, 2 -> 4/3
    assert row["cost.n_grad"] == pytest.approx(1.0) and row["cost.n_gv"] == pytest.approx(10 / 3)
    assert row["cost.n_fwd"] == pytest.approx(4 / 3) and row["cost.n_precond"] == 0
    assert row["cost.n_curv"] == pytest.approx(1.0)
    assert row["cost.grad_equiv"] == pytest.approx(1 + 10 / 3 + 0.5 * 4 / 3 + 0 + 0.5 * 1)
    assert row["cost.t_cg"] == pytest.approx(0.2) and row["cost.t_grad"] == pytest.approx(0.05)
    assert row["cost.step_s"] == pytest.approx(0.5)


def test_grad_equiv_weights_are_the_runners():
    from hfbench.runner.trial import GRAD_EQUIV

    assert results.GRAD_EQUIV == GRAD_EQUIV


# ----------------------------------------------------------------------------- reading a folder


def test_corrupt_and_foreign_files_are_skipped_with_a_warning(tmp_path):
    write(tmp_path, make_record("good"))
    (tmp_path / "torn.json").write_text('{"status": "compl')
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    (tmp_path / ".good.abc123.tmp").write_text('{"status": ')  # an interrupted write
    with pytest.warns(UserWarning) as caught:
        scan = results.scan(tmp_path)
    assert [r["trial_id"] for r in scan.records] == ["good"]
    assert sorted(p for p, _ in scan.skipped) == sorted([str(tmp_path / "notes.json"),
                                                         str(tmp_path / "torn.json")])
    texts = [str(w.message) for w in caught]
    assert len(texts) == 2 and any("torn.json" in t for t in texts) and any("notes.json" in t for t in texts)
    assert not any(".tmp" in t for t in texts)
    with pytest.warns(UserWarning):
        assert results.records(tmp_path) == scan.records


def test_a_clean_folder_reads_without_warnings(tmp_path):
    write(tmp_path, make_record("a"))
    (tmp_path / ".a.x.tmp").write_text("{")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert results.scan(tmp_path).skipped == []


@pytest.mark.parametrize("contents", [{}, {"other.json": "[1, 2]", "readme.txt": "hi"},
                                      {"torn.json": '{"sta'}])
def test_a_folder_without_records_is_an_error(tmp_path, contents):
    for name, text in contents.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(HFBenchError, match="no (readable )?trial record") as info:
        results.scan(tmp_path)
    assert "hfbench run" in str(info.value)


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(HFBenchError, match="does not exist.*--results"):
        results.trials(tmp_path / "nope")


def test_load_keeps_every_step_key_and_the_config_columns(tmp_path):
    rec = make_record("a")
    rec["steps"][0].update(direction_norm=0.25, some_new_scalar=3)
    write(tmp_path, rec, make_record("b", options={**HF_OPTIONS, "damping": 1.0}))
    df = results.load(tmp_path)
    for col in results.COLUMNS + ("direction_norm", "some_new_scalar", "param.damping", "batch_loss"):
        assert col in df.columns, col
    a = df[(df["trial_id"] == "a") & (df["kind"] == "step")]
    assert list(a["direction_norm"].iloc[:1]) == [0.25]
    assert set(a["label"]) == {"hf(damping=10)"}
    assert len(df[df["kind"] == "eval"]) == 4


def test_export_csv(tmp_path):
    write(tmp_path / "r", _target_record("a"), make_record("b"))
    trials_csv, steps_csv = results.export_csv(tmp_path / "r", tmp_path / "out")
    assert (trials_csv.name, steps_csv.name) == ("trials.csv", "steps.csv")
    t = pd.read_csv(trials_csv)
    assert sorted(t["trial_id"]) == ["a", "b"]
    row = by_id(t)["a"]
    assert row["target.test_loss<=0.001.time_s"] == math.inf and row["final.test_loss"] == 1.6
    assert len(pd.read_csv(steps_csv)) == 2 * (2 + 2)  # two steps and two evaluations each


def test_no_pandas_is_a_clear_error(tmp_path, monkeypatch):
    write(tmp_path, make_record("a"))
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(HFBenchError, match=r"pandas.*hfbench\[results\]"):
        results.trials(tmp_path)
    assert len(results.records(tmp_path)) == 1  # reading records needs no pandas


def test_numpy_values_in_a_record_are_written(tmp_path):
    import numpy as np

    path = tmp_path / "n.json"
    record.write_atomic(path, {"steps": [{"hist": np.array([1.0, np.inf]), "ok": np.bool_(True)}]})
    assert json.loads(path.read_text()) == {"steps": [{"hist": [1.0, "inf"], "ok": True}]}


# ----------------------------------------------------------------------------- provenance


def test_cpu_model_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 3.00GHz\n")
    assert record.cpu_model(str(info)) == "Test CPU @ 3.00GHz"
    info.write_text("processor\t: 0\n")  # e.g. some ARM kernels: no model name line
    assert record.cpu_model(str(info)) == (__import__("platform").processor() or None)


def _real_backends():
    status = hfbench.installed_backends()
    return [pytest.param(n, marks=pytest.mark.skipif(
        status.get(n, "not registered") is not None,
        reason=f"backend {n!r} not installed: pip install 'hfbench[{n}]'")) for n in ("torch", "jax")]


@pytest.fixture(scope="module", params=_real_backends())
def adaptive_run(request, tmp_path_factory):
    """One tiny adaptive_hf trial (smoke suite, Boston, 4 steps) through the runner."""
    from hfbench import suite
    from hfbench.runner import run_trial

    (trial,) = suite.expand(suite.load("smoke"), workload="boston_mlp", optimizer="adaptive_hf",
                            backend=request.param)
    out = tmp_path_factory.mktemp(f"adaptive_{request.param}")
    rec = run_trial(trial, out)
    assert rec["status"] != "failed", rec.get("error")
    return request.param, out, rec


def test_real_record_keeps_every_adaptive_hf_scalar(adaptive_run):
    _, out, rec = adaptive_run
    for row in rec["steps"]:
        for key in ("direction_norm", "alpha", "beta1", "t", "rho", "lambda", "cg_iters", "step_norm"):
            assert isinstance(row.get(key), (int, float)), key
        assert row["direction_norm"] > 0
    df = results.load(out)
    assert df[df["kind"] == "step"]["direction_norm"].notna().all()


def test_real_record_has_provenance(adaptive_run):
    name, _, rec = adaptive_run
    meta = rec["metadata"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["timestamp_utc"])
    assert meta["hostname"] == socket.gethostname()
    for key in ("cpu_model", "gpu_model", "cuda", "cudnn", "jaxlib"):
        assert key in meta, key
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        lines = []
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.split(":")[0].strip() == "model name"]
    if names:
        assert meta["cpu_model"] == names[0]
    if rec["config"]["device"] == "cpu":
        assert meta["gpu_model"] is None
    if name == "torch":
        import torch

        assert meta["cuda"] == torch.version.cuda and meta["jaxlib"] is None
    else:
        import jaxlib

        assert meta["jaxlib"] == jaxlib.__version__ and meta["cudnn"] is None


def test_real_target_hit_carries_grad_passes(adaptive_run):
    _, out, rec = adaptive_run
    hit = rec["targets"][0]  # the smoke suite's target, met at the first evaluation
    ev = next(e for e in rec["evals"] if e["step"] == hit["iteration"])
    assert hit["grad_passes"] == ev["grad_passes"]
    row = results.trials(out).iloc[0]
    assert row["target.train_loss<=1e+06.grad_passes"] == ev["grad_passes"]
