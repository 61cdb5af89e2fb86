"""The JAX backend's options, checked without importing jax.

`resolve_options` is the backend's hook for hfbench's suite layer (see
`hfbench.protocol`): a suite's `backend_options: {jax: {...}}` is checked here when
the suite loads, and `JaxBackend` checks its own arguments with the same function.

- device: `hfbench.devices` names ("gpu" is "cuda"); default "cpu".
- dtype: "float32" (default) or "float64".
- tf32: allow TensorFloat-32 in float32 matmuls and convolutions on GPUs; default
  false (precision HIGHEST, true float32).
- threads: recorded only; XLA sizes its CPU pool from XLA_FLAGS when JAX starts
  (`hfbench run --threads` sets them before that).
"""

from __future__ import annotations

from collections.abc import Mapping

from hfbench.devices import parse_device
from hfbench.protocol_helpers import check_dtype, check_flag, check_options, check_threads

DEFAULTS = {"device": "cpu", "dtype": "float32", "tf32": False, "threads": None}


def resolve_options(options: Mapping) -> dict:
    """`options` checked, completed with DEFAULTS, the device in canonical form."""
    check_options("jax", {k: v for k, v in options.items() if k not in DEFAULTS}, DEFAULTS)
    out = {**DEFAULTS, **options}
    out["device"] = parse_device(out["device"], where="jax backend")
    check_dtype(out["dtype"])
    check_flag("jax", "tf32", out["tf32"])
    check_threads("jax", out["threads"])
    return out
