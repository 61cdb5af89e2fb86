"""The kernels the micro-benchmarks time, and the setup they share.

One `Bench` per (backend variant, model, batch, dtype, device, threads), built once
per process (`bench_setup` is cached), so JAX compiles each function once. Every
kernel is a zero-argument callable; `Bench.synced` wraps one so that it waits for
its own result before returning (JAX: `jax.block_until_ready` via `backend.sync`;
torch: `torch.cuda.synchronize()` on CUDA, nothing to wait for on the CPU).

The setup is that of the old `benchmarks/curvature_ratios.py` and
`benchmarks/cg_overhead.py`: weights from `models.init_params(seed=0)`, uniform
inputs, a random direction v for the products, and CG on the GGN with HF's buffers
(float64 scalars, saved iterates, phi history) run for a fixed number of steps.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import hfbench
from hfbench import algorithms, models
from hfbench.algorithms import CGConfig, cg_solve

# name -> (spec factory, default batch). The first is the default benchmark model;
# the rest are opt-in (`--bench-model`), the autoencoder being the issues' yardstick.
MODELS: dict[str, tuple[Callable[[], models.ModelSpec], int]] = {
    "mlp_784_64_10": (lambda: models.mlp([784, 64, 10], "sigmoid"), 256),
    "mnist_autoencoder": (lambda: models.autoencoder([784, 1000, 500, 250, 30]), 1000),
    "mlp_3x20": (lambda: models.mlp([784, 20, 20, 20, 10], "sigmoid"), 1000),
    "gargiani_fashion_cnn": (models.gargiani_fashion_cnn, 1000),
    "gargiani_cifar_cnn": (models.gargiani_cifar_cnn, 1000),
    "lenet": (models.lenet, 1000),
}
DEFAULT_MODEL = "mlp_784_64_10"

# variant -> (backend name, its options). "torch" keeps the backend's own
# compile="auto" (eager below 100k parameters, compiled CG updates above).
VARIANTS: dict[str, tuple[str, dict]] = {
    "torch": ("torch", {}),
    "torch-eager": ("torch", {"compile": False}),
    "torch-compiled": ("torch", {"compile": True}),
    "jax": ("jax", {}),
}
DEFAULT_VARIANTS = ("torch", "jax")

PRODUCTS = {"ggn": "Gv", "hessian": "Hv", "fisher": "Fv"}  # curvature kind -> product name


def missing(variant: str) -> str | None:
    """Why `variant`'s backend cannot run here (with the extra to install), or None."""
    name = VARIANTS[variant][0]
    why = hfbench.installed_backends().get(name, "not registered")
    return None if why is None else f"backend {name!r} not installed: pip install 'hfbench[{name}]' ({why})"


def make_data(spec: models.ModelSpec, batch: int, rng: np.random.Generator):
    """Uniform inputs; labels, reconstruction targets or normal targets by loss."""
    X = rng.uniform(size=(batch, *spec.input_shape)).astype(np.float32)
    if spec.reconstruct:
        return X, X.reshape(batch, -1)
    if spec.loss == "softmax_cross_entropy":
        return X, rng.integers(0, spec.output_size, batch)
    return X, rng.normal(size=(batch, spec.output_size)).astype(np.float32)


@dataclass
class Bench:
    """One model's problem, weights, batch and direction on one backend."""

    variant: str
    model: str
    batch_size: int
    backend: Any
    problem: Any
    spec: models.ModelSpec
    x: Any
    batch: Any
    v: Any  # a random direction, for the curvature products
    _ops: dict = field(default_factory=dict)

    def sync(self, out=None):
        """Wait for the device work behind `out` (a pytree of arrays) and return it."""
        self.backend.sync(out) if out is not None else self.backend.sync()
        return out

    def synced(self, fn: Callable) -> Callable:
        """fn, made to wait for its own result: what a benchmark must time."""
        return lambda: self.sync(fn())

    def operator(self, kind: str):
        """The curvature operator of `kind` at (x, batch), built once."""
        if kind not in self._ops:
            self._ops[kind] = self.sync(self.problem.curvature(self.x, self.batch, kind))
        return self._ops[kind]

    @functools.cached_property
    def grad(self):
        return self.sync(self.problem.value_and_grad(self.x, self.batch)[1])

    def extra_info(self) -> dict:
        """What identifies a measurement: backend, device, dtype, model, sizes, versions."""
        info = dict(self.backend.info())
        out = {
            "backend": self.backend.name, "variant": self.variant,
            "device": getattr(self.backend, "device", info.get("device", "?")),
            "device_name": info.get("device_name"), "dtype": self.backend.dtype,
            "model": self.model, "n_params": self.spec.num_params, "batch": self.batch_size,
            "framework_version": info.get("framework_version"),
        }
        for key in ("compile", "num_threads", "mode"):
            if key in info:
                out[key] = info[key]
        return out


@functools.lru_cache(maxsize=None)
def bench_setup(variant: str, model: str, batch: int | None = None, dtype: str = "float32",
                device: str = "cpu", threads: int | None = None) -> Bench:
    """The cached Bench of these settings (threads: torch's intra-op pool size)."""
    name, options = VARIANTS[variant]
    if name == "torch" and threads:
        options = {**options, "threads": threads}
    be = hfbench.get_backend(name, device=device, dtype=dtype, **options)
    make_spec, default_batch = MODELS[model]
    spec, batch = make_spec(), batch or default_batch
    rng = np.random.default_rng(0)
    x = be.asarray(models.init_params(spec, seed=0, dtype=dtype))
    data = be.batch(*make_data(spec, batch, rng))
    v = be.asarray(rng.normal(size=spec.num_params).astype(dtype))
    return Bench(variant, model, batch, be, be.problem(spec), spec, x, data, v)


# ----------------------------------------------------------------------------- kernels


def grad(b: Bench) -> Callable:
    return lambda: b.problem.value_and_grad(b.x, b.batch)


def curvature_setup(b: Bench, kind: str) -> Callable:
    return lambda: b.problem.curvature(b.x, b.batch, kind)


def product(b: Bench, kind: str, v=None) -> Callable:
    op, v = b.operator(kind), b.v if v is None else v
    return lambda: op.matvec(v)


def precondition(b: Bench) -> Callable:
    return lambda: b.problem.precondition(b.x, b.batch)


def cg_config(iters: int) -> CGConfig:
    """HF's CG buffers (float64 scalars, saved iterates, phi history), fixed length."""
    return CGConfig(stop="fixed", iters=iters, max_iters=iters)


def cg(b: Bench, iters: int, op=None) -> Callable:
    """One solve (G + I) x = -g of exactly `iters` steps; returns x."""
    cfg, op = cg_config(iters), b.operator("ggn") if op is None else op
    rhs = b.backend.ops.scale(-1.0, b.grad)
    return lambda: cg_solve(b.backend, cfg, op, rhs, 1.0).x


def step(b: Bench, algorithm: str, **options) -> Callable:
    """One step of `algorithm` from the initial point and state (the same work each call)."""
    alg = algorithms.get(algorithm, **options)
    state = alg.init(b.x)
    return lambda: alg.step(b.problem, b.x, state, b.batch)[0]


def first_call(b: Bench, fn: Callable) -> float:
    """Seconds of fn's first (compiling, cache-filling) call, synced; a warm-up."""
    t = time.perf_counter()
    b.sync(fn())
    return time.perf_counter() - t
