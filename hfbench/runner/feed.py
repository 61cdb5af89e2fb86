"""Batches for the timed loop: the training set checked once, then only gathered.

The training arrays are checked and converted once per trial (`models.prepare` on
the whole set). When the set fits (RESIDENT_MAX_BYTES) and the backend can gather
on its device (`take`), it is moved to the device once, and a step only sends its
batch's indices and gathers there, as a hand-written loop with its data on the
device does; otherwise a step gathers on the host and transfers the batch, with
no per-batch validation either way.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import models
from ..models import BatchMeta

RESIDENT_MAX_BYTES = 2 * 2**30


class Feed:
    """`feed(idx) -> (batch, curvature_batch or None)` for one trial's data."""

    def __init__(self, be, ds, dtype: str):
        self.be = be
        X, Y, meta = models.prepare(ds.X_train, ds.y_train, dtype)
        self._meta, self._metas = meta, {}
        self.resident = hasattr(be, "take") and X.nbytes + Y.nbytes <= RESIDENT_MAX_BYTES
        if self.resident:
            self.all = be.batch(X, Y, meta=meta) if _trusts(be) else be.batch(X, Y)
        else:
            self.X, self.Y = X, Y
        self._trusted = _trusts(be)
        self._perm = self._perm_dev = None

    def batch(self, idx: np.ndarray):
        if self.resident:
            # a full batch is the whole set (in another order, which a mean ignores)
            n = len(idx)
            return self.all if n == self.all.meta.size else self.be.take(self.all, idx, self._meta_of(n))
        X, Y = self.X[idx], self.Y[idx]
        if not self._trusted:  # a backend without the fast path checks every batch
            return self.be.batch(X, Y)
        return self.be.batch(X, Y, meta=self._meta_of(len(idx)))

    def __call__(self, idx):
        if self.resident and idx.perm is not None and hasattr(self.be, "indices"):
            return self._from_perm(idx)
        cb = None if idx.curvature is None else self.batch(idx.curvature)
        return self.batch(idx.grad), cb

    def _from_perm(self, idx):
        """The epoch's permutation goes to the device once; a batch is a slice of it."""
        if idx.perm is not self._perm:
            self._perm, self._perm_dev = idx.perm, self.be.indices(idx.perm)
        n, c = len(idx.grad), idx.curvature
        full = n == self.all.meta.size
        b = self.all if full else self.be.take(self.all, self._perm_dev[idx.start:idx.start + n],
                                               self._meta_of(n))
        if c is None:
            return b, None
        return b, self.be.take(self.all, self._perm_dev[idx.start:idx.start + len(c)],
                               self._meta_of(len(c)))

    def _meta_of(self, size: int) -> BatchMeta:
        if size not in self._metas:  # the whole set's label range bounds every batch's
            m = self._meta
            self._metas[size] = BatchMeta(size, m.x_shape, m.y_shape, m.labels, m.label_range)
        return self._metas[size]


def _trusts(be) -> bool:
    return "meta" in inspect.signature(be.batch).parameters
