"""Trial records on disk: one JSON file per trial, written atomically.

A record is written to a temporary file in the same folder, flushed, fsynced and
renamed over the final name (os.replace is atomic on POSIX and Windows), so a crash
never leaves a torn record: a trial either has its whole record or none.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile

import numpy as np

DONE = ("completed", "target_reached", "diverged", "budget_exhausted")


def path_for(results_dir: pathlib.Path, trial_id: str) -> pathlib.Path:
    return pathlib.Path(results_dir) / f"{trial_id}.json"


def write_atomic(path: pathlib.Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(record), fh, indent=1, allow_nan=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def read(path: pathlib.Path) -> dict | None:
    """The record at `path`, or None if missing or unreadable (then it is rerun)."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_done(results_dir, trial_id: str) -> bool:
    rec = read(path_for(results_dir, trial_id))
    return rec is not None and rec.get("status") in DONE


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):  # a per-step array an algorithm reports: kept, as a list
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else str(float(obj))  # "nan", "inf": valid JSON
    return obj


def metadata(backend, trial) -> dict:
    """What is needed to trust and cite a number: software, hardware, config, seed.

    The toolkit fields (gpu_model, cuda, cudnn, jaxlib) come from `backend.info()`
    and are None where the backend does not report them (a CPU run has no GPU).
    """
    import hfbench

    info = dict(backend.info())
    return {
        "timestamp_utc": _utc_now(),
        "hostname": socket.gethostname(),
        "hfbench_version": hfbench.__version__,
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_model": info.get("gpu_name"),
        "cuda": info.get("cuda"),
        "cudnn": info.get("cudnn"),
        "jaxlib": info.get("jaxlib"),
        "backend": info,
        "framework_version": info.get("framework_version"),
        "device_name": info.get("device_name"),
        "dtype": info.get("dtype"),
        "tf32": info.get("tf32"),
        "execution_mode": info.get("mode"),
        "seed": trial.seed,
        "config": trial.config(),
    }


def _utc_now() -> str:
    """ISO 8601 in UTC with a Z, to the second: 2026-12-04T17:21:23Z."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The processor's marketing name ("AMD EPYC 7763 64-Core Processor").

    Linux has it in /proc/cpuinfo; platform.processor() is the fallback elsewhere
    (on Linux it says only "x86_64" or nothing, which is why it is not the first
    choice).
    """
    try:
        with open(cpuinfo) as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    here = pathlib.Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
