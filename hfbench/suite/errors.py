"""Suite errors: every problem in a file, each as `file:line key.path: message`.

Validation collects `Problem`s (a key path and a message) from the schema, from
the cross-checks and from the algorithms, then `SuiteError.from_problems` turns
them into lines sorted by line number, so the user fixes the whole file in one go.
"""

from __future__ import annotations

import datetime
import difflib
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
    return [Problem(*p) for e in errors for p in _translate(e, fields_at)]


class KeyProblem(ValueError):
    """A validator's complaint about one key of the mapping it checks: shown at that key
    (pydantic places a model validator's error at the mapping)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _translate(err: dict, fields_at) -> list[tuple[tuple, str]]:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "invalid_key" or (kind == "string_type" and "[key]" in err["loc"]):
        return []  # a key YAML read as a number, bool or null: yamlpos reports it at its line
    tagged = tuple(p for p in err["loc"] if p != "[key]")  # pydantic's marker for a bad dict key
    loc = _untagged(tagged)
    if kind == "extra_forbidden":
        return [(loc, unknown_key(str(loc[-1]), got, fields_at(tagged)))]
    if kind == "missing":  # shown at the mapping that lacks the key
        return [(loc[:-1], f"missing required key {loc[-1]!r}")]
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        return [(loc + ("type",), unknown("model type", ctx.get("tag"), tags))]
    if kind == "union_tag_not_found":  # the model union: no `type`, or not a mapping
        return untyped_model(loc, got)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        kind = f"{loc[-1]} " if loc and isinstance(loc[-1], str) else ""
        return [(loc, f"unknown {kind}{got!r}{closest(str(got), choices)} (choices: {', '.join(choices)})")]
    if kind == "value_error":
        exc = ctx.get("error")
        if isinstance(exc, KeyProblem):
            return [(loc + (exc.key,), str(exc))]
        return [(loc, str(exc if exc is not None else err["msg"]))]
    return [(loc, _plain(kind, ctx, got, err["msg"]))]


# ----------------------------------------------------------------------------- unknown keys

# Names people reach for that the format spells otherwise: a did-you-mean by meaning
# where difflib's by spelling finds nothing (`kind` is spelled nothing like `type`).
# Used only when the key they point to is valid where the unknown key was written.
KEY_ALIASES = {
    "kind": "type", "arch": "type", "architecture": "type", "net": "type",
    "hidden": "sizes", "hidden_sizes": "sizes", "layers": "sizes", "widths": "sizes",
    "units": "sizes", "act": "activation", "activations": "activation",
    "nonlinearity": "activation", "algo": "algorithm", "method": "algorithm",
    "data": "dataset", "batch": "batch_size", "hyperparams": "params", "options": "params",
}


def _value_keys() -> dict:
    """Keys whose value is a name from a fixed table: `{kind: mlp}` most likely meant `type`."""
    from .. import algorithms
    from ..losses import LOSSES
    from . import datasets, models

    return {"type": models.types(), "algorithm": tuple(algorithms.ALGORITHMS),
            "dataset": datasets.names(), "loss": tuple(LOSSES)}


def suggest_key(name: str, value, choices) -> str | None:
    """The valid key an unknown one most likely meant: by its value (`kind: mlp` ->
    type), by spelling (`hiden` -> hidden), then by meaning (KEY_ALIASES)."""
    choices = list(choices)
    if isinstance(value, str):
        for key, names in _value_keys().items():
            if key in choices and value in names:
                return key
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if match:
        return match[0]
    aliases = {a: k for a, k in KEY_ALIASES.items() if k in choices}
    match = difflib.get_close_matches(name.lower(), list(aliases), n=1, cutoff=0.75)
    return aliases[match[0]] if match else None


def unknown_key(name: str, value, choices, label: str = "choices") -> str:
    """`unknown key 'x'; did you mean 'y'? (choices: ...)`, y as `suggest_key` finds it."""
    choices = sorted(choices)
    guess = suggest_key(name, value, choices)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return f"unknown key {name!r}{hint} ({label}: {', '.join(choices)})"


def untyped_model(loc: tuple, got) -> list[tuple[tuple, str]]:
    """A model entry without its discriminator, `type`: say so, and name each key no model
    type has, with the key it most likely meant (`{kind: mlp, hiden: [...]}`: kind ->
    type, hiden -> sizes). A value that names a model type picks that type's keys."""
    from .models import types  # models.py imports Problem from here
    from .schema import model_keys

    names = ", ".join(sorted(types()))  # listed as `unknown` lists them
    if not isinstance(got, dict):
        return [(loc, f"expected a mapping with a 'type' key (one of {names}), got {got!r}")]
    if "type" in got:  # `type: null` (any other value has a tag)
        return [(loc + ("type",), f"expected a model type (one of {names}), got {got['type']!r}")]
    named = {v for v in got.values() if isinstance(v, str) and v in types()}
    kind = next(iter(named)) if len(named) == 1 else None
    valid = model_keys(kind)
    label = f"keys of type {kind}" if kind else "keys of the model types"
    out = [(loc, f"missing required key 'type' (choices: {names})")]
    for key, value in got.items():
        if isinstance(key, str) and key not in valid:
            out.append((loc + (key,), unknown_key(key, value, valid, label)))
    return out


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
    shown = short(got)
    if kind == "string_type" and isinstance(got, (bool, int, float, datetime.date)):
        what = "true/false" if isinstance(got, bool) else "a date" if isinstance(
            got, datetime.date) else "a number"
        return f"expected a string, got {shown} ({what} to YAML); put it in quotes if you mean the text"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shown}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {bound}, got {shown}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"needs at least {n} entr{'y' if n == 1 else 'ies'}, got {shown}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"takes at most {n:,} entries, got {ctx.get('actual_length', '?'):,}"
    return f"{fallback[:1].lower()}{fallback[1:]}, got {shown}"


def short(value, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters: a message quotes what came, not a whole
    section of the file."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]} ...{text[-1] if text[-1] in ')]}' else ''}"
