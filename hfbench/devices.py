"""Device names: one parser for the suite, the command line and every backend.

    parse_device("GPU:1") -> "cuda:1"

Accepted: "cpu", "cuda" (the framework's current GPU), "cuda:N", "gpu" and "gpu:N"
(spellings of "cuda" and "cuda:N"), and "auto" (a GPU when the framework sees one,
else the CPU), in any case and with surrounding spaces. The canonical form is
lower case with "gpu" spelled "cuda", so a suite that says `gpu` and one that says
`cuda` make the same trials (and the same trial ids). Whether the machine has the
device is the backend's question, asked when it is built.
"""

from __future__ import annotations

import re

from .errors import DeviceError, closest

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "gpu", "gpu:N")
_GPU = re.compile(r"(?:cuda|gpu)(?::(\d+))?")


def parse_device(name, where: str = "") -> str:
    """The canonical form of a device name ("cpu", "auto", "cuda" or "cuda:N"), or a
    DeviceError that lists the accepted names; `where` prefixes the message."""
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str):
        raise DeviceError(f"{prefix}device must be a string, got {name!r} "
                          f"(choices: {', '.join(DEVICES)})")
    text = name.strip().lower()
    if text in ("cpu", "auto"):
        return text
    match = _GPU.fullmatch(text)
    if match:
        return "cuda" if match.group(1) is None else f"cuda:{int(match.group(1))}"
    raise DeviceError(f"{prefix}unknown device {name!r}{_hint(text)} (choices: {', '.join(DEVICES)})")


def device_index(canonical: str) -> int | None:
    """N of "cuda:N"; None for "cuda", "cpu" and "auto"."""
    _, sep, index = canonical.partition(":")
    return int(index) if sep else None


def _hint(text: str) -> str:
    # difflib finds "cpu" closest to "gpu"-like typos ("gpus", "gpu0"), the opposite of
    # what was meant; a name that starts like a GPU gets the GPU spelling instead.
    if text.startswith(("gpu", "cuda")):
        return "; did you mean 'cuda' or 'cuda:N'?"
    return closest(text, ("auto", "cpu", "cuda"))
