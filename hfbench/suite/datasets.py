"""What the suite layer knows about datasets, read from the data layer's registry.

The names are `hfbench.data.DATASETS`; the shape of one example and the number of
outputs are `hfbench.data.registry.EXAMPLES`. They let a suite be checked before any
data is loaded: an MLP's first and last widths, a conv net's input image, and which
loss and metrics make sense.

`targets`: "labels" (class ids: softmax cross-entropy, accuracy), "values" (real
outputs: squared error) or "inputs" (no labels: autoencoders only), from the
dataset's task.

`n_train`: the training examples `hfbench.data.load(name)` gives (its default split,
`EXAMPLES[name].n_train`), so a batch larger than the training set is refused at load
time, with its line, rather than failing every trial.
"""

from __future__ import annotations

import math
from typing import NamedTuple

TARGETS_OF_TASK = {"classification": "labels", "regression": "values", "reconstruction": "inputs"}


class DatasetInfo(NamedTuple):
    shape: tuple[int, ...]  # one example, channels first for images
    outputs: int | None  # classes or regression outputs; None for "inputs"
    targets: str
    n_train: int | None = None  # None: not known here (a dataset added without its size)

    @property
    def input_size(self) -> int:
        return math.prod(self.shape)


def names() -> tuple[str, ...]:
    """The dataset names a suite may use: the data layer's table (read on every call,
    so a dataset added to it is accepted)."""
    from ..data.registry import DATASETS  # late: the data layer imports numpy-heavy loaders

    return tuple(DATASETS)


def info(name: str) -> DatasetInfo | None:
    """Shape and targets of a known dataset, or None (then the shape checks are skipped)."""
    from ..data.registry import DATASETS, EXAMPLES

    if name not in DATASETS or name not in EXAMPLES:
        return None
    example = EXAMPLES[name]
    return DatasetInfo(example.shape, example.outputs, TARGETS_OF_TASK[DATASETS[name].task],
                       example.n_train)


def known() -> dict[str, DatasetInfo]:
    """Every dataset's DatasetInfo, by name."""
    return {name: info(name) for name in names()}
