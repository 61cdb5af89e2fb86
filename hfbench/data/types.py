"""The records the datasets layer hands out: a loaded `Dataset`, a registry entry
(`DatasetInfo`) and a file to download (`RemoteFile`), plus `DataError`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import HFBenchError

TASKS = ("classification", "regression", "reconstruction")


class DataError(HFBenchError):
    """A dataset is unknown, missing, corrupted, or was asked for something it lacks."""


class FormatError(DataError):
    """A data file does not parse (bad header, wrong size, truncated stream).

    Raised by the parsers with the file's path; `load` adds how to repair it.
    """

    def __init__(self, path, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class RemoteFile:
    """One file a downloaded dataset needs, with the SHA-256 it must have.

    `sha256=None` means no published checksum was found: such a file is never
    trusted (fetch and load refuse it). `mirrors` are tried after `url`, in order.
    """

    name: str
    url: str
    sha256: str | None
    size_bytes: int | None = None
    mirrors: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry. `loader(files, seed=..., **options)` builds the Dataset in
    its native task; `files` maps each RemoteFile name to its verified cached path
    (empty for offline datasets)."""

    name: str
    description: str
    offline: bool
    files: tuple[RemoteFile, ...]
    loader: Callable[..., "Dataset"]
    task: str = "classification"  # the native task, what load() gives by default
    image_shape: tuple[int, ...] | None = None  # (C, H, W) for image datasets
    source: str = ""


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value
class Dataset:
    """A train/test split ready for `Problem`: X float32, y int64 labels (N,) or
    float32 targets (N, K). For reconstruction, y is a flattened view of X."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None
    output_size: int
    preprocessing: str
    source: str
    split: str
    notes: dict = field(default_factory=dict, repr=False)  # e.g. the stats used to standardize

    def __post_init__(self):
        _check_consistent(self)

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, task={self.task!r}, input_shape={self.input_shape}, "
            f"train={self.n_train}, test={self.n_test}, output_size={self.output_size})"
        )


def _check_consistent(ds: Dataset) -> None:
    """Catch a loader bug here, not as a shape error deep inside a backend."""
    if ds.task not in TASKS:
        raise DataError(f"{ds.name}: task {ds.task!r} is not one of {', '.join(TASKS)}")
    for part, X, y in (("train", ds.X_train, ds.y_train), ("test", ds.X_test, ds.y_test)):
        if X.dtype != np.float32 or tuple(X.shape[1:]) != tuple(ds.input_shape):
            raise DataError(f"{ds.name}: X_{part} is {X.dtype} {X.shape}, expected float32 "
                            f"(N, {', '.join(map(str, ds.input_shape))})")
        if y.shape[0] != X.shape[0]:
            raise DataError(f"{ds.name}: {X.shape[0]} {part} inputs but {y.shape[0]} targets")
        labels = ds.task == "classification"
        want = (np.int64, 1) if labels else (np.float32, 2)
        if y.dtype != want[0] or y.ndim != want[1] or (not labels and y.shape[1] != ds.output_size):
            raise DataError(f"{ds.name}: y_{part} is {y.dtype} {y.shape}, which does not fit "
                            f"task {ds.task!r} with output_size {ds.output_size}")
