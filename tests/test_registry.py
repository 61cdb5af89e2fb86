"""Backend discovery through entry points, and the core's import hygiene."""

import subprocess
import sys

import pytest

import hfbench
from hfbench.registry import registered


def test_builtin_backends_register_as_entry_points():
    eps = registered()
    assert {"torch", "jax"} <= set(eps)
    assert eps["torch"].value == "hfbench_torch:TorchBackend"
    assert eps["jax"].value == "hfbench_jax:JaxBackend"


def test_unknown_backend_lists_installed_and_suggests():
    with pytest.raises(hfbench.BackendError) as exc:
        hfbench.get_backend("tourch")
    msg = str(exc.value)
    assert "unknown backend 'tourch'" in msg and "did you mean 'torch'" in msg
    installed = [n for n, why in hfbench.installed_backends().items() if why is None]
    for name in installed:
        assert name in msg.split("installed backends:")[1]


def test_unsupported_dtype_is_refused_before_loading():
    with pytest.raises(hfbench.BackendError, match="float16.*choices: float32, float64"):
        hfbench.get_backend("torch", dtype="float16")


def test_core_imports_no_framework():
    """`import hfbench` and building models/specs must not import torch or jax."""
    code = (
        "import sys, hfbench, hfbench.testing, hfbench.cli; from hfbench import models;"
        "s = models.lenet(); models.init_params(s); hfbench.installed_backends.__name__;"
        "bad = [m for m in ('torch', 'jax', 'jaxlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
