"""Determinism: same trial, same bits; torch and JAX, same trajectory (issue 12).

- The same suite, seed and backend on the CPU, run twice (two run_trial calls into
  two folders): the records on disk are identical except for the fields in
  `CLOCK_FIELDS`, which hold wall-clock readings and the date and host of the run.
  Everything else, every per-step loss, CG count, curvature scalar and evaluation
  included, must be equal to the last bit.
- Torch and JAX runs of one float64 trial agree on the first 10 steps within
  `RTOL` (see `test_torch_and_jax_float64_trajectories_agree`).
- The settings that decide determinism on a GPU are settable from a suite and in
  the record: TF32 has its own suite key (`tf32:`); torch's deterministic algorithms
  are `backend_options: {torch: {deterministic: true}}`; JAX's are an XLA flag read
  when JAX starts, which the `deterministic` JAX option can only confirm, never set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import hfbench
from hfbench.runner import run_trial
from hfbench.suite import SuiteError, expand, loads

from conftest import missing_backends

SUITE = """\
name: determinism
backends: [torch, jax]
seeds: [3]
device: cpu
dtype: float64
workloads:
  digits:
    dataset: digits
    model: {type: mlp, sizes: [64, 6, 10], activation: tanh}
    batch_size: 64
    curvature_batch_size: 32
optimizers:
  sgd: {algorithm: sgd, params: {lr: 0.1}}
  hf: {algorithm: hf, params: {cg_max_iters: 4}}
  sgn: {algorithm: sgn, params: {cg_iters: 3, damping_rule: trust_region, line_search: true}}
budget: {iterations: 10}
eval: {every: 5}
targets: [{metric: train_loss, "<=": 1.0e6}]
"""
OPTIMIZERS = ("sgd", "hf", "sgn")

# Fields of a record that read a clock, or say when and where it ran; `*` is every
# item of a list. Nothing else is excluded (time marks would be: which evaluation
# comes first after t seconds depends on the clock, so this suite sets none).
CLOCK_FIELDS = (
    ("wall_s",), ("train_time_s",), ("compile_s",),
    ("metadata", "timestamp_utc"), ("metadata", "hostname"),
    ("steps", "*", "time_s"),
    ("evals", "*", "time_s"), ("evals", "*", "eval_s"),
    ("final", "time_s"), ("final", "eval_s"),
    ("targets", "*", "time_s"),
)


def backends_here(*names):
    why = missing_backends(*names)
    return pytest.mark.skipif(why is not None, reason=str(why))


def without(obj, path: tuple):
    """`obj` (a record read from JSON) less the field at `path`."""
    if not path:
        return None
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(obj, list):
        return [without(item, rest) for item in obj]
    if isinstance(obj, dict) and head in obj:
        return {k: (v if k != head else without(v, rest)) for k, v in obj.items()
                if not (k == head and not rest)}
    return obj


def comparable(rec: dict) -> dict:
    for path in CLOCK_FIELDS:
        rec = without(rec, path)
    return rec


def test_without_drops_exactly_the_clock_fields():
    rec = {"wall_s": 1.0, "iterations": 3, "steps": [{"time_s": 1.0, "batch_loss": 2.0}],
           "metadata": {"hostname": "h", "seed": 0}, "final": None, "targets": [None]}
    assert comparable(rec) == {"iterations": 3, "steps": [{"batch_loss": 2.0}],
                               "metadata": {"seed": 0}, "final": None, "targets": [None]}


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    """{(optimizer, backend): (record a, record b)}, each read back from its own folder."""
    out = {}
    trials = expand(loads(SUITE, "determinism.yaml"),
                    backend=[b for b in ("torch", "jax") if missing_backends(b) is None])
    for trial in trials:
        pair = []
        for folder in ("a", "b"):
            path = tmp_path_factory.mktemp(folder)
            rec = run_trial(trial, path)
            assert rec["status"] == "completed" or rec["status"] == "target_reached", rec.get("error")
            pair.append(json.loads((path / f"{trial.id}.json").read_text()))
        out[(trial.optimizer, trial.backend)] = tuple(pair)
    return out


@pytest.mark.parametrize("backend", [pytest.param(b, marks=backends_here(b)) for b in ("torch", "jax")])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_trial_run_twice_gives_identical_records(twice, optimizer, backend):
    a, b = twice[(optimizer, backend)]
    assert a["steps"] and a["evals"]  # something to compare
    ca, cb = comparable(a), comparable(b)
    assert ca == cb, _first_difference(ca, cb)
    # the excluded fields are the clock's, not numbers that failed to repeat
    assert a["metadata"]["seed"] == 3 and a["trial_id"] == b["trial_id"]


def _first_difference(a, b, where="record") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k, "<missing>") != b.get(k, "<missing>"):
                return _first_difference(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{where}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {a!r} != {b!r}"


# ----------------------------------------------------------------------------- torch vs JAX

RTOL = 1e-10


@backends_here("torch", "jax")
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_torch_and_jax_float64_trajectories_agree(twice, optimizer):
    """Same weights, same batches, float64: every per-step number within RTOL = 1e-10,
    every count and decision (CG iterations, accepted, status codes) exactly.

    Why 1e-10: the two frameworks sum in different orders (BLAS kernels, XLA fusion),
    so each operation differs by a few ulps (~1e-16); ten steps of CG and damping
    amplify that to at most ~5e-14 here (measured: rho, a ratio of a loss difference,
    is the largest; losses agree to ~3e-15). 1e-10 leaves over three orders of
    margin for other CPUs and library versions, and is still far below anything a
    real difference makes: float32 anywhere is ~1e-7, a dropped term or a different
    batch is 1e-3 and up.

    Decisions are compared exactly, which holds only away from ties: CG backtracking
    keeps the earlier of two saved iterates unless the later one's loss is strictly
    lower, and when two losses are within rounding the frameworks may choose apart
    (hf with cg_max_iters 8 on this net does, at step 4: iterate 5 vs 8, losses equal
    to 1e-11). With cg_max_iters 4 the closest call of the ten steps is 4e-12 apart
    (measured), a thousand times the frameworks' difference.
    """
    t, j = twice[(optimizer, "torch")][0], twice[(optimizer, "jax")][0]
    assert len(t["steps"]) == len(j["steps"]) == 10
    for n, (ts, js) in enumerate(zip(t["steps"], j["steps"]), 1):
        assert sorted(ts) == sorted(js), f"step {n}: keys differ"
        for key in sorted(ts):
            if key == "time_s":
                continue
            tv, jv = ts[key], js[key]
            if isinstance(tv, float) and isinstance(jv, float):
                np.testing.assert_allclose(tv, jv, rtol=RTOL, err_msg=f"{optimizer} step {n} {key}")
            else:  # counts, flags, codes: the same decisions
                assert tv == jv, f"{optimizer} step {n} {key}: torch {tv!r}, jax {jv!r}"
    for te, je in zip(t["evals"], j["evals"]):
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            np.testing.assert_allclose(te[key], je[key], rtol=RTOL, err_msg=f"{optimizer} eval {key}")


# ----------------------------------------------------------------------------- settings

OPTIONS_SUITE = """\
name: opts
backends: [torch, jax]
seeds: [0]
device: cpu
backend_options:
  torch: {deterministic: true}
