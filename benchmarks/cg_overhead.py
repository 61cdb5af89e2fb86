"""CG loop overhead and the cost split of one hf step, per backend.

    python benchmarks/cg_overhead.py --threads 2

CG overhead = (time of a CG solve of n iterations) / (n x time of one Gv), for the
same operator, with HF's settings (float64 scalars, saved iterates, phi history).
Issue #3 floors: <= 1.05 on the MNIST autoencoder at batch 1000, <= 2 on a 3x20
sigmoid MLP at batch 1000 (where a Python loop shows). Then one full hf step split
into gradient, curvature setup, preconditioner, CG, backtracking and line search
(hf's `profile=True`, which syncs between phases). Compilation is excluded: every
timed call is preceded by a warm-up of the same shapes, and the extra time of
that first call is reported apart. Medians over rounds. The torch backend runs
with each `--torch-compile` setting (eager vector updates, and fused by
torch.compile; see `hfbench_torch.compiled`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import hfbench
from hfbench import algorithms, models
from hfbench.algorithms import CGConfig, cg_solve

MODELS = {
    "mnist_autoencoder": lambda: models.autoencoder([784, 1000, 500, 250, 30]),
    "mlp_3x20": lambda: models.mlp([784, 20, 20, 20, 10], "sigmoid"),
}


def _data(spec, batch, rng):
    X = rng.uniform(size=(batch, spec.input_size)).astype(np.float32)
    if spec.reconstruct:
        return X, X
    return X, rng.integers(0, spec.output_size, batch)


def _timed(be, fn) -> float:
    be.sync()
    t = time.perf_counter()
    be.sync(fn())  # JAX dispatches asynchronously: wait on the result itself
    return time.perf_counter() - t


def _interleaved(be, fns: dict, rounds: int, repeat: dict):
    """Median seconds per call of each fn, timed in interleaved rounds (so load drift
    on a shared machine hits all alike), and each one's first-call extra."""
    first = {k: _timed(be, fn) for k, fn in fns.items()}  # warm-up: compilation, caches
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k] += [_timed(be, fn) for _ in range(repeat.get(k, 1))]
    med = {k: statistics.median(v) for k, v in times.items()}
    return med, {k: first[k] - med[k] for k in fns}


class _Timed:
    """Wraps an operator and records how long each matvec took, syncing around it, so a
    solve's time can be divided by the Gvs it actually did (torch: an eager loop)."""

    def __init__(self, be, op):
        self.be, self.op, self.kind, self.times = be, op, op.kind, []

    def matvec(self, v):
        self.be.sync()
        t = time.perf_counter()
        out = self.op.matvec(v)
        self.be.sync(out)
        self.times.append(time.perf_counter() - t)
        return out


class _Fixed:
    """An operator whose product is a stored vector: a CG solve over it costs only the
    loop's own work (torch only; a JAX operator must be a pytree)."""

    kind = "ggn"

    def __init__(self, out):
        self.out = out

    def matvec(self, v):
        return self.out


def cg_overhead(be, spec, batch, iters, rounds):
    """Gv and CG-solve medians, the overhead ratio, the CG first-call extra, and (torch)
    the loop's own time per iteration, measured with a stored product."""
    rng = np.random.default_rng(0)
    problem = be.problem(spec)
    x = be.asarray(models.init_params(spec, seed=0))
    data = be.batch(*_data(spec, batch, rng))
    _, g = problem.value_and_grad(x, data)
    op = problem.curvature(x, data, "ggn")
    b = be.ops.scale(-1.0, g)
    cfg = CGConfig(stop="fixed", iters=iters, max_iters=iters)  # HF's buffers, fixed length
    fns = {"gv": lambda: op.matvec(g), "cg": lambda: cg_solve(be, cfg, op, b, 1.0).x}
    in_situ = []
    if be.name == "torch":
        fixed, timed = _Fixed(op.matvec(g)), _Timed(be, op)
        fns["loop"] = lambda: cg_solve(be, cfg, fixed, b, 1.0).x

        def solve_timed():
            timed.times.clear()
            t = time.perf_counter()
            x = cg_solve(be, cfg, timed, b, 1.0).x
            be.sync(x)
            in_situ.append((time.perf_counter() - t) / sum(timed.times))
            return x

        fns["timed"] = solve_timed
    med, extra = _interleaved(be, fns, rounds, {"gv": 3, "loop": 3})
    loop_ms = 1e3 * med["loop"] / iters if "loop" in med else float("nan")
    ratio_in_situ = statistics.median(in_situ[1:]) if in_situ else float("nan")
    return (med["gv"], med["cg"], med["cg"] / (iters * med["gv"]), ratio_in_situ,
            extra["cg"], loop_ms)


