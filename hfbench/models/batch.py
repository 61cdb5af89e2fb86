"""Batch checks, done once in NumPy where the data enters a backend.

`prepare` checks what needs no spec (shapes agree, values finite, labels are
integers). `check_fits` compares the batch's recorded metadata with a spec; it
reads no data, so a problem can call it on every call for free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import BatchError
from ..losses import get_loss
from .spec import ModelSpec


@dataclass(frozen=True)
class BatchMeta:
    """What is known of a batch without touching device memory."""

    size: int
    x_shape: tuple[int, ...]  # per-example shape
    y_shape: tuple[int, ...]  # per-example shape; () for integer labels
    labels: bool  # integer class labels (else float targets)
    label_range: tuple[int, int] | None  # (min, max) of integer labels


def prepare(X, Y, dtype: str) -> tuple[np.ndarray, np.ndarray, BatchMeta]:
    """Check and convert numpy inputs; returns (X, Y, meta)."""
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim < 2:
        raise BatchError(
            f"batch: X has shape {X.shape}; expected (examples, features) or "
            "(examples, C, H, W)"
        )
    if Y.ndim == 0 or Y.shape[0] != X.shape[0]:
        raise BatchError(
            f"batch: X has {X.shape[0]} examples but Y has shape {Y.shape}; give one "
            "target (or label) per example"
        )
    if X.shape[0] == 0:
        raise BatchError("batch: X and Y are empty; a batch needs at least one example")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise BatchError("batch: X holds NaN, Inf or non-numbers; clean the data first")
    labels = np.issubdtype(Y.dtype, np.integer)
    if labels:
        if Y.ndim != 1:
            raise BatchError(f"batch: integer labels must have shape (examples,), got {Y.shape}")
        y_range = (int(Y.min()), int(Y.max()))
        Y = Y.astype(np.int64)
    else:
        if not np.issubdtype(Y.dtype, np.floating) or not np.all(np.isfinite(Y)):
            raise BatchError("batch: Y must be integer labels or finite float targets")
        y_range = None
        Y = (Y.reshape(-1, 1) if Y.ndim == 1 else Y).astype(dtype)
    meta = BatchMeta(X.shape[0], tuple(X.shape[1:]), tuple(Y.shape[1:]), labels, y_range)
    return X.astype(dtype), Y, meta


def check_fits(spec: ModelSpec, meta: BatchMeta) -> None:
    """Raise a BatchError when a batch does not fit the spec."""
    label = spec.name or "model"
    if math.prod(meta.x_shape) != spec.input_size or (
        len(meta.x_shape) > 1 and meta.x_shape != spec.input_shape
    ):
        raise BatchError(
            f"{label}: input examples have shape {meta.x_shape}, but the spec expects "
            f"{spec.input_shape} ({spec.input_size} values each); check the dataset or the "
            "first layer's width"
        )
    loss = get_loss(spec.loss)
    k = spec.output_size
    if loss.targets == "labels":
        if not meta.labels:
            raise BatchError(
                f"{label}: loss {spec.loss!r} needs integer class labels of shape "
                f"(examples,), got float targets of per-example shape {meta.y_shape}"
            )
        lo, hi = meta.label_range
        if lo < 0 or hi >= k:
            raise BatchError(
                f"{label}: labels range over [{lo}, {hi}], but the model has {k} outputs; "
                f"labels must lie in [0, {k - 1}]"
            )
    elif meta.labels or meta.y_shape != (k,):
        got = "integer labels" if meta.labels else f"targets of per-example shape {meta.y_shape}"
        raise BatchError(
            f"{label}: loss {spec.loss!r} needs float targets of per-example shape ({k},), "
            f"got {got}"
        )
