"""Backend-neutral model specs, the canonical parameter layout and initialization."""

from .batch import BatchMeta, check_fits, prepare
from .params import flatten, init_params, unflatten
from .spec import (
    ACTIVATIONS,
    INITS,
    Conv2d,
    Dense,
    Flatten,
    MaxPool2d,
    ModelSpec,
    param_shapes,
)
from .zoo import MODELS, autoencoder, gargiani_cifar_cnn, gargiani_fashion_cnn, lenet, mlp

__all__ = [
    "ACTIVATIONS", "INITS", "MODELS", "BatchMeta", "Conv2d", "Dense", "Flatten", "MaxPool2d",
    "ModelSpec", "autoencoder", "check_fits", "flatten", "gargiani_cifar_cnn",
    "gargiani_fashion_cnn", "init_params", "lenet", "mlp", "param_shapes", "prepare",
    "unflatten",
]
