"""One path for every option (issue 11, part 1).

- `backend_options` in a suite reaches the backend, the trial's config and id, and the
  record's metadata; a bad one is a suite error at its file, line and key.
- Device names: `gpu` is `cuda` everywhere (suite, --device, both backends).
- The catalogues (model types, datasets, losses, curvature kinds) have one source: a
  name added to the core registry is accepted by the suite layer, one removed is not.
- --workload/--optimizer/--backend/--seed filters repeat and select the union.
- Backends depend on the contract (protocol, protocol_helpers) only.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hfbench
from hfbench.devices import parse_device
from hfbench.errors import DeviceError, HFBenchError
from hfbench.suite import SuiteError, expand, loads

from conftest import missing_backends

ROOT = Path(__file__).parents[1]

SUITE = """\
name: opts
backends: [torch, jax]
seeds: 5
backend_options:
  torch: {compile: false}
workloads:
  boston:
    dataset: boston
    model: {type: mlp, sizes: [13, 4, 1]}
    batch_size: 32
  digits:
    dataset: digits
    model: {type: mlp, sizes: [64, 4, 10]}
    batch_size: 32
    backend_options:
      torch: {compile: true}
optimizers:
  sgd: {algorithm: sgd, params: {lr: 0.1}}
  adam: {algorithm: adam, params: {lr: 0.01}}
