"""YAML parsing that remembers where every key and list item sits in the file.

`parse(text)` returns the plain data (as `yaml.safe_load` would) and a map from
key path to line number, so a validation error found in the data can name its
line. Paths are tuples of mapping keys (str) and list indices (int):
`("optimizers", "hf", "params", "damping")` or `("workloads", "w", "model", "sizes", 3)`.

Departures from plain `yaml.safe_load`, to spare users silent surprises and hangs:
- `1e-4` is a float. PyYAML follows YAML 1.1, whose float pattern needs a dot, and
  would hand the string "1e-4" to the schema.
- A key given twice in one mapping is an error; PyYAML keeps the last silently.
- A key that YAML reads as something other than a string (`5:`, `on:`, `~:`) is an
  error at its own line that says to quote it; every key of a suite is a name.
- A document nested deeper than MAX_DEPTH, or that expands (through aliases) to more
  than MAX_NODES values, is refused before it is built: no suite comes near either,
  and a "billion laughs" file would otherwise take minutes and gigabytes.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple  # of str keys and int indices

MAX_DEPTH = 64  # a suite nests about 6 levels (reference.entries[i].at.time_s)
MAX_NODES = 100_000  # values after alias expansion; the largest shipped suite has ~1,000

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
    """(data, lines, key problems): the data, path -> 1-based line, and the problems of
    its keys (duplicates, keys that are not strings) as (path, message)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_size(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(*_describe(exc)) from None
    except (ValueError, TypeError, ArithmeticError, LookupError) as exc:  # `!!int hf`, `!!bool maybe`
        raise YamlSyntaxError(_bad_scalar_line(node), f"malformed YAML: a value does not fit its "
                              f"tag ({exc}); drop the !!tag or fix the value") from None
    except RecursionError:  # _check_size stops deep documents first; this is a backstop
        raise YamlSyntaxError(None, f"the document nests more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {(): 1}
    problems: list[tuple[Path, str]] = []
    if node is not None:
        _walk(node, lines, problems)
    return data, lines, problems


def _check_size(root) -> None:
    """Refuse a document deeper than MAX_DEPTH or larger than MAX_NODES once its aliases
    are expanded, or whose alias loops back into itself. Iterative, and each node's
    expanded height and size are computed once (aliases share nodes), so a hostile file
    costs no more than its own text."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (height, size), aliases expanded
    open_: set[int] = set()  # the nodes on the current path (entered, not yet left)
    stack = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            open_.discard(id(node))
            kids = [done[id(k)] for k in _children(node)]
            done[id(node)] = (1 + max((h for h, _ in kids), default=0), 1 + sum(n for _, n in kids))
            _check_limits(node, *done[id(node)])
        elif id(node) not in done:
            if id(node) in open_:
                raise YamlSyntaxError(node.start_mark.line + 1, "an alias refers to the list or "
                                      "mapping that holds it, an endless loop; copy the values instead")
            open_.add(id(node))
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node) if id(k) not in done)


def _check_limits(node, height: int, size: int) -> None:
    line = node.start_mark.line + 1
    if height > MAX_DEPTH:
        raise YamlSyntaxError(line, f"the document nests more than {MAX_DEPTH} levels deep "
                              "(aliases expanded); a suite needs about 6")
    if size > MAX_NODES:
        raise YamlSyntaxError(line, f"the document expands (through its aliases) to more than "
                              f"{MAX_NODES:,} values; a suite is far smaller")


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _bad_scalar_line(root) -> int | None:
    """The line of the first scalar that PyYAML's constructor refuses (an explicit tag on
    a value it does not fit), or None."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                _construct(node)
            except Exception:  # noqa: BLE001 - whatever PyYAML raises, this is the node
                return node.start_mark.line + 1
        stack.extend(reversed(_children(node)))
    return None


# What would work, for the parser's most common complaints (matched in its message).
_HINTS = (
    ("cannot start any token", "indent with spaces, not tabs, and quote values that start with @ or `"),
    ("mapping values are not allowed", "quote a value that holds ': ' (\"a: b\"), or put the key "
     "on a line of its own"),
    ("quoted scalar", "close the quote"),
    ("did not find expected key", "line the keys of one mapping up at the same indentation"),
    ("expected ',' or ']'", "close the list with ]"),
    ("expected ',' or '}'", "close the mapping with }"),
    ("undefined alias", "define the anchor (&name) before its alias (*name)"),
    ("found another document", "give one document per file (no second ---)"),
    ("could not determine a constructor", "a suite holds plain values only; drop the !tag"),
)


def _describe(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The line of the problem and the parser's words, with the line its context began
    on (an unclosed quote is found at the end of the file) and a hint when we have one."""
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    mark = problem_mark or context_mark
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    if context and context_mark and problem_mark and context_mark.line != problem_mark.line:
        context = f"{context} (begun on line {context_mark.line + 1})"
    text = "; ".join(p for p in (context, problem) if p) or str(exc).splitlines()[0]
    hint = next((h for pattern, h in _HINTS if pattern in text), None)
    return (mark.line + 1 if mark else None), f"malformed YAML: {text}" + (f"; {hint}" if hint else "")


def _construct(node):
    """A scalar node's value as YAML reads it (a fresh constructor: one keeps every node
    it built)."""
    return yaml.constructor.SafeConstructor().construct_object(node)


def _walk(root, lines: dict, problems: list) -> None:
    """Record the line of every key and list item; report duplicate and non-string keys.
    Iterative (the depth is bounded by _check_size, but a stack costs nothing), in file
    order, so a key given twice has the line of its last value, the one the data keeps."""
    stack = [(root, ())]
    while stack:
        node, path = stack.pop()
        children = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key in seen and key != "<<":
                    problems.append((path + (key,), f"duplicate key {key!r} (first given on line "
                                     f"{seen[key]}); give each key once"))
                elif key != "<<":
                    problems += _non_string_key(key_node, path + (key,))
                seen.setdefault(key, line)
                lines[path + (key,)] = line
                children.append((value_node, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
                children.append((item, path + (i,)))
        stack.extend(reversed(children))


def _non_string_key(key_node, path: Path) -> list[tuple[Path, str]]:
    """A key that YAML reads as a number, true/false, null or a date: every key of a suite
    is a name (pydantic would say "expected a string" at a line and path that do not
    show the key as written)."""
    if not isinstance(key_node, yaml.ScalarNode):
        return [(path, "a key must be a plain name, not a list or mapping")]
    try:
        value = _construct(key_node)
    except (yaml.YAMLError, ValueError, TypeError, ArithmeticError, LookupError):
        return []  # the document's own construction reports it
    if isinstance(value, str):
        return []
    what = {bool: "true/false", type(None): "null", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)
    text = key_node.value
    return [(path, f"key {text!r} reads as {what} in YAML, not a name; quote it: '{text}'")]


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
