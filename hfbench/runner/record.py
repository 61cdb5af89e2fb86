"""Trial records on disk: one JSON file per trial, written atomically.

A record is written to a temporary file in the same folder (`.<trial_id>.*.tmp`,
which no reader takes for a record), flushed, fsynced and renamed over the final
name (os.replace is atomic on POSIX and Windows), so a crash never leaves a torn
record: a trial either has its whole record or none. A write that fails (a full
disk, a folder made read-only) removes its temporary file and raises RecordError,
which names the folder. A file at a trial's path that is not a whole record (torn
by an older version, edited by hand) does not count: its trial runs again.
"""

from __future__ import annotations

import datetime
import errno
import json
import math
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..errors import HFBenchError

DONE = ("completed", "target_reached", "diverged", "budget_exhausted")


def path_for(results_dir: pathlib.Path, trial_id: str) -> pathlib.Path:
    return pathlib.Path(results_dir) / f"{trial_id}.json"


class RecordError(HFBenchError):
    """A results folder that cannot be written (read-only, full, not a folder)."""


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; a record gets the mode open() would give it, so whoever
# may read the results folder may read its records. Read once: the umask is per process.
FILE_MODE = 0o666 & ~_umask()
RESUME_HINT = "the records already written are whole; fix that, then run again to resume"


def write_atomic(path: pathlib.Path, record: dict) -> None:
    """Write `record` as JSON at `path` atomically; RecordError if the folder refuses it."""
    path = pathlib.Path(path)
    try:
        _write_atomic(path, record)
    except OSError as exc:
        raise RecordError(f"cannot write the record of trial {path.stem} into results folder "
                          f"{str(path.parent)!r}: {_reason(exc)}; nothing partial was kept, "
                          f"and {RESUME_HINT}") from None


def _write_atomic(path: pathlib.Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(record), fh, indent=1, allow_nan=True)
            fh.flush()
            _chmod(fh.fileno())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # an error or an interrupt (Ctrl-C, SIGTERM): no temp file stays
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _chmod(fd: int) -> None:
    try:
        os.fchmod(fd, FILE_MODE)
    except (AttributeError, OSError):  # Windows has no fchmod; some mounts refuse modes
        pass


def _fsync_dir(folder: pathlib.Path) -> None:
    """Make the rename durable (a power cut after it keeps the record); POSIX only."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows opens no folders; its rename needs no folder fsync
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse to fsync a folder; the rename itself is atomic
    finally:
        os.close(fd)


def check_writable(results_dir) -> None:
    """Create `results_dir` if needed and write, fsync and remove a probe file in it, so
    a folder that cannot hold records is named before any trial runs (RecordError)."""
    folder = pathlib.Path(results_dir)
    where = f"results folder {str(folder)!r}"
    fix = "pass --results a folder you can write to"
    if folder.exists() and not folder.is_dir():
        raise RecordError(f"{where} is a file, not a folder; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hfbench-probe.", suffix=".tmp")
        try:
            os.write(fd, b"hfbench write check\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            pathlib.Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        raise RecordError(f"{where} is not writable: {_reason(exc)}; {fix}") from None


# A record's temp file lives for the milliseconds of one write; one this old was left
# by a process killed mid-write (SIGKILL, power loss), never by a live writer.
STALE_TEMP_S = 3600.0


def remove_stale_temps(results_dir, older_than_s: float = STALE_TEMP_S) -> list[pathlib.Path]:
    """Delete the temp files (`.<trial>.*.tmp`) a killed write left in `results_dir`;
    returns them. Younger ones may belong to a sweep still writing into the folder."""
    now, removed = time.time(), []
    for tmp in pathlib.Path(results_dir).glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime >= older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # gone already, or not ours to delete: leave it
            continue
    return removed


def _reason(exc: OSError) -> str:
    """"No space left on device (ENOSPC) at PATH": the words, the code, the file."""
    code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    text = exc.strerror or str(exc)
    at = f" at {exc.filename}" if exc.filename else ""
    return f"{text}{f' ({code})' if code else ''}{at}"


def check(path: pathlib.Path) -> tuple[dict | None, str]:
    """(the record at `path`, "") or (None, why it is not one); ("" when there is no file)."""
    try:
        text = pathlib.Path(path).read_text()
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as exc:  # a folder in its place, a permission, bad bytes
        return None, f"unreadable: {exc}"
    try:
        rec = json.loads(text)
    except ValueError as exc:
        return None, f"not whole JSON (a torn or edited file?): {exc}"
    if not isinstance(rec, dict) or not isinstance(rec.get("status"), str):
        return None, "valid JSON, but not a trial record (no 'status')"
    return rec, ""


def read(path: pathlib.Path) -> dict | None:
    """The record at `path`, or None if missing or not a whole record (then it is rerun)."""
    return check(path)[0]


def is_done(results_dir, trial_id: str) -> bool:
    rec = read(path_for(results_dir, trial_id))
    return rec is not None and rec["status"] in DONE


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
