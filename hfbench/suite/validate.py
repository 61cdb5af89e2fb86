"""Reading a suite file: parse, validate the whole of it, report every problem at once."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from . import checks, options, refcheck
from .errors import Problem, SuiteError, from_pydantic
from .schema import Suite, backend_names, fields_at
from .yamlpos import YamlSyntaxError, parse

# A bare name ("quickstart") is looked up in ./suites first (a checkout, or a folder of
# one's own suites in the working directory), then among the suites shipped in the
# package. Those are the repository's top-level suites/ folder, which pyproject.toml
# maps to the package `hfbench.suites`, so an editable install and a wheel read the
# same files and there is no second copy to keep in step.
LOCAL_SUITES = Path("suites")


def suite_dirs() -> list:
    """The folders a suite name is looked up in, in order (Paths or importlib Traversables)."""
    try:
        packaged = resources.files("hfbench.suites")
    except ModuleNotFoundError:  # an editable install made before suites/ was package data
        return [LOCAL_SUITES]
    return [LOCAL_SUITES, packaged]


def resolve(name_or_path: str | Path) -> Path:
    """A suite file from a path, or from a shipped suite's name ("quickstart")."""
    path = Path(name_or_path)
    if path.is_file() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    for folder in suite_dirs():
        candidate = folder.joinpath(f"{path}.yaml")
        if candidate.is_file():
            return candidate
    return path


def shipped() -> list[str]:
    """Names of the shipped suites that can be found from here."""
    return sorted({Path(p.name).stem for d in suite_dirs() if d.is_dir()
                   for p in d.iterdir() if p.name.endswith(".yaml")})


def load(path: str | Path) -> Suite:
    """Read and validate a suite file; raise SuiteError listing every problem in it."""
    path = resolve(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([f"{path}: no such suite file; give a path to a YAML suite or the "
                          f"name of a shipped one ({', '.join(shipped()) or 'none found'})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError([f"{path}: cannot read the suite file ({exc})"]) from None
    return loads(text, source=str(path))


def loads(text: str, source: str = "<suite>") -> Suite:
    """Validate suite text; `source` names it in error messages."""
    try:
        data, lines, key_problems = parse(text)
    except YamlSyntaxError as exc:
        raise SuiteError([f"{source}:{exc.line or 1} {exc.message}"]) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SuiteError([f"{source}:1 expected a mapping of suite keys (name, backends, "
                          f"workloads, optimizers, budget, ...), got {got}"])
    suite, problems = _validate(data)
    problems = [Problem(loc, msg) for loc, msg in key_problems] + problems
    if problems:
        raise SuiteError.from_problems(source, lines, problems)
    suite._source = source
    suite._lines = lines  # for messages that come later (preflight)
    return suite


def _validate(data: dict) -> tuple[Suite | None, list[Problem]]:
    suite, problems = None, []
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems += from_pydantic(exc.errors(), fields_at)
    problems += checks.check(data) + refcheck.check(data) + options.check(data, backend_names())
    return suite, problems
