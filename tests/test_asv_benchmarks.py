"""The asv benchmarks (benchmarks/hfbench_bench) run, without asv.

Every benchmark class is set up and every benchmark in it called once, as asv calls
them (setup_cache once, then setup and the benchmark, the cache first where there is
one), on tiny nets (HFBENCH_BENCH_SIZE=tiny) with the first parameter combination of
each installed backend; the class's `params` are narrowed to that combination on the
instance, so setup_cache measures only it. A backend that is not installed is skipped,
as is a benchmark whose setup asks to be (device memory without a GPU). asv's own
discovery and signature check run too, when asv is installed.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing_backends

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks" / "hfbench_bench"
sys.path.insert(0, str(BENCH_DIR.parent))  # as asv does: the package and the scripts it reuses

import hfbench_bench  # noqa: E402

PREFIXES = ("time_", "timeraw_", "track_", "peakmem_", "mem_")
MODULES = sorted(name for _, name, _ in pkgutil.iter_modules(hfbench_bench.__path__))


def _classes():
    """(module name, class) for every class that holds asv benchmarks."""
    out = []
    for name in MODULES:
        module = importlib.import_module(f"hfbench_bench.{name}")
        for attr, cls in vars(module).items():
            if (not attr.startswith("_") and inspect.isclass(cls) and cls.__module__ == module.__name__
                    and _methods(cls)):
                out.append((name, cls))
    return out


def _methods(cls) -> list[str]:
    return [m for m in dir(cls) if m.startswith(PREFIXES) and callable(getattr(cls, m))]


CLASSES = _classes()


def test_every_module_says_what_it_measures():
    for name in MODULES:
        doc = importlib.import_module(f"hfbench_bench.{name}").__doc__
        assert doc and len(doc.strip()) > 40, f"hfbench_bench.{name} needs a docstring"


def test_the_suite_covers_timing_tracking_and_memory():
    kinds = {m.split("_")[0] for _, cls in CLASSES for m in _methods(cls)}
    assert {"time", "track", "peakmem"} <= kinds
    for mod, cls in CLASSES:
        for m in _methods(cls):
            if m.startswith("track_"):
                assert getattr(getattr(cls, m), "unit", None), f"{mod}.{cls.__name__}.{m} has no unit"


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("cls", [c for _, c in CLASSES], ids=[f"{m}.{c.__name__}" for m, c in CLASSES])
def test_benchmark_runs_once(cls, backend, monkeypatch):
    why = missing_backends(backend)
    if why:
        pytest.skip(why)
    monkeypatch.setenv("HFBENCH_BENCH_SIZE", "tiny")
    monkeypatch.setenv("HFBENCH_BENCH_THREADS", "1")
    params = [list(p) for p in cls.params]
    assert params[0] == ["torch", "jax"] and cls.param_names[0] == "backend"
    combo = [backend] + [p[0] for p in params[1:]]
    bench = cls()
    bench.params = [[v] for v in combo]  # setup_cache measures this combination only
    args = combo
    if hasattr(bench, "setup_cache"):
        args = [bench.setup_cache()] + combo
    for name in _methods(cls):
        bench = cls()
        try:
            if hasattr(bench, "setup"):
                bench.setup(*args)
        except NotImplementedError as exc:  # asv: skipped
            pytest.skip(f"{cls.__name__}.setup{tuple(combo)}: {exc}")
        value = getattr(bench, name)(*args)
        if name.startswith("track_"):
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)
            assert math.isnan(value) or value >= 0, (name, value)
        else:
            assert value is None, (name, value)


def test_asv_discovers_and_checks_every_benchmark():
    pytest.importorskip("asv_runner", reason="asv is not installed: pip install 'hfbench[bench]'")
    from asv_runner.discovery import disc_benchmarks

    found = list(disc_benchmarks(str(BENCH_DIR)))
    names = {b.name for b in found}
    expected = {f"{m}.{c.__name__}.{meth}" for m, c in CLASSES for meth in _methods(c)}
    assert names == expected
    assert all(b.check(str(BENCH_DIR)) for b in found)


def test_machine_name_names_the_hardware():
    out = subprocess.run([sys.executable, str(BENCH_DIR / "machine_name.py")], capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert re.fullmatch(r"(cpu-[a-z0-9-]+-\d+c|gpu-[a-z0-9-]+)", out), out
    from hfbench_bench.machine_name import slug

    assert slug("Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz") == "intel-xeon-platinum-8488c"
    assert slug("NVIDIA H200") == "nvidia-h200"


def test_a_missing_backend_is_skipped_not_failed():
    from hfbench_bench import _common

    cache = _common.cache_over([["no_such_backend"], ["mlp"]], lambda *combo: {"value": 1.0})
    with pytest.raises(NotImplementedError, match="no_such_backend"):
        _common.cached(cache, "no_such_backend", "mlp")
    with pytest.raises(NotImplementedError):
        _common.Work("no_such_backend", "mlp")
