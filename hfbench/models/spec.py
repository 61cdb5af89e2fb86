"""Backend-neutral model specs: layers, shape inference and the canonical layout.

A `ModelSpec` is a frozen record of layers; every backend builds the same function
from it. Parameters live in one flat vector, layer by layer:

- `Dense`: the weight as an (in, out) matrix, row-major, then the bias (out,).
- `Conv2d`: the kernel as (out_ch, in_ch, kh, kw), row-major, then the bias (out_ch,).

Images are laid out channels-first, (C, H, W); `Flatten` flattens in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import SpecError, unknown
from ..losses import get_loss

ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")
INITS = ("sparse", "dense")


def check_activation(name: str, where: str) -> None:
    if name not in ACTIVATIONS:
        raise SpecError(unknown("activation", name, ACTIVATIONS, where))


@dataclass(frozen=True, kw_only=True)
class Dense:
    """y = x W + b, then the activation."""

    in_features: int
    out_features: int
    activation: str = "linear"

    def out_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if shape != (self.in_features,):
            raise SpecError(
                f"{where}: dense layer expects input of width {self.in_features}, but the "
                f"previous layer gives shape {shape}; set in_features={math.prod(shape)} "
                "(add a Flatten after conv layers)"
            )
        return (self.out_features,)

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.in_features, self.out_features), (self.out_features,))

    def fan_in(self) -> int:
        return self.in_features


@dataclass(frozen=True, kw_only=True)
class Conv2d:
    """Cross-correlation with an (out, in, kh, kw) kernel, stride and zero padding."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    activation: str = "relu"

    def out_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise SpecError(
                f"{where}: conv layer expects a (C={self.in_channels}, H, W) input, but the "
                f"previous layer gives shape {shape}; set in_channels to its channel count"
            )
        h, w = (_conv_size(s, self.kernel_size, self.stride, self.padding) for s in shape[1:])
        if h < 1 or w < 1:
            raise SpecError(
                f"{where}: a {self.kernel_size}x{self.kernel_size} conv (stride {self.stride}, "
                f"padding {self.padding}) shrinks the {shape[1]}x{shape[2]} input to {h}x{w}; "
                "use a smaller kernel, more padding, or fewer pooling layers before it"
            )
        return (self.out_channels, h, w)

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        k = self.kernel_size
        return ((self.out_channels, self.in_channels, k, k), (self.out_channels,))

    def fan_in(self) -> int:
        return self.in_channels * self.kernel_size**2


@dataclass(frozen=True, kw_only=True)
class MaxPool2d:
    """Max pooling over size x size windows (stride defaults to size), no padding."""

    size: int = 2
    stride: int | None = None

    def out_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 3:
            raise SpecError(f"{where}: max pooling needs a (C, H, W) input, got shape {shape}")
        s = self.stride or self.size
        h, w = (_conv_size(n, self.size, s, 0) for n in shape[1:])
        if h < 1 or w < 1:
            raise SpecError(
                f"{where}: {self.size}x{self.size} max pooling shrinks the "
                f"{shape[1]}x{shape[2]} input to {h}x{w}; remove this pooling layer"
            )
        return (shape[0], h, w)

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ()


@dataclass(frozen=True, kw_only=True)
class Flatten:
    """(C, H, W) -> (C*H*W,), row-major."""

    def out_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return (math.prod(shape),)

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ()


Layer = Dense | Conv2d | MaxPool2d | Flatten


def _conv_size(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A network, its matching loss and its weight cost.

    The objective is (1/B) sum_i c * loss(z_i, t_i) + l2/2 |theta|^2, where z is the
    output of the last layer (which must be linear: the loss applies its own
    matching nonlinearity) and c = `loss_scale`. `reconstruct=True` marks an
    autoencoder: targets are the inputs, and evaluation reports the reconstruction
    error. `loss_scale` reaches the papers' conventions from hfbench's losses:
    squared_error is 1/2 |z - t|^2, so c = 2 gives Martens' sum (z - t)^2 (FACES) and,
    with one output, Gargiani et al.'s mean((z - t)^2). The gradient, the GGN and the
    Hessian scale with c, the empirical Fisher and the preconditioner with c^2; the
    l2 term with neither.
    """

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    loss: str
    l2: float = 0.0
    loss_scale: float = 1.0
    init: str = "dense"
    reconstruct: bool = False
    name: str = ""
    shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "shapes", _infer_shapes(self))

    @property
    def output_size(self) -> int:
        return self.shapes[-1][0]

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def num_params(self) -> int:
        return sum(math.prod(s) for s in param_shapes(self))


def _infer_shapes(spec: ModelSpec) -> tuple[tuple[int, ...], ...]:
    """Validate the spec and return each layer's output shape."""
    label = spec.name or "model"
    get_loss(spec.loss, where=f"{label}: loss")
    if spec.init not in INITS:
        raise SpecError(unknown("init", spec.init, INITS, f"{label}: init"))
    if not (isinstance(spec.l2, (int, float)) and spec.l2 >= 0):
        raise SpecError(f"{label}: l2 must be a number >= 0, got {spec.l2!r}")
    ok = isinstance(spec.loss_scale, (int, float)) and not isinstance(spec.loss_scale, bool)
    if not (ok and math.isfinite(spec.loss_scale) and spec.loss_scale > 0):
        raise SpecError(f"{label}: loss_scale must be a finite number > 0 (2 turns "
                        f"squared_error's 1/2 |z - t|^2 into |z - t|^2), got {spec.loss_scale!r}")
    if not spec.layers:
        raise SpecError(f"{label}: a model needs at least one layer")
    shape, shapes = spec.input_shape, []
    for i, layer in enumerate(spec.layers):
        where = f"{label}: layer {i} ({type(layer).__name__})"
        if not isinstance(layer, (Dense, Conv2d, MaxPool2d, Flatten)):
            raise SpecError(f"{where}: not a layer; use Dense, Conv2d, MaxPool2d or Flatten")
        if hasattr(layer, "activation"):
            check_activation(layer.activation, f"{where}: activation")
        shape = layer.out_shape(shape, where)
        shapes.append(shape)
    last = spec.layers[-1]
    if not isinstance(last, Dense) or last.activation != "linear":
        raise SpecError(
            f"{label}: the last layer must be Dense with activation 'linear'; the loss "
            f"{spec.loss!r} applies its own output nonlinearity"
        )
    return tuple(shapes)


def param_shapes(spec: ModelSpec) -> list[tuple[int, ...]]:
    """Shapes of the parameter arrays, in canonical flat order."""
    return [s for layer in spec.layers for s in layer.param_shapes()]
