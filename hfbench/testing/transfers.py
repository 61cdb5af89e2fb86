"""Counting host reads, so that "no host transfers" can fail on any device.

A framework's own guard (torch's CUDA sync debug mode, JAX's transfer guard) fires
only where a read crosses a bus, so on the CPU it lets every read through. This
counts the reads instead, at the points where a value leaves a backend's arrays:

- the array type's conversions: float(), int(), bool(), operator.index, complex(),
  format(), __array__, item(), tolist(), numpy(), cpu(), where the type lets them be
  wrapped (torch.Tensor and jax's ArrayImpl do);
- numpy.asarray / array / asanyarray / ascontiguousarray called on such an array
  (a CPU array can hand NumPy its buffer with no Python method involved);
- the backend's own readers: to_numpy, to_host, fetch, and ops.to_float.

A read inside another (to_numpy calling .cpu().numpy()) counts once, at the file and
line that made the outer one. Not caught: a conversion NumPy makes in C on a
function other than those above (np.sum of a CPU array); a tracing backend's
`fuse` catches those (`conformance`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

CONVERSIONS = ("__float__", "__int__", "__bool__", "__index__", "__complex__", "__format__",
               "__array__", "item", "tolist", "numpy", "cpu")
NUMPY_READERS = ("asarray", "array", "asanyarray", "ascontiguousarray")
BACKEND_READERS = ("to_numpy", "to_host", "fetch")
_MISSING = object()


@dataclass(frozen=True)
class Read:
    point: str  # e.g. "Tensor.__float__", "backend.to_numpy"
    where: str  # file:line of the code that made the read


class HostReads:
    """A context in which every read through an instrumented point is recorded.

        with HostReads(backend, type(x)) as reads:
            ...products...
        reads.reads       # [Read], in order
        reads.points      # what was instrumented
        reads.refused     # conversions the array type would not let be wrapped

    Everything is restored on exit, exactly as it was.
    """

    def __init__(self, backend, array_type: type):
        self.backend, self.array_type = backend, array_type
        self.reads: list[Read] = []
        self.points: list[str] = []
        self.refused: list[str] = []
        self._undo: list = []
        self._depth = 0

    @property
    def array_points(self) -> list[str]:
        """The array type's own conversions that are being counted."""
        prefix = self.array_type.__name__ + "."
        return [p for p in self.points if p.startswith(prefix)]

    def __enter__(self) -> "HostReads":
        try:
            self._instrument()
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    # -- instrumenting --------------------------------------------------------------
    def _instrument(self) -> None:
        t = self.array_type
        for name in CONVERSIONS:
            if hasattr(t, name):
                self._wrap(t, name, f"{t.__name__}.{name}", self._counted)
        for name in NUMPY_READERS:
            self._wrap(np, name, f"numpy.{name}", self._counted_if_array)
        for name in BACKEND_READERS:
            if callable(getattr(self.backend, name, None)):
                self._wrap(self.backend, name, f"backend.{name}", self._counted)
        if callable(getattr(self.backend.ops, "to_float", None)):
            self._wrap(self.backend.ops, "to_float", "ops.to_float", self._counted)

    def _wrap(self, owner, name: str, label: str, make) -> None:
        before = getattr(owner, "__dict__", {}).get(name, _MISSING)
        original = getattr(owner, name)
        # on a class, the plain function (called with the instance first); elsewhere bound
        try:
            setattr(owner, name, make(label, original))
        except (TypeError, AttributeError):  # a C type that refuses new attributes
            self.refused.append(label)
            return
        self._undo.append((owner, name, before))
        self.points.append(label)

    def _restore(self) -> None:
        while self._undo:
            owner, name, before = self._undo.pop()
            if before is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, before)

    # -- recording ------------------------------------------------------------------
    def _counted(self, label: str, original):
        def wrapper(*args, **kwargs):
            return self._call(label, original, args, kwargs)
        return wrapper

    def _counted_if_array(self, label: str, original):
        def wrapper(*args, **kwargs):
            if args and isinstance(args[0], self.array_type):
                return self._call(label, original, args, kwargs)
            return original(*args, **kwargs)
        return wrapper

    def _call(self, label, original, args, kwargs):
        if self._depth == 0:
            self.reads.append(Read(label, _caller()))
        self._depth += 1
        try:
            return original(*args, **kwargs)
        finally:
            self._depth -= 1


def _caller() -> str:
    """file:line of the first frame outside this module (the code that read)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:  # pragma: no cover - a read from nowhere
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def summary(reads: list[Read], limit: int = 4) -> str:
    """'3 host reads: Tensor.__float__ at f.py:12; ...' (the first `limit`)."""
    shown = "; ".join(f"{r.point} at {r.where}" for r in reads[:limit])
    more = f"; and {len(reads) - limit} more" if len(reads) > limit else ""
    return f"{len(reads)} host read{'s' if len(reads) != 1 else ''}: {shown}{more}"
