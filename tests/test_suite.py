"""Suites: grid expansion, trial ids, filters, budget scaling, and the text of every
kind of validation error (file:line, key path, what is accepted, did-you-mean).

Every shipped suite must validate and expand. No framework is imported here.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from hfbench import algorithms
from hfbench.errors import HFBenchError
from hfbench.suite import SuiteError, dry_run_table, expand, load, loads, resolve, summary, trial_id

SUITES = Path(__file__).parents[1] / "suites"

# Line numbers matter: the error tests below name them.
BASE = """\
name: t
backends: [torch, jax]
seeds: [0, 1]
workloads:
  boston:
    dataset: boston
    model: {type: mlp, sizes: [13, 8, 1]}
    batch_size: 32
  digits:
    dataset: digits
    model: {type: mlp, sizes: [64, 8, 10], activation: tanh}
    batch_size: 64
    optimizers: [sgd, sgn]
optimizers:
  sgd: {algorithm: sgd, params: {lr: [0.01, 0.1, 1.0]}}
  sgn:
    algorithm: sgn
    params:
      cg_iters: [2, 5]
      damping: [1.0e-4, 1.0e-3]
      line_search: [true, false]
  hf: {algorithm: hf, params: {damping: 45.0}}
budget: {iterations: 10, time_s: 5}
targets: [{metric: train_loss, "<=": 1.0}]
eval: {every: 5, time_marks: [1, 2]}
"""


def suite(text: str = BASE, tmp_path: Path | None = None):
    return loads(text, source="x.yaml")


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def errors(text: str) -> list[str]:
    with pytest.raises(SuiteError) as info:
        loads(text, source="x.yaml")
    err = info.value
    assert isinstance(err, HFBenchError) and str(err) == "\n".join(err.lines)
    return err.lines


def one_error(text: str, *fragments: str) -> str:
    lines = errors(text)
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def choices_in(line: str) -> list[str]:
    return re.search(r"\(choices: ([^)]*)\)", line).group(1).split(", ")


# ----------------------------------------------------------------------------- expansion


def test_grid_expansion_counts():
    trials = expand(suite())
    # boston runs every optimizer: sgd 3 + sgn 2*2*2 + hf 1; digits only sgd and sgn: 3 + 8
    assert len(trials) == (12 + 11) * 2 * 2
    count = lambda w, o: sum(t.workload == w and t.optimizer == o for t in trials)  # noqa: E731
    assert (count("boston", "sgn"), count("boston", "hf"), count("digits", "hf")) == (32, 4, 0)
    assert {t.params["lr"] for t in trials if t.optimizer == "sgd"} == {0.01, 0.1, 1.0}
    assert "12 configs" not in summary(trials) and summary(trials).startswith("92 trials")


def test_zipped_axes_advance_together():
    text = edit("      line_search: [true, false]\n",
                "      line_search: [true, false]\n    zip: [[cg_iters, damping]]\n")
    trials = expand(suite(text), workload="boston", optimizer="sgn", backend="torch", seeds=1)
    pairs = sorted({(t.params["cg_iters"], t.params["damping"]) for t in trials})
    assert pairs == [(2, 1e-4), (5, 1e-3)]
    assert len(trials) == 4  # 2 zipped points x 2 line_search values


def test_zip_groups_are_checked():
    bad = edit("      line_search: [true, false]\n",
               "      line_search: [true, false]\n      ls_c1: 1.0e-4\n"
               "    zip: [[cg_iters, damping, line_search], [ls_c1, dampng]]\n")
    bad = edit("damping: [1.0e-4, 1.0e-3]", "damping: [1.0e-4, 1.0e-3, 1.0e-2]", bad)
    lines = errors(bad)
    assert any("x.yaml:23 optimizers.sgn.zip[0]: zipped lists must have the same length, got "
               "cg_iters: 2, damping: 3, line_search: 2" in l for l in lines), lines
    assert any("zip[1][0]: 'ls_c1' is not a list-valued param" in l for l in lines), lines
    assert any("zip[1][1]: 'dampng' is not in params; a zip group names params whose lists "
               "advance together; did you mean 'damping'?" in l for l in lines), lines


def test_ints_promote_to_floats_for_float_options():
    a = expand(suite(edit("lr: [0.01, 0.1, 1.0]", "lr: [1]")), optimizer="sgd")
    b = expand(suite(edit("lr: [0.01, 0.1, 1.0]", "lr: 1.0")), optimizer="sgd")
    assert [t.id for t in a] == [t.id for t in b] and a[0].params == {"lr": 1.0}


def test_yaml_exponent_without_dot_is_a_float():
    trials = expand(suite(edit("damping: [1.0e-4, 1.0e-3]", "damping: [1e-4, 1e-3]")), optimizer="sgn")
    assert {t.params["damping"] for t in trials} == {1e-4, 1e-3}


def test_trial_is_fully_resolved():
    t = next(t for t in expand(suite()) if t.workload == "boston" and t.optimizer == "hf")
    cfg = t.config()
    assert cfg["model"] == {"type": "mlp", "sizes": [13, 8, 1], "activation": "sigmoid"}
    assert (cfg["loss"], cfg["init"], cfg["curvature_batch_size"]) == ("squared_error", "dense", 32)
    assert cfg["options"] == {k: d.value for k, d in algorithms.defaults("hf").items()}
    assert cfg["budget"] == {"time_s": 5.0, "iterations": 10} and cfg["budget_scale"] == 1.0
    assert cfg["targets"] == [{"metric": "train_loss", "op": "<=", "value": 1.0, "stop": False}]
    assert cfg["eval"] == {"every": 5, "epoch_end": False, "time_marks": [1.0, 2.0]}
    assert "id" not in cfg
    cfg["model"]["sizes"].append(99)  # a copy: the trial does not change
    assert t.model["sizes"] == [13, 8, 1] and t.model_spec().num_params == 13 * 8 + 8 + 8 + 1
    digits = next(t for t in expand(suite()) if t.workload == "digits")
    assert digits.loss == "softmax_cross_entropy"
    algorithms.get(t.algorithm, **t.options)


def test_workload_overrides_replace_suite_values():
    text = edit("    optimizers: [sgd, sgn]\n", "    optimizers: [sgd, sgn]\n    budget: {epochs: 2}\n"
                "    targets: []\n    eval: {every: null, epoch_end: true}\n    device: auto\n")
    t = next(t for t in expand(suite(text)) if t.workload == "digits")
    assert (t.budget, t.targets, t.device) == ({"epochs": 2.0}, [], "auto")
    assert t.eval == {"every": None, "epoch_end": True, "time_marks": []}


# ----------------------------------------------------------------------------- ids


def test_trial_ids_stable_distinct_and_hash_the_config():
    first, again = expand(suite()), expand(suite())
    assert [t.id for t in first] == [t.id for t in again]
    assert len({t.id for t in first}) == len(first)
    t = first[0]
    canonical = json.dumps(t.config(), sort_keys=True, separators=(",", ":"))
    assert t.id == hashlib.sha256(canonical.encode()).hexdigest()[:16] == trial_id(t.config())
    assert re.fullmatch(r"[0-9a-f]{16}", t.id)


def test_trial_ids_change_with_any_setting_and_only_there():
    before = {(t.workload, t.optimizer, str(t.params), t.backend, t.seed): t.id for t in expand(suite())}
    after = {(t.workload, t.optimizer, str(t.params), t.backend, t.seed): t.id
             for t in expand(suite(edit("batch_size: 32", "batch_size: 33")))}
    changed = {k[0] for k in before if before[k] != after[k]}
    assert changed == {"boston"}


# ----------------------------------------------------------------------------- filters


def test_filters_narrow_the_expansion():
    s = suite()
    trials = expand(s, workload="digits", optimizer=["sgd"], backend="jax", seeds=1, device="cuda")
    assert len(trials) == 3
    assert {(t.workload, t.optimizer, t.backend, t.seed, t.device) for t in trials} == {
        ("digits", "sgd", "jax", 0, "cuda")}
    assert {t.seed for t in expand(s, seeds=[1])} == {1}
    assert len(expand(s, seeds=[1])) == len(expand(s)) // 2


@pytest.mark.parametrize("kwargs, fragments", [
    ({"workload": "digts"}, ["unknown workload 'digts'; did you mean 'digits'?", "(choices: boston, digits)"]),
    ({"optimizer": ["sgd", "sng"]}, ["unknown optimizer 'sng'; did you mean 'sgn'?", "(choices: hf, sgd, sgn)"]),
    ({"backend": "jaxx"}, ["unknown backend 'jaxx'; did you mean 'jax'?"]),
    ({"seeds": 3}, ["--seeds 3 asks for the first 3 seeds, but the suite has 2"]),
    ({"seeds": [1, 7]}, ["seed 7 is not in the suite; its seeds: 0, 1"]),
    ({"device": "gpux"}, ["--device: unknown device 'gpux'; did you mean 'cuda' or 'cuda:N'? "
                          "(choices: auto, cpu, cuda, cuda:N, gpu, gpu:N)"]),
    ({"budget_scale": 0}, ["budget scale must be a finite number > 0, got 0"]),
    ({"workload": "digits", "optimizer": "hf"}, ["the filters select no trials", "digits: sgd, sgn"]),
])
def test_filter_errors(kwargs, fragments):
    with pytest.raises(HFBenchError) as info:
        expand(suite(), **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_budget_scale_multiplies_budgets_and_marks_and_changes_ids():
    full, half = expand(suite()), expand(suite(), budget_scale=0.5)
    assert half[0].budget == {"time_s": 2.5, "iterations": 5} and half[0].budget_scale == 0.5
    assert half[0].eval["time_marks"] == [0.5, 1.0]
    assert not {t.id for t in full} & {t.id for t in half}
    tiny = expand(suite(), budget_scale=0.01)[0]
    assert tiny.budget == {"time_s": 0.05, "iterations": 1}  # iterations round up, stay >= 1
    assert expand(suite(), budget_scale=0.1)[0].budget["time_s"] == 0.5  # no 0.5000000000000001


def test_dry_run_table_lists_every_trial_and_the_count():
    trials = expand(suite(), workload="digits")
    table = dry_run_table(trials)
    assert all(t.id in table for t in trials)
    assert table.splitlines()[0].split()[:4] == ["#", "id", "workload", "optimizer"]
    assert table.splitlines()[-1] == "44 trials (1 workload, 11 optimizer configs, 2 backends, 2 seeds)"
    assert "cg_iters=2 damping=0.0001 line_search=True" in table


# ----------------------------------------------------------------------------- errors


def test_unknown_top_level_key():
    line = one_error(BASE + "devcie: cpu\n", "x.yaml:26 devcie: unknown key 'devcie'; did you mean 'device'?")
    assert {"backends", "budget", "device", "workloads", "optimizers"} <= set(choices_in(line))


def test_unknown_nested_key_names_its_own_choices():
    line = one_error(edit("batch_size: 32", "batch_size: 32\n    batchsize: 3"),
                     "x.yaml:9 workloads.boston.batchsize: unknown key 'batchsize'; did you mean 'batch_size'?")
    assert "curvature_batch_size" in choices_in(line) and "backends" not in choices_in(line)


def test_unknown_algorithm():
    line = one_error(edit("{algorithm: hf,", "{algorithm: hff,"),
                     "x.yaml:22 optimizers.hf.algorithm: unknown algorithm 'hff'; did you mean 'hf'?")
    assert choices_in(line) == sorted(algorithms.ALGORITHMS)


def test_unknown_algorithm_option():
    line = one_error(edit("params: {damping: 45.0}", "params: {dampin: 45.0}"),
                     "x.yaml:22 optimizers.hf.params.dampin: unknown hf option 'dampin'; "
                     "did you mean 'damping'?")
    assert set(choices_in(line)) == set(algorithms.defaults("hf"))


def test_out_of_range_option():
    one_error(edit("params: {damping: 45.0}", "params: {damping: -1.0}"),
              "x.yaml:22 optimizers.hf.params.damping: damping (the initial lambda) must be a number "
              ">= 0, got -1.0")


def test_out_of_range_value_inside_a_grid_points_at_its_line():
    text = edit("      damping: [1.0e-4, 1.0e-3]", "      damping:\n        - 1.0e-4\n        - -2.0")
    one_error(text, "x.yaml:22 optimizers.sgn.params.damping[1]:", "must be a number >= 0, got -2.0")


def test_unknown_choice_of_an_option():
    one_error(edit("line_search: [true, false]", "damping_rule: levenberg"),
              "x.yaml:21 optimizers.sgn.params.damping_rule: sgn: unknown damping_rule 'levenberg'",
              "(choices: cosine, fixed, linear, trust_region)")


def test_wrong_type_of_an_option():
    one_error(edit("lr: [0.01, 0.1, 1.0]", 'lr: "0.1"'),
              "x.yaml:15 optimizers.sgd.params.lr: expected a number (the default is 0.1), got '0.1'")


def test_unknown_dataset():
    line = one_error(edit("dataset: boston", "dataset: bostn"),
                     "x.yaml:6 workloads.boston.dataset: unknown dataset 'bostn'; did you mean 'boston'?")
    assert {"boston", "mnist5k", "digits", "sine", "curves", "mnist", "fashion_mnist", "cifar10",
            "olivetti_faces"} == set(choices_in(line))


def test_unknown_model_type():
    line = one_error(edit("{type: mlp, sizes: [13, 8, 1]}", "{type: mpl, sizes: [13, 8, 1]}"),
                     "x.yaml:7 workloads.boston.model.type: unknown model type 'mpl'; did you mean 'mlp'?")
    assert set(choices_in(line)) == {"mlp", "autoencoder", "gargiani_fashion_cnn",
                                     "gargiani_cifar_cnn", "lenet"}


def test_wrong_model_output_size_for_the_dataset():
    one_error(edit("sizes: [64, 8, 10]", "sizes: [64, 8, 3]"),
              "x.yaml:11 workloads.digits.model.sizes[2]: output width 3 does not match dataset "
              "'digits', which has 10 classes; set the last size to 10")


def test_wrong_model_input_size_for_the_dataset():
    one_error(edit("sizes: [13, 8, 1]", "sizes: [12, 8, 1]"),
              "x.yaml:7 workloads.boston.model.sizes[0]: input width 12 does not match dataset "
              "'boston', whose examples have 13 values (13); set it to 13")


def test_conv_net_on_the_wrong_images():
    one_error(edit("model: {type: mlp, sizes: [64, 8, 10], activation: tanh}", "model: {type: lenet}"),
              "x.yaml:11 workloads.digits.model.type: lenet takes 1x28x28 images, but dataset "
              "'digits' has 1x8x8 examples")


def test_loss_that_does_not_fit_the_data():
    one_error(edit("batch_size: 64", "batch_size: 64\n    loss: squared_error"),
              "x.yaml:13 workloads.digits.loss: dataset 'digits' has class labels, which need loss "
              "'softmax_cross_entropy', got 'squared_error'")


def test_negative_budget():
    one_error(edit("budget: {iterations: 10, time_s: 5}", "budget: {iterations: 10, time_s: -5}"),
              "x.yaml:23 budget.time_s: must be > 0.0, got -5")


def test_missing_and_empty_budget():
    lines = errors(edit("budget: {iterations: 10, time_s: 5}\n", ""))
    assert lines[0].startswith("x.yaml:5 workloads.boston: no budget: add `budget: {...}`"), lines
    assert len(lines) == 2 and lines[1].startswith("x.yaml:9 workloads.digits: no budget")
    one_error(edit("budget: {iterations: 10, time_s: 5}", "budget: {}"),
              "x.yaml:23 budget: an empty budget never ends; give at least one of time_s, epochs")


def test_time_marks_past_the_time_budget():
    one_error(edit("time_marks: [1, 2]", "time_marks: [1, 2, 30]"),
              "x.yaml:25 eval.time_marks: time marks [30.0] s lie past the time budget (5.0 s)")


def test_unknown_target_metric():
    line = one_error(edit('metric: train_loss', 'metric: train_los'),
                     "x.yaml:24 targets[0].metric: unknown metric 'train_los'; did you mean 'train_loss'?")
    assert "test_accuracy" in choices_in(line)


def test_target_metric_that_does_not_apply():
    one_error(edit('metric: train_loss, "<=": 1.0', 'metric: test_accuracy, ">=": 0.9'),
              "x.yaml:24 targets[0].metric: metric 'test_accuracy' does not apply to workload "
              "'boston' (dataset 'boston', model 'mlp'); its metrics: train_loss, test_loss")


def test_unknown_optimizer_in_a_workload_allowlist():
    one_error(edit("optimizers: [sgd, sgn]", "optimizers: [sgd, sgnn]"),
              "x.yaml:13 workloads.digits.optimizers[1]: unknown optimizer 'sgnn'; did you mean 'sgn'? "
              "(choices: hf, sgd, sgn)")


def test_missing_required_key_and_strict_types():
    one_error(edit("    batch_size: 32\n", ""), "x.yaml:5 workloads.boston: missing required key 'batch_size'")
    one_error(edit("batch_size: 32", 'batch_size: "32"'),
              "x.yaml:8 workloads.boston.batch_size: expected an integer >= 1 or 'full'")
    one_error(edit("seeds: [0, 1]", "seeds: [0, 0.5]"), "x.yaml:3 seeds[1]: expected an integer, got 0.5")


def test_dense_newton_too_large_for_its_memory_limit():
    text = edit("  hf: {algorithm: hf, params: {damping: 45.0}}",
                "  hf: {algorithm: hf, params: {damping: 45.0}}\n"
                "  nt: {algorithm: newton, params: {memory_limit_gb: 1.0e-6}}")
    one_error(text, "x.yaml:7 workloads.boston.model: optimizer 'nt' (newton) needs a dense 121 x 121 "
              "float64 matrix", "over its memory_limit_gb=1e-06")


def test_duplicate_key():
    one_error(edit("seeds: [0, 1]", "seeds: [0, 1]\nseeds: [2]"),
              "x.yaml:4 seeds: duplicate key 'seeds' (first given on line 3)")


def test_malformed_yaml_names_the_parser_line():
    lines = errors(edit("model: {type: mlp, sizes: [13, 8, 1]}", "model: {type: mlp, sizes: [13, 8, 1]"))
    assert len(lines) == 1 and re.match(r"x\.yaml:8 malformed YAML: .*expected ',' or '}'", lines[0]), lines


def test_not_a_mapping():
    one_error("", "x.yaml:1 expected a mapping of suite keys", "got an empty file")
    one_error("- 1\n", "got a list")


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SuiteError) as info:
        load(missing)
    assert str(info.value).startswith(f"{missing}: no such suite file")
    assert "quickstart" in str(info.value)  # names the shipped suites


def test_every_error_in_a_file_is_reported_at_once():
    text = edit("dataset: boston", "dataset: bostn")
    text = edit("params: {damping: 45.0}", "params: {damping: -1.0, cg_iters: 3}", text)
    text = edit("sizes: [64, 8, 10]", "sizes: [64, 8, 3]", text)
    text += "devcie: cpu\n"
    lines = errors(text)
    assert [l.split(" ", 1)[0] for l in lines] == ["x.yaml:6", "x.yaml:11", "x.yaml:22", "x.yaml:22", "x.yaml:26"]
    assert "damping: damping (the initial lambda) must be" in lines[2]
    assert "params.cg_iters: unknown hf option 'cg_iters'; did you mean 'cg_max_iters'?" in lines[3]


def test_error_messages_carry_the_source_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(edit("dataset: boston", "dataset: bostn"))
    with pytest.raises(SuiteError, match=re.escape(f"{path}:6 workloads.boston.dataset")):
        load(path)


# ----------------------------------------------------------------------------- shipped suites


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_suite_validates_and_expands(path):
    s = load(path)
    trials = expand(s)
    assert trials and len({t.id for t in trials}) == len(trials)
    assert s.name == path.stem
    for t in {(t.algorithm, str(t.options)): t for t in trials}.values():
        algorithms.get(t.algorithm, **t.options)
    for t in {(t.workload): t for t in trials}.values():
        t.model_spec()


def test_the_shipped_suites_are_there():
    assert {p.stem for p in SUITES.glob("*.yaml")} >= {
        "quickstart", "smoke", "martens2010", "gargiani2020", "motokawa2020", "wang2024"}
    assert resolve("quickstart").resolve() == (SUITES / "quickstart.yaml").resolve()


def test_smoke_covers_every_algorithm_on_both_backends():
    trials = expand(load(SUITES / "smoke.yaml"))
    assert {t.algorithm for t in trials} == set(algorithms.ALGORITHMS)
    assert {t.backend for t in trials} == {"torch", "jax"}
    assert all(t.budget["iterations"] <= 5 for t in trials)


def test_quickstart_is_small_and_offline():
    trials = expand(load(SUITES / "quickstart.yaml"))
    assert {t.algorithm for t in trials} == {"hf", "sgn", "sgd"}
    assert {t.dataset for t in trials} == {"boston", "mnist5k"}
    assert sum(t.budget["time_s"] for t in trials) <= 120  # leaves room for compile and eval


def test_readme_example_validates():
    text = re.findall(r"```yaml\n(.*?)```", (SUITES / "README.md").read_text(), flags=re.S)[0]
    assert len(expand(loads(text, "README"))) > 0


# ----------------------------------------------------------------------------- dataset table


TARGETS_OF_TASK = {"classification": "labels", "regression": "values", "reconstruction": "inputs"}


def test_suite_dataset_table_agrees_with_the_data_layer():
    """hfbench.suite.datasets reads shapes and targets for checking suites before any
    data is loaded from hfbench.data, the registry: the same datasets, the same tasks
    and the same image shapes."""
    from hfbench.data import DATASETS
    from hfbench.suite import datasets as suite_datasets

    assert set(suite_datasets.known()) == set(DATASETS)
    for name, data_info in DATASETS.items():
        known = suite_datasets.info(name)
        assert known.targets == TARGETS_OF_TASK[data_info.task], name
        if data_info.image_shape is not None:
            assert known.shape == data_info.image_shape, name


@pytest.mark.parametrize("name", ["boston", "mnist5k", "digits", "sine", "curves"])
def test_suite_dataset_table_agrees_with_loaded_data(name):
    """The shapes a suite is checked against are the shapes load() gives."""
    from hfbench.data import load
    from hfbench.suite import datasets as suite_datasets

    try:
        data = load(name, seed=0)
    except ImportError as exc:
        pytest.skip(f"{name} needs an optional package: {exc}; pip install 'hfbench[data]'")
    known = suite_datasets.info(name)
    assert data.input_size == known.input_size, name
    if known.outputs is not None:
        assert data.output_size == known.outputs, name
