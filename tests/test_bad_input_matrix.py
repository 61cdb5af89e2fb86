"""The bad-input matrix: every kind of mistake in a suite file or on the command line,
each with the message a user needs.

Each case is a small suite (BASE with one edit) written to a file, loaded with
`hfbench.suite.load` (and expanded, for the command-line filters), and checked for an
`HFBenchError` (exit 2 at the CLI) with one line that names the file, the line and the
key path, and says what would be accepted. A handful run end to end through
`python -m hfbench.cli` to check the exit code, the text and that no traceback shows.
tests/test_suite.py holds the detailed checks of single messages (the full choice
lists, several errors at once); this file is the breadth.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from hfbench.errors import HFBenchError
from hfbench.suite import SuiteError, expand, load

# Line numbers matter: the cases name them.
BASE = """\
name: m
backends: [torch]
seeds: [0]
workloads:
  digits:
    dataset: digits
    model: {type: mlp, sizes: [64, 8, 10]}
    batch_size: 64
    optimizers: [sgd]
  boston:
    dataset: boston
    model: {type: mlp, sizes: [13, 8, 1]}
    batch_size: 32
optimizers:
  sgd: {algorithm: sgd, params: {lr: 0.1}}
  hf:
    algorithm: hf
    params: {cg_max_iters: 5}
