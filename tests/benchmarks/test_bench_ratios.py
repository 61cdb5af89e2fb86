"""Ratio benchmarks: kernels timed in alternation (`bench_interleave`), ratios in extra_info.

- test_curvature_ratios: gradient, Gv, Hv, Fv, precondition and curvature() setup,
  one of each per round; ratio = median / median gradient (issue #2's floors:
  Gv <= 1.25 torch, <= 1.2 JAX; precondition <= 1.5).
- test_cg_overhead: Gv (x3) and a fixed-length CG solve per round; overhead = solve
  / (iterations x Gv) (issue #3's floors: <= 1.05 autoencoder, <= 2 small MLP). On
  torch also "in situ" (a solve over the sum of its own Gvs, timed inside it) and
  "loop alone" (a solve whose operator returns a stored vector).
- test_hf_phases: consecutive hf steps with profile=True (synced between phases)
  and Armijo line search, after two warm-up steps; per-phase medians.
"""

from __future__ import annotations

import statistics
import time

import bench_kernels as K
from bench_interleave import Interleaved


def pedantic(benchmark, b: K.Bench, name: str, fn, rounds: int):
    benchmark.group = f"{b.model}: {name}"
    benchmark.pedantic(fn, rounds=rounds, iterations=1)


def test_curvature_ratios(benchmark, bench, rounds):
    il = Interleaved(bench.sync, {
        "grad": K.grad(bench),
        **{K.PRODUCTS[kind]: K.product(bench, kind) for kind in K.PRODUCTS},
        "precondition": K.precondition(bench),
        "curvature() setup": K.curvature_setup(bench, "ggn"),
    })
    il.warm_up()
    pedantic(benchmark, bench, "curvature ratios round", il.round, rounds)
    benchmark.extra_info.update(bench.extra_info(), kernel="curvature_ratios",
                                **il.summary("grad"))


class _Fixed:
    """An operator whose product is a stored vector: a CG solve over it costs only the
    loop's own work (torch only; a JAX operator must be a pytree)."""

    kind = "ggn"

    def __init__(self, out):
        self.out = out

    def matvec(self, v):
        return self.out


class _InSitu:
    """A CG solve over an operator that times each of its own matvecs (synced around
    each), recording solve time / sum of matvec times (torch: an eager loop)."""

    def __init__(self, b: K.Bench, iters: int):
        self.b, self.op, self.kind, self.times, self.ratios = b, b.operator("ggn"), "ggn", [], []
        self.solve = K.cg(b, iters, op=self)

    def matvec(self, v):
        t = time.perf_counter()
        out = self.b.sync(self.op.matvec(v))
        self.times.append(time.perf_counter() - t)
        return out

    def __call__(self):
        self.times.clear()
        t = time.perf_counter()
        x = self.b.sync(self.solve())
        self.ratios.append((time.perf_counter() - t) / sum(self.times))
        return x


def test_cg_overhead(benchmark, bench, rounds, cg_iters):
    g = bench.grad
    kernels = {"Gv": K.product(bench, "ggn", v=g), "cg": K.cg(bench, cg_iters)}
    in_situ = None
    if bench.backend.name == "torch":
        kernels["loop"] = K.cg(bench, cg_iters, op=_Fixed(bench.operator("ggn").matvec(g)))
        kernels["in situ"] = in_situ = _InSitu(bench, cg_iters)
    il = Interleaved(bench.sync, kernels, repeat={"Gv": 3, "loop": 3})
    il.warm_up()
    if in_situ:
        in_situ.ratios.clear()
    pedantic(benchmark, bench, "cg overhead round", il.round, rounds)
    s = il.summary("Gv", per={"cg": cg_iters, "loop": cg_iters, "in situ": cg_iters})
    extra = {
        "kernel": "cg_overhead", "cg_iters": cg_iters, "gv_s": s["median_s"]["Gv"],
        "cg_s": s["median_s"]["cg"], "overhead": s["ratio"]["cg"],
        "in_situ": statistics.median(in_situ.ratios) if in_situ else None,
        "loop_s_per_iter": s["median_s"]["loop"] / cg_iters if in_situ else None,
        "cg_first_call_extra_s": s["first_call_extra_s"]["cg"],
    }
    benchmark.extra_info.update(bench.extra_info(), **extra, interleaved=s)


def test_hf_phases(benchmark, bench, hf_steps):
    from hfbench import algorithms

    alg = algorithms.get("hf", profile=True, line_search=True)
    run = {"x": bench.x, "state": alg.init(bench.x), "infos": []}

    def one_step():
        x, run["state"], info = alg.step(bench.problem, run["x"], run["state"], bench.batch)
        run["x"] = bench.sync(x)
        run["infos"].append(info)
        return x

    # The first step compiles; so does the second on JAX, the first to warm-start CG.
    first = [K.first_call(bench, one_step) for _ in range(2)]
    run["infos"].clear()
    pedantic(benchmark, bench, "hf step (profiled)", one_step, hf_steps)
    infos = run["infos"]
    phases = {k[2:]: statistics.median(i[k] for i in infos) for k in infos[-1] if k.startswith("t_")}
    benchmark.extra_info.update(
        bench.extra_info(), kernel="hf_phases", steps=len(infos), phases_s=phases,
        total_s=sum(phases.values()), first_steps_s=first,
        cg_iters=statistics.median(i["cg_iters"] for i in infos),
    )
