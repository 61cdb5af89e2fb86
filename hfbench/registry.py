"""Finding and loading backends through the `hfbench.backends` entry-point group.

The built-in torch and JAX backends register there exactly as a third party's
would; nothing here imports a framework until a backend is asked for by name.
A backend's options can be checked without building it, through the optional
`resolve_options` hook of its package (see `hfbench.protocol`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points

from .errors import BackendError, closest
# Moved beside the protocol (hfbench.protocol_helpers), where backends import them
# from; kept importable from here for one release.
from .protocol_helpers import check_dtype, check_options  # noqa: F401

GROUP = "hfbench.backends"
# The extra that installs each built-in backend's framework.
EXTRAS = {"torch": "torch", "jax": "jax"}


def registered() -> dict[str, EntryPoint]:
    """Backends registered in the entry-point group, by name (nothing is imported)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def installed() -> dict[str, str | None]:
    """Every registered backend -> None if it loads, else why it does not."""
    status = {}
    for name, ep in sorted(registered().items()):
        try:
            ep.load()
            status[name] = None
        except (ImportError, AttributeError) as exc:
            status[name] = str(exc)
    return status


def get_backend(name: str, **options):
    """Build backend `name` with `options` (device, dtype, ...), loading it lazily.

    device: "cpu", "cuda", "cuda:N" (or "gpu", "gpu:N"), or "auto" (a GPU when the
    framework sees one); see `hfbench.devices`. dtype: "float32" (default) or
    "float64". Other options are the backend's own (torch: compile, threads).
    """
    check_dtype(options.get("dtype", "float32"))
    eps = registered()
    if name not in eps:
        raise BackendError(_unknown_message(name))
    try:
        cls = eps[name].load()
    except (ImportError, AttributeError) as exc:
        extra = EXTRAS.get(name, name)
        raise BackendError(
            f"backend {name!r} is registered but cannot be imported ({exc}); install its "
            f"framework with: pip install 'hfbench[{extra}]'"
        ) from None
    return cls(**options)


@functools.cache
def option_resolver(name: str) -> Callable[[Mapping], dict] | None:
    """Backend `name`'s `resolve_options(options) -> dict` hook, or None.

    The hook is looked up on the module its entry point names (`hfbench_torch` for
    `hfbench_torch:TorchBackend`), which a backend keeps free of its framework so
    that a suite can be checked without importing torch or jax. None when the
    backend is not registered, its module does not import, or it has no hook: then
    its options are checked when it is built.
    """
    ep = registered().get(name)
    if ep is None:
        return None
    try:
        module = importlib.import_module(ep.module)
    except ImportError:
        return None
    hook = getattr(module, "resolve_options", None)
    return hook if callable(hook) else None


def _unknown_message(name: str) -> str:
    status = installed()
    ok = [n for n, why in status.items() if why is None]
    missing = [n for n in EXTRAS if n not in ok]
    lines = [
        f"unknown backend {name!r}{closest(name, status)}",
        f"installed backends: {', '.join(ok) or 'none'}",
    ]
    if name in EXTRAS or missing:
        want = name if name in EXTRAS else missing[0]
        lines.append(f"to add {want!r}: pip install 'hfbench[{EXTRAS[want]}]'")
    return "; ".join(lines)
