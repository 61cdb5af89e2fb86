"""hfbench's PyTorch backend, registered as `torch` in the `hfbench.backends` group.

    be = hfbench.get_backend("torch", device="cpu", dtype="float64")
    problem = be.problem(spec)
"""

from .backend import TorchBackend
from .ops import TorchOps
from .problem import TorchProblem

__all__ = ["TorchBackend", "TorchOps", "TorchProblem"]