budget: {iterations: 2}
eval: {every: 1}
"""


def edit(old: str, new: str, text: str = SUITE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the file text where `fragment` first appears."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def suite_errors(text: str) -> list[str]:
    with pytest.raises(SuiteError) as info:
        loads(text, source="o.yaml")
    return info.value.lines


def by_backend(trials, workload: str) -> dict:
    return {t.backend: t for t in trials if t.workload == workload and t.optimizer == "sgd" and t.seed == 0}


# ----------------------------------------------------------------------------- backend options


def test_backend_options_reach_the_trial_config_and_id():
    trials = expand(loads(SUITE, "o.yaml"))
    boston, digits = by_backend(trials, "boston"), by_backend(trials, "digits")
    assert boston["torch"].backend_options == {"compile": False}  # the suite's
    assert digits["torch"].backend_options == {"compile": True}  # the workload's, over it
    assert boston["jax"].backend_options == {}  # jax has no options besides device, dtype, tf32
    assert boston["torch"].config()["backend_options"] == {"compile": False}
    assert boston["torch"].backend_kwargs() == {"device": "cpu", "dtype": "float32", "tf32": False,
                                                "compile": False}
    other = expand(loads(edit("torch: {compile: false}", "torch: {compile: auto}"), "o.yaml"))
    assert by_backend(other, "boston")["torch"].id != boston["torch"].id
    assert by_backend(other, "boston")["jax"].id == boston["jax"].id


def test_unset_backend_options_are_filled_with_the_backends_defaults():
    """The torch backend documents compile="auto" as its default; a suite that sets no
    option gets it in the trial (so a later change of the default makes new trials)."""
    text = edit("backend_options:\n  torch: {compile: false}\n", "")
    text = edit("    backend_options:\n      torch: {compile: true}\n", "", text)
    t = by_backend(expand(loads(text, "o.yaml")), "boston")["torch"]
    assert t.backend_options == {"compile": "auto"}


@pytest.mark.skipif(missing_backends("torch") is not None, reason=str(missing_backends("torch")))
def test_compile_option_reaches_the_torch_backend_and_the_record(tmp_path):
    from hfbench.runner import run_trial

    trial = by_backend(expand(loads(SUITE, "o.yaml")), "boston")["torch"]
    be = hfbench.get_backend(trial.backend, **trial.backend_kwargs())
    assert be.compiler.mode is False and be.info()["compile"] is False
    try:
        rec = run_trial(trial, tmp_path)
    except ImportError as exc:
        pytest.skip(f"boston needs an optional package: {exc}")
    assert rec["status"] != "failed", rec.get("error")
    assert rec["iterations"] == 2
    meta = rec["metadata"]
    assert meta["backend_options"]["compile"] is False and meta["backend_options"]["device"] == "cpu"
    assert meta["config"]["backend_options"] == {"compile": False}
    assert meta["backend"]["compile"] is False  # what the backend itself reports
    assert rec["config"]["backend_options"] == {"compile": False}


def test_a_bad_backend_option_names_file_line_and_key():
    text = edit("torch: {compile: false}", "torch: {compiel: false}")
    text = edit("torch: {compile: true}", "torch: {compile: sometimes}", text)
    lines = suite_errors(text)
    assert len(lines) == 2, lines
    top, workload = lines
    assert top.startswith(f"o.yaml:{line_of(text, 'compiel')} backend_options.torch.compiel: "), top
    assert "did you mean 'compile'?" in top
    assert workload.startswith(f"o.yaml:{line_of(text, 'sometimes')} "
                               "workloads.digits.backend_options.torch.compile: "), workload
    assert "'auto', true or false" in workload and "'sometimes'" in workload


@pytest.mark.parametrize("key, fix", [("device", "`device:`"), ("dtype", "`dtype:`"),
                                      ("tf32", "`tf32:`"), ("threads", "--threads")])
def test_options_with_keys_of_their_own_are_refused_in_backend_options(key, fix):
    text = edit("torch: {compile: false}", f"torch: {{compile: false, {key}: 1}}")
    (line,) = suite_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, key + ':')} backend_options.torch.{key}: ")
    assert fix in line


def test_backend_options_are_keyed_by_backend():
    text = edit("torch: {compile: false}", "compile: false")
    line = suite_errors(text)[0]  # (and false is not a mapping of options)
    assert line.startswith(f"o.yaml:{line_of(text, 'compile: false')} backend_options.compile: "), line
    assert "unknown backend 'compile'" in line and "{torch: {compile: false}}" in line


def test_loading_a_suite_with_backend_options_imports_no_framework(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(edit("compile: false", "compile: nope"))
    code = ("import sys, hfbench.suite as s\n"
            "try:\n    s.load(sys.argv[1])\nexcept s.SuiteError as e:\n    print(e)\n"
            "print([m for m in ('torch', 'jax') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "backend_options.torch.compile: torch backend: compile must be" in proc.stdout
    assert proc.stdout.strip().endswith("[]"), proc.stdout


FAKE_BACKEND = '''
from hfbench.errors import BackendError


class FakeBackend:
    """A third party's backend without a resolve_options hook."""

    name = "fake"

    def __init__(self, device="cpu", dtype="float32", tf32=False, speed=1):
        if not isinstance(speed, int) or speed < 1:
            raise BackendError(f"fake backend: speed must be an integer >= 1, got {speed!r}")
        self.device, self.dtype, self.tf32 = device, dtype, tf32
