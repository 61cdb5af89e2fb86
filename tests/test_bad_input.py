"""Bad input through the public API: a clear hfbench error, never a framework traceback.

Each case checks the error class, that the message names what was wrong and what
was expected, and that no frame of the traceback (or of a chained exception) lies
inside torch or jax.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import hfbench
from hfbench import models
from hfbench.errors import BackendError, BatchError, DeviceError, HFBenchError, SpecError
from hfbench.models import Conv2d, Dense, Flatten, ModelSpec

FRAMEWORK_DIRS = re.compile(r"[/\\](torch|jax|jaxlib)[/\\]")
METHODS = ("loss", "value_and_grad", "curvature", "precondition", "evaluate")


def raises(exc_type, fn, *fragments: str):
    """Call fn; check the error class, the message fragments and a clean traceback."""
    with pytest.raises(exc_type) as info:
        fn()
    err = info.value
    msg = str(err)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} missing from the message: {msg}"
    inside = [str(e.path) for e in info.traceback if FRAMEWORK_DIRS.search(str(e.path))]
    assert not inside, f"raised from inside a framework: {inside}"
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), (
        f"the error chains a {type(err.__context__ or err.__cause__).__name__}, so users see "
        "a framework traceback; raise it `from None`"
    )
    return msg


def mentions(msg: str, *numbers) -> None:
    for n in numbers:
        assert re.search(rf"(?<![\w.-]){re.escape(str(n))}(?![\w.])", msg), f"{n} not in: {msg}"


def call(problem, method: str, x, batch):
    if method == "curvature":
        return lambda: problem.curvature(x, batch, kind="ggn")
    return lambda: getattr(problem, method)(x, batch)


SPEC = models.mlp([4, 3, 3], "tanh", "softmax_cross_entropy", name="tiny")
THETA = np.random.default_rng(0).standard_normal(SPEC.num_params)


@pytest.fixture
def problem(backend):
    return backend.problem(SPEC)


# ----------------------------------------------------------------------------- batches


@pytest.mark.parametrize("method", METHODS)
def test_wrong_input_width(backend, problem, method):
    batch = backend.batch(np.ones((3, 7)), np.array([0, 1, 2]))
    msg = raises(BatchError, call(problem, method, backend.asarray(THETA), batch), "input")
    mentions(msg, 7, 4)


@pytest.mark.parametrize("method", METHODS)
def test_label_out_of_range(backend, problem, method):
    batch = backend.batch(np.ones((3, 4)), np.array([0, 7, 2]))
    msg = raises(BatchError, call(problem, method, backend.asarray(THETA), batch), "label")
    mentions(msg, 7, 3)


def test_negative_label(backend, problem):
    batch = backend.batch(np.ones((3, 4)), np.array([0, -1, 2]))
    msg = raises(BatchError, call(problem, "value_and_grad", backend.asarray(THETA), batch),
                 "label")
    mentions(msg, -1)


def test_float_targets_for_softmax(backend, problem):
    batch = backend.batch(np.ones((3, 4)), np.full((3, 3), 0.5))
    raises(BatchError, call(problem, "value_and_grad", backend.asarray(THETA), batch),
           "integer", "label")


# ----------------------------------------------------------------------------- problem calls


@pytest.mark.parametrize("method", METHODS)
def test_wrong_parameter_length(backend, problem, method):
    n = SPEC.num_params
    batch = backend.batch(np.ones((3, 4)), np.array([0, 1, 2]))
    x = backend.asarray(np.zeros(n + 1))
    msg = raises(HFBenchError, call(problem, method, x, batch), "param")
    mentions(msg, n + 1, n)


def test_unknown_curvature_kind(backend, problem):
    batch = backend.batch(np.ones((3, 4)), np.array([0, 1, 2]))
    x = backend.asarray(THETA)
    raises(HFBenchError, lambda: problem.curvature(x, batch, kind="ggm"),
           "'ggm'", "did you mean 'ggn'", "hessian", "fisher")


# ----------------------------------------------------------------------------- backends


def test_unsupported_dtype():
    for name in ("torch", "jax"):
        raises(BackendError, lambda: hfbench.get_backend(name, dtype="float16"),  # noqa: B023
               "'float16'", "float32", "float64")


def _has_gpu(name: str) -> bool:
    if name == "torch":
        import torch

        return torch.cuda.is_available()
    if name == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


def test_cuda_without_gpu(backend_name):
    if _has_gpu(backend_name):
        pytest.skip(f"this machine has a GPU that {backend_name} sees; the no-GPU error needs none")
    msg = raises(DeviceError, lambda: hfbench.get_backend(backend_name, device="cuda"), "cuda")
    assert "cpu" in msg or "auto" in msg, f"no way out offered: {msg}"


def test_unknown_device(backend_name):
    raises(DeviceError, lambda: hfbench.get_backend(backend_name, device="tpu7"),
           "'tpu7'", "cpu", "auto")


def test_unknown_backend_lists_installed():
    installed = [n for n, why in hfbench.installed_backends().items() if why is None]
    msg = raises(BackendError, lambda: hfbench.get_backend("pytorch"), "'pytorch'",
                 "installed backends")
    for name in installed:
        assert name in msg, f"installed backend {name!r} not listed: {msg}"


# ----------------------------------------------------------------------------- specs


def test_unknown_activation():
    raises(SpecError, lambda: models.mlp([4, 3, 2], activation="sigmoud"),
           "'sigmoud'", "did you mean 'sigmoid'")


def test_unknown_loss():
    raises(SpecError, lambda: models.mlp([4, 3, 2], loss="squared_eror"),
           "'squared_eror'", "did you mean 'squared_error'")


def test_conv_shrinks_below_one():
    def build():
        return ModelSpec(
            input_shape=(1, 3, 3), loss="softmax_cross_entropy",
            layers=(Conv2d(in_channels=1, out_channels=2, kernel_size=5), Flatten(),
                    Dense(in_features=2, out_features=2)),
        )

    raises(SpecError, build, "5x5", "3x3")


def test_unknown_init():
    raises(SpecError, lambda: models.init_params(SPEC, seed=0, init="gaussian"),
           "'gaussian'", "sparse", "dense")
