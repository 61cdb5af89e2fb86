"""Memory of a gradient and of an hf step, per backend and model.

- `GradientMemory.peakmem_value_and_grad`, `HFStepMemory.peakmem_hf_step`: host
  memory, as asv's `peakmem_` measures it: the peak resident set size of the
  benchmark's process, which includes the framework's import and the setup (problem,
  data, one warm-up call), so it is the footprint of a process that does this, not
  the call's increment. Each class warms up only its own call.
- `DeviceMemory.track_peak_bytes`: on a GPU only (skipped elsewhere), the device's
  peak bytes in use across the call: torch `torch.cuda.max_memory_allocated` after
  `reset_peak_memory_stats` (the call alone, inputs included); JAX
  `memory_stats()["peak_bytes_in_use"]`, which cannot be reset, so it is the
  process's peak since start (the same setup and one warm-up call come first).

hf: at its defaults from the seed-0 start, as `steps.HFStep`. Models: see `_common`.
"""

from __future__ import annotations

from hfbench import algorithms

from ._common import BACKENDS, MODEL_NAMES, Work
from .machine_name import gpu_model

OPS = ["value_and_grad", "hf_step"]


def _op(w: Work, op: str):
    """A zero-argument call of `op` on `w`, returning the array(s) to wait for."""
    if op == "value_and_grad":
        return lambda: w.problem.value_and_grad(w.x, w.batch)
    alg = algorithms.get("hf")
    state = alg.init(w.x)
    return lambda: alg.step(w.problem, w.x, state, w.batch)[0]


class _Memory:
    params = (BACKENDS, MODEL_NAMES)
    param_names = ("backend", "model")
    timeout = 300
    op = ""

    def setup(self, backend, model):
        self.w = Work(backend, model)
        self.call = _op(self.w, self.op)
        self.w.run(self.call)


class GradientMemory(_Memory):
    op = "value_and_grad"

    def peakmem_value_and_grad(self, backend, model):
        self.w.block(self.call())


class HFStepMemory(_Memory):
    op = "hf_step"

    def peakmem_hf_step(self, backend, model):
        self.w.block(self.call())


class DeviceMemory:
    params = (BACKENDS, MODEL_NAMES, OPS)
    param_names = ("backend", "model", "op")
    timeout = 300

    def setup(self, backend, model, op):
        if not gpu_model():  # nvidia-smi, before a framework loads (HFBENCH_BENCH_DEVICE=cpu: none)
            raise NotImplementedError("device memory is tracked on a GPU only; none here")
        self.w = Work(backend, model)
        if not self.w.on_gpu:
            raise NotImplementedError(f"device memory is tracked on a GPU only; {backend} runs "
                                      f"on the CPU here")
        self.call = _op(self.w, op)
        self.w.run(self.call)

    def track_peak_bytes(self, backend, model, op):
        if backend == "torch":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.w.run(self.call)
            return torch.cuda.max_memory_allocated()
        (device,) = self.w.x.devices()
        self.w.run(self.call)
        return device.memory_stats()["peak_bytes_in_use"]

    track_peak_bytes.unit = "bytes"
