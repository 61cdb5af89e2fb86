"""hfbench: benchmarks for Hessian-free optimizers on PyTorch and JAX.

The public surface, in one place. Frameworks load only when a backend is asked for.
"""

from . import losses, models
from .errors import BackendError, BatchError, DeviceError, HFBenchError, SpecError
from .protocol import CURVATURE_KINDS, DTYPES, Backend, Batch, CurvatureOperator, Problem
from .registry import get_backend, installed as installed_backends

__version__ = "0.1.0"

__all__ = [
    "CURVATURE_KINDS", "DTYPES", "Backend", "BackendError", "Batch", "BatchError",
    "CurvatureOperator", "DeviceError", "HFBenchError", "Problem", "SpecError",
    "get_backend", "installed_backends", "losses", "models", "__version__",
]
