"""hfbench's JAX backend: jitted loss, gradient, Gv / Hv / Fisher·v and preconditioner.

Loaded through the `hfbench.backends` entry point `jax = "hfbench_jax:JaxBackend"`,
exactly as a third party's backend would be. Importing this package does not import
jax: `resolve_options` (the option check a suite runs when it loads, see
`hfbench.protocol`) needs none, and the classes load on first use.
"""

from .options import resolve_options

_LAZY = {"JaxBackend": "backend", "JaxOps": "ops", "JaxProblem": "problem", "JaxCurvature": "curvature"}

__all__ = ["JaxBackend", "JaxCurvature", "JaxOps", "JaxProblem", "resolve_options"]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
