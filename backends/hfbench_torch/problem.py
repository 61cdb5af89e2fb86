"""TorchProblem: one spec's objective and its derivatives on torch tensors.

objective(theta) = (1/B) sum_i l(z_i, t_i) + l2/2 |theta|^2, z = f(theta, X).
Every method first checks its inputs from metadata alone (no device sync), so
bad input raises an `hfbench.errors` class, never a torch traceback.
"""

from __future__ import annotations

import torch

from hfbench import models
from hfbench.errors import BatchError, HFBenchError, unknown
from hfbench.models import BatchMeta, ModelSpec
from hfbench.protocol import CURVATURE_KINDS

from . import curvature
from .losses import loss_of
from .network import Network
from .precondition import diag_fisher
from .tangent import Linearization


class TorchProblem:
    """The `hfbench.protocol.Problem` of one ModelSpec on one TorchBackend."""

    def __init__(self, spec: ModelSpec, backend):
        self.spec = spec
        self._backend = backend
        self._net = Network(spec)
        self._loss = loss_of(spec)
        # The batch mean of the loss. float64: value().mean(), the JAX backend's summation,
        # so float64 trajectories agree to the last bit (CG backtracking breaks exact
        # near-ties on it). float32: the loss's fused mean where it has one (cross-entropy's
        # one op; ~10% of a small net's gradient), its last bit below float32 noise anyway.
        fused_mean = getattr(self._loss, "mean_value", None)
        self._mean_loss = (fused_mean if fused_mean is not None and backend.dtype == "float32"
                           else lambda z, y: self._loss.value(z, y).mean())
        self._fits = set()  # BatchMetas already checked against the spec
        self._ones = None
        self._x_ok = (torch.Size([spec.num_params]), backend.torch_dtype, backend.torch_device)
        self._l2 = float(spec.l2)

    @property
    def backend(self):
        """The backend this problem runs on (the algorithm layer takes its ops and loops)."""
        return self._backend

    @property
    def n_forward(self) -> int:
        """Forward passes run so far; `matvec` never adds to it."""
        return self._net.calls

    def loss(self, x: torch.Tensor, batch) -> torch.Tensor:
        """The objective as a 0-d tensor (no sync)."""
        self._check(x, batch)
        with torch.no_grad():
            return self._objective(x, batch)

    def value_and_grad(self, x: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, d objective / d theta), both on the device, no sync."""
        self._check(x, batch)
        with torch.enable_grad():
            th = x.detach().requires_grad_()
            value = self._objective(th, batch)
            (grad,) = torch.autograd.grad(value, th, grad_outputs=self._one(value))
        return value.detach(), grad

    def _one(self, value):
        """d value / d value, made once (autograd would make a new one every call)."""
        if self._ones is None or self._ones.dtype != value.dtype:
            self._ones = torch.ones((), dtype=value.dtype, device=value.device)
        return self._ones

    def value_grad_curvature(self, x: torch.Tensor, batch, kind: str = "ggn"):
        """(objective, gradient, operator) on one batch. For the Hessian the gradient
        is the one its setup builds with create_graph, so the step runs one forward
        pass and one backward where value_and_grad + curvature run two of each."""
        op = self.curvature(x, batch, kind)
        if kind == "hessian":
            return op.value, op.grad, op
        return (*self.value_and_grad(x, batch), op)

    def curvature(self, x: torch.Tensor, batch, kind: str = "ggn"):
        """One forward pass (and linearization) now; matvec reuses it (see curvature.py)."""
        if kind not in CURVATURE_KINDS:
            raise HFBenchError(unknown("curvature kind", kind, CURVATURE_KINDS, "curvature"))
        self._check(x, batch)
        with torch.enable_grad():
            th = x.detach().requires_grad_()
            if kind == "hessian":
                return curvature.HessianOperator(th, self._objective(th, batch))
            taps: list = []
            z = self._net(th, batch.x, taps)
            build = curvature.ggn if kind == "ggn" else curvature.fisher
            lin = Linearization(self._net, th, taps)
            return build(th, z, lin, batch.y, self._loss, self._l2)

    def precondition(self, x: torch.Tensor, batch) -> torch.Tensor:
        """(1/B) sum_i g_i * g_i, no l2 (see precondition.py)."""
        self._check(x, batch)
        return diag_fisher(self._net, self._loss, x, batch.x, batch.y)

    def evaluate(self, x: torch.Tensor, batch) -> dict[str, float]:
        """loss, objective, and accuracy or reconstruction_error where they apply."""
        self._check(x, batch)
        with torch.no_grad():
            metrics = self._metrics(x, self._net(x, batch.x), batch.y)
            values = torch.stack(list(metrics.values())).tolist()  # one host sync
        return dict(zip(metrics, values))

    def _metrics(self, x, z, y) -> dict[str, torch.Tensor]:
        data = self._loss.value(z, y).mean()
        out = {"loss": data, "objective": data + self._penalty(x)}
        if self.spec.loss == "softmax_cross_entropy":
            out["accuracy"] = (z.argmax(dim=1) == y).to(z.dtype).mean()
        elif self.spec.reconstruct:
            # Martens 2010 Table 2: mean over examples of sum_k (pred_k - t_k)^2
            out["reconstruction_error"] = (self._loss.prediction(z) - y).square().sum(1).mean()
        return out

    def _objective(self, th: torch.Tensor, batch) -> torch.Tensor:
        z = self._net(th, batch.x)
        value = self._mean_loss(z, batch.y)
        return value + self._penalty(th) if self._l2 else value  # no `+ 0.0` op

    def _penalty(self, th: torch.Tensor):
        """l2/2 |theta|^2 (a python 0.0 when l2 is 0, to add nothing to the graph)."""
        return 0.5 * self._l2 * torch.dot(th, th) if self._l2 else 0.0

    def _check(self, x, batch) -> None:
        if not (type(x) is torch.Tensor and (x.shape, x.dtype, x.device) == self._x_ok):
            check_params(x, self.spec, self._backend)  # says what is wrong
        meta = getattr(batch, "meta", None)
        if meta not in self._fits:  # the spec checks depend on the metadata alone
            check_batch(batch, self.spec, self._backend)
            self._fits.add(meta)
        else:
            check_batch_arrays(batch, self.spec, self._backend)


def check_params(x, spec: ModelSpec, backend) -> None:
    """x must be a 1-D tensor of spec.num_params values, of the backend's dtype and device."""
    n = spec.num_params
    where = f"{spec.name or 'model'}: parameter vector"
    if not isinstance(x, torch.Tensor):
        raise HFBenchError(
            f"{where} is a {type(x).__name__}, expected a torch tensor; convert it with "
            "backend.asarray(theta)"
        )
    if x.shape != (n,):
        raise HFBenchError(
            f"{where} has shape {tuple(x.shape)}, expected ({n},) for this spec; make it "
            "with models.init_params(spec, seed)"
        )
    if x.dtype != backend.torch_dtype or x.device != backend.torch_device:
        raise HFBenchError(
            f"{where} is {x.dtype} on {x.device}, but the backend runs {backend.dtype} on "
            f"{backend.device}; convert it with backend.asarray(theta)"
        )


def check_batch(batch, spec: ModelSpec, backend) -> None:
    """The batch must come from backend.batch(X, Y) and fit the spec (metadata only)."""
    if not isinstance(getattr(batch, "meta", None), BatchMeta):
        raise BatchError(
            f"{spec.name or 'model'}: got a {type(batch).__name__} as batch; make one with "
            "backend.batch(X, Y)"
        )
    models.check_fits(spec, batch.meta)
    check_batch_arrays(batch, spec, backend)


def check_batch_arrays(batch, spec: ModelSpec, backend) -> None:
    """The batch's inputs are tensors of the backend's device and dtype."""
    x = batch.x
    if not isinstance(x, torch.Tensor) or x.device != backend.torch_device:
        raise BatchError(
            f"{spec.name or 'model'}: the batch is not on this backend's device "
            f"({backend.device}); make it with this backend's batch(X, Y)"
        )
    if x.dtype != backend.torch_dtype:
        raise BatchError(
            f"{spec.name or 'model'}: batch inputs are {x.dtype}, the backend runs "
            f"{backend.dtype}; make the batch with this backend's batch(X, Y)"
        )
