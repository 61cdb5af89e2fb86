"""The vector algebra of `hfbench.protocol.VectorOps` on torch tensors.

Scalars stay 0-d tensors on the device, so the algorithm layer's CG loop never
waits on the host; only `to_float` reads one back (a sync).
"""

from __future__ import annotations

import math

import torch


class TorchOps:
    """The algorithm layer's vector algebra on torch tensors of one device.

    `set_if` writes into its buffer in place and returns it: CG's history buffers
    belong to the running loop, and copying a (slots, n) iterate buffer on every
    step would cost more than the matvec.

    host_reads: branch on 0-d CPU tensors read on the host (cheap on the CPU, and it
    skips whole passes); False for code that torch.compile traces, where such a
    read would be a data-dependent graph break.
    """

    host_reads = True

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def zeros_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def vdot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a . b with products and sum in float64 (CG's r.r and p.Ap drift in float32).

        Float32 products would be cheaper on the CPU (5.4 vs 8.4 ms on 2.8M values) but
        underflow once CG nears float32 precision (r ~ 1e-22), ending a solve one
        iteration before the JAX backend, whose float64 products do not underflow.
        """
        return torch.dot(a.to(torch.float64), b.to(torch.float64))

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        """|x| as a 0-d tensor in x's dtype: one op, for diagnostics (CG's scalars use vdot)."""
        return torch.linalg.vector_norm(x)

    def axpy(self, alpha, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """alpha * x + y; alpha may be a python number or a 0-d device tensor.

        A 0-d float64 alpha does not promote a float32 x (torch's rule for 0-d
        tensors), so vectors keep the backend dtype.
        """
        if isinstance(alpha, torch.Tensor):
            return torch.addcmul(y, alpha, x)  # one fused pass, no alpha * x temporary
        return torch.add(y, x, alpha=alpha)

    def scale(self, alpha, x: torch.Tensor) -> torch.Tensor:
        return alpha * x

    def lerp(self, a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
        """a + w (b - a) in one pass (a first-order update's moving average)."""
        return torch.lerp(a, b, w)

    def where(self, cond, a, b):
        """cond ? a : b, elementwise. A condition the host can read for free (a python
        bool, or a 0-d tensor on the CPU) picks a whole operand without a select pass."""
        pick = self._host_bool(cond)
        if pick is not None and isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return a if pick else b
        return torch.where(cond, a, b)

    def to_float(self, s) -> float:
        return float(s)

    def zeros(self, shape, dtype) -> torch.Tensor:
        """New zeros; dtype is "float64", "int", or an array whose dtype to take."""
        return torch.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def empty(self, shape, dtype) -> torch.Tensor:
        return torch.empty(shape, dtype=self._dtype(dtype), device=self.device)

    def asarray(self, value, dtype) -> torch.Tensor:
        return torch.as_tensor(value, dtype=self._dtype(dtype), device=self.device)

    def get(self, buf, idx):
        if self._on_device(idx):
            return buf.index_select(0, _wrapped(idx, buf))[0]
        return buf[idx]

    def set_if(self, buf, idx, value, cond):
        """buf with buf[idx] = value where cond holds (in place; see the class doc)."""
        pick = self._host_bool(cond)
        if pick is not None:
            if pick:
                buf[idx] = value
            return buf
        # index_select/index_copy_ with a tensor index: no host read, so no sync
        i = _wrapped(idx, buf)
        old = buf.index_select(0, i)[0]
        return buf.index_copy_(0, i, torch.where(cond, value, old).unsqueeze(0))

    def isfinite(self, s):
        return torch.isfinite(s)

    def _host_bool(self, cond) -> bool | None:
        return _host_bool(cond) if self.host_reads else None

    def _on_device(self, idx) -> bool:
        """idx is a tensor that indexing would read on the host (a sync, or under
        tracing a data-dependent value)."""
        return isinstance(idx, torch.Tensor) and (
            not self.host_reads or idx.device.type != "cpu")

    def _dtype(self, dtype):
        if isinstance(dtype, torch.Tensor):
            return dtype.dtype
        return {"float64": torch.float64, "int": torch.int64}[dtype]


def _wrapped(idx, buf) -> torch.Tensor:
    """idx as a (1,) index tensor, negative values counted from the end as buf[idx]
    would (index_select does not accept them; CG's "no save slot" is -1)."""
    i = torch.as_tensor(idx, device=buf.device).reshape(1)
    return torch.where(i < 0, i + buf.shape[0], i)


def _host_bool(cond) -> bool | None:
    """cond as a python bool when reading it costs no device sync, else None."""
    if isinstance(cond, (bool, int)):  # host-scalar code combines bools with & and ~
        return bool(cond)
    if isinstance(cond, torch.Tensor) and cond.device.type == "cpu" and cond.dim() == 0:
        return bool(cond)
    return None


# |a.b| below which a float32 dot is redone in float64: far above the float32
# subnormals (1.2e-38), so products lost to underflow in the float32 sum (each
# < 1e-38, at most ~1e7 of them) stay below its 1e-7 relative precision.
FLOAT32_REDO = 2.0**-80  # 8.3e-25


class HostScalarOps(TorchOps):
    """TorchOps whose scalars are Python numbers: for an eager CG loop on the CPU.

    On the CPU a torch op runs synchronously, so reading a dot product back costs
    nothing but the call, while every 0-d tensor op (alpha = r.z / p.Ap, a status
    comparison, a masked select) costs a dispatch of several microseconds. With
    host scalars, an iteration of CG is the vector ops a hand-written loop issues
    (the matvec, the axpys, two dots) plus Python float arithmetic. The
    vectors and the history buffers stay tensors; only 0-d values are numbers.
    Never used on a GPU (each read would sync) or under torch.compile (a Python
    number is a constant there).
    """

    def vdot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """a . b as a Python float: a dot in the vectors' dtype, redone in float64
        only where float32 nears underflow.

        The float64 copies of `TorchOps.vdot` cost 4-5x the dot itself (14 vs 3 us
        on 25k values), and CG takes two or three dots per iteration, so on a small
        net they were a fifth of an adaptive_hf step. They exist for one failure,
        which the read-back lets us catch here: once CG nears float32 precision,
        the products of its shrinking vectors underflow (r ~ 1e-22, r.r ~ 1e-44),
        and a float32 r.r or p.Ap of 0 would end the solve an iteration early.
        Below FLOAT32_REDO the dot is redone in float64, which does not underflow.
        """
        v = torch.dot(a, b).item()
        if abs(v) < FLOAT32_REDO and a.dtype != torch.float64:
            v = torch.dot(a.to(torch.float64), b.to(torch.float64)).item()
        return v

    def where(self, cond, a, b):
        pick = _host_bool(cond)
        if pick is not None:
            return a if pick else b
        return torch.where(cond, a, b)

    def isfinite(self, s):
        return math.isfinite(s) if isinstance(s, (int, float)) else torch.isfinite(s)

    def asarray(self, value, dtype):
        if isinstance(value, (int, float, bool)) or getattr(value, "ndim", 1) == 0:
            kind = dtype if isinstance(dtype, str) else ("int" if not dtype.is_floating_point else "float64")
            return int(value) if kind == "int" else float(value)
        return super().asarray(value, dtype)

    def get(self, buf, idx):
        return buf[idx].item()

    def set_if(self, buf, idx, value, cond):
        if _host_bool(cond):
            buf[idx] = value
        return buf


def host_scalars(operands):
    """A NamedTuple of loop operands with its 0-d tensors as Python numbers."""
    return type(operands)(*(
        v.item() if isinstance(v, torch.Tensor) and v.dim() == 0 else v for v in operands
    ))
