"""CG loop overhead and the cost split of one hf step, per backend.

    python benchmarks/cg_overhead.py --threads 2

CG overhead = (time of a CG solve of n iterations) / (n x time of one Gv), for the
same operator, with HF's settings (float64 scalars, saved iterates, phi history).
Issue #3 floors: <= 1.05 on the MNIST autoencoder at batch 1000, <= 2 on a 3x20
sigmoid MLP at batch 1000 (where a Python loop shows). Then one full hf step split
into gradient, curvature setup, preconditioner, CG, backtracking and line search
(hf's `profile=True`, which syncs between phases). Compilation is excluded: every
timed call is preceded by a warm-up of the same shapes. Medians over rounds.
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


def _median_time(be, fn, rounds):
    fn()  # warm-up: compilation and caches
    times = []
    for _ in range(rounds):
        be.sync()
        t = time.perf_counter()
        out = fn()
        be.sync(out)  # JAX dispatches asynchronously: wait on the result itself
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cg_overhead(be, spec, batch, iters, rounds):
    rng = np.random.default_rng(0)
    problem = be.problem(spec)
    x = be.asarray(models.init_params(spec, seed=0))
    data = be.batch(*_data(spec, batch, rng))
    _, g = problem.value_and_grad(x, data)
    op = problem.curvature(x, data, "ggn")
    b = be.ops.scale(-1.0, g)
    t_gv = _median_time(be, lambda: op.matvec(g), rounds)
    cfg = CGConfig(stop="fixed", iters=iters, max_iters=iters)  # HF's buffers, fixed length
    t_cg = _median_time(be, lambda: cg_solve(be, cfg, op, b, 1.0).x, rounds)
    return t_gv, t_cg, t_cg / (iters * t_gv)


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
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = args.backend or [n for n, why in hfbench.installed_backends().items() if why is None]
    print(f"CG overhead: {args.iters} iterations, batch {args.batch}, float32, {args.device}")
    print("| backend | model | Gv (ms) | CG solve (ms) | overhead |\n|---|---|---|---|---|")
    for name in names:
        be = hfbench.get_backend(name, device=args.device)
        for model, make in MODELS.items():
            t_gv, t_cg, ratio = cg_overhead(be, make(), args.batch, args.iters, args.rounds)
            print(f"| {name} | {model} | {1e3 * t_gv:.2f} | {1e3 * t_cg:.1f} | {ratio:.3f} |")
    print("\nOne hf step on mnist_autoencoder (Armijo line search on), median seconds per phase:")
    for name in names:
        be = hfbench.get_backend(name, device=args.device)
        med, cg_iters = hf_split(be, MODELS["mnist_autoencoder"](), args.batch, args.hf_steps)
        total = sum(med.values())
        parts = ", ".join(f"{k[2:]} {v:.3f}" for k, v in med.items())
        print(f"{name}: total {total:.3f} s (median CG iterations {cg_iters}): {parts}")


if __name__ == "__main__":
    main()
