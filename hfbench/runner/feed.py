"""Batches for the timed loop: checked once, then only sliced and moved.

The training arrays are checked and converted once per trial (`models.prepare` on
the whole set), so a step pays what a hand-written loop pays: a NumPy gather of
the batch and its transfer to the device, no per-batch validation.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import models
from ..models import BatchMeta


class Feed:
    """`feed(idx) -> (batch, curvature_batch or None)` for one trial's data."""

    def __init__(self, be, ds, dtype: str):
        self.be = be
        self.X, self.Y, meta = models.prepare(ds.X_train, ds.y_train, dtype)
        self._meta, self._metas = meta, {}
        self._trusted = "meta" in inspect.signature(be.batch).parameters

    def batch(self, idx: np.ndarray):
        X, Y = self.X[idx], self.Y[idx]
        if not self._trusted:  # a backend without the fast path checks every batch
            return self.be.batch(X, Y)
        return self.be.batch(X, Y, meta=self._meta_of(len(idx)))

    def __call__(self, idx):
        cb = None if idx.curvature is None else self.batch(idx.curvature)
        return self.batch(idx.grad), cb

    def _meta_of(self, size: int) -> BatchMeta:
        if size not in self._metas:  # the whole set's label range bounds every batch's
            m = self._meta
            self._metas[size] = BatchMeta(size, m.x_shape, m.y_shape, m.labels, m.label_range)
        return self._metas[size]
