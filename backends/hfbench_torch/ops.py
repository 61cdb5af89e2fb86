"""The vector algebra of `hfbench.protocol.VectorOps` on torch tensors.

Scalars stay 0-d tensors on the device, so the algorithm layer's CG loop never
waits on the host; only `to_float` reads one back (a sync).
"""

from __future__ import annotations

import torch


class TorchOps:
    """zeros_like, vdot, axpy, scale, where, to_float for 1-D torch tensors."""

    def zeros_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def vdot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a . b accumulated in float64 (CG's r.r and p.Ap drift in float32)."""
        return torch.dot(a.to(torch.float64), b.to(torch.float64))

    def axpy(self, alpha, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """alpha * x + y; alpha may be a python number or a 0-d device tensor.

        A 0-d float64 alpha does not promote a float32 x (torch's rule for 0-d
        tensors), so vectors keep the backend dtype.
        """
        return alpha * x + y

    def scale(self, alpha, x: torch.Tensor) -> torch.Tensor:
        return alpha * x

    def where(self, cond, a, b):
        """cond ? a : b, elementwise; a python bool picks without touching the device."""
        if isinstance(cond, bool):
            return a if cond else b
        return torch.where(cond, a, b)

    def to_float(self, s) -> float:
        return float(s)
