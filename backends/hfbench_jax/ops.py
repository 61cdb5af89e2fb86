"""The vector algebra of the algorithm layer (hfbench.protocol.VectorOps) on jax arrays.

Each function is a small jitted jnp expression: called eagerly it is one fused
dispatch, and inside a jitted `lax.while_loop` body it simply inlines. Scalars
never leave the device except through `to_float`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.jit
def _vdot(a, b):
    """a . b accumulated in float64 (CG drifts in float32; DESIGN "known traps").

    Needs jax_enable_x64, which JaxBackend turns on.
    """
    return jnp.vdot(a.astype(jnp.float64), b.astype(jnp.float64))


@jax.jit
def _axpy(alpha, x, y):
    # alpha is cast to x's dtype first: a float64 CG scalar would otherwise
    # promote a float32 vector to float64.
    return jnp.asarray(alpha, dtype=x.dtype) * x + y


@jax.jit
def _norm(x):
    return jnp.linalg.norm(x)


@jax.jit
def _scale(alpha, x):
    return jnp.asarray(alpha, dtype=x.dtype) * x


# dtypes whose every value a float64 holds exactly; int64 goes in too, for counters
# (iteration counts, status codes), which stay far below 2**53
_PACKS_EXACTLY = ("f", "b", "i", "u")


@jax.jit
def _where(cond, a, b):
    return jnp.where(cond, a, b)


class JaxOps:
    """VectorOps on 1-D jax arrays; results keep the dtype of the vector operands.

    Instances on the same device compare equal: as a static jit argument (the loop
    runner's) one compiled loop then serves every backend on that device.
    """

    def __init__(self, device=None):
        self.device = device  # where new buffers go outside jit (None: JAX's default)

    def __eq__(self, other):
        return type(other) is type(self) and other.device == self.device

    def __hash__(self):
        return hash((type(self), self.device))

    def zeros_like(self, x):
        return jnp.zeros_like(x)

    def vdot(self, a, b):
        """a . b as a 0-d float64 device array."""
        return _vdot(a, b)

    def axpy(self, alpha, x, y):
        """alpha * x + y, in x's dtype."""
        return _axpy(alpha, x, y)

    def scale(self, alpha, x):
        """alpha * x, in x's dtype."""
        return _scale(alpha, x)

    def norm(self, x):
        """|x| as a 0-d array in x's dtype, for diagnostics (CG's scalars use vdot)."""
        return _norm(x)

    def where(self, cond, a, b):
        return _where(cond, a, b)

    def pack(self, values):
        """The arrays (None skipped) raveled into one float64 array, so a jitted step
        hands the host one buffer: on a CPU each array read back costs ~9 us and each
        output ~2 us, so ten 0-d results cost a small step ~0.1 ms (one: ~0.01 ms)."""
        values = [v for v in values if v is not None]
        for v in values:
            if v.dtype.kind not in _PACKS_EXACTLY or v.dtype.itemsize > 8:
                raise TypeError(f"pack: {v.dtype} does not fit a float64 exactly")
        parts = [jnp.ravel(v).astype(jnp.float64) for v in values]
        return jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float64)

    def to_float(self, s) -> float:
        """Read a 0-d array on the host (a sync, by design)."""
        # An explicit device_get: a deliberate read, allowed under guard_transfers.
        return float(jax.device_get(s))

    def zeros(self, shape, dtype):
        """New zeros; dtype is "float64", "int", or an array whose dtype to take."""
        return self._put(jnp.zeros(shape, dtype=_dtype(dtype)))

    def empty(self, shape, dtype):
        """zeros: JAX has no uninitialized arrays (inside a jit XLA may skip the fill)."""
        return self.zeros(shape, dtype)

    def asarray(self, value, dtype):
        return self._put(jnp.asarray(value, dtype=_dtype(dtype)))

    def get(self, buf, idx):
        return buf[idx]

    def set_if(self, buf, idx, value, cond):
        """buf with buf[idx] = value where cond holds (in place inside a while_loop)."""
        return buf.at[idx].set(jnp.where(cond, value, buf[idx]))

    def isfinite(self, s):
        return jnp.isfinite(s)

    def _put(self, a):
        # Inside a trace placement follows the inputs; outside, honour the device.
        if self.device is None or isinstance(a, jax.core.Tracer):
            return a
        return jax.device_put(a, self.device)


def _dtype(dtype):
    if hasattr(dtype, "dtype"):
        return dtype.dtype
    return {"float64": jnp.float64, "int": jnp.int64}[dtype]
