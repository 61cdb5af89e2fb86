"""TorchBackend: device, dtype and TF32 resolution, array conversion, sync.

    be = TorchBackend(device="auto", dtype="float64", tf32=False, compile="auto")

The options are checked by `hfbench_torch.options.resolve_options` (the same check a
suite gets when it loads). device: `hfbench.devices` names ("gpu" is "cuda"), or
"auto" (a CUDA GPU when torch sees one, else the CPU). TF32 is a process-wide torch
switch; the backend sets it on construction and again for each problem it makes,
and records it in `info()` (recent NVIDIA GPUs turn it on by default for convs).
compile: fuse CG's vector updates with torch.compile ("auto", True, False; see
`hfbench_torch.compiled`). deterministic: torch's deterministic algorithms, cuDNN's
deterministic mode and (on CUDA) CUBLAS_WORKSPACE_CONFIG; process-wide like TF32,
applied the same way, and recorded in `info()` both as asked and as torch reports it.
"""

from __future__ import annotations

import contextlib
import os
import platform

import numpy as np
import torch

from hfbench import models
from hfbench.devices import device_index, parse_device
from hfbench.errors import DeviceError, SpecError
from hfbench.protocol import Batch
from hfbench.protocol_helpers import python_iterate

from .compiled import Compiler
from .dense import TorchDense
from .ops import HostScalarOps, TorchOps, host_scalars
from .options import resolve_options
from .problem import TorchProblem

# cuBLAS reproducibility (NVIDIA's cuBLAS docs, "Results reproducibility"); torch's
# deterministic mode refuses CUDA matmuls without it. Read when cuBLAS makes a handle.
CUBLAS_WORKSPACE = ":4096:8"


class TorchBackend:
    """The `hfbench.protocol.Backend` for PyTorch, in eager mode."""

    name = "torch"

    def __init__(
        self, device: str = "cpu", dtype: str = "float32", tf32: bool = False,
        compile="auto", threads: int | None = None, **kw,
    ):
        opts = resolve_options(dict(device=device, dtype=dtype, tf32=tf32, compile=compile,
                                    threads=threads, **kw))
        if opts["threads"] is not None:
            # process-wide in torch; on a busy machine a pool wider than the free cores
            # turns every op's barrier into milliseconds (see tests/conftest.py)
            torch.set_num_threads(opts["threads"])
        self.dtype = opts["dtype"]
        self.torch_dtype = getattr(torch, self.dtype)
        self.torch_device = resolve_device(opts["device"])
        self.device = str(self.torch_device)
        self.tf32 = opts["tf32"]
        self.deterministic = opts.get("deterministic", False)
        # what this backend was built with, its device resolved ("auto" -> "cpu"): the record's
        self.options = {**opts, "device": self.device, "deterministic": self.deterministic}
        self.ops = TorchOps(self.torch_device)
        # eager loops on the CPU keep their scalars on the host (see HostScalarOps)
        self._host_ops = HostScalarOps(self.torch_device) if self.torch_device.type == "cpu" else None
        self.compiler = Compiler(self.torch_device, opts["compile"])
        self.dense = TorchDense(self.torch_device, self.torch_dtype)  # newton's dense matrices
        self._apply_process_settings()

    def problem(self, spec: models.ModelSpec) -> TorchProblem:
        if not isinstance(spec, models.ModelSpec):
            raise SpecError(
                f"torch backend: problem() needs a models.ModelSpec, got "
                f"{type(spec).__name__}; build one with models.mlp(...) or models.lenet()"
            )
        self._apply_process_settings()
        return TorchProblem(spec, self)

    def asarray(self, a) -> torch.Tensor:
        """A copy of `a` on the device, in the backend dtype."""
        if isinstance(a, torch.Tensor):
            return a.detach().to(device=self.torch_device, dtype=self.torch_dtype, copy=True)
        return torch.tensor(np.asarray(a), dtype=self.torch_dtype, device=self.torch_device)

    def to_numpy(self, a) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def batch(self, X, Y, meta=None) -> Batch:
        """Check X, Y in NumPy (models.prepare), then move them to the device once.

        meta: the BatchMeta of arrays already prepared (models.prepare on the whole
        set, sliced here): the checks are skipped and only the transfer remains, as
        in a hand-written loop.
        """
        if meta is None:
            X, Y, meta = models.prepare(X, Y, self.dtype)
        x = torch.as_tensor(X, device=self.torch_device)
        y = torch.as_tensor(Y, device=self.torch_device)  # int64 labels or float targets
        return Batch(x, y, meta)

    def indices(self, idx) -> torch.Tensor:
        """Host indices as a device index tensor (the runner sends an epoch's at once)."""
        return torch.as_tensor(idx, device=self.torch_device)

    def take(self, batch: Batch, idx, meta=None) -> Batch:
        """The examples idx (host ints) of a device-resident batch, gathered on the
        device; meta: the result's BatchMeta when the caller has it (else derived)."""
        i = torch.as_tensor(idx, device=self.torch_device)
        return Batch(batch.x.index_select(0, i), batch.y.index_select(0, i),
                     meta or _sized(batch.meta, len(idx)))

    def to_host(self, values: list) -> list:
        """Device tensors (and plain numbers, None) as host values.

        The runner reads a stretch of steps' scalars at once (two or more per step):
        0-d tensors of one dtype are stacked and copied together, one copy per dtype
        rather than one per value (a transfer each on a GPU, a few microseconds of
        dispatch each on the CPU); arrays are copied one by one.
        """
        scalar = [isinstance(v, torch.Tensor) and v.dim() == 0 for v in values]
        out = [v.detach().cpu().numpy() if isinstance(v, torch.Tensor) and not s else v
               for v, s in zip(values, scalar)]
        groups: dict = {}
        for i, v in enumerate(values):
            if scalar[i]:
                groups.setdefault((v.dtype, v.device), []).append(i)
        for idx in groups.values():
            with torch.no_grad():
                host = torch.stack([values[i] for i in idx]).cpu().numpy()
            for i, h in zip(idx, host):
                out[i] = h
        return out

    def fetch(self, values) -> list[float]:
        """0-d device tensors as Python floats, in one transfer."""
        if not values:
            return []
        return torch.stack([v.detach().reshape(()).to(torch.float64) for v in values]).cpu().tolist()

    def iterate(self, loop, config, operands, x0=None):
        """Run an algorithm-layer loop (e.g. CG) as a Python loop over its pure step.

        The stop condition is read on the host only where it can fire
        (`loop.checks_from`), so a fixed-count solve makes no per-step sync. The
        step's vector updates run compiled where the `compile` option asks for it.
        """
        step = self.compiler.step(loop, config, operands)
        if step is None and self._host_ops is not None:
            return python_iterate(loop, self._host_ops, config, host_scalars(operands), x0)
        return python_iterate(loop, self.ops, config, operands, x0, step=step)

    def linear_operator(self, matrix) -> "DenseOperator":
        """A dense matrix as a curvature-style operator (for tests and dense references)."""
        return DenseOperator(self.asarray(np.asarray(matrix)))

    def sync(self, *arrays) -> None:
        """Wait for all queued device work (`arrays` are accepted for protocol parity)."""
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize(self.torch_device)

    def info(self) -> dict:
        return {
            "framework": "torch",
            "framework_version": torch.__version__,
            "device": self.device,
            "device_name": device_name(self.torch_device),
            "dtype": self.dtype,
            "tf32": self.tf32,
            "mode": "eager",
            "compile": self.compiler.mode,  # CG vector updates (hfbench_torch.compiled)
            "compile_failures": sorted(set(self.compiler.failures.values())),
            "num_threads": torch.get_num_threads(),
            **determinism(self.deterministic),
            **toolkit_versions(self.torch_device),
        }

    @contextlib.contextmanager
    def guard_transfers(self):
        """Make implicit device->host syncs errors on CUDA; nothing to guard on the CPU."""
        if self.torch_device.type != "cuda":
            yield
            return
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    def _apply_process_settings(self) -> None:
        """TF32 and determinism are process-wide torch switches: set this backend's."""
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        if self.deterministic and self.torch_device.type == "cuda":
            # before cuBLAS's first handle in this process, or it has no effect (documented)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(self.deterministic)
        torch.backends.cudnn.deterministic = self.deterministic
        if self.deterministic:  # the autotuner may pick another kernel in another run
            torch.backends.cudnn.benchmark = False

    def __repr__(self) -> str:
        return (f"TorchBackend(device={self.device!r}, dtype={self.dtype!r}, tf32={self.tf32}, "
                f"deterministic={self.deterministic})")


