"""The download cache: where files live, fetching them once, and checking them.

Layout: cache_dir()/NAME/FILE. cache_dir() is $HFBENCH_DATA when set, else the
platform's user cache folder for "hfbench" plus "data" (platformdirs). Downloads
land in FILE.part and are renamed into place only after their SHA-256 matches, so
an interrupted or bad download never looks like a cached file; a later fetch
resumes a .part where the server honours HTTP ranges (and starts over otherwise).
A fetch holds an exclusive lock on cache_dir()/.NAME.lock (flock, POSIX), so two
processes fetching one dataset never write one .part at once: the second waits,
then finds the files cached and verified.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path

from .types import DataError, DatasetInfo, RemoteFile

ENV = "HFBENCH_DATA"
TIMEOUT_S = 30.0  # per connection attempt and per read; a closed network fails at once
CHUNK = 1 << 20
Progress = Callable[[int, "int | None"], None]



def cache_dir() -> Path:
    """The folder holding every downloaded dataset (read from the env on each call)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_path
        return user_cache_path("hfbench") / "data"
    except ImportError:  # platformdirs missing: the XDG default
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hfbench" / "data"


def dataset_dir(name: str) -> Path:
    return cache_dir() / name


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file. load() hashes on every call, on purpose: it is a
    fraction of the parse time (CIFAR's 170 MB: ~0.4 s against ~2 s to unpack), and
    a memo keyed on size and mtime could miss a same-size change."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ load-time checks


def require(info: DatasetInfo) -> dict[str, Path]:
    """The verified cached paths of a dataset's files, or a DataError saying which
    file to put where (missing), or what is wrong with it (size, checksum)."""
    folder = dataset_dir(info.name)
    missing = [f for f in info.files if not (folder / f.name).is_file()]
    if missing:
        raise DataError(missing_message(info, missing, folder))
    paths = {}
    for f in info.files:
        path = folder / f.name
        problem = check_file(path, f, info.name)
        if problem:
            raise DataError(f"dataset {info.name!r}: {problem}")
        paths[f.name] = path
    return paths


def missing_message(info: DatasetInfo, missing: list[RemoteFile], folder: Path) -> str:
    return (
        f"dataset {info.name!r} is not in the cache: {len(missing)} file(s) missing from "
        f"{folder}{os.sep}\n{_file_lines(missing)}\n"
        f"Put the file(s) in {folder}{os.sep}, or run `hfbench data fetch {info.name}` to "
        f"download them (needs network). Set {ENV} to keep the cache in another folder."
    )


def _file_lines(files: list[RemoteFile]) -> str:
    return "\n".join(f"  {f.name} (sha256 {f.sha256 or 'unknown'}) from {f.url}" for f in files)


def check_file(path: Path, f: RemoteFile, name: str) -> str | None:
    """None when `path` is the file `f` pins, else what is wrong and how to fix it."""
    fix = f"delete {path} and run `hfbench data fetch {name}` to download a fresh copy"
    if f.sha256 is None:
        # TODO(checksum): no published SHA-256 was found for this file; pin one.
        return (f"{f.name} has no pinned SHA-256 in hfbench, so it cannot be verified and is not "
                f"used (its sha256 here is {sha256_of(path)}); pin a checksum in "
                "hfbench.data.remote")
    size = path.stat().st_size
    if f.size_bytes is not None and size != f.size_bytes:
        kind = "truncated (an interrupted download?)" if size < f.size_bytes else "too large"
        return (f"{path} has {size} bytes, expected {f.size_bytes}: the file is {kind}; {fix}")
    found = sha256_of(path)
    if found != f.sha256:
        return (f"{path} fails its checksum: expected sha256 {f.sha256}, found {found}; the file "
                f"is corrupted or a different version; {fix}")
    return None


# -------------------------------------------------------------------------- fetching


def fetch_files(info: DatasetInfo, *, force: bool = False, progress: Progress | None = None,
                timeout: float = TIMEOUT_S) -> Path:
    """Download every file of `info` that is not cached and verified; returns the folder."""
    folder = dataset_dir(info.name)
    if not _stale(info, folder, force):
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock(folder.parent / f".{info.name}.lock")
    except OSError as exc:
        raise DataError(f"dataset {info.name!r}: cannot write to the cache folder {folder}: "
                        f"{exc.strerror or exc}; set {ENV} to a folder you can write to") from None
    with lock:  # closing the file releases the lock
        todo = _stale(info, folder, force)  # again: a fetch we waited for may have done it
        _fetch_all(info, todo, folder, force, progress, timeout)
    return folder


def _stale(info: DatasetInfo, folder: Path, force: bool) -> list[RemoteFile]:
    """The files of `info` to download: all with force, else those missing or failing."""
    return [f for f in info.files if force or not (folder / f.name).is_file()
            or check_file(folder / f.name, f, info.name)]


def _lock(path: Path):
    """`path` opened (created if missing) with an exclusive flock on it, taken after any
    other holder lets go; closing the file, or the process dying, releases it. Where
    flock does not exist (Windows), the file is opened without a lock."""
    fh = open(path, "a")
    try:
        import fcntl
    except ImportError:
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # waits for another fetch of this dataset
    except BaseException:
        fh.close()
        raise
    return fh


def _fetch_all(info: DatasetInfo, todo: list[RemoteFile], folder: Path, force: bool,
               progress: Progress | None, timeout: float) -> None:
    meter = _Meter(progress, todo)
    for i, f in enumerate(todo):
        if force:  # a stale partial download must not be resumed either
            (folder / (f.name + ".part")).unlink(missing_ok=True)
        meter.begin(f)
        errors = _fetch_one(info, f, folder, meter, timeout)
        if errors:
            raise DataError(
                f"dataset {info.name!r}: could not download {f.name}:\n" + "\n".join(errors)
                + "\nThis machine may have no network access. Download these elsewhere and put "
                f"them in {folder}{os.sep}:\n{_file_lines(todo[i:])}"
            )
        meter.end()


def _fetch_one(info: DatasetInfo, f: RemoteFile, folder: Path, meter: "_Meter",
               timeout: float) -> list[str]:
    """Download and verify one file; returns why each URL failed if none answered."""
    target, part = folder / f.name, folder / (f.name + ".part")
    errors = []
    for url in (f.url, *f.mirrors):
        try:
            resumed = _stream(url, part, meter, timeout, resume=True)
            if resumed and f.sha256 is not None and sha256_of(part) != f.sha256:
                # The kept prefix may be stale (say, a different version): start over once.
                _stream(url, part, meter, timeout, resume=False)
            break
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as exc:
            errors.append(f"  {url}: {_reason(exc)}")
    else:
        return errors
    _verify_part(info, f, part, target, url)
    return []


def _verify_part(info: DatasetInfo, f: RemoteFile, part: Path, target: Path, url: str) -> None:
    found = sha256_of(part)
    if f.sha256 is None:
        keep = part.with_name(f.name + ".unverified")
        os.replace(part, keep)
        raise DataError(
            f"dataset {info.name!r}: downloaded {f.name}, but hfbench has no pinned SHA-256 for "
            f"it, so it will not be trusted or used. What arrived (sha256 {found}) is left at "
            f"{keep}; check it against a published checksum and pin it in hfbench.data.remote."
        )
    if found != f.sha256:
        part.unlink(missing_ok=True)
        raise DataError(
            f"dataset {info.name!r}: the download of {f.name} fails its checksum: expected sha256 "
            f"{f.sha256}, found {found} ({url} may serve a different version); nothing was kept"
        )
    os.replace(part, target)  # atomic on one filesystem: the cache never holds a torn file


def _stream(url: str, part: Path, meter: "_Meter", timeout: float, *, resume: bool) -> bool:
    """Write the body at `url` into `part`, appending when the server resumes a
    range (HTTP 206); returns whether it appended to an earlier partial download."""
    have = part.stat().st_size if resume and part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "hfbench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing past `have`: the .part may be whole already
            meter.restart(have, None)  # (or stale: the caller's checksum decides)
            return True
        raise
    with resp:
        append = have > 0 and getattr(resp, "status", None) == 206
        meter.restart(have if append else 0, resp.headers.get("Content-Length"))
        with open(part, "ab" if append else "wb") as out:
            for block in iter(lambda: resp.read(CHUNK), b""):
                out.write(block)
                meter.add(len(block))
    return append


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


class _Meter:
    """Reports bytes done / total over all of a fetch's files to `progress`.

    The total sums the pinned sizes; a file without one adds its Content-Length
    when its response arrives (the total is None while nothing is known). A retry
    or a mirror restarts the current file's count instead of adding to it.
    """

    def __init__(self, progress: Progress | None, files: list[RemoteFile]):
        self.progress = progress
        self.total = sum(f.size_bytes for f in files if f.size_bytes) or None
        self.finished = self.current = 0
        self.file: RemoteFile | None = None
        self.sized = False

    def begin(self, f: RemoteFile) -> None:
        self.file, self.current, self.sized = f, 0, f.size_bytes is not None

    def restart(self, already: int, content_length: str | None) -> None:
        if not self.sized and content_length and content_length.isdigit():
            self.total = (self.total or 0) + already + int(content_length)
            self.sized = True
        self.current = already
        self._report()

    def add(self, n: int) -> None:
        self.current += n
        self._report()

    def end(self) -> None:
        self.finished += self.current
        self.current = 0

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.finished + self.current, self.total)
