"""Cost of the curvature products relative to one gradient, per backend.

    python benchmarks/curvature_ratios.py                  # both backends, MNIST autoencoder
    python benchmarks/curvature_ratios.py --backend jax --batch 500 --threads 2

For each backend: time one value_and_grad, one Gv (ggn matvec), Hv, Fisher.v, one
precondition() and the one-off curvature() setup, in rounds that interleave them;
report the median of each over rounds divided by the median gradient time. The
device is synced before every clock read. Compilation is excluded (warm-up calls).
Issue #2 floors: Gv <= 1.25 (torch), <= 1.2 (JAX); precondition <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

import hfbench
from hfbench import models

MODELS = {
    "mnist_autoencoder": lambda: models.autoencoder([784, 1000, 500, 250, 30]),
    "mlp_3x20": lambda: models.mlp([784, 20, 20, 20, 10], "sigmoid"),
    "gargiani_fashion_cnn": models.gargiani_fashion_cnn,
    "gargiani_cifar_cnn": models.gargiani_cifar_cnn,
    "lenet": models.lenet,
}


def _data(spec, batch, rng):
    X = rng.uniform(size=(batch, spec.input_size)).astype(np.float32)
    if spec.reconstruct:
        return X, X
    if spec.loss == "softmax_cross_entropy":
        return X, rng.integers(0, spec.output_size, batch)
    return X, rng.normal(size=(batch, spec.output_size)).astype(np.float32)


def _timed(be, fn):
    be.sync()
    t = time.perf_counter()
    out = fn()
    be.sync(out)  # JAX dispatches asynchronously: wait on the result itself
    return time.perf_counter() - t, out


def measure(name, spec, batch, rounds, dtype, device):
    be = hfbench.get_backend(name, device=device, dtype=dtype)
    rng = np.random.default_rng(0)
    problem = be.problem(spec)
    x = be.asarray(models.init_params(spec, seed=0, dtype=dtype))
    data = be.batch(*_data(spec, batch, rng))
    v = be.asarray(rng.normal(size=spec.num_params).astype(dtype))
    ops = {kind: problem.curvature(x, data, kind) for kind in hfbench.CURVATURE_KINDS}
    work = {
        "grad": lambda: problem.value_and_grad(x, data),
        "Gv": lambda: ops["ggn"].matvec(v),
        "Hv": lambda: ops["hessian"].matvec(v),
        "Fv": lambda: ops["fisher"].matvec(v),
        "precondition": lambda: problem.precondition(x, data),
        "curvature() setup": lambda: problem.curvature(x, data, "ggn"),
    }
    compile_s = {k: _timed(be, f)[0] for k, f in work.items()}  # first calls: compile/warm-up
    for f in work.values():
        _timed(be, f)
    times = {k: [] for k in work}
    for _ in range(rounds):
        for k, f in work.items():
            times[k].append(_timed(be, f)[0])
    med = {k: statistics.median(ts) for k, ts in times.items()}
    return {
        "backend": name,
        "info": dict(be.info()),
        "grad_s": med["grad"],
        "ratios": {k: med[k] / med["grad"] for k in work if k != "grad"},
        "first_call_s": compile_s,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", action="append", help="torch, jax (default: every installed)")
    p.add_argument("--model", default="mnist_autoencoder", choices=sorted(MODELS))
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.threads:
        _limit_threads(args.threads)
    names = args.backend or [n for n, why in hfbench.installed_backends().items() if why is None]
    spec = MODELS[args.model]()
    results = [measure(n, spec, args.batch, args.rounds, args.dtype, args.device) for n in names]
    _print(results, args, spec)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "machine": platform.platform(), "results": results},
                      fh, indent=2)


def _limit_threads(n):
    # XLA's CPU thread pool takes every core and has no stable flag to cap it; torch does.
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def _print(results, args, spec):
    print(f"model {args.model} ({spec.num_params:,} params), batch {args.batch}, "
          f"{args.dtype}, device {args.device}, {args.rounds} rounds, median ratio to one gradient")
    keys = list(results[0]["ratios"])
    print("| backend | device | grad (ms) | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 3) + "|")
    for r in results:
        cells = " | ".join(f"{r['ratios'][k]:.2f}" for k in keys)
        print(f"| {r['backend']} | {r['info'].get('device_name', '?')} | "
              f"{1e3 * r['grad_s']:.1f} | {cells} |")
    for r in results:
        firsts = ", ".join(f"{k} {v:.2f}s" for k, v in r["first_call_s"].items())
        print(f"first calls (compile/warm-up) on {r['backend']}: {firsts}")


if __name__ == "__main__":
    main()
