"""The torch backend's options, checked without importing torch.

`resolve_options` is the backend's hook for hfbench's suite layer (see
`hfbench.protocol`): a suite's `backend_options: {torch: {...}}` is checked here when
the suite loads, and `TorchBackend` checks its own arguments with the same function.

- device: `hfbench.devices` names ("gpu" is "cuda"); default "cpu".
- dtype: "float32" (default) or "float64".
- tf32: allow TensorFloat-32 matmuls and convolutions on NVIDIA GPUs; default false.
- compile: fuse CG's vector updates with torch.compile: "auto" (default), true or
  false (see `hfbench_torch.compiled`).
- threads: torch's CPU thread count (process-wide); default None, torch's own.
- deterministic: true makes torch pick deterministic algorithms
  (`torch.use_deterministic_algorithms`, cuDNN deterministic with its benchmark
  autotuner off) and, on CUDA, sets CUBLAS_WORKSPACE_CONFIG=:4096:8 unless already
  set, which cuBLAS needs for reproducible matmuls. All of these are process-wide: the
  backend applies its setting on construction and for each problem, as it does
  tf32, so trials in one process each get their own. Default false, torch's own
  default. Unlike the options above, it is left out of a trial's options when not
  set (OPTIONAL), so the trials of suites that never set it keep their ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from hfbench.errors import HFBenchError
from hfbench.protocol_helpers import check_flag, resolve_common

DEFAULTS = {"device": "cpu", "dtype": "float32", "tf32": False, "compile": "auto", "threads": None}
# accepted and checked, not filled in when absent (absent means the default)
OPTIONAL = {"deterministic": False}
AUTO_MIN_SIZE = 100_000  # entries; below, Python overhead dominates and eager is as fast


def resolve_options(options: Mapping) -> dict:
    """`options` checked, completed with DEFAULTS, the device in canonical form."""
    out = resolve_common("torch", options, DEFAULTS, OPTIONAL)
    check_compile(out["compile"])
    if "deterministic" in out:
        check_flag("torch", "deterministic", out["deterministic"])
    return out


def check_compile(mode):
    if mode == "auto" or isinstance(mode, bool):
        return mode
    raise HFBenchError(
        f"torch backend: compile must be 'auto', true or false, got {mode!r}; "
        "'auto' compiles CG's vector updates for vectors of "
        f"{AUTO_MIN_SIZE:,}+ entries"
    )