def hf_split(be, spec, batch, steps):
    rng = np.random.default_rng(1)
    problem = be.problem(spec)
    x = be.asarray(models.init_params(spec, seed=0))
    data = be.batch(*_data(spec, batch, rng))
    alg = algorithms.get("hf", profile=True, line_search=True)
    state = alg.init(x)
    rows = []
    for _ in range(steps + 1):  # the first step compiles; dropped below
        x, state, info = alg.step(problem, x, state, data)
        rows.append(info)
    keys = [k for k in rows[-1] if k.startswith("t_")]
    med = {k: statistics.median(r[k] for r in rows[1:]) for k in keys}
    return med, statistics.median(r["cg_iters"] for r in rows[1:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", action="append")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--hf-steps", type=int, default=3)
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--torch-compile", action="append", choices=["auto", "true", "false"],
        help="torch backend's compile option(s) to measure (default: false and true)",
    )
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = args.backend or [n for n, why in hfbench.installed_backends().items() if why is None]
    compile_modes = [{"auto": "auto", "true": True, "false": False}[m]
                     for m in (args.torch_compile or ["false", "true"])]
    configs = [(n, {"compile": c} if n == "torch" else {})
               for n in names for c in (compile_modes if n == "torch" else [None])]
    print(f"CG overhead: {args.iters} iterations, batch {args.batch}, float32, {args.device}")
    print("overhead = CG solve / (iterations x Gv), Gv and solves timed in interleaved rounds;")
    print("in situ = a solve's time / the sum of its own Gv times, synced around each (torch);")
    print("loop alone = a solve whose operator returns a stored vector, per iteration (torch);")
    print("first-call extra = first solve minus a steady one (compilation, caches)\n")
    print("| backend | options | model | Gv (ms) | CG solve (ms) | overhead | in situ "
          "| loop alone (ms/iter) | first-call extra (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, opts in configs:
        be = hfbench.get_backend(name, device=args.device, **opts)
        for model, make in MODELS.items():
            t_gv, t_cg, ratio, in_situ, extra, loop_ms = cg_overhead(
                be, make(), args.batch, args.iters, args.rounds)
            print(f"| {name} | {_fmt(opts)} | {model} | {1e3 * t_gv:.2f} | {1e3 * t_cg:.1f} "
                  f"| {ratio:.3f} | {in_situ:.3f} | {loop_ms:.2f} | {extra:.1f} |")
    print("\nOne hf step on mnist_autoencoder (Armijo line search on), median seconds per phase:")
    for name, opts in configs if args.hf_steps > 0 else []:
        be = hfbench.get_backend(name, device=args.device, **opts)
        med, cg_iters = hf_split(be, MODELS["mnist_autoencoder"](), args.batch, args.hf_steps)
        total = sum(med.values())
        parts = ", ".join(f"{k[2:]} {v:.3f}" for k, v in med.items())
        print(f"{name} {_fmt(opts)}: total {total:.3f} s (median CG iterations {cg_iters}): {parts}")


def _fmt(opts) -> str:
    return ", ".join(f"{k}={v}" for k, v in opts.items()) or "-"


if __name__ == "__main__":
    main()
