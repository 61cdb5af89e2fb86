"""From a suite's model entry to a `ModelSpec`, and the checks of a model against its data.

A model entry is a plain dict: `{type: mlp, sizes: [13, 100, 1], activation: sigmoid}`,
`{type: autoencoder, encoder: [784, 1000, 500, 250, 30]}` or one of the papers' conv
nets by name. The types are the zoo's registry, `hfbench.models.MODELS`, read on every
call: a type added there is a type a suite may name. mlp and autoencoder entries give
their widths (`sizes`, `encoder`); any other type is built as
`MODELS[type](l2=..., init=..., **options)` with the entry's other keys as its options,
and uses the loss its builder sets when the builder takes none (the papers' conv
nets are classifiers). So a suite and a script that build the same net get the same
parameter layout.

Loss names come from `hfbench.losses` (by what each loss takes and outputs) and the
builders' defaults, not from a list of their own here.
"""

from __future__ import annotations

import dataclasses
import inspect

from ..errors import SpecError
from ..losses import LOSSES
from ..models import ModelSpec, zoo
from .datasets import DatasetInfo
from .errors import Problem

SIZED = {"mlp": "sizes", "autoencoder": "encoder"}  # types whose entries give widths
BUILD_ARGS = ("l2", "init", "loss", "name")  # set by the suite, never an entry's option


def types() -> tuple[str, ...]:
    """The model types a suite may name: the zoo's registry."""
    return tuple(zoo.MODELS)


def options_of(kind: str) -> dict[str, inspect.Parameter]:
    """A generic type's options: its builder's keyword-only parameters, less BUILD_ARGS."""
    params = inspect.signature(zoo.MODELS[kind]).parameters
    return {n: p for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in BUILD_ARGS}


def label_loss() -> str:
    """The loss that takes class ids (softmax cross-entropy)."""
    return next(n for n, info in LOSSES.items() if info.targets == "labels")


def value_loss() -> str:
    """The loss for real-valued targets on linear outputs (squared error)."""
    return next(n for n, info in LOSSES.items() if info.output_nonlinearity == "identity")


def default_loss(model: dict, data: DatasetInfo | None) -> str:
    """The loss a model type implies: what its builder sets, or what the data calls for."""
    kind = model["type"]
    if not _takes_loss(kind):
        spec = _generic_spec(model)
        return spec.loss if spec is not None else label_loss()
    if kind == "autoencoder" or data is None:
        return _default(kind, "loss")  # the zoo's: Martens 2010's sigmoid cross-entropy
    return label_loss() if data.targets == "labels" else value_loss()


def default_init(model: dict) -> str:
    """The builder's own default: sparse for the autoencoders (Martens 2010 §5), dense
    for the rest."""
    return _default(model["type"], "init") or "dense"


def build(model: dict, loss: str, l2: float, init: str, loss_scale: float = 1.0) -> ModelSpec:
    """The `ModelSpec` of a validated model entry (raises SpecError on a bad net)."""
    kind = model["type"]
    builder = zoo.MODELS[kind]
    options = {k: v for k, v in model.items() if k != "type"}
    if kind == "mlp":
        spec = builder(options["sizes"], options.get("activation", "sigmoid"), loss, l2=l2, init=init)
    elif kind == "autoencoder":
        spec = builder(options["encoder"], loss=loss, l2=l2, init=init)
    else:
        extra = {"loss": loss} if _takes_loss(kind) else {}
        spec = builder(l2=l2, init=init, **extra, **options)
    return spec if loss_scale == 1 else dataclasses.replace(spec, loss_scale=loss_scale)


def _takes_loss(kind: str) -> bool:
    return "loss" in inspect.signature(zoo.MODELS[kind]).parameters


def _default(kind: str, param: str):
    p = inspect.signature(zoo.MODELS[kind]).parameters.get(param)
    return None if p is None or p.default is p.empty else p.default


