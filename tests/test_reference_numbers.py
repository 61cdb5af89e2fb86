"""The papers' numbers: every paper suite's `reference:` block validates and carries
the tables it should; a bad block is an error naming file:line; and a hand-built
trials table compared against a small block gives the numbers worked out by hand.

No framework is imported, and nothing runs a trial.
"""

from __future__ import annotations

import math

import pytest

pd = pytest.importorskip("pandas")

from hfbench.report.reference import (  # noqa: E402
    COLUMNS, SuiteReference, column, compare, from_suite, load_reference, markdown, table, tables,
)
from hfbench.suite import SuiteError, load, loads  # noqa: E402

PAPER_SUITES = {  # suite -> (entries, the tables they come from)
    "gargiani2020": (82, {"Table 1 (left)", "Table 1 (right)", "Table 2 (left)", "Table 2 (right)",
                          "Table 3 (left)", "Table 3 (right)"}),
    "martens2010": (12, {"Table 2 (RAND+HF, CURVES)", "Table 2 (RAND+HF, MNIST)",
                         "Table 2 (RAND+HF, MNIST*)", "Table 2 (RAND+HF, FACES)",
                         "Table 2 (RAND+HF, FACES*)", "§8"}),
    "wang2024": (15, {"Table 1", "Table 2", "Table 3"}),
    "motokawa2020": (0, set()),
}

# Line numbers matter: the error tests find them with line_of().
BASE = """\
name: t
backends: [torch, jax]
seeds: 3
workloads:
  digits:
    dataset: digits
    model: {type: mlp, sizes: [64, 8, 10], activation: tanh}
    batch_size: 64
  mnist:
    dataset: mnist
    model: {type: mlp, sizes: [784, 8, 10]}
    batch_size: 64
    optimizers: [sgd]
optimizers:
  sgd: {algorithm: sgd, params: {lr: [0.01, 0.1]}}
  sgn: {algorithm: sgn, params: {cg_iters: [2, 5]}}
budget: {time_s: 10}
eval: {every: 5, time_marks: [5, 10]}
reference:
  source: "A paper, Tables 1-3"
  baseline: {optimizer: sgd, config: {lr: 0.1}}
  entries:
    - {workload: digits, optimizer: sgn, config: {cg_iters: 2}, metric: test_accuracy, at: {time_s: 5}, value: 91.6, convert: percent, table: "Table 1"}
    - {workload: digits, optimizer: sgd, config: {lr: 0.1}, metric: test_loss, value: 0.30, table: "Table 1"}
    - {workload: digits, optimizer: sgd, config: {lr: 0.1}, metric: time_s, kind: time, value: 100, table: "Table 2"}
    - {workload: digits, optimizer: sgn, config: {cg_iters: 2}, metric: time_s, kind: time, value: 250, table: "Table 2"}
    - {workload: mnist, optimizer: sgd, config: {lr: 0.1}, metric: test_accuracy, value: 0.9, table: "Table 3"}
    - {workload: digits, optimizer: sgn, config: {cg_iters: 5}, metric: test_accuracy, at: {time_s: 10}, value: 0.95, table: "Table 1"}
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(hits) == 1, (fragment, hits)
    return hits[0]


def one_error(text: str, *fragments: str) -> str:
    with pytest.raises(SuiteError) as info:
        loads(text, source="x.yaml")
    lines = info.value.lines
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# ----------------------------------------------------------------------------- the paper suites


@pytest.mark.parametrize("name", sorted(PAPER_SUITES))
def test_paper_suite_reference_validates(name):
    suite = load(name)
    ref = suite.reference
    count, tables = PAPER_SUITES[name]
    assert ref is not None and ref.source
    assert len(ref.entries) == count
    assert {e.table for e in ref.entries} == tables
    for e in ref.entries:  # every number names a workload and optimizer the suite runs
        w = suite.workloads[e.workload]
        assert e.optimizer in (w.optimizers or suite.optimizers)
    assert load_reference(name).suite == name


def test_motokawa_says_it_has_no_tabulated_numbers():
    ref = load("motokawa2020").reference
    assert ref.entries == [] and "No tabulated numbers" in ref.note and "Fig. 2" in ref.note


def test_paper_numbers_as_printed():
    """Spot checks against the papers' text (one number per table)."""
    def value(suite, **want):
        hits = [e for e in load(suite).reference.entries
                if all(getattr(e, k) == v for k, v in want.items())]
        assert len(hits) == 1, want
        return hits[0]

    e = value("gargiani2020", workload="mnist", optimizer="sgn", config={"cg_iters": 3},
              metric="test_accuracy", at={"time_s": 100.0})
    assert (e.value, e.convert, e.paper_value) == (94.0, "percent", 0.94)
    assert value("gargiani2020", workload="cifar10_long", optimizer="sgn_cg10", metric="epoch").value == 9
    assert value("martens2010", workload="faces_l2", metric="test_reconstruction_error").value == 122
    assert value("wang2024", optimizer="damped_newton", metric="time_s").value == 34933
    assert value("wang2024", optimizer="hf_gauss_newton", metric="test_accuracy").value == 0.9239