def determinism(asked: bool) -> dict:
    """The determinism settings as asked and as torch reports them now (the record's)."""
    return {
        "deterministic": asked,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def _sized(meta, size: int):
    return models.BatchMeta(size, meta.x_shape, meta.y_shape, meta.labels, meta.label_range)


def resolve_device(device) -> torch.device:
    """Map a device name (`hfbench.devices`) to a torch.device, with a clear
    DeviceError when it is not here."""
    name = parse_device(str(device), where="torch backend")
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if _has_cuda() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    return _cuda_device(device, device_index(name))


def _cuda_device(asked, index: int | None) -> torch.device:
    if not _has_cuda():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(
            f"torch backend: device {asked!r} was asked for, but torch sees no CUDA GPU on "
            f"this machine (torch {torch.__version__}, {build}); use device='cpu', or "
            "device='auto' to take a GPU only when there is one"
        )
    count = torch.cuda.device_count()
    if index is None:
        index = torch.cuda.current_device()
    if index >= count:
        raise DeviceError(
            f"torch backend: device {asked!r} was asked for, but this machine has {count} "
            f"CUDA GPU(s) (cuda:0 to cuda:{count - 1}); pick one of those, or device='auto'"
        )
    return torch.device("cuda", index)


def _has_cuda() -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def toolkit_versions(device: torch.device) -> dict:
    """CUDA and cuDNN versions of this torch build, and the GPU's name (None where absent:
    a CPU-only build has no CUDA, a CPU device no GPU)."""
    cudnn = torch.backends.cudnn
    return {
        "cuda": torch.version.cuda,
        "cudnn": cudnn.version() if cudnn.is_available() else None,
        "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


class DenseOperator:
    """matvec(v) = A v for a dense (n, n) tensor A."""

    kind = "dense"

    def __init__(self, matrix: torch.Tensor):
        self.matrix, self.size = matrix, matrix.shape[0]

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.matrix @ v
