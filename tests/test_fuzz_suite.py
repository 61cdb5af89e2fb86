"""Fuzzing the suite loader: any text is accepted or refused with hfbench's own error.

Three sources of input, each fed to `hfbench.suite.loads` and, when it loads, to
`expand`:
- generated YAML documents: random nesting of mappings, lists and scalars whose keys
  are drawn from the schema's real key names, the algorithms' options and junk;
- near-valid suites: a shipped suite's data with one node replaced, deleted or
  renamed (the cross-field checks only run on data this close to valid);
- text mutations of every shipped suite: a line deleted or duplicated, a key renamed,
  a value swapped for another type, the text truncated, a tab, colon, quote, bracket
  or the like inserted.

The property is the one a user relies on: a `HFBenchError` (exit 2 at the CLI) or a
result, never another exception (a traceback), and never a hang: each example runs
under a wall-clock bound (SIGALRM) far above its normal milliseconds. Hypothesis runs
derandomized with no example database, so CI sees the same examples every time.
"""

from __future__ import annotations

import contextlib
import math
import signal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfbench import algorithms
from hfbench.errors import HFBenchError
from hfbench.suite import expand, loads
from hfbench.suite import schema

SUITES = sorted((Path(__file__).parents[1] / "suites").glob("*.yaml"))
HANG_S = 20  # per example; normal ones take milliseconds (the largest suite ~0.5 s)
# The largest shipped suite expands to ~500 trials (~0.5 s an example); the others to a
# few dozen. Example counts keep the file well under a minute on a busy 2-core runner.
EXAMPLES = {"gargiani2020": 30}
DEFAULT_EXAMPLES = 60
COMMON = dict(deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])


# ----------------------------------------------------------------------------- the property


