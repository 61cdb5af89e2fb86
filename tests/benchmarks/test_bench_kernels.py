"""One kernel per benchmark: what pytest-benchmark's table and JSON report.

Each test warms its kernel up once (compilation, caches; the time goes into
extra_info as first_call_s), then lets pytest-benchmark time the synced kernel
with its usual calibration. Groups are "<model>: <kernel>", so one table row per
backend compares them directly.
"""

from __future__ import annotations

import pytest

import bench_kernels as K
from hfbench import CURVATURE_KINDS


def run(benchmark, b: K.Bench, kernel: str, fn, **info):
    first = K.first_call(b, fn)
    benchmark.group = f"{b.model}: {kernel}"
    benchmark.extra_info.update(b.extra_info(), kernel=kernel, first_call_s=first, **info)
    return benchmark(b.synced(fn))


def test_grad(benchmark, bench):
    """One value_and_grad: the unit the ratios are stated in."""
    run(benchmark, bench, "grad", K.grad(bench))


@pytest.mark.parametrize("kind", CURVATURE_KINDS)
def test_curvature_setup(benchmark, bench, kind):
    """problem.curvature(x, batch, kind): the forward pass and linearization, once per step."""
    run(benchmark, bench, f"curvature_setup_{kind}", K.curvature_setup(bench, kind))


@pytest.mark.parametrize("kind", CURVATURE_KINDS)
def test_product(benchmark, bench, kind):
    """One Gv / Hv / Fisher.v of a built operator."""
    run(benchmark, bench, K.PRODUCTS[kind], K.product(bench, kind))


def test_precondition(benchmark, bench):
    """The diagonal empirical Fisher (Martens 2010 §4.7's preconditioner)."""
    run(benchmark, bench, "precondition", K.precondition(bench))


def test_cg_solve(benchmark, bench, cg_iters):
    """One CG solve on the GGN of exactly cg_iters steps, with HF's buffers."""
    run(benchmark, bench, "cg_solve", K.cg(bench, cg_iters), cg_iters=cg_iters)


@pytest.mark.parametrize("algorithm", ["hf", "sgn"])
def test_step(benchmark, bench, algorithm):
    """One step of hf / sgn with the papers' defaults, always from the initial state."""
    run(benchmark, bench, f"{algorithm}_step", K.step(bench, algorithm), algorithm=algorithm)