def test_a_suite_without_a_block_has_none():
    assert load("quickstart").reference is None
    assert load_reference("quickstart") is None


# ----------------------------------------------------------------------------- bad blocks


def test_base_block_validates():
    ref = loads(BASE, source="x.yaml").reference
    assert len(ref.entries) == 6 and ref.entries[0].at == {"time_s": 5.0}
    assert ref.entries[1].at == "final" and ref.entries[0].paper_value == pytest.approx(0.916)


def test_unknown_workload_names_file_line_and_closest():
    text = edit("{workload: mnist, optimizer: sgd", "{workload: mnst, optimizer: sgd")
    line = line_of(text, "workload: mnst")
    one_error(text, f"x.yaml:{line} reference.entries[4].workload: unknown workload 'mnst'",
              "did you mean 'mnist'?", "(choices: digits, mnist)")


def test_unknown_key_suggests_the_closest():
    text = edit("value: 0.30, table", "value: 0.30, hardwre: cpu, table")
    line = line_of(text, "hardwre")
    one_error(text, f"x.yaml:{line} reference.entries[1].hardwre: unknown key 'hardwre'",
              "did you mean 'hardware'?")
    text = edit('  source: "A paper', '  sorce: x\n  source: "A paper')
    one_error(text, f"x.yaml:{line_of(text, 'sorce')} reference.sorce: unknown key 'sorce'; "
              "did you mean 'source'?")


def test_wrong_types():
    text = edit("value: 0.30", 'value: "low"')
    one_error(text, f"x.yaml:{line_of(text, 'low')} reference.entries[1].value: expected a number, got 'low'")
    text = edit("at: {time_s: 5}", "at: {time: 5}")
    one_error(text, "reference.entries[0].at: unknown at key 'time'; did you mean 'time_s'? "
              "(choices: epoch, time_s); or give `at: final`")
    text = edit("at: {time_s: 5}", "at: start")
    one_error(text, "reference.entries[0].at: expected final, {time_s: t}")
    text = edit("config: {lr: 0.1}, metric: test_loss", "config: {lr: [0.1]}, metric: test_loss")
    one_error(text, "reference.entries[1].config.lr: expected a single option value")
    one_error(edit("metric: test_loss", "metric: test_los"),
              "reference.entries[1].metric: unknown metric 'test_los'; did you mean 'test_loss'?")
    one_error(edit("kind: time, value: 100", "kind: clock, value: 100"),
              "reference.entries[2].kind: unknown kind 'clock'", "(choices: value, time)")


def test_names_must_run_in_this_suite():
    text = edit("{workload: mnist, optimizer: sgd, config: {lr: 0.1}",
                "{workload: mnist, optimizer: sgn, config: {cg_iters: 2}")
    one_error(text, f"x.yaml:{line_of(text, 'workload: mnist,')} reference.entries[4].optimizer: "
              "optimizer 'sgn' does not run on workload 'mnist' (its optimizers: sgd)")
    one_error(edit("optimizer: sgd, config: {lr: 0.1}, metric: test_loss",
                   "optimizer: adam, metric: test_loss"),
              "reference.entries[1].optimizer: unknown optimizer 'adam'")


