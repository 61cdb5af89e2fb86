"""Finding and loading backends through the `hfbench.backends` entry-point group.

The built-in torch and JAX backends register there exactly as a third party's
would; nothing here imports a framework until a backend is asked for by name.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from .errors import BackendError, closest
from .protocol import DTYPES

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

    device: "cpu", "cuda", "cuda:N" or "auto" (a GPU when the framework sees one).
    dtype: "float32" (default) or "float64".
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


def check_options(backend: str, unknown_options: dict, accepted) -> None:
    """Refuse constructor options a backend does not know, with the closest valid one."""
    if unknown_options:
        names = sorted(unknown_options)
        raise BackendError(
            f"{backend} backend: unknown option(s) {', '.join(map(repr, names))}"
            f"{closest(names[0], accepted)} (accepted: {', '.join(accepted)})"
        )


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise BackendError(
            f"dtype {dtype!r} is not supported{closest(dtype, DTYPES)} (choices: "
            f"{', '.join(DTYPES)}); float64 is the reference precision for tests"
        )


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