budget: {iterations: 2}
"""


class Case(NamedTuple):
    id: str
    text: str
    line: int  # the line the message names
    key: str | None  # the key path it names (None: the file as a whole, e.g. YAML syntax)
    accepts: tuple[str, ...]  # what would be accepted, the did-you-mean, the fix


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def case(id, text, line, key, *accepts) -> Case:
    return Case(id, text, line, key, accepts)


DEEP = "name: " + "[" * 200 + "]" * 200 + "\n"
BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['1'] * 9)}]\n"
               for p, c in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg"))
KIND_HIDEN = edit("{type: mlp, sizes: [64, 8, 10]}", "{kind: mlp, hiden: [64, 8, 10]}")
ALGO_LRR = edit("sgd: {algorithm: sgd, params: {lr: 0.1}}", "sgd: {kind: sgd, params: {lrr: 0.1}}")

SUITE_CASES = [
    # --- YAML syntax
    case("yaml-unclosed-mapping", edit("[64, 8, 10]}", "[64, 8, 10]"), 8, None,
         "malformed YAML", "close the mapping with }"),
    case("yaml-unclosed-list", edit("backends: [torch]", "backends: [torch"), 3, None,
         "malformed YAML", "close the list with ]"),
    case("yaml-tab-indent", edit("    batch_size: 32", "\tbatch_size: 32"), 13, None,
         "malformed YAML", "indent with spaces, not tabs"),
    case("yaml-unclosed-quote", edit("name: m", "name: 'm"), 20, None,
         "begun on line 1", "close the quote"),
    case("yaml-colon-in-value", edit("name: m", "name: m: n"), 1, None,
         "mapping values are not allowed", "quote a value that holds ': '"),
    case("yaml-bad-indent", edit("    batch_size: 32", "      batch_size: 32"), 13, None,
         "malformed YAML", "same indentation"),
    case("yaml-second-document", BASE + "---\nname: n\n", 20, None,
         "one document per file"),
    case("yaml-python-tag", edit("name: m", "name: !!python/name:os.system m"), 1, None,
         "drop the !tag"),
    case("yaml-tag-misfit", edit("lr: 0.1", "lr: !!float fast"), 15, None,
         "does not fit its tag", "drop the !!tag or fix the value"),
    case("yaml-undefined-alias", edit("name: m", "name: *who"), 1, None,
         "define the anchor (&name) before its alias"),
    case("yaml-empty-file", "", 1, None, "expected a mapping of suite keys", "got an empty file"),
    case("yaml-list-file", "- name: m\n", 1, None, "expected a mapping of suite keys", "got a list"),
    case("yaml-too-deep", DEEP, 1, None, "nests more than 64 levels"),
    case("yaml-alias-bomb", BOMB, 6, None, "expands (through its aliases) to more than 100,000"),
    # --- unknown keys: the closest valid key
    case("unknown-top-key", BASE + "devcie: cpu\n", 20, "devcie", "did you mean 'device'?",
         "choices: backend_options, backends"),
    case("unknown-workload-key", edit("    batch_size: 32", "    batchsize: 32"), 13,
         "workloads.boston.batchsize", "did you mean 'batch_size'?", "curvature_batch_size"),
    case("unknown-model-key", edit("sizes: [13, 8, 1]", "sizes: [13, 8, 1], activaton: tanh"), 12,
         "workloads.boston.model.activaton", "did you mean 'activation'?"),
    case("unknown-model-key-by-meaning", edit("sizes: [13, 8, 1]", "hidden: [13, 8, 1]"), 12,
         "workloads.boston.model.hidden", "did you mean 'sizes'?"),
    case("no-discriminator-missing-type", KIND_HIDEN, 7, "workloads.digits.model",
         "missing required key 'type'", "mlp", "autoencoder", "lenet"),
    case("no-discriminator-kind-is-type", KIND_HIDEN, 7, "workloads.digits.model.kind",
         "unknown key 'kind'; did you mean 'type'?", "sizes"),
    case("no-discriminator-hiden-is-sizes", KIND_HIDEN, 7, "workloads.digits.model.hiden",
         "unknown key 'hiden'; did you mean 'sizes'?", "activation"),
    case("no-discriminator-not-a-mapping", edit("{type: mlp, sizes: [13, 8, 1]}", "mlp"), 12,
         "workloads.boston.model", "expected a mapping with a 'type' key",
         "autoencoder, gargiani_cifar_cnn, gargiani_fashion_cnn, lenet, mlp"),
    case("optimizer-kind-is-algorithm", ALGO_LRR, 15, "optimizers.sgd.kind",
         "did you mean 'algorithm'?", "algorithm, params, zip"),
    case("optimizer-missing-algorithm", ALGO_LRR, 15, "optimizers.sgd",
         "missing required key 'algorithm'"),
    case("optimizer-param-no-algorithm-takes", ALGO_LRR, 15, "optimizers.sgd.params.lrr",
         "no algorithm takes it", "did you mean 'lr'?"),
    case("unknown-algorithm-option", edit("{lr: 0.1}", "{lrr: 0.1}"), 15, "optimizers.sgd.params.lrr",
         "unknown sgd option 'lrr'; did you mean 'lr'?", "momentum"),
    case("unknown-budget-key", edit("{iterations: 2}", "{iteration: 2}"), 19, "budget.iteration",
         "did you mean 'iterations'?", "time_s", "epochs", "grad_passes"),
    case("unknown-eval-key", BASE + "eval: {evry: 5}\n", 20, "eval.evry",
         "did you mean 'every'?", "time_marks"),
    # --- wrong types
    case("type-batch-size-string", edit("batch_size: 32", 'batch_size: "32"'), 13,
         "workloads.boston.batch_size", "expected an integer >= 1 or 'full'"),
    case("type-sizes-scalar", edit("sizes: [13, 8, 1]", "sizes: 13"), 12,
         "workloads.boston.model.sizes", "expected a list"),
    case("type-seeds-word", edit("seeds: [0]", "seeds: zero"), 3, "seeds",
         "expected a seed count N (for seeds 0..N-1) or a list of seeds"),
    case("type-bool", BASE + "tf32: 1\n", 20, "tf32", "expected true or false"),
    case("type-option", edit("lr: 0.1", "lr: fast"), 15, "optimizers.sgd.params.lr",
         "expected a number (the default is"),
    case("type-date-name", edit("name: m", "name: 2024-01-01"), 1, "name",
         "expected a string", "put it in quotes"),
    case("type-number-key", edit("  hf:\n", "  5:\n"), 16, "optimizers.5",
         "reads as a number", "quote it: '5'"),
    case("type-bool-key", edit("  boston:\n", "  on:\n"), 10, "workloads.on",
         "reads as true/false", "quote it: 'on'"),
    case("type-model-type-list", edit("{type: mlp, sizes: [13, 8, 1]}", "{type: [mlp]}"), 12,
         "workloads.boston.model.type", "expected a string"),
    # --- budgets and batch sizes
    case("budget-zero-iterations", edit("{iterations: 2}", "{iterations: 0}"), 19,
         "budget.iterations", "must be >= 1"),
    case("budget-negative-time", edit("{iterations: 2}", "{time_s: -5}"), 19, "budget.time_s",
         "must be > 0"),
    case("budget-zero-epochs", edit("{iterations: 2}", "{epochs: 0}"), 19, "budget.epochs",
         "must be > 0"),
    case("budget-negative-grad-passes", edit("{iterations: 2}", "{grad_passes: -1}"), 19,
         "budget.grad_passes", "must be > 0"),
    case("budget-empty", edit("{iterations: 2}", "{}"), 19, "budget",
         "give at least one of time_s, epochs, iterations, grad_passes"),
    case("budget-missing", edit("budget: {iterations: 2}\n", ""), 5, "workloads.digits",
         "no budget", "add `budget:"),
    case("budget-infinite", edit("{iterations: 2}", "{time_s: .inf}"), 19, "budget.time_s",
         "expected a finite number"),
    case("batch-zero", edit("batch_size: 32", "batch_size: 0"), 13, "workloads.boston.batch_size",
         "expected an integer >= 1 or 'full'"),
    case("batch-negative", edit("batch_size: 64", "batch_size: -64"), 8,
         "workloads.digits.batch_size", "expected an integer >= 1 or 'full'"),
    case("batch-over-dataset", edit("batch_size: 32", "batch_size: 500"), 13,
         "workloads.boston.batch_size", "exceeds the 404 training examples", "use at most 404",
         "'full'"),
    case("curvature-batch-over-batch", edit("batch_size: 32", "batch_size: 32\n    "
                                            "curvature_batch_size: 64"), 14,
         "workloads.boston.curvature_batch_size", "exceeds batch_size 32", "use at most 32"),
    case("eval-every-zero", BASE + "eval: {every: 0}\n", 20, "eval.every", "must be >= 1"),
    case("seed-count-huge", edit("seeds: [0]", "seeds: 100000000"), 3, "seeds",
         "a seed count must be 1 to 1,000"),
    # --- empty grids and lists
    case("grid-empty-list", edit("{lr: 0.1}", "{lr: []}"), 15, "optimizers.sgd.params.lr",
         "an empty list sweeps nothing", "give a value or a non-empty list"),
    case("grid-too-large", edit("{cg_max_iters: 5}", "{" + ", ".join(
        f"{k}: [{', '.join(str(v) for v in vals)}]" for k, vals in (
            ("cg_max_iters", range(1, 30)), ("damping", [0.1 * i for i in range(1, 30)]),
            ("cg_k_min", range(1, 30)))) + "}"), 18, "optimizers.hf.params",
         "the grid has 24,389 points", "over the 10,000", "zip lists"),
    case("grid-zip-of-one", edit("{lr: 0.1}", "{lr: [0.1, 1.0]}, zip: [[lr]]"), 15,
         "optimizers.sgd.zip[0]", "a zip group needs at least two params"),
    case("empty-workloads", edit(BASE[BASE.index("workloads:"):BASE.index("optimizers:\n")],
                                 "workloads: {}\n"), 4, "workloads", "needs at least 1 entry"),
    case("empty-optimizers", edit(BASE[BASE.index("optimizers:\n"):BASE.index("budget:")],
                                  "optimizers: {}\n"), 14, "optimizers", "needs at least 1 entry"),
    case("empty-backends", edit("[torch]", "[]"), 2, "backends", "needs at least 1 entry"),
    case("empty-seeds", edit("seeds: [0]", "seeds: []"), 3, "seeds", "needs at least 1 entry"),
    case("empty-allowlist", edit("optimizers: [sgd]", "optimizers: []"), 9,
         "workloads.digits.optimizers", "an empty list runs nothing", "sgd, hf",
         "leave the key out"),
    # --- duplicates (YAML keeps the last silently; the loader refuses)
    case("duplicate-workload", edit("  boston:\n", "  digits:\n"), 10, "workloads.digits",
         "duplicate key 'digits' (first given on line 5)", "give each key once"),
    case("duplicate-optimizer", edit("  hf:\n", "  sgd:\n"), 16, "optimizers.sgd",
         "duplicate key 'sgd' (first given on line 15)"),
    case("duplicate-flow-key", edit("{lr: 0.1}", "{lr: 0.1, lr: 0.2}"), 15,
         "optimizers.sgd.params.lr", "duplicate key 'lr'"),
    case("duplicate-top-key", BASE + "seeds: [1]\n", 20, "seeds",
         "duplicate key 'seeds' (first given on line 3)"),
    case("duplicate-in-allowlist", edit("optimizers: [sgd]", "optimizers: [sgd, sgd]"), 9,
         "workloads.digits.optimizers", "optimizer listed twice: sgd"),
    case("duplicate-backend", edit("[torch]", "[torch, torch]"), 2, "backends",
         "backend listed twice: torch"),
    # --- unknown names
    case("unknown-dataset", edit("dataset: boston", "dataset: bostn"), 11,
         "workloads.boston.dataset", "did you mean 'boston'?", "digits", "mnist"),
    case("unknown-model-type", edit("{type: mlp, sizes: [13, 8, 1]}", "{type: mpl, sizes: [13, 8, 1]}"),
         12, "workloads.boston.model.type", "did you mean 'mlp'?", "autoencoder"),
    case("unknown-loss", edit("batch_size: 32", "batch_size: 32\n    loss: squared_eror"), 14,
         "workloads.boston.loss", "did you mean 'squared_error'?", "softmax_cross_entropy"),
    case("unknown-activation", edit("sizes: [13, 8, 1]", "sizes: [13, 8, 1], activation: relux"),
         12, "workloads.boston.model.activation", "did you mean 'relu'?", "tanh"),
    case("unknown-algorithm", edit("algorithm: hf", "algorithm: hff"), 17,
         "optimizers.hf.algorithm", "did you mean 'hf'?", "sgn"),
    case("unknown-backend", edit("[torch]", "[troch]"), 2, "backends[0]",
         "did you mean 'torch'?", "jax"),
    case("unknown-backend-option", BASE + "backend_options: {torch: {compiel: true}}\n", 20,
         "backend_options.torch.compiel", "did you mean 'compile'?", "accepted here:"),
    case("unknown-backend-in-options", BASE + "backend_options: {pytorch: {compile: true}}\n", 20,
         "backend_options.pytorch", "did you mean 'torch'?", "backend_options: {torch:"),
    case("reserved-backend-option", BASE + "backend_options: {torch: {device: cuda}}\n", 20,
         "backend_options.torch.device", "set it with the suite's `device:` key"),
    case("unknown-metric", BASE + "targets: [{metric: test_acc, '>=': 0.9}]\n", 20,
         "targets[0].metric", "did you mean 'test_accuracy'?"),
    case("unknown-device", edit("seeds: [0]", "seeds: [0]\ndevice: tpu"), 4, "device",
         "unknown device 'tpu'", "cpu", "cuda", "auto"),
    case("unknown-dtype", BASE + "dtype: float16\n", 20, "dtype", "float32", "float64"),
    case("unknown-allowlist-optimizer", edit("optimizers: [sgd]", "optimizers: [sdg]"), 9,
         "workloads.digits.optimizers[0]", "did you mean 'sgd'?", "choices: hf, sgd"),
    case("model-does-not-fit-data", edit("sizes: [13, 8, 1]", "sizes: [12, 8, 1]"), 12,
         "workloads.boston.model.sizes[0]", "input width 12", "set it to 13"),
]


@pytest.mark.parametrize("c", SUITE_CASES, ids=[c.id for c in SUITE_CASES])
def test_suite_file_errors(c: Case, tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(c.text, encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        expand(load(path))  # expand too: an error it alone found would be a load-time gap
    assert isinstance(info.value, HFBenchError)  # exit 2 at the CLI
    assert_names(info.value.lines, f"{path}:{c.line} " + (f"{c.key}: " if c.key else ""), c.accepts)


def assert_names(lines: list[str], prefix: str, accepts: tuple[str, ...]) -> str:
    """One line starts with `file:line key:` and holds every accepted fragment."""
    mine = [ln for ln in lines if ln.startswith(prefix)]
    assert mine, f"no line starts with {prefix!r}:\n" + "\n".join(lines)
    for line in mine:
        if all(a in line for a in accepts):
            return line
    raise AssertionError(f"no line at {prefix!r} holds all of {accepts}:\n" + "\n".join(mine))


# ----------------------------------------------------------------------------- filters


class FilterCase(NamedTuple):
    id: str
    kwargs: dict
    accepts: tuple[str, ...]
    of_suite: bool = True  # about the suite's names (the message names its file), not a value


FILTER_CASES = [
    FilterCase("workload-and-optimizer-select-nothing", {"workload": "digits", "optimizer": "hf"},
               ("the filters select no trials", "digits: sgd ({path}:9 workloads.digits.optimizers)")),
    FilterCase("unknown-workload", {"workload": "digts"}, ("did you mean 'digits'?", "boston")),
    FilterCase("unknown-optimizer", {"optimizer": ["sgd", "hff"]}, ("did you mean 'hf'?",)),
    FilterCase("unknown-backend", {"backend": "troch"}, ("did you mean 'torch'?", "choices: torch")),
    FilterCase("seeds-over-the-suite", {"seeds": 3}, (
        "--seeds 3", "the suite has 1 seed (0)", "give --seeds 1",
        "list them in the suite's `seeds:` key ({path}:3)", "`seeds: 3` means seeds 0 to 2")),
    FilterCase("seeds-zero", {"seeds": 0}, ("--seeds 0", "at least 1")),
    FilterCase("seed-not-in-suite", {"seeds": [4]}, ("seed 4 is not in the suite", "its seeds: 0")),
    FilterCase("unknown-device", {"device": "gpux"}, ("--device: unknown device 'gpux'", "cuda",
                                                      "cpu", "auto"), of_suite=False),
    FilterCase("budget-scale-zero", {"budget_scale": 0}, ("budget scale must be a finite number > 0",),
               of_suite=False),
]


@pytest.mark.parametrize("c", FILTER_CASES, ids=[c.id for c in FILTER_CASES])
def test_filter_errors(c: FilterCase, tmp_path: Path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE, encoding="utf-8")
    suite = load(path)
    with pytest.raises(HFBenchError) as info:
        expand(suite, **c.kwargs)
    msg = str(info.value)
    assert msg.startswith(f"suite 'm' ({path})") or not c.of_suite, msg  # names the file
    for fragment in c.accepts:
        assert fragment.format(path=path) in msg, f"{fragment!r} not in {msg!r}"


# ----------------------------------------------------------------------------- datasets


def _described_train_sizes() -> dict[str, int]:
    """'60,000 / 10,000' or '404 train / 102 test' in the data registry's descriptions."""
    from hfbench.data import DATASETS

    out = {}
    for name, info in DATASETS.items():
        m = re.search(r"([\d,]+)(?: train)? / [\d,]+", info.description)
        if m:
            out[name] = int(m.group(1).replace(",", ""))
    return out