workloads:
  digits:
    dataset: digits
    model: {type: mlp, sizes: [64, 4, 10]}
    batch_size: 64
optimizers:
  sgd: {algorithm: sgd, params: {lr: 0.1}}
budget: {iterations: 2}
eval: {every: 2}
"""
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def load_errors(text: str) -> list[str]:
    with pytest.raises(SuiteError) as info:
        loads(text, "o.yaml")
    return info.value.lines


@pytest.fixture
def torch_settings():
    """Restore torch's process-wide determinism switches after the test."""
    import torch

    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark)
    yield torch
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1:]


def test_an_unset_deterministic_option_leaves_trial_ids_alone():
    """Suites that never ask for it make the same trials (and ids) as before it existed."""
    text = OPTIONS_SUITE.replace("backend_options:\n  torch: {deterministic: true}\n", "")
    trials = {t.backend: t for t in expand(loads(text, "o.yaml"))}
    assert trials["torch"].backend_options == {"compile": "auto"}
    assert trials["jax"].backend_options == {}
    asked = {t.backend: t for t in expand(loads(OPTIONS_SUITE, "o.yaml"))}
    assert asked["torch"].backend_options == {"compile": "auto", "deterministic": True}
    assert asked["torch"].id != trials["torch"].id and asked["jax"].id == trials["jax"].id


@backends_here("torch")
def test_torch_deterministic_reaches_the_backend_and_the_record(tmp_path, torch_settings):
    torch = torch_settings
    (trial,) = expand(loads(OPTIONS_SUITE, "o.yaml"), backend="torch")
    torch.use_deterministic_algorithms(False)
    rec = run_trial(trial, tmp_path)
    assert rec["status"] == "completed", rec.get("error")
    meta = rec["metadata"]
    assert meta["config"]["backend_options"]["deterministic"] is True  # part of the trial
    assert meta["backend_options"]["deterministic"] is True  # as the backend was built
    backend = meta["backend"]  # as torch reports it during the run
    assert backend["deterministic"] is True and backend["deterministic_algorithms"] is True
    assert backend["cudnn_deterministic"] is True and backend["cudnn_benchmark"] is False
    assert torch.are_deterministic_algorithms_enabled()  # process-wide, as documented
    # CUBLAS_WORKSPACE_CONFIG is set for CUDA only; a CPU run leaves the environment be
    assert backend["cublas_workspace_config"] == os.environ.get("CUBLAS_WORKSPACE_CONFIG")


