"""hfbench's JAX backend: jitted loss, gradient, Gv / Hv / Fisher·v and preconditioner.

Loaded through the `hfbench.backends` entry point `jax = "hfbench_jax:JaxBackend"`,
exactly as a third party's backend would be.
"""

from .backend import JaxBackend
from .ops import JaxOps
from .problem import JaxProblem
from .curvature import JaxCurvature

__all__ = ["JaxBackend", "JaxCurvature", "JaxOps", "JaxProblem"]
