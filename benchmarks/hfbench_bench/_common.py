"""What every asv benchmark here shares: the models, the data, the backends, the sync.

Models (`MODELS`; parameter `model`):
- `mlp`: 784-64-10 ReLU, softmax cross-entropy, batch 256 (50,890 weights);
- `autoencoder`: Martens' MNIST autoencoder 784-1000-500-250-30 and its mirror,
  full size (2.84M weights), logistic output, at batch 100 (Martens ran 1000+; 100
  keeps a step near a second on 2 CPU cores);
- `lenet`: `models.lenet()` (LeNet-5 with max pooling, 61,706 weights), batch 64.
The data are synthetic batches (seed 0: uniform inputs, random labels; an autoencoder
reconstructs its inputs), made once in NumPy, so both backends see the same numbers.
`HFBENCH_BENCH_SIZE=tiny` swaps in tiny nets of the same kinds (for the tests, and
for a fast smoke run of every benchmark).

Device: `HFBENCH_BENCH_DEVICE` (default `auto`: the GPU where the framework sees one).
Threads: `HFBENCH_BENCH_THREADS=N` sets torch's intra-op threads (process-wide; default:
torch's own). On a busy machine a pool wider than the free cores makes every op wait
at its barrier (a 50k-weight MLP's gradient: 1 ms with 1 thread, 90 ms with 2 on 2
loaded cores). JAX sizes its CPU pool from XLA_FLAGS when it loads.

Timed bodies end with `Work.block(result)`: on torch `torch.cuda.synchronize()` when
the device is a GPU (nothing to wait for on the CPU, where torch runs eagerly); on
JAX `jax.block_until_ready(result)`, on the result itself, since JAX dispatches
asynchronously. A backend that is not installed raises NotImplementedError in
`setup`, which asv reports as skipped.
"""

from __future__ import annotations

import importlib
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import hfbench
from hfbench import models
from hfbench.errors import BackendError

BENCH_ROOT = Path(__file__).resolve().parents[1]  # benchmarks/: the scripts we reuse
if str(BENCH_ROOT) not in sys.path:  # asv puts it there; a plain import (the tests) may not
    sys.path.insert(0, str(BENCH_ROOT))

BACKENDS = ["torch", "jax"]
MODEL_NAMES = ["mlp", "autoencoder", "lenet"]
SEED = 0

MODELS = {  # name -> (spec factory, batch size)
    "mlp": (lambda: models.mlp([784, 64, 10], "relu"), 256),
    "autoencoder": (lambda: models.autoencoder([784, 1000, 500, 250, 30]), 100),
    "lenet": (models.lenet, 64),
}


def _tiny_conv() -> models.ModelSpec:
    layers = (models.Conv2d(in_channels=1, out_channels=2, kernel_size=3, padding=1),
              models.MaxPool2d(size=2), models.Flatten(),
              models.Dense(in_features=32, out_features=4))
    return models.ModelSpec(input_shape=(1, 8, 8), layers=layers, loss="softmax_cross_entropy",
                            name="tiny_conv")


TINY_MODELS = {
    "mlp": (lambda: models.mlp([16, 8, 4], "relu"), 8),
    "autoencoder": (lambda: models.autoencoder([16, 8, 4]), 8),
    "lenet": (_tiny_conv, 8),
}


def tiny() -> bool:
    return os.environ.get("HFBENCH_BENCH_SIZE", "full") == "tiny"


def device() -> str:
    return os.environ.get("HFBENCH_BENCH_DEVICE", "auto")


def model(name: str):
    """(spec, batch size) of the model `name` at the current size."""
    make, batch = (TINY_MODELS if tiny() else MODELS)[name]
    return make(), batch


def backend(name: str, **options):
    """The backend `name` on `device()`; NotImplementedError (asv: skipped) when it is
    not installed or has no such device."""
    threads = os.environ.get("HFBENCH_BENCH_THREADS")
    if threads and name == "torch":
        options.setdefault("threads", int(threads))
    try:
        return hfbench.get_backend(name, device=device(), **options)
    except BackendError as exc:
        raise NotImplementedError(f"backend {name!r} unavailable: {exc}") from None


def available(name: str) -> str | None:
    """None when backend `name` can be built here, else why not."""
    try:
        backend(name)
    except NotImplementedError as exc:
        return str(exc)
    return None


def concrete_device(be) -> str:
    """"cpu" or "cuda": what a suite or a hand-written loop needs (no "auto")."""
    return "cpu" if be.device == "cpu" else "cuda"


def script(name: str):
    """One of the benchmarks/*.py scripts, imported as a module. harness_overhead sets
    the BLAS thread variables at import, for its own command line; they are put back,
    so importing it here changes no thread count."""
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    try:
        return importlib.import_module(name)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def data(spec, batch: int, seed: int = SEED):
    """A synthetic batch: uniform inputs; labels for a classifier, the inputs for an
    autoencoder, normal targets for a regression."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(batch, spec.input_size)).astype(np.float32)
    if spec.reconstruct:
        return X, X
    if spec.loss == "softmax_cross_entropy":
        return X, rng.integers(0, spec.output_size, batch)
    return X, rng.normal(size=(batch, spec.output_size)).astype(np.float32)


def interleaved(block, fns: dict, rounds: int, repeat: dict | None = None) -> dict:
    """Median seconds per call of each fn, timed in rounds that call each in turn
    (repeat[k] times), each waited for on its own result, after one warm-up call of
    each (compilation). Load drift on a shared machine then hits all of them alike,
    so ratios of these medians hold still when the times themselves do not (the
    method of benchmarks/curvature_ratios.py and cg_overhead.py)."""
    def timed(fn):
        t = time.perf_counter()
        block(fn())
        return time.perf_counter() - t

    for fn in fns.values():
        timed(fn)
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k] += [timed(fn) for _ in range((repeat or {}).get(k, 1))]
    return {k: statistics.median(ts) for k, ts in times.items()}


def cache_over(lists, measure) -> dict:
    """For asv's setup_cache: {combo: measure(*combo)} over the product of `lists`
    (backend first); a backend that is unavailable gets {"skip": why} instead."""
    why = {b: available(b) for b in lists[0]}
    return {combo: ({"skip": why[combo[0]]} if why[combo[0]] else measure(*combo))
            for combo in itertools.product(*lists)}


def cached(cache: dict, *combo) -> dict:
    """The cache entry for `combo`; NotImplementedError (asv: skipped) for a missing backend."""
    entry = cache[combo]
    if "skip" in entry:
        raise NotImplementedError(entry["skip"])
    return entry


class Work:
    """One backend, model and batch, ready to time: problem, x (seed-0 init), batch,
    a random direction v, and `block` to wait for a result."""

    def __init__(self, backend_name: str, model_name: str, **options):
        self.be = backend(backend_name, **options)
        self.spec, self.batch_size = model(model_name)
        self.problem = self.be.problem(self.spec)
        self.x = self.be.asarray(models.init_params(self.spec, seed=SEED))
        self.batch = self.be.batch(*data(self.spec, self.batch_size))
        rng = np.random.default_rng(SEED + 1)
        self.v = self.be.asarray(rng.normal(size=self.spec.num_params).astype(np.float32))
        self.on_gpu = self.be.device != "cpu"
        if backend_name == "jax":
            import jax

            self.block = jax.block_until_ready  # on the result: JAX is asynchronous
        else:
            import torch

            self.block = (lambda out: torch.cuda.synchronize()) if self.on_gpu else (lambda out: out)

    def run(self, fn):
        """Call fn and wait for its result (warm-ups and untimed work)."""
        out = fn()
        self.block(out)
        return out