@backends_here("torch")
def test_a_torch_backend_without_the_option_turns_it_back_off(torch_settings):
    """Process-wide, like TF32: the next trial's backend applies its own setting."""
    torch = torch_settings
    hfbench.get_backend("torch", device="cpu", deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    be = hfbench.get_backend("torch", device="cpu")
    assert not torch.are_deterministic_algorithms_enabled()
    info = be.info()
    assert info["deterministic"] is False and info["deterministic_algorithms"] is False
    assert be.options["deterministic"] is False


@pytest.mark.parametrize("value, why", [("maybe", "must be true or false, got 'maybe'"),
                                        ("1", "must be true or false, got 1")])
def test_a_bad_torch_deterministic_value_is_a_load_error(value, why):
    text = OPTIONS_SUITE.replace("{deterministic: true}", f"{{deterministic: {value}}}")
    (line,) = load_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, 'deterministic')} "
                           "backend_options.torch.deterministic: "), line
    assert why in line


def test_a_misspelt_deterministic_option_gets_the_right_name():
    text = OPTIONS_SUITE.replace("{deterministic: true}", "{determinstic: true}")
    (line,) = load_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, 'determinstic')} backend_options.torch.determinstic: ")
    assert "did you mean 'deterministic'?" in line


def jax_suite(value: str) -> str:
    return OPTIONS_SUITE.replace("  torch: {deterministic: true}\n",
                                 f"  jax: {{deterministic: {value}}}\n")


def test_jax_deterministic_true_without_the_xla_flag_is_refused_at_load(monkeypatch):
    """XLA reads its flags when JAX starts: the option cannot turn them on later, so
    asking for it without them is an error that says how to start instead."""
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    text = jax_suite("true")
    (line,) = load_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, 'deterministic')} backend_options.jax.deterministic: ")
    assert "XLA_FLAGS" in line and DETERMINISTIC_FLAG in line and "when JAX starts" in line
    assert "--xla_force_host_platform_device_count=1" in line  # what the process has now


def test_jax_deterministic_false_with_the_xla_flag_on_is_refused(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", DETERMINISTIC_FLAG)
    (line,) = load_errors(jax_suite("false"))
    assert "backend_options.jax.deterministic" in line and "remove --xla_gpu_deterministic_ops" in line


def test_a_bad_jax_deterministic_value_is_a_load_error():
    text = jax_suite("sometimes")
    (line,) = load_errors(text)
    assert line.startswith(f"o.yaml:{line_of(text, 'deterministic')} backend_options.jax.deterministic: ")
    assert "must be true or false, got 'sometimes'" in line


@backends_here("jax")
def test_jax_deterministic_reaches_the_record_when_xla_has_the_flag(tmp_path, monkeypatch):
    """With the flag in XLA_FLAGS (here only in the environment: on the CPU it
    changes nothing, what is checked is the path to the record)."""
    monkeypatch.setenv("XLA_FLAGS", f"--xla_gpu_autotune_level=0 {DETERMINISTIC_FLAG}")
    (trial,) = expand(loads(jax_suite("true"), "o.yaml"), backend="jax")
    assert trial.backend_options == {"deterministic": True}
    rec = run_trial(trial, tmp_path)
    assert rec["status"] == "completed", rec.get("error")
    backend = rec["metadata"]["backend"]
    assert backend["deterministic"] is True and backend["deterministic_ops"] is True
    assert backend["xla_determinism"] == {"xla_gpu_deterministic_ops": "true",
                                          "xla_gpu_autotune_level": "0"}
    assert rec["metadata"]["config"]["backend_options"] == {"deterministic": True}


@backends_here("jax")
def test_jax_records_the_xla_determinism_flags_when_not_asked(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    info = hfbench.get_backend("jax", device="cpu").info()
    assert info["deterministic"] is None  # not asked
    assert info["deterministic_ops"] is False and info["xla_determinism"] == {}


@pytest.mark.parametrize("flags, on", [
    ("", False), ("--xla_gpu_deterministic_ops", True), ("--xla_gpu_deterministic_ops=1", True),
    ("--xla_gpu_deterministic_ops=false", False),
    ("--xla_gpu_deterministic_ops=true --xla_gpu_deterministic_ops=false", False),  # last wins
    ("--xla_gpu_deterministic_ops_other=true", False),
])
def test_the_xla_flag_is_read_as_xla_reads_it(flags, on):
    from hfbench_jax.options import deterministic_ops, xla_flags

    assert deterministic_ops(xla_flags(flags)) is on


@backends_here("jax")
def test_jax_starts_with_the_documented_flag(tmp_path):
    """The fix the refusal suggests works: JAX starts with the flag (XLA aborts on a
    flag it does not know) and the option is then accepted."""
    code = ("import hfbench, jax; be = hfbench.get_backend('jax', device='cpu', deterministic=True); "
            "print(float(jax.numpy.ones(3).sum()), be.info()['deterministic_ops'])")
    env = {**os.environ, "XLA_FLAGS": DETERMINISTIC_FLAG, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3.0", "True"]

