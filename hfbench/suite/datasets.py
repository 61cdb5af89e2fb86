"""What the suite layer knows about datasets: their shapes and kinds of target.

The names are `hfbench.data.DATASETS`. The shapes and targets let a suite be checked
before any data is loaded: an MLP's first and last widths, a conv net's input image,
and which loss and metrics make sense. tests/test_suite.py checks this table against
the data layer's (names, tasks, image shapes) and against loaded data.

`targets`: "labels" (class ids: softmax cross-entropy, accuracy), "values" (real
outputs: squared error) or "inputs" (no labels: autoencoders only).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple


class DatasetInfo(NamedTuple):
    shape: tuple[int, ...]  # one example, channels first for images
    outputs: int | None  # classes or regression outputs; None for "inputs"
    targets: str

    @property
    def input_size(self) -> int:
        return math.prod(self.shape)


KNOWN = {
    # offline: shipped with an installed package or generated
    "boston": DatasetInfo((13,), 1, "values"),
    "mnist5k": DatasetInfo((1, 28, 28), 10, "labels"),
    "digits": DatasetInfo((1, 8, 8), 10, "labels"),
    "sine": DatasetInfo((1,), 1, "values"),
    "curves": DatasetInfo((1, 28, 28), None, "inputs"),
    # downloaded once into the cache
    "mnist": DatasetInfo((1, 28, 28), 10, "labels"),
    "fashion_mnist": DatasetInfo((1, 28, 28), 10, "labels"),
    "cifar10": DatasetInfo((3, 32, 32), 10, "labels"),
    # Martens 2010's FACES net takes 625 = 25 x 25 inputs; the 64 x 64 Olivetti faces
    # are downscaled to that.
    "olivetti_faces": DatasetInfo((1, 25, 25), None, "inputs"),
}


@functools.cache
def names() -> tuple[str, ...]:
    """The dataset names a suite may use: the data layer's table."""
    from ..data import DATASETS  # imported late: the data layer imports numpy-heavy loaders

    return tuple(DATASETS)


def info(name: str) -> DatasetInfo | None:
    """Shape and targets of a known dataset, or None (then the shape checks are skipped)."""
    return KNOWN.get(name)