def _generic_spec(model: dict) -> ModelSpec | None:
    """A generic type's net with its own loss and default init (None if it does not build)."""
    options = {k: v for k, v in model.items() if k != "type"}
    try:
        return zoo.MODELS[model["type"]](**options)
    except (SpecError, TypeError, ValueError):
        return None  # check_builds reports why


# ----------------------------------------------------------------------------- checks


def check(model: dict, loss: str, dataset: str, data: DatasetInfo | None, loc: tuple) -> list[Problem]:
    """The model against its dataset: input shape, output size, loss. Cheap, no data loaded."""
    problems = _check_loss(model, loss, dataset, data, loc)
    if data is not None:
        problems += _check_input(model, dataset, data, loc + ("model",))
        problems += _check_output(model, dataset, data, loc + ("model",))
    return problems


def _check_loss(model, loss, dataset, data, loc) -> list[Problem]:
    kind = model["type"]
    if not _takes_loss(kind):
        spec = _generic_spec(model)
        if spec is not None and loss != spec.loss:
            return [Problem(loc + ("loss",), f"{kind} sets its own loss, {spec.loss!r}, got "
                            f"{loss!r}; remove the loss key")]
    if data is None or kind == "autoencoder":
        return []
    if data.targets == "inputs":
        return [Problem(loc + ("model", "type"), f"dataset {dataset!r} has no labels; it can only "
                        f"train an autoencoder (type: autoencoder), got type {kind!r}")]
    want = label_loss() if data.targets == "labels" else value_loss()
    if loss != want:
        what = "class labels" if data.targets == "labels" else "real-valued targets"
        return [Problem(loc + ("loss",), f"dataset {dataset!r} has {what}, which need loss "
                        f"{want!r}, got {loss!r}")]
    return []


def _check_input(model, dataset, data, loc) -> list[Problem]:
    kind = model["type"]
    if kind not in SIZED:
        spec = _generic_spec(model)
        if spec is None or spec.input_shape == data.shape:
            return []
        what = "images" if len(spec.input_shape) == 3 else "inputs"
        return [Problem(loc + ("type",), f"{kind} takes {_shape(spec.input_shape)} {what}, but "
                        f"dataset {dataset!r} has {_shape(data.shape)} examples; pick a model for "
                        "its shape (an mlp works for any)")]
    key = SIZED[kind]
    first = model[key][0]
    if first != data.input_size:
        return [Problem(loc + (key, 0), f"input width {first} does not match dataset {dataset!r}, "
                        f"whose examples have {data.input_size} values ({_shape(data.shape)}); "
                        f"set it to {data.input_size}")]
    return []


def _check_output(model, dataset, data, loc) -> list[Problem]:
    kind = model["type"]
    if kind == "autoencoder" or data.outputs is None:
        return []  # autoencoders end in their input width
    what = "classes" if data.targets == "labels" else "target values"
    if kind not in SIZED:
        spec = _generic_spec(model)
        if spec is None or spec.output_size == data.outputs:
            return []
        return [Problem(loc + ("type",), f"{kind} has {spec.output_size} outputs, but dataset "
                        f"{dataset!r} has {data.outputs} {what}; pick a model for it")]
    sizes = model["sizes"]
    if sizes[-1] != data.outputs:
        return [Problem(loc + ("sizes", len(sizes) - 1), f"output width {sizes[-1]} does not "
                        f"match dataset {dataset!r}, which has {data.outputs} {what}; set the "
                        f"last size to {data.outputs}")]
    return []


def check_builds(
    model: dict, loss: str, l2: float, init: str, loc: tuple,
) -> tuple[ModelSpec | None, list[Problem]]:
    """Build the spec to catch what the zoo rejects (activations, widths, options)."""
    try:
        return build(model, loss, l2, init), []
    except SpecError as exc:
        return None, [Problem(loc + ("model",), str(exc))]
    except (TypeError, ValueError) as exc:  # a generic builder refusing an option's value
        return None, [Problem(loc + ("model",), f"{model['type']}: {exc}")]


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
