"""The torch backend's `compile` option (hfbench_torch.compiled): when it compiles CG's
update, that a failing compiler falls back to eager with a warning and unchanged
results, and that bad values are refused. The compiled solves themselves are checked
against NumPy oracles in test_cg.py (the "torch-compiled" backend there).
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import hfbench
from hfbench.algorithms import CGConfig, cg_solve
from hfbench.errors import HFBenchError

from conftest import missing_backends

pytestmark = pytest.mark.skipif(
    missing_backends("torch") is not None, reason=str(missing_backends("torch"))
)

FIXED = CGConfig(stop="fixed", iters=6, max_iters=6)


def _system(n=12, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.geomspace(1, 50, n)) @ q.T, rng.standard_normal(n)


def _solve(be, A, b):
    return cg_solve(be, FIXED, be.linear_operator(A), be.asarray(b), 0.1)


def test_auto_compiles_only_large_vectors():
    import torch
    from hfbench_torch import compiled

    n = compiled.AUTO_MIN_SIZE
    small, large = (SimpleNamespace(b=torch.zeros(size)) for size in (n - 1, n))
    assert not compiled.Compiler("cpu", "auto").wants(small)
    assert compiled.Compiler("cpu", "auto").wants(large)
    assert compiled.Compiler("cpu", True).wants(small)
    assert not compiled.Compiler("cpu", False).wants(large)


@pytest.mark.parametrize("bad", ["yes", 1, None, "true"])
def test_bad_compile_option_is_refused(bad):
    with pytest.raises(HFBenchError, match="compile must be 'auto', true or false"):
        hfbench.get_backend("torch", compile=bad)


def test_info_records_the_compile_setting():
    info = hfbench.get_backend("torch", compile=False).info()
    assert info["compile"] is False and info["compile_failures"] == []


def test_failing_compiler_falls_back_to_eager(monkeypatch):
    import torch

    A, b = _system()
    eager = _solve(hfbench.get_backend("torch", dtype="float64", compile=False), A, b)

    def broken(fn, **kw):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler found\nsecond line")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    be = hfbench.get_backend("torch", dtype="float64", compile=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*CG runs eagerly"):
        sol = _solve(be, A, b)
    np.testing.assert_array_equal(be.to_numpy(sol.x), be.to_numpy(eager.x))
    np.testing.assert_array_equal(sol.phi, eager.phi)
    assert be.info()["compile_failures"] == ["RuntimeError: no C++ compiler found"]
    # the failure is remembered: no second attempt and no second warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _solve(be, A, b)
    np.testing.assert_array_equal(be.to_numpy(again.x), be.to_numpy(eager.x))


def test_one_graph_per_config_whatever_the_size_and_start():
    """A new size, a warm start or the aliased first state (p = r = b) must not
    recompile: dynamo would otherwise stop after 8 graphs, and compile time would leak
    into timed steps."""
    from torch._dynamo.utils import counters

    be = hfbench.get_backend("torch", dtype="float64", compile=True)
    before = counters["stats"]["unique_graphs"]
    for n, warm in [(8, False), (20, False), (20, True), (33, False)]:
        A, b = _system(n, seed=n)
        x0 = be.asarray(np.ones(n)) if warm else None
        sol = cg_solve(be, FIXED, be.linear_operator(A), be.asarray(b), 0.1, x0=x0)
        assert sol.num_steps == FIXED.iters
    assert counters["stats"]["unique_graphs"] - before == 1
    assert not be.compiler.failures


@pytest.mark.parametrize("idx", [0, 2, -1, -3])
@pytest.mark.parametrize("cond", [True, False])
def test_device_indexing_matches_python_indexing(idx, cond):
    """The no-host-read path of get/set_if (what compiled code and CUDA tensors use)
    indexes like buf[idx], negative indices included (CG passes -1 for "no slot")."""
    import torch
    from hfbench_torch.compiled import TracedOps

    ops = TracedOps("cpu")
    buf = np.arange(12.0).reshape(4, 3)
    value = np.full(3, -7.0)
    t_buf, t_idx = torch.tensor(buf), torch.tensor(idx)
    np.testing.assert_array_equal(ops.get(t_buf, t_idx).numpy(), buf[idx])
    out = ops.set_if(t_buf, t_idx, torch.tensor(value), torch.tensor(cond))
    expected = buf.copy()
    if cond:
        expected[idx] = value
    np.testing.assert_array_equal(out.numpy(), expected)
