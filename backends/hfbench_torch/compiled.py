"""Fused CG updates: `torch.compile` of a loop's vector algebra, around an eager matvec.

An eager CG iteration is about ten separate passes over the parameter vector
(three axpys, the preconditioner, the damping term, two float64 dot products that
each first copy both operands to float64). On the 2.8M-parameter MNIST
autoencoder they cost 10-25% of the Gv they surround. Compiling `loop.update`
(everything between the curvature product and the save-point copy: `cg_update`) fuses
them into a few kernels that read each vector once and accumulate the dots in
float64 registers, without float64 copies. This is torch's counterpart of the JAX
backend's jitted `lax.while_loop`; the curvature product stays eager (it is one
big graph of matmuls already, and tracing it would cost minutes of compilation).

`compile` option of the torch backend:
- "auto" (default): compile when the vector has at least `AUTO_MIN_SIZE` entries,
  where fusion pays for the compilation (seconds per CG configuration and
  process); small problems stay eager.
- True / False: always / never.
When torch.compile cannot work here (no C++ compiler for the CPU, no Triton for
CUDA), the first compile fails, a warning says why, and CG runs eagerly; the
results do not change, only the speed.
"""

from __future__ import annotations

import types
import warnings
from typing import Any, Callable

import torch

from .ops import TorchOps
from .options import AUTO_MIN_SIZE, check_compile


class TracedOps(TorchOps):
    """TorchOps that never read a device value on the host, so dynamo can trace them:
    `where` always selects elementwise, `get`/`set_if` index with tensors."""

    host_reads = False


class Compiler:
    """Per-backend cache of compiled loop updates, keyed by everything dynamo specializes on.

    Each key gets its own copy of the update's code object: dynamo keeps its graphs
    per code object and, with fullgraph=True, fails outright after 8 recompiles, which
    a suite sweeping CG settings would reach.
    """

    def __init__(self, device: torch.device, mode="auto"):
        self.mode = check_compile(mode)
        self.device = device
        self.ops = TracedOps(device)
        self._compiled: dict[tuple, Callable] = {}
        self._failed: dict[tuple, str] = {}

    def wants(self, operands) -> bool:
        if self.mode == "auto":
            return operands.b.numel() >= AUTO_MIN_SIZE
        return self.mode

    def step(self, loop, config, operands) -> Callable | None:
        """A step function for `python_iterate`, or None to run `loop.step` eagerly."""
        if None in (loop.product, loop.update, loop.finish) or not self.wants(operands):
            return None
        key = (loop.update, config, operands.m_inv is None, operands.b.dtype)
        if key in self._failed:
            return None
        slim = operands._replace(op=None)  # dynamo then has no reason to guard the model

        def step(ops, config, operands, state):
            product = loop.product(ops, config, operands, state)
            before = _unaliased(state, slim)
            after = self._update(key, loop.update)(self.ops, config, slim, before, product)
            return loop.finish(ops, config, operands, before, after)

        return step

    @property
    def failures(self) -> dict[tuple, str]:
        return dict(self._failed)

    def _update(self, key, update) -> Callable:
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compiled[key] = self._first_call(key, update)
        return fn

    def _first_call(self, key, update):
        compiled = torch.compile(_fresh_copy(update), dynamic=True, fullgraph=True)

        def first(ops, config, operands, state, product):
            try:
                out = compiled(ops, config, operands, state, product)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back
                return self._fall_back(key, update, exc)(ops, config, operands, state, product)
            self._compiled[key] = compiled
            return out

        return first

    def _fall_back(self, key, update, exc) -> Callable:
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        self._failed[key] = why
        warnings.warn(
            f"torch backend: torch.compile of the CG update failed on {self.device} ({why}); "
            "CG runs eagerly instead (same results, slower on large models). "
            "Pass compile=False to the torch backend to skip the attempt.",
            RuntimeWarning,
            stacklevel=2,
        )
        eager = TorchOps(self.device)
        self._compiled[key] = lambda ops, config, operands, state, product: update(
            eager, config, operands, state, product
        )
        return self._compiled[key]


def _unaliased(state, operands):
    """state with no tensor field that is also an earlier field or an operand.

    A loop's first state may share tensors (CG starts with p = r = b unpreconditioned);
    dynamo guards on such aliasing, so the first step would compile a second graph.
    Copying the shared ones (CG: on the first step only) keeps one graph per key.
    """
    seen = {id(t) for t in operands if isinstance(t, torch.Tensor)}
    fields = {}
    for name, value in zip(state._fields, state):
        if isinstance(value, torch.Tensor):
            if id(value) in seen:
                fields[name] = value = value.clone()
            seen.add(id(value))
    return state._replace(**fields) if fields else state


def _fresh_copy(fn: Callable) -> Callable:
    """fn with its own code object (see `Compiler`), same globals, defaults and closure."""
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_compiled")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
