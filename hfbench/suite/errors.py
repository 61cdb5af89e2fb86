"""Suite errors: every problem in a file, each as `file:line key.path: message`.

Validation collects `Problem`s (a key path and a message) from the schema, from
the cross-checks and from the algorithms, then `SuiteError.from_problems` turns
them into lines sorted by line number, so the user fixes the whole file in one go.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import HFBenchError, closest, unknown
from .yamlpos import dotted, locate


class Problem(NamedTuple):
    loc: tuple  # key path into the file (pydantic-style; may hold union tags)
    message: str


class SuiteError(HFBenchError):
    """One or more problems in a suite file; str() is one line per problem."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = list(lines)

    @classmethod
    def from_problems(cls, source: str, line_map: dict, problems: list[Problem]) -> "SuiteError":
        placed = []
        for loc, message in problems:
            path, line = locate(line_map, tuple(loc))
            where = f"{source}:{line}"
            placed.append((line, f"{where} {dotted(path)}: {message}" if path else f"{where} {message}"))
        unique = dict.fromkeys(text for _, text in sorted(placed, key=lambda p: p[0]))
        return cls(list(unique))


# ----------------------------------------------------------------------------- pydantic


def from_pydantic(errors: list[dict], fields_at) -> list[Problem]:
    """pydantic's error dicts as Problems with our wording.

    `fields_at(loc)` returns the valid keys of the mapping that holds loc[-1]
    (for the did-you-mean of an unknown key).
    """
    return [Problem(*_translate(e, fields_at)) for e in errors]


def _translate(err: dict, fields_at) -> tuple[tuple, str]:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    tagged = tuple(p for p in err["loc"] if p != "[key]")  # pydantic's marker for a bad dict key
    loc = _untagged(tagged)
    if kind == "extra_forbidden":
        return loc, unknown("key", str(loc[-1]), fields_at(tagged))
    if kind == "missing":  # shown at the mapping that lacks the key
        return loc[:-1], f"missing required key {loc[-1]!r}"
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        return loc + ("type",), unknown("model type", ctx.get("tag"), tags)
    if kind == "union_tag_not_found":  # the model union: no `type`, or not a mapping
        from .models import types  # models.py imports Problem from here

        if not isinstance(got, dict):
            return loc, f"expected a mapping with a 'type' key (one of {', '.join(types())}), got {got!r}"
        return loc, f"missing required key 'type' (choices: {', '.join(types())})"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        kind = f"{loc[-1]} " if loc and isinstance(loc[-1], str) else ""
        return loc, f"unknown {kind}{got!r}{closest(str(got), choices)} (choices: {', '.join(choices)})"
    if kind == "value_error":
        return loc, str(ctx.get("error", err["msg"]))
    return loc, _plain(kind, ctx, got, err["msg"])


def _untagged(loc: tuple) -> tuple:
    """`loc` without the model union's tag (pydantic puts it after "model"; it is no key
    of the file, so `workloads.w.model.mlp: missing 'sizes'` would name a key not there)."""
    from .schema import model_tags  # schema imports models, which imports this module

    tags = model_tags()
    return tuple(p for i, p in enumerate(loc) if not (i and loc[i - 1] == "model" and p in tags))


_EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)", "model_attributes_type": "a mapping (key: value)",
    "finite_number": "a finite number",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _plain(kind: str, ctx: dict, got, fallback: str) -> str:
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got!r}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {bound}, got {got!r}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"needs at least {n} entr{'y' if n == 1 else 'ies'}, got {got!r}"
    return f"{fallback[:1].lower()}{fallback[1:]}, got {got!r}"
