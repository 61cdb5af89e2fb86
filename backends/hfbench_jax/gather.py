"""Batches gathered by index from a device-resident set, gathered where they are used.

A hand-written JAX loop gathers its batch inside the jitted step. hfbench's runner
asks the backend for the batch (`take`) before the step, which would cost a
dispatch and a materialised copy of its own per step (about 0.1 ms on a CPU at
batch 64, a sixth of a 784-256-10 SGD step). So `take` returns a `Gathered`: a
Batch that holds the set and the indices. A fused step (`JaxProblem.fuse`) gathers
it inside its one jitted call and hands the gathered arrays back, and any other
use of `.x` / `.y` gathers it once, eagerly.
"""

from __future__ import annotations

import jax
import numpy as np

from hfbench.protocol import Batch


class Gathered(Batch):
    """Batch(source.x[idx], source.y[idx], meta), gathered on first use.

    The tuple's own x and y slots hold None; read the arrays through `.x` / `.y`
    (or `arrays()`), never by unpacking the tuple.
    """

    def __new__(cls, source: Batch, idx: np.ndarray, meta):
        self = super().__new__(cls, None, None, meta)
        self.source, self.idx, self._arrays = source, idx, None
        return self

    @property
    def x(self):
        return self.arrays()[0]

    @property
    def y(self):
        return self.arrays()[1]

    @property
    def pending(self) -> bool:
        return self._arrays is None

    def arrays(self):
        if self._arrays is None:
            self._arrays = _take(self.source.x, self.source.y, self.idx)
        return self._arrays

    def settle(self, x, y) -> None:
        """The arrays a fused step gathered, kept for later uses of this batch."""
        self._arrays = (x, y)


@jax.jit
def _take(X, Y, idx):
    return X[idx], Y[idx]


def spread(args) -> tuple[tuple, list]:
    """(static metadata per argument, the jit arguments) for `fuse`: a Batch travels
    as its two arrays, a pending Gathered as the set's arrays and the indices."""
    metas, flat = [], []
    for a in args:
        if isinstance(a, Gathered) and a.pending:
            metas.append(("take", a.meta))
            flat.append((a.source.x, a.source.y, a.idx))
        elif isinstance(a, Batch):
            metas.append(("batch", a.meta))
            flat.append((a.x, a.y))
        else:
            metas.append(None)
            flat.append(a)
    return tuple(metas), flat


def gather(metas, args) -> tuple[list, list]:
    """Inside the trace: the arguments as the step sees them, and the arrays gathered."""
    out, gathered = [], []
    for a, m in zip(args, metas):
        if m is None:
            out.append(a)
            continue
        if m[0] == "take":
            X, Y, idx = a
            a = (X[idx], Y[idx])
            gathered.append(a)
        out.append(Batch(a[0], a[1], m[1]))
    return out, gathered


def settle(args, gathered) -> None:
    """Give each pending Gathered argument the arrays its fused call gathered."""
    pending = [a for a in args if isinstance(a, Gathered) and a.pending]
    for a, (x, y) in zip(pending, gathered):
        a.settle(x, y)