def test_config_picks_one_grid_point():
    one_error(edit("config: {lr: 0.1}, metric: test_loss", "config: {lr: 0.5}, metric: test_loss"),
              "reference.entries[1].config: no grid point of optimizer 'sgd' has {lr: 0.5}",
              "(its values: lr: 0.01, 0.1)")
    one_error(edit("config: {lr: 0.1}, metric: test_loss", "metric: test_loss"),
              "reference.entries[1].config: {} matches 2 grid points of optimizer 'sgd'; say which "
              "one with config: {lr: ...}")
    one_error(edit("config: {lr: 0.1}, metric: test_loss", "config: {lrr: 0.1}, metric: test_loss"),
              "reference.entries[1].config.lrr: unknown sgd option 'lrr'; did you mean 'lr'?")


def test_time_marks_and_metrics_must_exist():
    text = edit("at: {time_s: 5}", "at: {time_s: 7}")
    one_error(text, f"x.yaml:{line_of(text, 'time_s: 7')} reference.entries[0].at.time_s: workload "
              "'digits' has no time mark at 7 s (its time marks: 5, 10)")
    one_error(edit("metric: test_loss", "metric: test_reconstruction_error"),
              "metric 'test_reconstruction_error' does not apply to workload 'digits'")
    one_error(edit("metric: test_loss", "metric: time_s"), "reference.entries[1].metric: time_s is "
              "hardware-bound: give kind: time")
    one_error(edit("metric: test_loss", "metric: test_loss, convert: percent"),
              "reference.entries[1].convert: convert maps an accuracy")


def test_time_entries_need_a_baseline_number():
    text = edit("    - {workload: digits, optimizer: sgd, config: {lr: 0.1}, metric: time_s, kind: time, "
                "value: 100, table: \"Table 2\"}\n", "")
    one_error(text, f"x.yaml:{line_of(text, 'value: 250')} reference.entries[2]: no entry of the "
              "baseline 'sgd' {lr: 0.1} for workload 'digits', metric 'time_s' at final")
    text = edit("baseline: {optimizer: sgd, config: {lr: 0.1}}",
                "baseline: {optimizer: sgn, config: {cg_iters: 5}}")
    with pytest.raises(SuiteError) as info:
        loads(text, source="x.yaml")
    where = [line.split(" ", 2)[1] for line in info.value.lines]
    assert where == ["reference.entries[2]:", "reference.entries[3]:"]
    assert "no entry of the baseline 'sgn' {cg_iters: 5}" in info.value.lines[0]
    text = edit("baseline: {optimizer: sgd, config: {lr: 0.1}}", "baseline: sgdd")
    one_error(text, f"x.yaml:{line_of(text, 'sgdd')} reference.baseline.optimizer: unknown baseline "
              "optimizer 'sgdd'; did you mean 'sgd'?")
    one_error(edit("metric: test_loss, value", "metric: test_loss, baseline: sgd, value"),
              "reference.entries[1].baseline: a baseline divides kind: time entries only")


def test_every_problem_of_the_block_at_once():
    text = edit("{workload: mnist, optimizer: sgd", "{workload: mnst, optimizer: sgd")
    text = edit("value: 0.30", 'value: "low"', text)
    with pytest.raises(SuiteError) as info:
        loads(text, source="x.yaml")
    assert len(info.value.lines) == 2


# ----------------------------------------------------------------------------- comparing


def trial(workload, optimizer, seed, status="completed", backend="torch", **cols):
    params = {"sgd": {"param.lr": 0.1}, "sgn": {"param.cg_iters": 2}}[optimizer]
    row = {"suite": "t", "workload": workload, "optimizer": optimizer, "algorithm": optimizer,
           "backend": backend, "seed": seed, "status": status, "label": f"{optimizer}/s{seed}",
           **params}
    for k, v in cols.items():
        row[k.replace("__", ".")] = v
    return row


def trials_table(rows):
    return pd.DataFrame(rows)


