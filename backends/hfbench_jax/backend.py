"""JaxBackend: device, dtype and precision resolution, and arrays in and out.

float64 in JAX is a process-wide switch (jax_enable_x64). The backend turns it on
at construction, whatever its own dtype, so that CG scalars can accumulate in
float64 and float32 and float64 backends can live in one process; in exchange,
every array it creates names its dtype explicitly (DESIGN "known traps").
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax import lax

from hfbench import models
from hfbench.devices import device_index, parse_device
from hfbench.errors import DeviceError
from hfbench.protocol import Batch

from . import loops
from .dense import JaxDense
from .gather import Gathered
from .ops import JaxOps
from .options import determinism_flags, deterministic_ops, resolve_options
from .problem import JaxProblem

GPU_PLATFORMS = ("gpu", "cuda", "rocm")  # a jax Device's `platform` on a GPU


class JaxBackend:
    """hfbench's JAX backend: jitted problems on one device.

    Options are checked by `hfbench_jax.options.resolve_options` (as a suite's are).
    device: `hfbench.devices` names: "cpu", "cuda" / "gpu" (the first GPU), "cuda:N"
    / "gpu:N", or "auto" (the first GPU if jax sees one, else the CPU). dtype:
    "float32" or "float64". tf32: allow TensorFloat-32 in float32 matmuls and
    convolutions on GPUs. When False (the default) they run at precision HIGHEST,
    i.e. true float32.
    """

    name = "jax"

    def __init__(self, device: str = "cpu", dtype: str = "float32", tf32: bool = False,
                 threads: int | None = None, **kw):
        # threads: XLA sizes its CPU pool when JAX starts, so it is set from the
        # environment by `hfbench run --threads` before JAX loads; here it is recorded
        opts = resolve_options(dict(device=device, dtype=dtype, tf32=tf32, threads=threads, **kw))
        jax.config.update("jax_enable_x64", True)
        self.dtype = opts["dtype"]
        self.tf32 = opts["tf32"]
        self.precision = None if self.tf32 else lax.Precision.HIGHEST
        self._device = resolve_device(opts["device"])
        self.device = _device_string(self._device)
        # what this backend was built with, its device resolved ("auto" -> "cpu"): the record's
        self.options = {**opts, "device": self.device}
        self.ops = JaxOps(self._device)
        self.dense = JaxDense(self._device, self.dtype)  # newton's dense matrices

    def problem(self, spec: models.ModelSpec) -> JaxProblem:
        problem = JaxProblem(spec, self.dtype, self.precision)
        problem.backend = self
        return problem

    def iterate(self, loop, config, operands, x0=None):
        """Run an algorithm-layer loop (e.g. CG) as one jitted lax.while_loop."""
        return loops.iterate(loop, self.ops, config, operands, x0)

    def linear_operator(self, matrix) -> DenseOperator:
        """A dense matrix as a curvature-style operator (for tests and dense references)."""
        return DenseOperator(self.asarray(np.asarray(matrix)))

    def asarray(self, a):
        """A copy of `a` on this backend's device, in its dtype."""
        if isinstance(a, jax.Array):
            return jax.device_put(a.astype(self.dtype), self._device)
        return jax.device_put(np.asarray(a, dtype=self.dtype), self._device)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(jax.device_get(a))  # explicit, so allowed under guard_transfers

    def batch(self, X, Y, meta=None) -> Batch:
        """Checked inputs and targets on the device; integer labels stay int64.

        meta: the BatchMeta of arrays already prepared (models.prepare on the whole
        set, sliced here): the checks are skipped and only the transfer remains.
        """
        if meta is None:
            X, Y, meta = models.prepare(X, Y, self.dtype)
        put = lambda a: jax.device_put(a, self._device)
        return Batch(put(X), put(Y), meta)

    def take(self, batch: Batch, idx, meta=None) -> Batch:
        """The examples idx (host ints) of a device-resident batch, gathered on the
        device where they are first used (inside a fused step, see gather.py);
        meta: the result's BatchMeta when the caller has it (else derived)."""
        m = batch.meta
        meta = meta or models.BatchMeta(len(idx), m.x_shape, m.y_shape, m.labels, m.label_range)
        return Gathered(batch, np.asarray(idx, dtype=np.int32), meta)

    def to_host(self, values: list) -> list:
        """Device arrays (and plain numbers) as host values, in one transfer."""
        return jax.device_get(list(values))

    def fetch(self, values) -> list[float]:
        """0-d device arrays as Python floats, in one transfer."""
        return [float(v) for v in jax.device_get(list(values))]

    def sync(self, *arrays) -> None:
        """Wait for the given arrays, or for every live array when none are given.

        JAX has no global device barrier; waiting on every live array waits for all
        pending work whose result anyone can still see.
        """
        jax.block_until_ready(list(arrays) or jax.live_arrays())

    def info(self) -> dict:
        return {
            "framework": "jax",
            "framework_version": jax.__version__,
            "device_name": getattr(self._device, "device_kind", str(self._device)),
            "dtype": self.dtype,
            "tf32": self.tf32,
            "mode": "jit",
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            # deterministic GPU kernels: as asked (None: not asked) and as XLA_FLAGS sets them
            "deterministic": self.options.get("deterministic"),
            "deterministic_ops": deterministic_ops(),
            "xla_determinism": determinism_flags(),
            "jaxlib": _jaxlib_version(),
            # the device kind ("NVIDIA H200") names the GPU; a CPU device has none
            "gpu_name": self._device.device_kind if self._device.platform in GPU_PLATFORMS else None,
        }

    def guard_transfers(self):
        """A context in which implicit device -> host transfers (syncs) raise.

        Only that direction: host -> device copies of Python scalars (alpha in
        ops.axpy(0.5, ...)) are asynchronous and harmless, and guarding them too
        would reject ordinary algorithm code.
        """
        return jax.transfer_guard_device_to_host("disallow")

    def __repr__(self) -> str:
        return f"JaxBackend(device={self.device!r}, dtype={self.dtype!r}, tf32={self.tf32})"


def _jaxlib_version() -> str | None:
    try:
        import jaxlib
    except ImportError:  # jax without its jaxlib cannot run; kept for odd installs
        return None
    return getattr(jaxlib, "__version__", None)


def gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU platform in this jaxlib, or none visible
        return []


def resolve_device(device: str):
    """The jax Device for a device name (`hfbench.devices`), or a DeviceError."""
    name = parse_device(device, where="jax backend")
    if name == "cpu":
        return jax.devices("cpu")[0]
    if name == "auto":
        return (gpus() or jax.devices("cpu"))[0]
    return _gpu(device, device_index(name) or 0)


def _gpu(asked: str, index: int):
    found = gpus()
    if not found:
        raise DeviceError(
            f"jax backend: device {asked!r} asked for, but jax sees no GPU on this machine "
            f"(devices: {', '.join(str(d) for d in jax.devices())}); use device='cpu' or "
            "device='auto', or install a CUDA jaxlib (pip install 'jax[cuda12]')"
        )
    if index >= len(found):
        raise DeviceError(
            f"jax backend: device {asked!r} asked for, but jax sees {len(found)} GPU(s) "
            f"(cuda:0 .. cuda:{len(found) - 1}); pick one of those, or device='auto'"
        )
    return found[index]


def _device_string(device) -> str:
    return "cpu" if device.platform == "cpu" else f"cuda:{gpus().index(device)}"


@jax.tree_util.register_pytree_node_class
class DenseOperator:
    """matvec(v) = A v for a dense (n, n) array A; a pytree, so jitted loops take it."""

    kind = "dense"

    def __init__(self, matrix):
        self.matrix, self.size = matrix, matrix.shape[0]

    def matvec(self, v):
        return self.matrix @ v

    def tree_flatten(self):
        return (self.matrix,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)
