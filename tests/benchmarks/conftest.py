"""Micro-benchmarks of hfbench's kernels (pytest-benchmark), out of the default run.

    python -m pytest tests/benchmarks --benchmark-only                 # 784-64-10 MLP, both backends
    python -m pytest tests/benchmarks --benchmark-only --benchmark-json=out.json \\
        --bench-model mnist_autoencoder --bench-threads 2 --bench-rounds 10

Nothing here is collected unless --benchmark-only or --benchmark-enable is given
(pyproject's addopts disables benchmarks for the test run). The --bench-* options
below exist when tests/benchmarks (or a file in it) is on the command line, as
pytest reads a sub-directory's options only then; elsewhere their defaults hold.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench_kernels import DEFAULT_MODEL, DEFAULT_VARIANTS, MODELS, VARIANTS, bench_setup, missing

HERE = Path(__file__).resolve().parent
PARENT_CONFTEST = HERE.parent / "conftest.py"

DEFAULTS = {
    "bench_backend": None, "bench_model": None, "bench_batch": None, "bench_dtype": "float32",
    "bench_device": "cpu", "bench_threads": None, "bench_rounds": 5, "bench_cg_iters": 50,
    "bench_hf_steps": 3,
}


def pytest_addoption(parser):
    g = parser.getgroup("hfbench benchmarks (tests/benchmarks)")
    g.addoption("--bench-backend", action="append", choices=sorted(VARIANTS),
                help=f"backend variant(s) to time (default: {', '.join(DEFAULT_VARIANTS)}); "
                     "torch-eager / torch-compiled pin torch's CG compile option")
    g.addoption("--bench-model", action="append", choices=sorted(MODELS),
                help=f"model(s) to time (default: {DEFAULT_MODEL}; mnist_autoencoder is the large one)")
    g.addoption("--bench-batch", type=int,
                help="batch size (default: each model's, 256 for the MLP, else 1000)")
    g.addoption("--bench-dtype", default=DEFAULTS["bench_dtype"], choices=["float32", "float64"])
    g.addoption("--bench-device", default=DEFAULTS["bench_device"], help="cpu, cuda, cuda:N, auto")
    g.addoption("--bench-threads", type=int,
                help="torch intra-op threads (default: every core this process may use; "
                     "XLA's pool cannot be capped)")
    g.addoption("--bench-rounds", type=int, default=DEFAULTS["bench_rounds"],
                help="rounds of the interleaved ratio benchmarks")
    g.addoption("--bench-cg-iters", type=int, default=DEFAULTS["bench_cg_iters"],
                help="length of the fixed CG solve")
    g.addoption("--bench-hf-steps", type=int, default=DEFAULTS["bench_hf_steps"],
                help="hf steps timed for the phase split (after one warm-up step)")


def option(config, name: str):
    """A --bench-* value, or its default where pytest did not read this file's options."""
    try:
        value = config.getoption(name)
    except ValueError:
        return DEFAULTS[name]
    return DEFAULTS[name] if value is None else value


def enabled(config) -> bool:
    return bool(config.getoption("benchmark_only") or config.getoption("benchmark_enable"))


def pytest_plugin_registered(plugin, manager):
    # tests/*.py do `from conftest import ...`. A conftest.py outside a package is
    # imported under the module name "conftest", so loading this file replaced
    # tests/conftest.py in sys.modules and those imports would fail; put it back.
    parent = manager.get_plugin(str(PARENT_CONFTEST))
    if parent is not None:
        sys.modules["conftest"] = parent


def pytest_configure(config):
    # pyproject's addopts carries --benchmark-disable, which pytest-benchmark refuses
    # to combine with --benchmark-only; asking for only benchmarks is asking for them.
    # (Runs before pytest-benchmark's own pytest_configure, which is trylast.)
    if config.getoption("benchmark_only"):
        config.option.benchmark_enable = True


def pytest_ignore_collect(collection_path, config):
    if not enabled(config) and HERE in Path(collection_path).resolve().parents:
        return True  # out of the default run: not even collected
    return None


def pytest_collection_modifyitems(config, items):
    # A file named on the command line is collected whatever pytest_ignore_collect says.
    if enabled(config):
        return
    skip = pytest.mark.skip(reason="a benchmark: run with --benchmark-only")
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def pytest_report_header(config):
    if not enabled(config):
        return "hfbench benchmarks: not collected (run them with --benchmark-only)"
    return (f"hfbench benchmarks: backends {', '.join(variants(config))}; models "
            f"{', '.join(bench_models(config))}; {option(config, 'bench_dtype')} on "
            f"{option(config, 'bench_device')}; torch threads {threads(config)}")


def variants(config) -> list[str]:
    return option(config, "bench_backend") or list(DEFAULT_VARIANTS)


def bench_models(config) -> list[str]:
    return option(config, "bench_model") or [DEFAULT_MODEL]


def threads(config) -> int:
    # tests/conftest.py pins torch to 1 thread for tiny nets; a benchmark wants the
    # pool a user would get, unless told otherwise.
    return option(config, "bench_threads") or len(os.sched_getaffinity(0))


def pytest_generate_tests(metafunc):
    if "bench" not in metafunc.fixturenames:
        return
    config = metafunc.config
    params = []
    for model in bench_models(config):
        for variant in variants(config):
            why = missing(variant)
            marks = [pytest.mark.skip(reason=why)] if why else []
            params.append(pytest.param((variant, model), id=f"{variant}-{model}", marks=marks))
    metafunc.parametrize("bench", params, indirect=True)


@pytest.fixture
def bench(request):
    """The cached Bench (problem, weights, batch, direction) of one backend and model."""
    variant, model = request.param
    c = request.config
    return bench_setup(variant, model, option(c, "bench_batch"), option(c, "bench_dtype"),
                       option(c, "bench_device"), threads(c))


@pytest.fixture
def rounds(request) -> int:
    return option(request.config, "bench_rounds")


@pytest.fixture
def cg_iters(request) -> int:
    return option(request.config, "bench_cg_iters")


@pytest.fixture
def hf_steps(request) -> int:
    return option(request.config, "bench_hf_steps")
