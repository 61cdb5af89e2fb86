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
- deterministic: whether XLA runs deterministic GPU kernels
  (`--xla_gpu_deterministic_ops`). XLA reads XLA_FLAGS once, when JAX starts, and
  JAX has no switch for it afterwards, so this option cannot turn it on or off: it
  is accepted only when it agrees with the XLA_FLAGS this process has (start with
  XLA_FLAGS=--xla_gpu_deterministic_ops=true for true), and refused otherwise, never
  recorded as applied when it was not. Left out of a trial's options when not set
  (OPTIONAL), as the trials of suites that never set it keep their ids; the record
  has the flag's state either way (`xla_determinism`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from hfbench.errors import BackendError
from hfbench.protocol_helpers import check_flag, resolve_common

DEFAULTS = {"device": "cpu", "dtype": "float32", "tf32": False, "threads": None}
# accepted and checked, not filled in when absent (absent: whatever XLA_FLAGS says)
OPTIONAL = {"deterministic": False}
DETERMINISTIC_FLAG = "xla_gpu_deterministic_ops"
# XLA flags that decide whether two runs of one program give the same bits on a GPU:
# deterministic kernels, failing on ops without one, and the autotuner (which may time
# kernels differently and pick another in another run)
DETERMINISM_FLAGS = (DETERMINISTIC_FLAG, "xla_gpu_exclude_nondeterministic_ops",
                     "xla_gpu_autotune_level")


def resolve_options(options: Mapping) -> dict:
    """`options` checked, completed with DEFAULTS, the device in canonical form."""
    out = resolve_common("jax", options, DEFAULTS, OPTIONAL)
    if "deterministic" in out:
        check_deterministic(check_flag("jax", "deterministic", out["deterministic"]))
    return out


def xla_flags(text: str | None = None) -> dict[str, str]:
    """The `--name=value` flags of XLA_FLAGS (a bare `--name` is "true"); the last wins."""
    text = os.environ.get("XLA_FLAGS", "") if text is None else text
    flags = {}
    for token in text.split():
        name, eq, value = token.lstrip("-").partition("=")
        flags[name] = value if eq else "true"
    return flags


def deterministic_ops(flags: Mapping[str, str] | None = None) -> bool:
    """Whether XLA_FLAGS turns --xla_gpu_deterministic_ops on (XLA's default: off)."""
    flags = xla_flags() if flags is None else flags
    return flags.get(DETERMINISTIC_FLAG, "false").lower() in ("true", "1")


def determinism_flags() -> dict[str, str]:
    """The DETERMINISM_FLAGS that XLA_FLAGS sets, as written (the record's)."""
    flags = xla_flags()
    return {k: flags[k] for k in DETERMINISM_FLAGS if k in flags}


def check_deterministic(asked: bool) -> bool:
    """`asked` when XLA_FLAGS already gives it, else a BackendError saying how."""
    if asked == deterministic_ops():
        return asked
    env = os.environ.get("XLA_FLAGS")
    now = repr(env) if env else "unset"
    if asked:
        fix = (f"start hfbench with XLA_FLAGS='--{DETERMINISTIC_FLAG}=true' in the "
               "environment (added to any flags already there)")
    else:
        fix = f"remove --{DETERMINISTIC_FLAG} from XLA_FLAGS before starting, or drop the option"
    raise BackendError(
        f"jax backend: deterministic: {str(asked).lower()} cannot be applied from here: XLA "
        f"reads XLA_FLAGS once, when JAX starts, and XLA_FLAGS is {now}; {fix}"
    )
