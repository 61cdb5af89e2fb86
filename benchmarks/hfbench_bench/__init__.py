"""hfbench's asv benchmarks (`asv.conf.json`: benchmark_dir).

    asv machine --machine "$(python benchmarks/hfbench_bench/machine_name.py)" --yes
    asv run -E existing --quick --machine "$(python benchmarks/hfbench_bench/machine_name.py)"

Modules (each says what it measures):
- `primitives`: time of a gradient, a Gv, the curvature setup, the preconditioner
  diagonal, a fixed-length CG solve;
- `steps`: time of one hf, sgn and sgd step;
- `ratios`: Gv / Hv / Fisher.v / precondition / curvature setup over a gradient, and
  CG's loop overhead, interleaved in one process;
- `counts`: CG iterations and Gv products of an hf step, and its time by phase;
- `convergence`: iterations and gradient passes to a target, and the loss after a
  short run, per algorithm, through the runner;
- `harness`: an SGD step through the runner against a hand-written loop;
- `memory`: host peak memory of a gradient and an hf step; device peak on a GPU.
Most are parameterized over backend (torch, jax) and model (`_common`); a backend
that is not installed is skipped. `machine_name.py` names the machine for asv.

The package is named so that it shadows neither `asv` nor `hfbench`: asv imports it
by its folder name, with `benchmarks/` on sys.path (where the reused scripts live).
"""

import os
from pathlib import Path

# XLA compiles slowly on small CPUs and asv runs each benchmark in fresh processes:
# JAX's persistent compilation cache (set before JAX loads; git-ignored under .asv/)
# makes the repeated compiles cache hits. Compilation is never inside a timed body.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[2] / ".asv" / "jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
