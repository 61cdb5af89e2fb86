"""Finding a suite file from what the user typed: a path, or a shipped suite's name."""

from __future__ import annotations

import pathlib

from ..errors import HFBenchError, closest

DEFAULT_SUITE = "quickstart"


def suite_dirs() -> list[pathlib.Path]:
    """./suites, then the suites/ beside the hfbench package (a source checkout)."""
    here = pathlib.Path(__file__).resolve().parents[2] / "suites"
    return [pathlib.Path.cwd() / "suites", here]


def resolve_suite(arg: str | None) -> pathlib.Path:
    """A path as given when it names a file or ends in .yaml; else suites/NAME.yaml."""
    name = arg or DEFAULT_SUITE
    path = pathlib.Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    for folder in suite_dirs():
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for d in suite_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise HFBenchError(
        f"no suite {name!r}{closest(name, known)}: not a file, and not in "
        f"{', '.join(str(d) for d in suite_dirs())} (shipped suites: {', '.join(known) or 'none'})"
    )
