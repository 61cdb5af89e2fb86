"""Builders for the networks of the four papers, and for generic MLPs."""

from __future__ import annotations

import dataclasses

from collections.abc import Sequence

from ..errors import SpecError
from .spec import Conv2d, Dense, Flatten, MaxPool2d, ModelSpec, check_activation


def mlp(
    sizes: Sequence[int],
    activation: str | Sequence[str] = "sigmoid",
    loss: str = "softmax_cross_entropy",
    *,
    l2: float = 0.0,
    init: str = "dense",
    name: str = "",
) -> ModelSpec:
    """A fully connected net; sizes = [in, hidden..., out].

    `activation` is one name for every hidden layer or one per hidden layer. The
    output layer is always linear (the loss applies its nonlinearity), so
    `mlp([13, 1], loss="squared_error")` is a linear model.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise SpecError(f"mlp: sizes must list at least input and output widths >= 1, got {sizes}")
    n_hidden = len(sizes) - 2
    acts = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    if len(acts) != n_hidden:
        raise SpecError(
            f"mlp: {len(acts)} activations given for {n_hidden} hidden layers; give one "
            "name, or one per hidden layer"
        )
    for i, a in enumerate(acts):
        check_activation(a, f"mlp: activation of hidden layer {i}")
    layers = [
        Dense(in_features=a, out_features=b, activation=act)
        for a, b, act in zip(sizes[:-1], sizes[1:], acts + ["linear"])
    ]
    return ModelSpec(
        input_shape=(sizes[0],), layers=tuple(layers), loss=loss, l2=l2, init=init,
        name=name or f"mlp{sizes}",
    )


def autoencoder(
    encoder_sizes: Sequence[int],
    *,
    loss: str = "sigmoid_cross_entropy",
    l2: float = 0.0,
    init: str = "sparse",
    name: str = "",
) -> ModelSpec:
    """Martens' deep autoencoder (2010 §6; Hinton and Salakhutdinov 2006).

    The decoder mirrors the encoder. Hidden units are logistic, the code layer is
    linear, and the outputs are logistic through the loss (sigmoid_cross_entropy).
    For FACES Martens uses squared error on linear outputs: pass
    loss="squared_error". Sparse initialization by default (§5).
    """
    enc = [int(s) for s in encoder_sizes]
    if len(enc) < 2:
        raise SpecError(f"autoencoder: encoder_sizes needs input and code widths, got {enc}")
    sizes = enc + enc[-2::-1]
    n_code = len(enc) - 2  # index of the layer that produces the code
    acts = ["linear" if i == n_code else "sigmoid" for i in range(len(sizes) - 2)]
    spec = mlp(sizes, acts, loss, l2=l2, init=init, name=name or f"autoencoder{enc}")
    return dataclasses.replace(spec, reconstruct=True)


def gargiani_fashion_cnn(*, l2: float = 0.0, init: str = "dense") -> ModelSpec:
    """Gargiani et al. 2020 §4.4: conv 6@5x5, relu, pool 2; conv 16@5x5, relu, pool 2;
    fc 120, 84 (relu), 10. Stride 1, no padding (28 -> 24 -> 12 -> 8 -> 4)."""
    layers = (
        Conv2d(in_channels=1, out_channels=6, kernel_size=5),
        MaxPool2d(size=2),
        Conv2d(in_channels=6, out_channels=16, kernel_size=5),
        MaxPool2d(size=2),
        Flatten(),
        Dense(in_features=256, out_features=120, activation="relu"),
        Dense(in_features=120, out_features=84, activation="relu"),
        Dense(in_features=84, out_features=10),
    )
    return _classifier((1, 28, 28), layers, l2, init, "gargiani_fashion_cnn")


def gargiani_cifar_cnn(*, l2: float = 0.0, init: str = "dense") -> ModelSpec:
    """Gargiani et al. 2020 §4.5: conv 32@3x3, relu, pool; conv 64@3x3, relu, pool;
    conv 64@3x3, relu; fc 64 (relu); fc 10. Stride 1, no padding (32 -> 30 -> 15 -> 13
    -> 6 -> 4)."""
    layers = (
        Conv2d(in_channels=3, out_channels=32, kernel_size=3),
        MaxPool2d(size=2),
        Conv2d(in_channels=32, out_channels=64, kernel_size=3),
        MaxPool2d(size=2),
        Conv2d(in_channels=64, out_channels=64, kernel_size=3),
        Flatten(),
        Dense(in_features=1024, out_features=64, activation="relu"),
        Dense(in_features=64, out_features=10),
    )
    return _classifier((3, 32, 32), layers, l2, init, "gargiani_cifar_cnn")


def lenet(*, l2: float = 0.0, init: str = "dense", padding: str = "same") -> ModelSpec:
    """LeNet-5 (LeCun et al. 1998) as Motokawa and Tezuka 2020 use it on Fashion-MNIST.

    Their Appendix B says only "LeNet" with ReLU everywhere: conv 6@5x5, max pool 2,
    conv 16@5x5, max pool 2, fc 120, 84, 10, all ReLU. Max pooling replaces LeNet's
    trainable subsampling, as in the usual modern reading. `padding`:
    - "same" (default): the first conv pads by 2, so 28x28 plays LeNet's padded 32x32
      (28 -> 28 -> 14 -> 10 -> 5: 400 features);
    - "valid": no padding, as their public code's lenet.py (Keras padding='valid';
      28 -> 24 -> 12 -> 8 -> 4: 256 features).
    """
    if padding not in ("same", "valid"):
        raise SpecError(f"lenet: padding must be 'same' (first conv padded by 2) or 'valid' "
                        f"(no padding, the public Adaptive HF code), got {padding!r}")
    pad, flat = (2, 400) if padding == "same" else (0, 256)
    layers = (
        Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=pad),
        MaxPool2d(size=2),
        Conv2d(in_channels=6, out_channels=16, kernel_size=5),
        MaxPool2d(size=2),
        Flatten(),
        Dense(in_features=flat, out_features=120, activation="relu"),
        Dense(in_features=120, out_features=84, activation="relu"),
        Dense(in_features=84, out_features=10),
    )
    return _classifier((1, 28, 28), layers, l2, init, "lenet" if padding == "same" else "lenet_valid")


def _classifier(shape, layers, l2, init, name) -> ModelSpec:
    return ModelSpec(
        input_shape=shape, layers=layers, loss="softmax_cross_entropy", l2=l2, init=init,
        name=name,
    )


# The model types, by the name a suite gives as `type:`. hfbench.suite reads its list of
# valid types from here. A builder takes keyword-only `l2` and `init` (and `loss` where
# the loss is the caller's choice); its other keyword options are the suite entry's keys
# (mlp and autoencoder have suite entries of their own: `sizes`, `encoder`).
MODELS = {
    "mlp": mlp,
    "autoencoder": autoencoder,
    "gargiani_fashion_cnn": gargiani_fashion_cnn,
    "gargiani_cifar_cnn": gargiani_cifar_cnn,
    "lenet": lenet,
}
