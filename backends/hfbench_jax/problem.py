"""JaxProblem: one ModelSpec's objective, gradient, curvature and preconditioner.

Every entry point is a jitted function built once per problem and keyed by jit
on shapes and dtypes, so a fixed batch shape compiles once. `n_forward` counts
how often the forward pass is traced: a matvec never traces it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hfbench.errors import BatchError, HFBenchError, unknown
from hfbench.models import ModelSpec, check_fits, unflatten
from hfbench.protocol import CURVATURE_KINDS, Batch

from .curvature import JaxCurvature, gauss_newton_fns, hessian_fns
from .gather import gather, settle, spread
from .losses import loss_of
from .network import forward, join
from .precondition import precondition_fn


class JaxProblem:
    """The objective (1/B) sum_i l(f(theta, x_i), t_i) + l2/2 |theta|^2 on jax arrays."""

    def __init__(self, spec: ModelSpec, dtype: str, precision=None):
        self.spec = spec
        self.n_forward = 0
        self.dtype = jnp.dtype(dtype)
        self._precision = precision
        self._loss = loss_of(spec)
        self._value_and_grad = jax.jit(self._value_and_grad_fn)
        self._objective_jit = jax.jit(self._objective)
        self._metrics_jit = jax.jit(self._metrics)
        self._precondition = precondition_fn(spec, self._forward, self._loss, precision)
        self._curvature_fns = {}  # kind -> (setup, matvec), built on first use
        self._fused = {}  # (fn, static) -> jitted function (see fuse)

    # -- the pure functions that get traced -------------------------------------------
    def _forward(self, theta, x, **kw):
        self.n_forward += 1  # runs only while tracing
        return forward(self.spec, theta, x, precision=self._precision, **kw)

    def _l2_term(self, theta):
        if not self.spec.l2:
            return 0.0
        return 0.5 * self.spec.l2 * jnp.vdot(theta, theta, precision=self._precision)

    def _mean_loss(self, z, y):
        return jnp.mean(self._loss.per_example(z, y))

    def _objective(self, theta, x, y):
        return self._mean_loss(self._forward(theta, x), y) + self._l2_term(theta)

    def _value_and_grad_fn(self, theta, x, y):
        """(objective, gradient), differentiated in the layers' arrays and joined into one
        vector (network.join says why); the l2 term's gradient is l2 theta."""
        parts = unflatten(self.spec, theta)

        def data_loss(ps):
            return self._mean_loss(self._forward(theta, x, params=ps), y)

        loss, g_parts = jax.value_and_grad(data_loss)(parts)
        g = join(g_parts, theta)
        if not self.spec.l2:
            return loss, g
        return loss + self._l2_term(theta), g + self.spec.l2 * theta

    def _metrics(self, theta, x, y):
        z = self._forward(theta, x)
        loss = self._mean_loss(z, y)
        out = {"loss": loss, "objective": loss + self._l2_term(theta)}
        if self.spec.loss == "softmax_cross_entropy":
            out["accuracy"] = jnp.mean((jnp.argmax(z, axis=-1) == y).astype(z.dtype))
        if self.spec.reconstruct:
            err = jnp.square(self._loss.predict(z) - y)
            out["reconstruction_error"] = jnp.mean(jnp.sum(err, axis=-1))
        return out

    # -- the protocol -----------------------------------------------------------------
    def loss(self, x, batch: Batch):
        """The objective, a 0-d array (no host sync)."""
        self._check(x, batch)
        return self._objective_jit(x, batch.x, batch.y)

    def value_and_grad(self, x, batch: Batch):
        """(objective, its gradient), both on the device (no host sync)."""
        self._check(x, batch)
        return self._value_and_grad(x, batch.x, batch.y)

    def fuse(self, fn, static):
        """fn(self, static, *args) as one jitted call (hfbench.algorithms.fused).

        `static` (hashable) is a static argument; a Batch argument travels as its two
        arrays, its metadata static, since metadata is not an array; a batch `take`
        has not gathered yet is gathered inside the call (see gather.py). The problem's
        checks run while tracing, so a new shape or dtype is checked on its retrace.
        """
        key = (fn, static)
        if key not in self._fused:

            def run(metas, static, *args):
                args, gathered = gather(metas, args)
                return fn(self, static, *args), gathered

            self._fused[key] = jax.jit(run, static_argnums=(0, 1))
        jitted = self._fused[key]

        def call(*args):
            metas, flat = spread(args)
            out, gathered = jitted(metas, static, *flat)
            settle(args, gathered)
            return out

        return call

    def curvature(self, x, batch: Batch, kind: str = "ggn") -> JaxCurvature:
        """Linearize once at (x, batch); the operator's matvec reuses it (the Hessian's
        keeps x and the batch instead: see curvature.py)."""
        if kind not in CURVATURE_KINDS:
            raise HFBenchError(unknown("curvature kind", kind, CURVATURE_KINDS, "curvature"))
        self._check(x, batch)
        setup, matvec = self._curvature(kind)
        lin, data = setup(x, batch.x, batch.y)
        return JaxCurvature(kind, self.spec.num_params, self.dtype, matvec, lin, data)

    def precondition(self, x, batch: Batch):
        """(1/B) sum_i g_i * g_i from one backward pass (no l2)."""
        self._check(x, batch)
        return self._precondition(x, batch.x, batch.y)

    def evaluate(self, x, batch: Batch) -> dict[str, float]:
        """loss, objective, and accuracy / reconstruction_error where they apply."""
        self._check(x, batch)
        metrics = jax.device_get(self._metrics_jit(x, batch.x, batch.y))  # one host read
        return {name: float(value) for name, value in metrics.items()}

    # -- helpers ------------------------------------------------------------------------
    def _curvature(self, kind: str):
        if kind not in self._curvature_fns:
            if kind == "hessian":
                fns = hessian_fns(self._objective)
            else:
                fns = gauss_newton_fns(self._forward, self._loss, kind, self.spec.l2)
            self._curvature_fns[kind] = fns
        return self._curvature_fns[kind]

    def _check(self, x, batch) -> None:
        """Metadata-only checks, so bad input never reaches a jax traceback."""
        label = self.spec.name or "model"
        if not isinstance(batch, Batch):
            raise BatchError(
                f"{label}: expected a Batch, got {type(batch).__name__}; make it with "
                "backend.batch(X, Y)"
            )
        check_fits(self.spec, batch.meta)
        n = self.spec.num_params
        shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
        if not isinstance(x, jax.Array) or tuple(shape) != (n,) or dtype != self.dtype:
            raise HFBenchError(
                f"{label}: parameters must be a 1-D jax array of length {n} and dtype "
                f"{self.dtype}, got {type(x).__name__} of shape {shape} and dtype {dtype}; "
                "make them with backend.asarray(models.init_params(spec, seed))"
            )
        if not isinstance(batch.x, jax.Array) or batch.x.dtype != self.dtype:
            raise BatchError(
                f"{label}: batch inputs must be a jax array of dtype {self.dtype}; make the "
                "batch with this backend's batch(X, Y)"
            )

    def __repr__(self) -> str:
        return f"JaxProblem({self.spec.name or 'model'}, dtype={self.dtype})"