'''


@pytest.fixture
def fake_backend(tmp_path, monkeypatch):
    """A backend `fake` registered next to the installed ones, whose module has no hook."""
    from hfbench import registry
    from hfbench.suite import schema

    (tmp_path / "fake_hfbench_backend.py").write_text(FAKE_BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = registry.registered()
    ep = EntryPoint("fake", "fake_hfbench_backend:FakeBackend", registry.GROUP)
    monkeypatch.setattr(registry, "registered", lambda: {**real, "fake": ep})
    for cached in (schema.backend_names, registry.option_resolver):
        cached.cache_clear()
    yield
    for cached in (schema.backend_names, registry.option_resolver):
        cached.cache_clear()


def test_an_option_a_backend_cannot_check_early_is_located_at_preflight(fake_backend):
    from hfbench.runner.suite_run import preflight

    text = edit("backends: [torch, jax]", "backends: [fake]")
    text = edit("torch: {compile: false}", "fake: {speed: 0}", text)
    text = edit("torch: {compile: true}", "fake: {speed: 2}", text)
    trials = expand(loads(text, "o.yaml"), workload="boston")  # loads: no hook to ask
    assert trials[0].backend_options == {"speed": 0}
    with pytest.raises(SuiteError) as info:
        preflight(trials)
    (line,) = info.value.lines
    assert line.startswith(f"o.yaml:{line_of(text, 'speed: 0')} backend_options.fake.speed: ")
    assert "speed must be an integer >= 1, got 0" in line
    preflight(expand(loads(text, "o.yaml"), workload="digits"))  # speed 2 builds


# ----------------------------------------------------------------------------- devices


@pytest.mark.parametrize("given, canonical", [
    ("cpu", "cpu"), ("auto", "auto"), ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("gpu", "cuda"),
    ("gpu:3", "cuda:3"), ("GPU", "cuda"), (" Cuda:0 ", "cuda:0"), ("CPU", "cpu"),
])
def test_parse_device_canonical_forms(given, canonical):
    assert parse_device(given) == canonical


@pytest.mark.parametrize("bad", ["tpu", "gpus", "cuda:x", "cuda:", "", "mps"])
def test_parse_device_names_what_is_accepted(bad):
    with pytest.raises(DeviceError) as info:
        parse_device(bad)
    for name in ("cpu", "cuda", "cuda:N", "gpu", "gpu:N", "auto"):
        assert name in str(info.value)


def test_gpu_in_a_suite_makes_the_same_trials_as_cuda():
    cuda = expand(loads(edit("seeds: 5", "seeds: 5\ndevice: cuda"), "o.yaml"))
    gpu = expand(loads(edit("seeds: 5", "seeds: 5\ndevice: gpu"), "o.yaml"))
    assert [t.id for t in gpu] == [t.id for t in cuda] and {t.device for t in gpu} == {"cuda"}
    per_workload = edit("    batch_size: 32\n", "    batch_size: 32\n    device: GPU:1\n")
    assert {t.device for t in expand(loads(per_workload, "o.yaml"), workload="boston")} == {"cuda:1"}
    s = loads(SUITE, "o.yaml")
    assert [t.id for t in expand(s, device="gpu")] == [t.id for t in expand(s, device="cuda")]


def test_unknown_device_in_a_suite_lists_the_accepted_names():
    text = edit("seeds: 5", "seeds: 5\ndevice: tpu")
    (line,) = suite_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, 'tpu')} device: unknown device 'tpu'")
    assert "(choices: auto, cpu, cuda, cuda:N, gpu, gpu:N)" in line


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_backends_take_gpu_as_cuda(name):
    if missing_backends(name):
        pytest.skip(missing_backends(name))

    def outcome(device):
        try:
            return hfbench.get_backend(name, device=device).device
        except DeviceError:
            return DeviceError

    assert outcome("gpu") == outcome("cuda") and outcome("GPU:0") == outcome("cuda:0")
    assert outcome("gpu") in (DeviceError, "cuda:0")
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'.*gpu:N"):
        hfbench.get_backend(name, device="tpu")


@pytest.mark.parametrize("module", ["hfbench_torch", "hfbench_jax"])
def test_backend_option_hooks_canonicalise_devices(module):
    hook = __import__(module).resolve_options
    assert hook({"device": "gpu:2"})["device"] == "cuda:2"
    with pytest.raises(DeviceError):
        hook({"device": "tpu"})


# ----------------------------------------------------------------------------- filters


def test_repeated_filters_select_the_union():
    s = loads(SUITE, "o.yaml")
    both = expand(s, workload=["digits", "boston"], optimizer=["adam", "sgd"], backend=["jax", "torch"])
    assert {t.id for t in both} == {t.id for t in expand(s)}
    union = {t.id for w in ("boston", "digits") for t in expand(s, workload=w, optimizer="sgd")}
    assert {t.id for t in expand(s, workload=["boston", "digits"], optimizer=["sgd"])} == union
    assert {t.backend for t in expand(s, backend=["torch"])} == {"torch"}


def test_seed_filters():
    s = loads(SUITE, "o.yaml")  # seeds: 5 is 0..4
    assert {t.seed for t in expand(s, seeds=[3])} == {3}
    assert {t.seed for t in expand(s, seeds=[4, 1])} == {1, 4}
    assert {t.seed for t in expand(s, seeds=2)} == {0, 1}
    with pytest.raises(HFBenchError, match=r"seed 7 is not in the suite; its seeds: 0, 1, 2, 3, 4"):
        expand(s, seeds=[3, 7])
    with pytest.raises(HFBenchError, match=r"unknown workload 'mnist'.*\(choices: boston, digits\)"):
        expand(s, workload=["boston", "mnist"])


def _cli(tmp_path, *args):
    from hfbench.cli import app

    path = tmp_path / "opts.yaml"
    path.write_text(SUITE)
    return CliRunner().invoke(app, ["run", str(path), "--dry-run", *args])


def _ids(output: str) -> set[str]:
    return set(re.findall(r"\b[0-9a-f]{16}\b", output))


def test_cli_repeated_filters_and_seed(tmp_path):
    s = loads(SUITE, "o.yaml")
    res = _cli(tmp_path, "--workload", "boston", "--workload", "digits", "--optimizer", "sgd",
               "--backend", "jax", "--seed", "3")
    assert res.exit_code == 0, res.output
    want = expand(s, workload=["boston", "digits"], optimizer="sgd", backend="jax", seeds=[3])
    assert len(want) == 2 and _ids(res.output) == {t.id for t in want}
    assert "2 trials (2 workloads, 1 optimizer config, 1 backend, 1 seed)" in res.output
    res = _cli(tmp_path, "--seed", "1", "--seed", "4", "--workload", "boston", "--optimizer", "adam",
               "--backend", "torch")
    assert _ids(res.output) == {t.id for t in expand(s, workload="boston", optimizer="adam",
                                                      backend="torch", seeds=[1, 4])}
    res = _cli(tmp_path, "--seeds", "2", "--workload", "boston", "--optimizer", "adam", "--backend", "torch")
    assert _ids(res.output) == {t.id for t in expand(s, workload="boston", optimizer="adam",
                                                      backend="torch", seeds=[0, 1])}
    res = _cli(tmp_path, "--device", "gpu", "--workload", "boston")
    assert _ids(res.output) == {t.id for t in expand(s, workload="boston", device="cuda")}


def test_cli_bad_filters_exit_2_with_what_exists(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hfbench.cli", "run", "smoke", "--dry-run", "--seed", "3"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())  # rich wraps long lines
    assert "seed 3 is not in the suite; its seeds: 0 " in message
    res = _cli(tmp_path, "--optimizer", "sdg")
    assert res.exit_code != 0 and "did you mean 'sgd'" in str(res.exception)
    res = _cli(tmp_path, "--seeds", "2", "--seed", "3")
    assert res.exit_code != 0 and "not both" in str(res.exception)


# ----------------------------------------------------------------------------- one source



def _tiny_net(*, l2: float = 0.0, init: str = "dense", hidden: int = 3):
    """A model type of a test's own, registered in the zoo for one test."""
    return hfbench.models.mlp([13, hidden, 1], "tanh", "squared_error", l2=l2, init=init, name="tiny")


def test_a_model_type_added_to_the_zoo_is_accepted_by_suites(monkeypatch):
    from hfbench.models import zoo

    text = edit("model: {type: mlp, sizes: [13, 4, 1]}", "model: {type: tiny_net, hidden: 5}")
    with pytest.raises(SuiteError, match="unknown model type 'tiny_net'"):
        loads(text, "o.yaml")
    monkeypatch.setitem(zoo.MODELS, "tiny_net", _tiny_net)
    t = next(t for t in expand(loads(text, "o.yaml")) if t.workload == "boston")
    spec = t.model_spec()
    assert spec.name == "tiny" and spec.layers[0].out_features == 5
    assert t.loss == "squared_error"  # its builder sets its loss
    bad = edit("hidden: 5", "hiden: 5", text)
    (line,) = suite_errors(bad)
    assert "unknown key 'hiden'; did you mean 'hidden'?" in line


def test_model_errors_name_keys_of_the_file():
    """The union's tags (which class checked an entry) are no keys of the file."""
    text = edit("{type: mlp, sizes: [13, 4, 1]}", "{type: mlp}")
    assert suite_errors(text) == [f"o.yaml:{line_of(text, 'type: mlp')} workloads.boston.model: "
                                  "missing required key 'sizes'"]
    text = edit("{type: mlp, sizes: [13, 4, 1]}", "{type: gargiani_cifar_cnn, padding: same}")
    (line,) = suite_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, 'padding')} workloads.boston.model.padding: "
                           "unknown key 'padding'") and "gargiani_cifar_cnn" in line, line


def test_suite_model_types_are_the_zoos(monkeypatch):
    from hfbench.models import zoo

    text = edit("model: {type: mlp, sizes: [13, 4, 1]}", "model: {type: nope}")
    (line,) = suite_errors(text)
    listed = re.search(r"\(choices: ([^)]*)\)", line).group(1).split(", ")
    assert listed == sorted(zoo.MODELS)
    # a copy without mlp, not delitem: its undo would put mlp back last and reorder
    # the registry for every later test
    monkeypatch.setattr(zoo, "MODELS", {k: v for k, v in zoo.MODELS.items() if k != "mlp"})
    assert any("unknown model type 'mlp'" in l for l in suite_errors(SUITE))


def test_a_dataset_added_to_the_data_registry_is_accepted_by_suites(monkeypatch):
    from hfbench.data import registry

    text = edit("dataset: boston", "dataset: boston_copy")
    with pytest.raises(SuiteError, match="unknown dataset 'boston_copy'"):
        loads(text, "o.yaml")
    monkeypatch.setitem(registry.DATASETS, "boston_copy",
                        dataclasses.replace(registry.DATASETS["boston"], name="boston_copy"))
    monkeypatch.setitem(registry.EXAMPLES, "boston_copy", registry.Example((7,), 1))
    (line,) = suite_errors(text)  # the suite checks the new entry's shape: 7 inputs
    assert "input width 13 does not match dataset 'boston_copy'" in line and "set it to 7" in line


def test_a_loss_removed_from_the_core_is_refused_by_suites(monkeypatch):
    from hfbench import losses

    text = edit("    batch_size: 32\n", "    batch_size: 32\n    loss: squared_error\n")
    assert loads(text, "o.yaml")
    monkeypatch.delitem(losses.LOSSES, "squared_error")
    assert any("unknown loss 'squared_error'" in l for l in suite_errors(text))


def test_curvature_kinds_are_the_protocols():
    from hfbench import algorithms

    for kind in ("ggn", "hessian", "fisher"):
        algorithms.get("hf", curvature=kind)
    with pytest.raises(HFBenchError) as info:
        algorithms.get("hf", curvature="gauss")
    listed = re.search(r"\(choices: ([^)]*)\)", str(info.value)).group(1).split(", ")
    assert set(listed) == {"ggn", "hessian", "fisher"} == set(hfbench.CURVATURE_KINDS)


# ----------------------------------------------------------------------------- the contract


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_backends_import_only_the_contract():
    for path in sorted((ROOT / "backends").rglob("*.py")):
        used = {m for m in _imports(path) if m.startswith("hfbench.")}
        bad = {m for m in used if m.startswith(("hfbench.registry", "hfbench.algorithms",
                                                 "hfbench.suite", "hfbench.runner"))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_moved_helpers_stay_importable_from_their_old_places():
    from hfbench import protocol_helpers
    from hfbench.algorithms import python_iterate
    from hfbench.registry import check_dtype, check_options

    assert check_dtype is protocol_helpers.check_dtype
    assert check_options is protocol_helpers.check_options
    assert python_iterate is protocol_helpers.python_iterate
