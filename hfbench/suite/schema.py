"""The suite file format as pydantic models: types, ranges and names, field by field.

Every model forbids unknown keys and is strict (no "10" -> 10, no 1.5 -> 1, no
true -> 1), so a typo is an error rather than a default. Names that have a fixed
set of choices (datasets, algorithms, metrics, backends) are checked here with a
did-you-mean; checks that need two fields at once (a model against its dataset,
a grid point against its algorithm) live in `checks.py` and `grid.py`.

Workloads may override the suite's `budget`, `targets`, `eval` and `device`; an
override replaces the suite's value as a whole. `backend_options` (at the top level
and in a workload) maps a backend name to its constructor options; a workload's
override the suite's option by option, and each backend checks its own (`options.py`).

Model types are the zoo's registry (`hfbench.models.MODELS`): mlp, autoencoder and
lenet have entry classes here for their own keys; any other registered type is a
`GenericModel` whose keys are its builder's keyword options.

An optional `reference:` block holds the paper's own numbers, each tied to a
workload, an optimizer (and one grid point of it), a metric and a point of the run
(`final`, `{time_s: t}`: one of the workload's time marks, or `{epoch: e}`):

    reference:
      source: "Gargiani et al. 2020, Tables 1-3"
      note: "what the paper reports that has no entry here, and why"
      hardware: "GeForce GTX TITAN X"     # the entries' default `hardware`
      baseline: sgd                       # or {optimizer: sgd, config: {lr: 0.1}}
      entries:
        - {workload: mnist, optimizer: sgn, config: {cg_iters: 2}, metric: test_accuracy,
           at: {time_s: 25}, value: 91.6, convert: percent, table: "Table 1 (left)"}
        - {workload: mnist, optimizer: sgd, config: {lr: 0.1}, metric: epoch,
           at: {time_s: 25}, value: 36, kind: time, table: "Table 1 (left)"}

`value` is the number as the paper prints it; `convert` names how it maps to
hfbench's units (percent: v/100; error_percent: 1 - v/100; error: 1 - v). Entries of
`kind: time` (hardware-bound: seconds, or epochs reached by a time mark) are compared
as ratios to the baseline optimizer's number on the same hardware, never as they are.
The models here check each field; `refcheck.py` checks the entries against the
suite's workloads, optimizers, grids and time marks; `hfbench.report.reference`
compares them with results.
"""

from __future__ import annotations

import collections
import functools
import math
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, PrivateAttr,
    Tag, model_validator,
)

from .. import algorithms
from ..devices import parse_device
from ..errors import unknown
from ..losses import LOSSES
from ..models import ACTIVATIONS, zoo
from . import datasets, models
from .errors import KeyProblem, unknown_key
from .yamlpos import dotted, locate

METRICS = (
    "train_loss", "test_loss", "train_accuracy", "test_accuracy",
    "train_reconstruction_error", "test_reconstruction_error",
)
BUDGET_KEYS = ("time_s", "epochs", "iterations", "grad_passes")
# what a reference entry may name: the evaluated metrics, and what the runner counts
SPEED_METRICS = ("time_s", "epoch", "iterations")
REFERENCE_METRICS = METRICS + SPEED_METRICS
CONVERSIONS = {  # a paper's printed number -> hfbench's units
    "percent": lambda v: v / 100.0,  # accuracy in % -> a fraction
    "error_percent": lambda v: 1.0 - v / 100.0,  # error in % -> accuracy
    "error": lambda v: 1.0 - v,  # error as a fraction -> accuracy
}
BUILTIN_BACKENDS = ("torch", "jax")
MAX_SEEDS = 1000  # a count or a list; papers report 1 to 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


# ----------------------------------------------------------------------------- field checks


def _choice(kind: str, choices):
    """A check against `choices`; a registry's own dict is read at each check, not copied."""
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(unknown(kind, value, choices))
        return value
    return check


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"names use letters, digits, '_', '.' and '-' (they appear in file "
                         f"names and filters), got {value!r}")
    return value


@functools.cache
def backend_names() -> tuple[str, ...]:
    """The built-in backends and those registered as entry points (cached: a scan of
    every installed distribution costs tens of milliseconds)."""
    from ..registry import registered  # entry points only: no framework is imported

    return tuple(sorted(set(BUILTIN_BACKENDS) | set(registered())))


def _backend(value: str) -> str:
    return _choice("backend", backend_names())(value)


def _device(value: str) -> str:
    """The canonical name (`hfbench.devices`): `gpu` and `cuda` make the same trials."""
    return parse_device(value)  # a DeviceError is a ValueError: pydantic reports its text


