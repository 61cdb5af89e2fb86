"""Test-session setup that must happen before any framework is imported.

XLA compiles slowly on small CPUs (0.6 s for a trivial function on CI's 2 cores),
and the tests build many problems whose programs are identical. JAX's persistent
compilation cache turns those recompiles into cache hits (about 10x faster); the
environment variables reach the CLI subprocesses too. The cache lives under
.pytest_cache (ignored by git) unless JAX_COMPILATION_CACHE_DIR is already set.
"""

import os
import pathlib

_cache = pathlib.Path(__file__).parent / ".pytest_cache" / "jax"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_cache))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
