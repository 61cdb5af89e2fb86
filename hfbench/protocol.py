"""The contract between hfbench's core and a backend.

A backend turns a `ModelSpec` into a `Problem` on its own arrays. Conventions every
backend keeps, so the same numbers come out of each (checked by
`hfbench.testing.check_backend`):

- Parameters are one flat 1-D vector in the layout of `hfbench.models`.
- objective(theta) = (1/B) sum_i l(z_i, t_i) + l2/2 |theta|^2 (losses: `hfbench.losses`).
- curvature(kind).matvec(v) = C v with
    ggn:     C = (1/B) sum_i J_i^T H_i J_i + l2 I        (Martens 2010 §4.2)
    hessian: C = the Hessian of the objective (l2 I included)
    fisher:  C = (1/B) sum_i g_i g_i^T + l2 I            (empirical Fisher)
  where J_i = dz_i/dtheta, H_i the closed-form loss Hessian in z, g_i = grad of l_i.
  The l2 term's curvature is exact, so every kind carries it.
- precondition = (1/B) sum_i g_i * g_i (no l2), from one backward pass and per-layer
  closed forms (Martens 2010 §4.7 forms (diag + lambda)^0.75 from it).
- All products reuse the work of `curvature()`: `matvec` never reruns the forward pass.

Options. A backend is built as `cls(**options)`: device (`hfbench.devices` names),
dtype (DTYPES), tf32, and its own (torch: compile, threads). The module its entry
point names may also define `resolve_options(options: Mapping) -> dict`, which
checks the options and fills in their defaults without importing the framework
(raising an HFBenchError on a bad one); the suite layer calls it when it loads a
suite, so a bad option is reported at its file and line, and the resolved dict is
part of each trial's config. A backend without it is checked when built. Backends
use `hfbench.protocol_helpers` (option checks, `python_iterate`) besides this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ContextManager, NamedTuple, Protocol, runtime_checkable

from .models.batch import BatchMeta
from .models.spec import ModelSpec

CURVATURE_KINDS = ("ggn", "hessian", "fisher")
DTYPES = ("float32", "float64")

Array = Any  # a backend's 1-D array type (torch.Tensor, jax.Array, ...)


class Batch(NamedTuple):
    """Inputs and targets on the backend's device, plus metadata read without a sync."""

    x: Array
    y: Array
    meta: BatchMeta


@runtime_checkable
class CurvatureOperator(Protocol):
    kind: str
    size: int

    def matvec(self, v: Array) -> Array: ...


@runtime_checkable
class Problem(Protocol):
    spec: ModelSpec
    backend: "Backend"
    n_forward: int  # forward passes run (or traced); matvec must not add to it

    def loss(self, x: Array, batch: Batch) -> Array: ...  # 0-d array, the objective
    def value_and_grad(self, x: Array, batch: Batch) -> tuple[Array, Array]: ...
    def curvature(self, x: Array, batch: Batch, kind: str = "ggn") -> CurvatureOperator: ...
    def precondition(self, x: Array, batch: Batch) -> Array: ...
    def evaluate(self, x: Array, batch: Batch) -> dict[str, float]: ...


@runtime_checkable
class VectorOps(Protocol):
    """The whole vector algebra the algorithm layer uses (cf. optax tree utilities).

    Scalars stay on the device; `vdot` accumulates in float64 where the device has it.
    """

    def zeros_like(self, x: Array) -> Array: ...
    def vdot(self, a: Array, b: Array) -> Array: ...
    def axpy(self, alpha: Any, x: Array, y: Array) -> Array: ...  # alpha * x + y
    def scale(self, alpha: Any, x: Array) -> Array: ...
    def where(self, cond: Any, a: Array, b: Array) -> Array: ...
    def to_float(self, s: Array) -> float: ...  # reads a scalar on the host (a sync)
    # Fixed-size buffers for loop state (CG's phi history, saved iterates). dtype is
    # "float64", "int" or an array whose dtype to copy. `set_if` may reuse `buf`'s
    # storage: a loop's buffers belong to that loop.
    def zeros(self, shape: tuple, dtype: Any) -> Array: ...
    # Like zeros, but the contents may be anything: for buffers whose every read entry
    # is written first (CG's saved iterates), so no fill pass is spent on them.
    def empty(self, shape: tuple, dtype: Any) -> Array: ...
    def asarray(self, value: Any, dtype: Any) -> Array: ...
    def get(self, buf: Array, idx: Any) -> Array: ...
    def set_if(self, buf: Array, idx: Any, value: Any, cond: Any) -> Array: ...
    def isfinite(self, s: Array) -> Array: ...
    # Optional, not part of the checked protocol: norm(x) -> |x| as a 0-d array in x's
    # dtype, one op, for diagnostics (the algorithms fall back to vdot(x, x) ** 0.5);
    # lerp(a, b, w) -> a + w (b - a) for a Python number w, one pass (fallback: axpy);
    # pack(values) -> the arrays (None skipped) raveled into one float64 array, for a
    # compiled step to hand the host one buffer to read instead of one per value
    # (fallback: the backend's to_host, reading each).


@runtime_checkable
class Backend(Protocol):
    name: str
    device: str  # the resolved device, e.g. "cpu", "cuda:0"
    dtype: str
    ops: VectorOps

    def problem(self, spec: ModelSpec) -> Problem: ...
    def asarray(self, a: Any) -> Array: ...
    def to_numpy(self, a: Array) -> Any: ...
    # X, Y checked in NumPy and moved to the device. With `meta` (the caller prepared
    # the arrays with models.prepare and vouches for them), only the transfer remains.
    def batch(self, X: Any, Y: Any, meta: BatchMeta | None = None) -> Batch: ...
    def sync(self, *arrays: Array) -> None: ...  # waits for device work (on `arrays` at least)
    # Optional, not part of the checked protocol: fetch(values) -> list[float], 0-d
    # device scalars as Python floats in one transfer (the runner reads a stretch of
    # steps' scalars at once; without it, one to_numpy per value).
    def info(self) -> Mapping[str, Any]: ...  # framework version, device name, tf32, mode
    # Optional, not part of the checked protocol: `options`, the dict the backend was
    # built with as it resolved it (device "auto" -> "cpu"); records keep it.
    def guard_transfers(self) -> ContextManager: ...  # errors on implicit host transfers
    # Runs loop.init, then loop.step while loop.cont (hfbench.algorithms.solve.Loop):
    # JAX in one jitted while_loop, eager frameworks via solve.python_iterate (torch
    # with the loop's `update` compiled).
    def iterate(self, loop: Any, config: Any, operands: Any, x0: Any = None) -> Any: ...
    def linear_operator(self, matrix: Any) -> CurvatureOperator: ...  # dense A, for tests