def _options_backend(value: str) -> str:
    if value not in backend_names():
        raise ValueError(f"{unknown('backend', value, backend_names())}; backend_options maps a "
                         "backend to its options, e.g. backend_options: {torch: {compile: false}}")
    return value


def _batch_size(value: Any) -> Any:
    if value == "full" or (type(value) is int and value >= 1):
        return value
    raise ValueError(f"expected an integer >= 1 or 'full' (the whole training set), got {value!r}")


def _seeds(value: Any) -> Any:
    """An int N means seeds 0..N-1 (at most MAX_SEEDS: `seeds: 100000000` is a typo that
    would otherwise build a list of 10^8 seeds before anything else is checked)."""
    if type(value) is int:
        if not 1 <= value <= MAX_SEEDS:
            raise ValueError(f"a seed count must be 1 to {MAX_SEEDS:,}, got {value}")
        return list(range(value))
    if not isinstance(value, list):
        raise ValueError(f"expected a seed count N (for seeds 0..N-1) or a list of seeds, got {value!r}")
    return value


def _unique(kind: str):
    def check(values: list) -> list:
        counts = collections.Counter(values)  # not values.count(v) per value: quadratic
        dup = sorted({str(v) for v, n in counts.items() if n > 1})
        if dup:
            raise ValueError(f"{kind} listed twice: {', '.join(dup)}")
        return values
    return check


def _activation(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(a, str) for a in items):
        raise ValueError(f"expected an activation name or a list of them (one per hidden "
                         f"layer), got {value!r}")
    for a in items:
        _choice("activation", ACTIVATIONS)(a)
    return value


Name = Annotated[str, AfterValidator(_name)]
Device = Annotated[str, AfterValidator(_device)]
# {backend: {option: value}}; the values are checked by each backend (options.py)
BackendOptions = dict[Annotated[str, AfterValidator(_options_backend)], dict[str, Any]]
BatchSize = Annotated[Any, AfterValidator(_batch_size)]
Width = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]


# ----------------------------------------------------------------------------- models


class MlpModel(_Strict):
    type: Literal["mlp"]
    sizes: Annotated[list[Width], Field(min_length=2)]
    activation: Annotated[Any, AfterValidator(_activation)] = "sigmoid"


class AutoencoderModel(_Strict):
    type: Literal["autoencoder"]
    encoder: Annotated[list[Width], Field(min_length=2)]


class LeNetModel(_Strict):
    type: Literal["lenet"]
    # "same": first conv padded by 2 (400 features); "valid": the public Adaptive HF
    # code's lenet.py (no padding, 256 features). See hfbench.models.zoo.lenet.
    padding: Literal["same", "valid"] = "same"


def _model_type(value: str) -> str:
    if value not in zoo.MODELS:
        raise ValueError(unknown("model type", value, models.types()))
    return value


class GenericModel(BaseModel):
    """Any other type of the zoo's registry; its keys are its builder's keyword options."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)
    type: Annotated[str, AfterValidator(_model_type)]

    @model_validator(mode="after")
    def _options(self):
        accepted = models.options_of(self.type)
        given = self.__pydantic_extra__ or {}
        for key, value in given.items():
            if key not in accepted:
                raise KeyProblem(key, unknown_key(key, value, ["type", *accepted],
                                                  f"keys of type {self.type}"))
        missing = [n for n, p in accepted.items() if p.default is p.empty and n not in given]
        if missing:
            raise ValueError(f"{self.type}: missing required key {missing[0]!r}")
        return self


# Types with keys of their own; the rest of the zoo's registry is a GenericModel.
ENTRY_CLASSES = {"mlp": MlpModel, "autoencoder": AutoencoderModel, "lenet": LeNetModel}
GENERIC = "generic"  # GenericModel's tag (pydantic puts it in error locations; dropped there)
if not set(ENTRY_CLASSES) <= set(zoo.MODELS):
    raise RuntimeError(f"suite model entries for types the zoo lacks: "
                       f"{sorted(set(ENTRY_CLASSES) - set(zoo.MODELS))}")


def model_tags() -> tuple[str, ...]:
    """The tags of the model union's members (for error locations)."""
    return (*ENTRY_CLASSES, GENERIC)


