"""From a suite's model entry to a `ModelSpec`, and the checks of a model against its data.

A model entry is a plain dict: `{type: mlp, sizes: [13, 100, 1], activation: sigmoid}`,
`{type: autoencoder, encoder: [784, 1000, 500, 250, 30]}` or one of the papers' conv
nets by name. `build` calls the builders of `hfbench.models.zoo`, so a suite and a
script that builds the same net get the same parameter layout.
"""

from __future__ import annotations

import dataclasses

from ..errors import SpecError
from ..models import ModelSpec, zoo
from .datasets import DatasetInfo
from .errors import Problem

CONV_NETS = {
    "gargiani_fashion_cnn": zoo.gargiani_fashion_cnn,
    "gargiani_cifar_cnn": zoo.gargiani_cifar_cnn,
    "lenet": zoo.lenet,
}
MODEL_TYPES = ("mlp", "autoencoder", *CONV_NETS)
CLASSIFIER_LOSS = "softmax_cross_entropy"


def default_loss(model: dict, data: DatasetInfo | None) -> str:
    """The loss a model type implies: what the builders and the data call for."""
    if model["type"] == "autoencoder":
        return "sigmoid_cross_entropy"  # Martens 2010 for CURVES and MNIST; zoo's default
    if model["type"] in CONV_NETS or data is None or data.targets == "labels":
        return CLASSIFIER_LOSS
    return "squared_error"


def default_init(model: dict) -> str:
    """Sparse init for the autoencoders (Martens 2010 §5), dense for the rest."""
    return "sparse" if model["type"] == "autoencoder" else "dense"


def build(model: dict, loss: str, l2: float, init: str, loss_scale: float = 1.0) -> ModelSpec:
    """The `ModelSpec` of a validated model entry (raises SpecError on a bad net)."""
    kind = model["type"]
    if kind == "mlp":
        spec = zoo.mlp(model["sizes"], model["activation"], loss, l2=l2, init=init)
    elif kind == "autoencoder":
        spec = zoo.autoencoder(model["encoder"], loss=loss, l2=l2, init=init)
    else:
        options = {k: v for k, v in model.items() if k != "type"}  # e.g. lenet's padding
        spec = CONV_NETS[kind](l2=l2, init=init, **options)
    return spec if loss_scale == 1 else dataclasses.replace(spec, loss_scale=loss_scale)


def check(model: dict, loss: str, dataset: str, data: DatasetInfo | None, loc: tuple) -> list[Problem]:
    """The model against its dataset: input shape, output size, loss. Cheap, no data loaded."""
    problems = _check_loss(model, loss, dataset, data, loc)
    if data is not None:
        problems += _check_input(model, dataset, data, loc + ("model",))
        problems += _check_output(model, dataset, data, loc + ("model",))
    return problems


def _check_loss(model, loss, dataset, data, loc) -> list[Problem]:
    kind = model["type"]
    if kind in CONV_NETS and loss != CLASSIFIER_LOSS:
        return [Problem(loc + ("loss",), f"{kind} is a classifier and uses {CLASSIFIER_LOSS!r}, "
                        f"got {loss!r}; remove the loss key")]
    if data is None or kind == "autoencoder":
        return []
    if data.targets == "inputs":
        return [Problem(loc + ("model", "type"), f"dataset {dataset!r} has no labels; it can only "
                        f"train an autoencoder (type: autoencoder), got type {kind!r}")]
    want = CLASSIFIER_LOSS if data.targets == "labels" else "squared_error"
    if loss != want:
        what = "class labels" if data.targets == "labels" else "real-valued targets"
        return [Problem(loc + ("loss",), f"dataset {dataset!r} has {what}, which need loss "
                        f"{want!r}, got {loss!r}")]
    return []


def _check_input(model, dataset, data, loc) -> list[Problem]:
    kind = model["type"]
    if kind in CONV_NETS:
        shape = CONV_NETS[kind]().input_shape
        if shape != data.shape:
            return [Problem(loc + ("type",), f"{kind} takes {_shape(shape)} images, but dataset "
                            f"{dataset!r} has {_shape(data.shape)} examples; pick a model for "
                            "its shape (an mlp works for any)")]
        return []
    key = "sizes" if kind == "mlp" else "encoder"
    first = model[key][0]
    if first != data.input_size:
        return [Problem(loc + (key, 0), f"input width {first} does not match dataset {dataset!r}, "
                        f"whose examples have {data.input_size} values ({_shape(data.shape)}); "
                        f"set it to {data.input_size}")]
    return []


def _check_output(model, dataset, data, loc) -> list[Problem]:
    if model["type"] != "mlp" or data.outputs is None:
        return []  # conv nets end in 10 classes, autoencoders in their input width
    sizes = model["sizes"]
    if sizes[-1] != data.outputs:
        what = "classes" if data.targets == "labels" else "target values"
        return [Problem(loc + ("sizes", len(sizes) - 1), f"output width {sizes[-1]} does not "
                        f"match dataset {dataset!r}, which has {data.outputs} {what}; set the "
                        f"last size to {data.outputs}")]
    return []


def check_builds(
    model: dict, loss: str, l2: float, init: str, loc: tuple,
) -> tuple[ModelSpec | None, list[Problem]]:
    """Build the spec to catch what the zoo rejects (activations, widths)."""
    try:
        return build(model, loss, l2, init), []
    except SpecError as exc:
        return None, [Problem(loc + ("model",), str(exc))]


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
