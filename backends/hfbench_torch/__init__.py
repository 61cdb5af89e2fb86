"""hfbench's PyTorch backend, registered as `torch` in the `hfbench.backends` group.

    be = hfbench.get_backend("torch", device="cpu", dtype="float64")
    problem = be.problem(spec)

Importing this package does not import torch: `resolve_options` (the option check a
suite runs when it loads, see `hfbench.protocol`) needs none, and the classes load
on first use.
"""

from .options import resolve_options

_LAZY = {"TorchBackend": "backend", "TorchOps": "ops", "TorchProblem": "problem"}

__all__ = ["TorchBackend", "TorchOps", "TorchProblem", "resolve_options"]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