def _model_tag(value: Any) -> str | None:
    """Which class validates a model entry: by its type, read from the zoo's registry now
    (so a type registered after import is accepted). None: no type given."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None:
        return None
    if not isinstance(kind, str):
        return GENERIC  # whose `type: str` says "expected a string" (a list is unhashable here)
    return kind if kind in ENTRY_CLASSES and kind in zoo.MODELS else GENERIC


def model_keys(kind: str | None = None) -> list[str]:
    """The keys a model entry of type `kind` may have; None: those of any type."""
    if kind is None:
        return sorted({k for t in models.types() for k in model_keys(t)})
    if kind in ENTRY_CLASSES:
        return list(ENTRY_CLASSES[kind].model_fields)
    return ["type", *models.options_of(kind)] if kind in zoo.MODELS else ["type"]


Model = Annotated[
    Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in ENTRY_CLASSES.items())
          + (Annotated[GenericModel, Tag(GENERIC)],)],
    Discriminator(_model_tag),
]


class Budget(_Strict):
    """Any subset; the first limit reached ends the trial."""

    time_s: Positive | None = None  # training wall-time, evaluation and compilation excluded
    epochs: Positive | None = None  # samples seen / training-set size
    iterations: Annotated[int, Field(ge=1)] | None = None  # outer steps
    grad_passes: Positive | None = None  # gradient-equivalent passes (n_grad + weighted n_gv)

    @model_validator(mode="after")
    def _not_empty(self):
        if all(getattr(self, k) is None for k in BUDGET_KEYS):
            raise ValueError(f"an empty budget never ends; give at least one of {', '.join(BUDGET_KEYS)}")
        return self

    def limits(self) -> dict:
        return {k: getattr(self, k) for k in BUDGET_KEYS if getattr(self, k) is not None}


class Target(_Strict):
    """`{metric: test_accuracy, ">=": 0.92}` or `{metric: ..., op: ">=", value: 0.92}`."""

    metric: Annotated[str, AfterValidator(_choice("metric", METRICS))]
    op: Literal[">=", "<="]
    value: float
    stop: bool = False  # end the trial when reached; otherwise only record when

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ops = [k for k in (">=", "<=") if k in data]
        if not ops:
            if "op" not in data and "value" not in data:
                raise ValueError("give the threshold as '>=': value or '<=': value")
            return data
        if len(ops) > 1 or "op" in data or "value" in data:
            raise ValueError("give one threshold: either '>=': v, '<=': v, or op and value")
        rest = {k: v for k, v in data.items() if k != ops[0]}
        return {**rest, "op": ops[0], "value": data[ops[0]]}


class Eval(_Strict):
    """Full-set evaluation: every N iterations, at each epoch's end, and at each time mark."""

    every: Annotated[int, Field(ge=1)] | None = 100  # iterations; null: no iteration schedule
    epoch_end: bool = False
    # seconds of training time, as in Gargiani et al.'s tables; kept sorted
    time_marks: Annotated[list[Positive], AfterValidator(lambda v: sorted(set(v)))] = []


class Workload(_Strict):
    dataset: Annotated[str, AfterValidator(lambda v: _choice("dataset", datasets.names())(v))]
    model: Model
    loss: Annotated[str, AfterValidator(_choice("loss", LOSSES))] | None = None  # read live
    batch_size: BatchSize
    curvature_batch_size: BatchSize | None = None  # hf's separate curvature batch
    l2: Annotated[float, Field(ge=0)] = 0.0
    # multiplies the per-example loss: 2 turns squared_error's 1/2 |z - t|^2 into the
    # |z - t|^2 of Martens' code and Gargiani et al.'s mean((z - t)^2) (one output)
    loss_scale: Positive = 1.0
    init: Literal["sparse", "dense"] | None = None
    optimizers: Annotated[list[Name], AfterValidator(_unique("optimizer"))] | None = None
    budget: Budget | None = None
    targets: list[Target] | None = None
    eval: Eval | None = None
    device: Device | None = None
    backend_options: BackendOptions | None = None  # over the suite's, option by option


class Optimizer(_Strict):
    algorithm: Annotated[str, AfterValidator(_choice("algorithm", algorithms.ALGORITHMS))]
    params: dict[str, Any] = {}  # a list value sweeps; checked against the algorithm in grid.py
    zip: list[list[str]] = []  # groups of list-valued params that advance together


Seeds = Annotated[
    list[Annotated[int, Field(ge=0)]],
    BeforeValidator(_seeds), AfterValidator(_unique("seed")), Field(min_length=1, max_length=MAX_SEEDS),
]


# ----------------------------------------------------------------------------- reference