@contextlib.contextmanager
def time_bound(seconds: int):
    """Fail (not hang) when the body runs longer than `seconds` (main thread, POSIX)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hung(signum, frame):
        raise TimeoutError(f"the loader ran over {seconds} s on one document (a hang)")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def accepts_or_refuses(text: str) -> None:
    """loads (and expand) return, or raise an HFBenchError with a message; nothing else."""
    with time_bound(HANG_S):
        try:
            suite = loads(text, source="fuzz.yaml")
            expand(suite)
        except HFBenchError as exc:
            assert str(exc).strip(), "an HFBenchError without a message"


# ----------------------------------------------------------------------------- vocabulary


def _schema_keys() -> list[str]:
    models = (schema.Suite, schema.Workload, schema.Optimizer, schema.Budget, schema.Eval,
              schema.Target, schema.Reference, schema.ReferenceEntry, schema.Baseline,
              *schema.ENTRY_CLASSES.values())
    keys = {k for m in models for k in m.model_fields}
    keys |= {k for a in algorithms.ALGORITHMS for k in algorithms.defaults(a)}
    return sorted(keys | {">=", "<=", "torch", "jax", "compile", "<<"})


KEYS = _schema_keys()
NAMES = sorted({*algorithms.ALGORITHMS, *schema.datasets.names(), *schema.models.types(),
                *schema.METRICS, "full", "cpu", "cuda", "auto", "float32", "float64", "final",
                "torch", "jax", "sgd", "relu", "tanh", "sigmoid", "same", "valid"})

junk_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NAMES), junk_text,
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), junk_text,
                 st.integers(-3, 3), st.booleans(), st.none())
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)


# ----------------------------------------------------------------------------- (a) generated


@settings(max_examples=300, **COMMON)
@given(st.dictionaries(keys, values, max_size=8))
def test_generated_documents(doc):
    accepts_or_refuses(dump(doc))


@settings(max_examples=100, **COMMON)
@given(values)
def test_generated_documents_of_any_shape(doc):
    """A top level that is a list, a scalar or nothing at all."""
    accepts_or_refuses(dump(doc))


# ----------------------------------------------------------------------------- (b) near-valid


def _paths(node, path=()):
    """Every path into a plain YAML value (mapping keys and list indices)."""
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _mutate(data, path, how: str, value, new_key):
    """A copy of `data` with the node at `path` replaced, deleted or its key renamed."""
    data = yaml.safe_load(dump(data))  # a deep copy of plain data
    if not path:
        return value
    *head, last = path
    parent = data
    for part in head:
        parent = parent[part]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent, dict):  # rename, in place (the order is the file's order)
        items = [(new_key if k == last else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    return data


SMALL = [p for p in SUITES if p.stem not in EXAMPLES]
BASES = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in SMALL}
BASE_PATHS = {name: list(_paths(d)) for name, d in BASES.items()}


@settings(max_examples=300, **COMMON)
@given(st.data())
def test_near_valid_suites(data):
    name = data.draw(st.sampled_from(sorted(BASES)), label="suite")
    path = data.draw(st.sampled_from(BASE_PATHS[name]), label="path")
    how = data.draw(st.sampled_from(["replace", "replace", "delete", "rename"]), label="how")
    value = data.draw(values, label="value") if how == "replace" else None
    new_key = data.draw(keys, label="new key") if how == "rename" else None
    accepts_or_refuses(dump(_mutate(BASES[name], path, how, value, new_key)))


# ----------------------------------------------------------------------------- (c) text mutations

INSERTS = ["\t", ":", ": ", "'", '"', "[", "]", "{", "}", "- ", "&a ", "*a", "!!str ", "!!int ",
           "#", "\n", "  ", "? ", "|", ">", "%", "@", "`", ",", "~", "\x00", "\ufeff", "\x85",
           "é", "---\n", "...\n", "<<: ", "\r"]
SWAPS = ["3", "-1", "0", "1.5", "1e-4", "true", "null", "[]", "{}", "[1, 2]", "{a: 1}", "'x'",
         "full", ".nan", "-.inf", "1e400", "99999999999999999999", "2020-01-01", "on", "~",
         "[[1]]", "{type: mlp}", "*x", "&x 1"]


@st.composite
def text_mutation(draw, text: str) -> str:
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        lines = lines or [""]
        op = draw(st.sampled_from(["delete", "delete_block", "duplicate", "rename", "swap",
                                   "insert", "truncate"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        line = lines[i]
        key, sep, rest = line.partition(":")
        if op == "delete":
            del lines[i]
        elif op == "delete_block":  # a key and everything indented under it
            indent = len(line) - len(line.lstrip(" "))
            j = i + 1
            while j < len(lines) and (not lines[j].strip()
                                      or len(lines[j]) - len(lines[j].lstrip(" ")) > indent):
                j += 1
            del lines[i:j]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "rename" and sep:
            stripped = key.lstrip(" -")
            new = draw(st.one_of(st.sampled_from(KEYS), junk_text.filter(lambda s: "\n" not in s)))
            lines[i] = key[: len(key) - len(stripped)] + new + sep + rest
        elif op == "swap" and sep and rest.strip():
            lines[i] = key + sep + " " + draw(st.sampled_from(SWAPS))
        elif op == "insert":
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + draw(st.sampled_from(INSERTS)) + line[pos:]
        elif op == "truncate":
            joined = "\n".join(lines)
            lines = joined[: draw(st.integers(0, len(joined)))].split("\n")
    return "\n".join(lines)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_mutated_shipped_suites(path):
    text = path.read_text(encoding="utf-8")
    accepts_or_refuses(text)  # the original loads and expands

    @settings(max_examples=EXAMPLES.get(path.stem, DEFAULT_EXAMPLES), **COMMON)
    @given(text_mutation(text))
    def check(mutated):
        accepts_or_refuses(mutated)

    check()


# ----------------------------------------------------------------------------- regressions

# Each of these raised something other than an HFBenchError, or hung, before it was fixed.
REGRESSIONS = {
    "a list as the model type (unhashable in the union's tag)":
        "name: t\nbackends: [torch]\nworkloads:\n  w:\n    dataset: digits\n"
        "    model: {type: [mlp]}\n    batch_size: 8\noptimizers: {s: {algorithm: sgd}}\n"
        "budget: {iterations: 1}\n",
    "nesting 2,000 levels deep (RecursionError)": "name: " + "[" * 2000 + "]" * 2000 + "\n",
    "an alias inside the list that holds it (RecursionError)": "name: &a [*a]\n",
    "aliases nesting 60 levels each, 25 times (RecursionError)":
        "a0: &a0 " + "[" * 60 + "1" + "]" * 60 + "\n" + "".join(
            f"a{i}: &a{i} " + "[" * 50 + f"*a{i - 1}" + "]" * 50 + "\n" for i in range(1, 25)),
    "an explicit tag its value does not fit (ValueError from PyYAML)":
        "name: t\nbackends: [torch]\noptimizers: {!!int hf: {algorithm: sgd}}\n",
    "a tagged bool that is no bool (KeyError from PyYAML)": "name: t\ntf32: !!bool maybe\n",
    "a seed count of 10^8 (a list of 10^8 seeds, checked for duplicates pairwise)":
        "name: t\nseeds: 100000000\n",
    "an alias bomb (minutes and gigabytes)": "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['1'] * 9)}]\n"
        for p, c in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg")),
}


@pytest.mark.parametrize("text", REGRESSIONS.values(), ids=list(REGRESSIONS))
def test_regressions(text):
    with pytest.raises(HFBenchError), time_bound(HANG_S):
        loads(text, source="fuzz.yaml")  # each is bad input: refused, with a message


def test_the_time_bound_fires():
    """The hang guard itself works (else a hang would pass as 'slow')."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("no SIGALRM on this platform: the hang guard is off")
    with pytest.raises(TimeoutError), time_bound(1):
        while True:
            math.sqrt(2.0)
