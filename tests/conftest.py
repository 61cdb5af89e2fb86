"""Shared fixtures: installed backends, a table of tiny models, and seeded data.

Every backend test runs on each backend `hfbench.installed_backends()` can load
(SciPy's `xp` fixture is the model); a missing one is skipped with the extra that
would install it. The model table covers every layer type, activation and loss on
nets of a few dozen parameters, so dense float64 oracles stay cheap. A run with
HFBENCH_REQUIRE_BACKENDS=torch,jax (CI's) fails at the start if a named backend does
not import, instead of skipping the tests that need it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import pytest

import hfbench
from hfbench import models
from hfbench.models import Conv2d, Dense, Flatten, MaxPool2d, ModelSpec

try:
    import torch
except ImportError:  # a jax-only install
    torch = None
else:
    # Tiny nets gain nothing from intra-op threads, and on a busy 2-core runner the
    # OpenMP barriers of a 2-thread pool cost milliseconds per op (measured: a 5x5
    # conv 15 ms with 2 threads vs 30 us with 1). Numbers are unaffected.
    torch.set_num_threads(1)

BUILTIN = ("torch", "jax")
DTYPES = ("float64", "float32")

SOFTMAX, SIGMOID, SQUARED = "softmax_cross_entropy", "sigmoid_cross_entropy", "squared_error"


# ----------------------------------------------------------------------------- backends


def _skip_reason(name: str, why: str) -> str:
    hint = f": pip install 'hfbench[{name}]'" if name in BUILTIN else ""
    return f"backend {name!r} not installed{hint} ({why})"


def backend_params() -> list:
    """One pytest.param per known backend; those that do not load are skipped, saying why."""
    status = dict.fromkeys(BUILTIN, "not registered in the 'hfbench.backends' entry points")
    status.update(hfbench.installed_backends())
    return [
        pytest.param(name, id=name) if why is None
        else pytest.param(name, id=name, marks=pytest.mark.skip(reason=_skip_reason(name, why)))
        for name, why in sorted(status.items())
    ]


REQUIRE_VAR = "HFBENCH_REQUIRE_BACKENDS"


def required_backends_problem(value: str) -> str | None:
    """Why the backends named in `value` ("torch,jax") cannot all be imported, or None.

    An install that promises a backend (CI's `.[all]`) names it here, so that an import
    that breaks fails the run instead of skipping every test that needs the backend.
    """
    from hfbench.registry import registered

    names = [n.strip() for n in value.split(",") if n.strip()]
    eps, problems = registered(), []
    for name in names:
        if name not in eps:
            problems.append(f"backend {name!r} is not registered (registered: "
                            f"{', '.join(sorted(eps)) or 'none'}); fix the name")
            continue
        try:
            eps[name].load()
        except Exception as exc:  # whatever a broken install raises, it is the reason
            problems.append(f"backend {name!r} does not import ({type(exc).__name__}: {exc}); "
                            f"pip install 'hfbench[{name}]'")
    if not problems:
        return None
    return (f"{REQUIRE_VAR}={value} names backends this install promised, but "
            + "; ".join(problems) + f". Without them the tests that need them would be "
            f"skipped; fix the install, or drop the name from {REQUIRE_VAR}.")


def pytest_sessionstart(session):
    value = os.environ.get(REQUIRE_VAR, "")
    why = required_backends_problem(value) if value.strip() else None
    if why:
        raise pytest.UsageError(why)


def missing_backends(*names: str) -> str | None:
    """Why the given backends cannot all run here, or None when they can."""
    status = hfbench.installed_backends()
    gone = [n for n in names if status.get(n, "not registered") is not None]
    if not gone:
        return None
    return "; ".join(_skip_reason(n, status.get(n, "not registered")) for n in gone)


@functools.lru_cache(maxsize=None)
def make_backend(name: str, dtype: str = "float64"):
    """A CPU backend of `dtype`, built once per test session.

    "torch-compiled" is torch with CG's update fused by torch.compile; plain "torch"
    stays eager whatever the backend's compile="auto" would pick.
    """
    if name == "torch-compiled":
        return hfbench.get_backend("torch", device="cpu", dtype=dtype, compile=True)
    options = {"compile": False} if name == "torch" else {}
    return hfbench.get_backend(name, device="cpu", dtype=dtype, **options)


@functools.lru_cache(maxsize=None)
def make_problem(name: str, dtype: str, case: "Case"):
    """One problem per (backend, dtype, model), so JAX compiles each model once."""
    return make_backend(name, dtype).problem(case.spec)


@pytest.fixture(params=backend_params())
def backend_name(request) -> str:
    return request.param


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Case:
    """A tiny model, the batch size to test it on, and the scale of its random weights."""

    id: str
    spec: ModelSpec
    batch_size: int = 5
    weight_scale: float = 0.5

    def __repr__(self) -> str:  # pytest ids and failure messages
        return f"Case({self.id})"

    def theta(self, seed: int = 0) -> np.ndarray:
        """Generic float64 weights: no zero entries, no symmetries between units."""
        rng = np.random.default_rng(1000 + seed)
        return self.weight_scale * rng.standard_normal(self.spec.num_params)

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return make_data(self.spec, self.batch_size, seed)


def make_data(spec: ModelSpec, batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (X, Y) for `spec`: X is (B, *input_shape) float64.

    X is standard normal, so no relu pre-activation is exactly 0 and no pooling
    window has a tie. Y: int labels in [0, K) for softmax CE, targets in [0, 1] for
    sigmoid CE, normal targets for squared error; for autoencoders Y is X (then in
    [0, 1] for sigmoid CE).
    """
    rng = np.random.default_rng(seed)
    shape = (batch_size, *spec.input_shape)
    k = spec.output_size
    if spec.reconstruct:
        X = rng.uniform(0.05, 0.95, shape) if spec.loss == SIGMOID else rng.standard_normal(shape)
        return X, X.reshape(batch_size, -1).copy()
    X = rng.standard_normal(shape)
    if spec.loss == SOFTMAX:
        # Every class appears when the batch is big enough, so labels are not all equal.
        Y = rng.permutation(np.arange(batch_size) % k).astype(np.int64)
    elif spec.loss == SIGMOID:
        Y = rng.uniform(0.0, 1.0, (batch_size, k))
    else:
        Y = rng.standard_normal((batch_size, k))
    return X, Y


def _conv_relu_pool() -> ModelSpec:
    # (1,6,6) -conv3-> (2,4,4) -pool2-> (2,2,2) -> 8 -> 3; 47 params
    return ModelSpec(
        input_shape=(1, 6, 6), loss=SOFTMAX, name="conv_relu_pool",
        layers=(
            Conv2d(in_channels=1, out_channels=2, kernel_size=3, activation="relu"),
            MaxPool2d(size=2), Flatten(), Dense(in_features=8, out_features=3),
        ),
    )


def _conv_tanh_stride2() -> ModelSpec:
    # (2,4,4) -conv3 s2 p1-> (2,2,2) -> 8 -> 2; 56 params; with a weight cost
    return ModelSpec(
        input_shape=(2, 4, 4), loss=SIGMOID, l2=0.1, name="conv_tanh_stride2",
        layers=(
            Conv2d(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1,
                   activation="tanh"),
            Flatten(), Dense(in_features=8, out_features=2),
        ),
    )


def _conv_two_layers() -> ModelSpec:
    # (1,5,5) -conv3 p1 relu-> (2,5,5) -pool2 s1-> (2,4,4) -conv2 s2 tanh-> (2,2,2)
    # -> 8 -relu-> 3 -> 2; 73 params. Overlapping pooling windows (stride 1 < size 2).
    return ModelSpec(
        input_shape=(1, 5, 5), loss=SQUARED, name="conv_two_layers",
        layers=(
            Conv2d(in_channels=1, out_channels=2, kernel_size=3, padding=1, activation="relu"),
            MaxPool2d(size=2, stride=1),
            Conv2d(in_channels=2, out_channels=2, kernel_size=2, stride=2, activation="tanh"),
            Flatten(),
            Dense(in_features=8, out_features=3, activation="relu"),
            Dense(in_features=3, out_features=2),
        ),
    )


CASES = (
    Case("mlp_sigmoid_softmax", models.mlp([4, 3, 3], "sigmoid", SOFTMAX)),
    Case("mlp_tanh_sigmoidce", models.mlp([4, 3, 2], "tanh", SIGMOID)),
    Case("mlp_relu_squared", models.mlp([4, 5, 2], "relu", SQUARED)),
    Case("mlp_mixed_softmax", models.mlp([3, 4, 3, 3, 3], ["sigmoid", "tanh", "relu"], SOFTMAX),
         batch_size=7),
    # a linear hidden layer (as in the autoencoders' code layer) after a relu one
    Case("mlp_mixed_sigmoidce", models.mlp([4, 3, 3, 2], ["relu", "linear"], SIGMOID)),
    Case("linear_softmax", models.mlp([4, 3], loss=SOFTMAX)),
    Case("linear_sigmoidce", models.mlp([4, 3], loss=SIGMOID)),
    Case("linear_squared", models.mlp([4, 3], loss=SQUARED), batch_size=3),
    Case("autoencoder_sigmoidce", models.autoencoder([6, 4, 2]), batch_size=4),
    Case("autoencoder_squared_l2", models.autoencoder([6, 4, 2], loss=SQUARED, l2=0.05),
         batch_size=4),
    Case("conv_relu_pool", _conv_relu_pool(), batch_size=6),
    Case("conv_tanh_stride2", _conv_tanh_stride2(), batch_size=4),
    Case("conv_two_layers", _conv_two_layers(), batch_size=4),
)
CASE_IDS = [c.id for c in CASES]
CASES_BY_ID = {c.id: c for c in CASES}

# float64 runs on every model; float32 (loose tolerances, and a second JAX compile of
# each function) on a cross-section: every loss, layer type and the deepest MLP.
FLOAT32_CASE_IDS = (
    "mlp_mixed_softmax", "linear_squared", "autoencoder_sigmoidce", "conv_two_layers",
)
DTYPE_CASES = [("float64", c) for c in CASES] + [
    ("float32", CASES_BY_ID[i]) for i in FLOAT32_CASE_IDS
]
LINEAR_CASE_IDS = tuple(c.id for c in CASES if len(c.spec.layers) == 1)

# A cross-section for the tests that build whole matrices from matvecs.
SMALL_CASE_IDS = (
    "mlp_sigmoid_softmax", "mlp_tanh_sigmoidce", "mlp_relu_squared", "linear_softmax",
    "autoencoder_sigmoidce", "conv_relu_pool", "conv_tanh_stride2",
)


@pytest.fixture(params=CASES, ids=CASE_IDS)
def case(request) -> Case:
    return request.param


@pytest.fixture(params=DTYPE_CASES, ids=[f"{c.id}-{d}" for d, c in DTYPE_CASES])
def dtype_case(request) -> tuple[str, Case]:
    """(dtype, case): every case in float64, the float32 cross-section."""
    return request.param


@pytest.fixture(params=[CASES_BY_ID[i] for i in LINEAR_CASE_IDS], ids=LINEAR_CASE_IDS)
def linear_case(request) -> Case:
    """The models linear in theta (one Dense layer), where G equals H."""
    return request.param


CONV_CASE_IDS = tuple(c.id for c in CASES if len(c.spec.input_shape) == 3)


@pytest.fixture(params=[CASES_BY_ID[i] for i in CONV_CASE_IDS], ids=CONV_CASE_IDS)
def conv_case(request) -> Case:
    return request.param


# One MLP and one conv net, for checks that need fresh (uncached) JAX compiles.
FEW_CASE_IDS = ("mlp_sigmoid_softmax", "conv_relu_pool")


@pytest.fixture(params=[CASES_BY_ID[i] for i in FEW_CASE_IDS], ids=FEW_CASE_IDS)
def few_case(request) -> Case:
    return request.param


@pytest.fixture(params=[CASES_BY_ID[i] for i in SMALL_CASE_IDS], ids=SMALL_CASE_IDS)
def small_case(request) -> Case:
    return request.param


# ----------------------------------------------------------------------------- setup


@dataclass
class Setup:
    """A problem on one backend at a case's weights and batch, plus the host copies.

    theta, X, Y are the values the backend really holds (rounded to its dtype), in
    float64, so the oracles see exactly the same inputs.
    """

    case: Case
    dtype: str
    backend: object
    problem: object
    x: object
    batch: object
    theta: np.ndarray
    X: np.ndarray
    Y: np.ndarray

    def vectors(self, n: int, seed: int = 7) -> list:
        """n random direction vectors, as (backend array, float64 numpy) pairs."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            v = rng.standard_normal(self.theta.size).astype(self.backend.dtype)
            out.append((self.backend.asarray(v), v.astype(np.float64)))
        return out

    def numpy(self, a) -> np.ndarray:
        return np.asarray(self.backend.to_numpy(a))


def make_setup(name: str, dtype: str, case: Case, seed: int = 0, flat_x: bool = False) -> Setup:
    be = make_backend(name, dtype)
    theta = case.theta(seed).astype(dtype)
    X, Y = case.data(seed)
    X = X.astype(dtype)
    Y = Y if Y.dtype.kind == "i" else Y.astype(dtype)
    batch = be.batch(X.reshape(len(X), -1) if flat_x else X, Y)
    return Setup(case, dtype, be, make_problem(name, dtype, case), be.asarray(theta), batch,
                 theta.astype(np.float64), X.astype(np.float64),
                 Y if Y.dtype.kind == "i" else Y.astype(np.float64))


@pytest.fixture(name="make_setup")
def make_setup_fixture():
    """make_setup(name, dtype, case, seed=0, flat_x=False) -> Setup."""
    return make_setup


@pytest.fixture
def backend(backend_name):
    """A float64 CPU backend."""
    return make_backend(backend_name, "float64")


@pytest.fixture
def harness(backend_name, dtype_case) -> Setup:
    """A case's problem, weights and batch on one backend and dtype."""
    return make_setup(backend_name, *dtype_case)


@pytest.fixture
def small64(backend_name, small_case) -> Setup:
    """A cross-section model on one backend in float64 (for whole-matrix checks)."""
    return make_setup(backend_name, "float64", small_case)


@pytest.fixture
def pair(dtype_case) -> tuple[Setup, Setup]:
    """The same case, weights and batch on torch and on jax."""
    why = missing_backends("torch", "jax")
    if why:
        pytest.skip(f"torch vs jax needs both backends: {why}")
    return make_setup("torch", *dtype_case), make_setup("jax", *dtype_case)


# Relative-error bounds: float64 is exact up to rounding; float32 products pile up
# rounding through two passes (forward-mode and reverse-mode) and the loss Hessian.
TOL = {
    "float64": {"value": 1e-10, "product": 1e-10},
    "float32": {"value": 1e-4, "product": 1e-3},
}


@pytest.fixture
def tol(dtype_case) -> dict[str, float]:
    return TOL[dtype_case[0]]