def _scalar(value: Any) -> Any:
    if isinstance(value, (bool, str)) or (type(value) in (int, float) and math.isfinite(value)):
        return value
    raise ValueError(f"expected a single option value (a number, string or true/false), got {value!r}")


def _at(value: Any) -> Any:
    """`final`, `{time_s: t}` or `{epoch: e}` (t, e > 0)."""
    usage = "expected final, {time_s: t} (one of the workload's time marks) or {epoch: e}"
    if value == "final":
        return value
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{usage}, got {value!r}")
    ((key, t),) = value.items()
    if key not in ("time_s", "epoch"):
        raise ValueError(f"{unknown('at key', str(key), ('time_s', 'epoch'))}; or give `at: final`")
    if type(t) not in (int, float) or not (math.isfinite(t) and t > 0):
        raise ValueError(f"at {key} must be a number > 0, got {t!r}")
    return {key: float(t)}


Scalar = Annotated[Any, AfterValidator(_scalar)]
Config = dict[str, Scalar]
Text = Annotated[str, Field(min_length=1)]


class Baseline(_Strict):
    """The optimizer (and grid point; none: all of its points) time entries are divided by."""

    optimizer: Name
    config: Config = {}

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"optimizer": data} if isinstance(data, str) else data


class ReferenceEntry(_Strict):
    """One number of the paper; see the module docstring."""

    workload: Name
    optimizer: Name
    config: Config = {}  # the grid point, when the optimizer sweeps
    metric: Annotated[str, AfterValidator(_choice("metric", REFERENCE_METRICS))]
    at: Annotated[Any, AfterValidator(_at)] = "final"
    value: float  # as printed in the paper
    convert: Annotated[str, AfterValidator(_choice("conversion", tuple(CONVERSIONS)))] | None = None
    kind: Literal["value", "time"] = "value"
    baseline: Baseline | None = None  # kind: time only; default: the block's
    table: Text  # where in the paper: "Table 1 (left)", "§8"
    hardware: str | None = None  # default: the block's
    note: str = ""

    @property
    def paper_value(self) -> float:
        """The value in hfbench's units."""
        return CONVERSIONS[self.convert](self.value) if self.convert else self.value


class Reference(_Strict):
    source: Text  # the paper, and which tables
    note: str = ""  # what it reports that has no entry, and why
    hardware: str | None = None
    baseline: Baseline = Baseline(optimizer="sgd")
    entries: list[ReferenceEntry] = []


class Suite(_Strict):
    name: Name
    description: str = ""
    backends: Annotated[list[Annotated[str, AfterValidator(_backend)]],
                        Field(min_length=1), AfterValidator(_unique("backend"))]
    seeds: Seeds = [0]
    device: Device = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    tf32: bool = False
    backend_options: BackendOptions = {}  # {torch: {compile: false}}; see options.py
    workloads: Annotated[dict[Name, Workload], Field(min_length=1)]
    optimizers: Annotated[dict[Name, Optimizer], Field(min_length=1)]
    budget: Budget | None = None
    targets: list[Target] = []
    eval: Eval = Eval()
    reference: Reference | None = None  # the paper's numbers, for hfbench.report.reference
    _source: str = PrivateAttr("<suite>")  # the file it came from, for messages
    _lines: dict = PrivateAttr(default_factory=dict)  # key path -> line (yamlpos.parse)

    @property
    def source(self) -> str:
        return self._source

    def where(self, path: tuple) -> str:
        """`file:line key.path` of a key of the file, for messages after validation."""
        shown, line = locate(self._lines, tuple(path))
        return f"{self._source}:{line} {dotted(shown)}"


# ----------------------------------------------------------------------------- key lookup


def fields_at(loc: tuple) -> list[str]:
    """The valid keys of the mapping that holds loc[-1] (for an unknown key's did-you-mean)."""
    tp: Any = Suite
    for part in loc[:-1]:
        tp = _step(tp, part)
        if tp is None:
            return []
    tp = _strip(tp)
    return list(tp.model_fields) if _is_model(tp) else []


def _is_model(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _strip(tp):
    """Unwrap Annotated[...] and Optional[...]."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _step(tp, part):
    tp = _strip(tp)
    if _is_model(tp):
        field = tp.model_fields.get(part)
        return field.annotation if field else None
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1]
    if origin is list:
        return get_args(tp)[0]
    if origin in (Union, types.UnionType):  # a discriminated union: part is the tag
        for member in get_args(tp):
            tags = [m.tag for m in getattr(member, "__metadata__", ()) if isinstance(m, Tag)]
            if part in tags:
                return _strip(member)
    return None