def test_train_sizes_match_the_registry_descriptions():
    """The sizes a batch is checked against at load time, against the registry's own
    descriptions (an independent, human-written source)."""
    from hfbench.suite import datasets

    described = _described_train_sizes()
    assert len(described) >= 7, described  # the parse found the numbers
    for name, n in described.items():
        assert datasets.info(name).n_train == n, name


@pytest.mark.parametrize("name", ["boston", "digits", "sine"])
def test_train_sizes_match_loaded_data(name):
    """... and against the data itself (the offline datasets that load in milliseconds;
    digits has no number in its description)."""
    from hfbench.data import load as load_data
    from hfbench.suite import datasets

    try:
        ds = load_data(name, seed=0)
    except ImportError as exc:
        pytest.skip(f"{name} needs an optional package: {exc}; pip install 'hfbench[data]'")
    assert datasets.info(name).n_train == len(ds.X_train)


# ----------------------------------------------------------------------------- end to end


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hfbench.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def clean_failure(proc, *fragments: str) -> str:
    """Exit 2, no traceback, every fragment on stderr."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in:\n{proc.stderr}"
    return proc.stderr


def test_cli_missing_discriminator(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(KIND_HIDEN)
    err = clean_failure(cli("run", str(path), "--dry-run"),
                        f"{path}:7 workloads.digits.model: missing required key 'type'",
                        f"{path}:7 workloads.digits.model.kind: unknown key 'kind'; did you mean 'type'?",
                        f"{path}:7 workloads.digits.model.hiden: unknown key 'hiden'; did you mean 'sizes'?")
    assert err.startswith("error: ")


def test_cli_yaml_syntax_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(edit("    batch_size: 32", "\tbatch_size: 32"))
    clean_failure(cli("run", str(path), "--dry-run"), f"error: {path}:13 malformed YAML",
                  "indent with spaces, not tabs")


def test_cli_seeds_over_the_suite(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    err = clean_failure(cli("run", str(path), "--seeds", "3", "--dry-run"),
                        "--seeds 3", "the suite has 1 seed (0)", "give --seeds 1")
    assert "give 1 to 1" not in err


def test_cli_filters_select_nothing(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    results = tmp_path / "r"
    clean_failure(cli("run", str(path), "--workload", "digits", "--optimizer", "hf",
                      "--results", str(results)),
                  "the filters select no trials", f"{path}:9 workloads.digits.optimizers")
    assert not results.exists()  # nothing started


def test_cli_device_not_present(tmp_path):
    """`device: cuda` on a machine without one: named at its line, before any trial."""
    torch = pytest.importorskip("torch", reason="the torch backend is the one asked for here")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the missing-device error needs none")
    path = tmp_path / "s.yaml"
    path.write_text(edit("seeds: [0]", "seeds: [0]\ndevice: cuda"))
    results = tmp_path / "r"
    clean_failure(cli("run", str(path), "--workload", "boston", "--results", str(results)),
                  f"{path}:4 device:", "cuda", "device='cpu'")
    assert not any(results.rglob("*.json*")) if results.exists() else True  # no trial ran


def test_cli_fetch_unknown_dataset_draws_no_progress_bar():
    err = clean_failure(cli("data", "fetch", "mnsit"), "unknown dataset 'mnsit'",
                        "did you mean 'mnist'?")
    assert err.startswith("error: "), err  # nothing drawn before the error
    assert "fetching" not in err and "━" not in err, err


def test_fetch_progress_is_drawn_only_once_bytes_flow():
    """The lazy bar of `data fetch`: nothing at creation, a bar at the first update."""
    from hfbench.cli import _LazyProgress

    with _LazyProgress("fetching x") as progress:
        assert progress.bar is None
        progress.update(10, 100)
        progress.update(100, 100)
        assert progress.bar is not None
        assert progress.bar.tasks[0].completed == 100


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_cli_results_folder_not_writable(tmp_path, where):
    """A results folder that cannot be written: a clear error before any trial. (A file
    stands in for a read-only folder: tests may run as root, who writes anywhere.)"""
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder\n")
    results = blocker if where == "a-file" else blocker / "sub"
    clean_failure(cli("run", str(path), "--workload", "boston", "--results", str(results)),
                  f"results folder '{results}'", "pass --results a folder you can write to")
    assert blocker.read_text() == "not a folder\n"  # untouched