HAND = [  # digits on torch; the numbers the expected values below are worked from
    trial("digits", "sgn", 0, mark__5s__test_accuracy=0.90, train_time_s=20.0),
    trial("digits", "sgn", 1, mark__5s__test_accuracy=0.92, train_time_s=24.0),
    trial("digits", "sgn", 2, mark__5s__test_accuracy=0.94, train_time_s=22.0),
    trial("digits", "sgd", 0, final__test_loss=0.31, train_time_s=10.0),
    trial("digits", "sgd", 1, final__test_loss=0.35, train_time_s=12.0),
    trial("digits", "sgd", 2, "diverged", final__test_loss=99.0, train_time_s=3.0),
    {**trial("digits", "sgd", 0, final__test_loss=5.0, train_time_s=50.0), "param.lr": 0.01},
    {**trial("digits", "sgn", 0, mark__5s__test_accuracy=0.1, train_time_s=1.0), "param.cg_iters": 5,
     "mark.10s.test_accuracy": math.nan},
    {**trial("digits", "sgd", 3, final__test_loss=1000.0), "suite": "other"},  # not this suite's
]


def compared(rows=HAND, text=BASE, missing=lambda d: d == "mnist"):
    ref = from_suite(loads(text, source="x.yaml"))
    return compare(ref, trials_table(rows), data_missing=missing)


def test_matched_values_by_hand():
    rows = compared()
    acc = rows[0]  # sgn cg 2, test accuracy at 5 s: paper 91.6 % -> 0.916
    assert acc.status == "matched" and acc.group == "torch"
    assert (acc.n, acc.diverged, acc.failed) == (3, 0, 0)
    assert acc.paper == pytest.approx(0.916)
    assert acc.mean == pytest.approx(0.92) and acc.std == pytest.approx(0.02)
    assert acc.difference == pytest.approx(0.004) and acc.relative == pytest.approx(0.004 / 0.916)

    loss = rows[1]  # sgd lr 0.1, final test loss: the diverged trial (99.0) is left out
    assert loss.status == "matched" and (loss.n, loss.diverged) == (2, 1)
    assert loss.mean == pytest.approx(0.33) and loss.std == pytest.approx(math.sqrt(2) * 0.02)
    assert loss.difference == pytest.approx(0.03) and loss.relative == pytest.approx(0.1)


def test_time_entries_compare_ratios_to_sgd():
    rows = compared()
    sgd_time, sgn_time = rows[2], rows[3]
    # paper: 250 / 100 = 2.5; hfbench: mean(20, 24, 22) / mean(10, 12) = 22 / 11 = 2.0
    assert sgn_time.status == "matched" and sgn_time.baseline == "'sgd' {lr: 0.1}"
    assert sgn_time.mean == pytest.approx(22.0)
    assert sgn_time.paper_ratio == pytest.approx(2.5) and sgn_time.hfbench_ratio == pytest.approx(2.0)
    assert sgn_time.difference == pytest.approx(-0.5) and sgn_time.relative == pytest.approx(-0.2)
    assert sgd_time.paper_ratio == pytest.approx(1.0) and sgd_time.hfbench_ratio == pytest.approx(1.0)
    assert sgd_time.mean == pytest.approx(11.0) and sgd_time.diverged == 1
    cells = table([sgn_time])[0]
    assert (cells["paper ratio"], cells["hfbench ratio"], cells["difference"]) == ("2.5", "2", "-0.5 (-20%)")


def test_unmatched_entries_say_why():
    rows = compared()
    assert rows[4].status == "workload not run (data not downloaded)" and rows[4].group == ""
    assert compared(missing=lambda d: False)[4].status == "workload skipped"
    assert rows[5].status == "time mark not recorded"  # sgn cg 5 never reached 10 s
    without_cg5 = [r for r in HAND if r.get("param.cg_iters") != 5]
    assert compared(without_cg5)[5].status == "no trial with this configuration"
    gone = [{k: v for k, v in r.items() if k != "mark.5s.test_accuracy"} for r in HAND]
    assert compared(gone)[0].status == "time mark not recorded"  # no such column at all


