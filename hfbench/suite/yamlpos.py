"""YAML parsing that remembers where every key and list item sits in the file.

`parse(text)` returns the plain data (as `yaml.safe_load` would) and a map from
key path to line number, so a validation error found in the data can name its
line. Paths are tuples of mapping keys (str) and list indices (int):
`("optimizers", "hf", "params", "damping")` or `("workloads", "w", "model", "sizes", 3)`.

Two departures from plain `yaml.safe_load`, both to spare users silent surprises:
- `1e-4` is a float. PyYAML follows YAML 1.1, whose float pattern needs a dot, and
  would hand the string "1e-4" to the schema.
- A key given twice in one mapping is an error; PyYAML keeps the last silently.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple  # of str keys and int indices

_EXP_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when built with it
    """SafeLoader that also reads 1e-4 as a float (see the module docstring)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))


class YamlSyntaxError(Exception):
    """Malformed YAML: `line` (1-based, or None) and the parser's message."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def parse(text: str) -> tuple[Any, dict[Path, int], list[tuple[Path, str]]]:
    """(data, lines, duplicates): the data, path -> 1-based line, and duplicate-key problems."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(*_describe(exc)) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {(): 1}
    duplicates: list[tuple[Path, str]] = []
    if node is not None:
        _walk(node, (), lines, duplicates)
    return data, lines, duplicates


def _describe(exc: yaml.YAMLError) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = "; ".join(p for p in parts if p) or str(exc).splitlines()[0]
    return (mark.line + 1 if mark else None), f"malformed YAML: {text}"


def _walk(node, path: Path, lines: dict, duplicates: list) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                duplicates.append((path + (key,), f"duplicate key {key!r} (first given on line "
                                   f"{seen[key]}); give each key once"))
            seen.setdefault(key, line)
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines, duplicates)


def locate(lines: dict[Path, int], loc: tuple) -> tuple[Path, int]:
    """The displayed path and line of a location that may hold non-YAML parts.

    pydantic puts union tags (the model type) into its locations, and a missing key
    has no line of its own. Parts absent from the file are dropped, except the last
    one (the missing or unknown key itself); the line is that of the deepest part
    the file has.
    """
    kept: list = []
    for i, part in enumerate(loc):
        candidate = tuple(kept) + (_key(part),)
        if candidate in lines or i == len(loc) - 1:
            kept.append(_key(part))
    path = tuple(kept)
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return path, lines[path[:n]]
    return path, 1


def _key(part):
    return part if isinstance(part, int) else str(part)


def dotted(path: Path) -> str:
    """("workloads", "w", "model", "sizes", 3) -> "workloads.w.model.sizes[3]"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