def test_all_diverged_and_missing_baseline():
    rows = [{**r, "status": "diverged"} if r["optimizer"] == "sgd" else r for r in HAND]
    out = compared(rows)
    assert out[1].status == "all 3 trials diverged"
    assert out[1].mean is None and out[1].diverged == 3
    assert out[3].status == "baseline 'sgd' {lr: 0.1} not recorded"
    assert out[3].paper_ratio == pytest.approx(2.5) and out[3].hfbench_ratio is None


def test_one_row_per_backend_and_other_suites_ignored():
    jax = [{**r, "backend": "jax", "mark.5s.test_accuracy": 0.5} for r in HAND[:3]]
    rows = [r for r in compared(HAND + jax)
            if r.entry.metric == "test_accuracy" and r.entry.at == {"time_s": 5.0}]
    assert [(r.group, r.mean) for r in rows] == [("jax", pytest.approx(0.5)), ("torch", pytest.approx(0.92))]
    other = [{**r, "suite": "elsewhere"} for r in HAND]
    assert compared(other)[0].status == "workload skipped"


def test_table_cells_and_markdown():
    rows = compared()
    cells = table(rows)
    assert list(cells[0]) == list(COLUMNS)
    assert cells[0]["paper"] == "91.6 (percent: 0.916)"
    assert cells[0]["hfbench"] == "0.92 ± 0.02 (n=3)"
    assert cells[0]["difference"] == "+0.004 (+0.437%)"
    assert cells[0]["optimizer"] == "sgn (cg_iters=2)" and cells[0]["at"] == "5 s"
    assert cells[1]["hfbench"] == "0.33 ± 0.02828 (n=2), diverged 1"
    assert cells[4]["hfbench"] == "-" and cells[4]["difference"] == "-"
    text = markdown(rows)
    assert text.count("\n") == len(rows) + 1 and "workload not run (data not downloaded)" in text


def test_column_names_follow_the_trials_contract():
    assert column("test_accuracy", {"time_s": 25.0}) == "mark.25s.test_accuracy"
    assert column("epoch", {"time_s": 0.5}) == "mark.0.5s.epoch"
    assert column("test_loss", "final") == "final.test_loss"
    assert column("time_s", "final") == "train_time_s"
    assert column("epoch", "final") == "epochs"


def test_epoch_point_uses_trials_that_ran_that_many_epochs():
    text = edit("budget: {time_s: 10}", "budget: {epochs: 7}")
    text = edit("at: {time_s: 5}, value: 91.6", "at: {epoch: 7}, value: 91.6", text)
    text = edit("eval: {every: 5, time_marks: [5, 10]}", "eval: {every: 5}", text)
    text = text.replace("    - {workload: digits, optimizer: sgn, config: {cg_iters: 5}", "    # ")
    ran = [trial("digits", "sgn", s, epochs=e, final__test_accuracy=a)
           for s, (e, a) in enumerate([(7.0, 0.9), (7.0, 0.94), (3.5, 0.1)])]
    row = compared(ran, text)[0]
    assert row.status == "matched" and row.n == 2 and row.mean == pytest.approx(0.92)
    one_error(edit("at: {epoch: 7}", "at: {epoch: 8}", text), "epoch 8 lies past workload 'digits'")


def test_load_reference_carries_the_suite_context():
    ref = load_reference("wang2024")
    assert isinstance(ref, SuiteReference) and ref.datasets == {"mnist_mlp": "mnist"}
    rows = compare(ref, pd.DataFrame(), data_missing=lambda d: True)
    assert len(rows) == 15 and {r.status for r in rows} == {"workload not run (data not downloaded)"}


def test_paper_ratio_is_given_even_when_nothing_ran():
    rows = compare(load_reference("wang2024"), pd.DataFrame(), data_missing=lambda d: True)
    newton = next(r for r in rows if r.entry.optimizer == "newton" and r.entry.metric == "time_s")
    assert newton.paper_ratio == pytest.approx(21257 / 222) and newton.hfbench_ratio is None
    assert newton.baseline == "'sgd'" and newton.difference is None


def test_gargiani_epochs_are_ratios_to_sgd_0_1():
    ref = load_reference("gargiani2020")
    rows = compare(ref, pd.DataFrame(), data_missing=lambda d: d != "boston")
    by = {(r.entry.workload, r.entry.optimizer, tuple(r.entry.config.values()), r.entry.metric,
           r.entry.at["time_s"]): r for r in rows}
    assert by["mnist", "sgn", (10,), "epoch", 25].paper_ratio == pytest.approx(3 / 36)
    assert by["mnist", "sgd", (0.001,), "epoch", 100].paper_ratio == pytest.approx(145 / 144)
    assert by["cifar10_long", "sgn_cg10", (), "epoch", 2000].paper_ratio == pytest.approx(9 / 135)
    assert {r.status for r in rows} == {"workload not run (data not downloaded)"}


def test_report_tables_one_per_workload():
    ref = from_suite(loads(BASE, source="x.yaml"))
    made = tables(ref, trials_table(HAND), data_missing=lambda d: d == "mnist")
    assert [t.title for t in made] == ["t: digits, the paper's numbers", "t: mnist, the paper's numbers"]
    digits, mnist = made
    assert "hfbench ratio" in digits.headers and "hfbench ratio" not in mnist.headers
    assert "4 of 5 numbers matched" in digits.caption
    line = ("| Table 2 | sgn (cg_iters=2) | time_s | final | torch | 250 | 22 ± 2 (n=3) | "
            "-0.5 (-20%) | 2.5 | 2 | matched |")
    assert line in digits.to_markdown()
    (note,) = tables(load_reference("motokawa2020"), pd.DataFrame())
    assert "No tabulated numbers" in note.to_markdown()


def test_against_the_trials_table_of_real_records(tmp_path):
    """Records as the runner writes them, read by hfbench.results.trials."""
    import json

    results = pytest.importorskip("hfbench.results")
    if not hasattr(results, "trials"):
        pytest.skip("hfbench.results.trials is not here yet")
    from hfbench.suite import expand

    suite = loads(BASE, source="x.yaml")
    accuracy = {0: 0.90, 1: 0.92, 2: 0.94}
    for t in expand(suite, workload="digits", backend="torch"):
        final = {"step": 10, "epoch": 1.0, "time_s": 10.0, "train_loss": 0.2, "test_loss": 0.3,
                 "test_accuracy": 0.8}
        mark = {**final, "test_accuracy": accuracy[t.seed], "time_s": 5.1}
        rec = {"trial_id": t.id, "suite": t.suite, "status": "completed", "config": t.config(),
               "train_time_s": 10.0 * (2 if t.algorithm == "sgn" else 1), "iterations": 10,
               "epochs": 1.0, "final": final, "at_time_marks": {"5.0": mark, "10.0": None},
               "evals": [mark, final], "steps": []}
        (tmp_path / f"{t.id}.json").write_text(json.dumps(rec))
    rows = compare(from_suite(suite), results.trials(tmp_path), data_missing=lambda d: False)
    assert rows[0].status == "matched" and rows[0].mean == pytest.approx(0.92) and rows[0].n == 3
    assert rows[1].mean == pytest.approx(0.3) and rows[1].difference == pytest.approx(0.0)
    assert rows[3].hfbench_ratio == pytest.approx(2.0) and rows[3].paper_ratio == pytest.approx(2.5)
    assert rows[4].status == "workload skipped"
    assert rows[5].status == "time mark not recorded"


def test_failed_trials_are_counted_not_averaged():
    rows = [{**r, "status": "failed"} if r["optimizer"] == "sgn" and r.get("seed") == 1 else r
            for r in HAND]
    acc = compared(rows)[0]
    assert acc.status == "matched" and (acc.n, acc.failed) == (2, 1)
    assert acc.mean == pytest.approx(0.92)  # mean(0.90, 0.94)
    assert "failed 1" in table([acc])[0]["hfbench"]
    mixed = [{**r, "status": "failed" if r["seed"] == 0 else "diverged"}
             if r.get("param.lr") == 0.1 and r["suite"] == "t" else r for r in HAND]
    assert compared(mixed)[1].status == "all 3 trials diverged or failed (2 diverged, 1 failed)"
