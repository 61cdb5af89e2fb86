"""Report tables: a renderer-neutral `Table`, and builders from the trials DataFrame.

Every builder takes the one-row-per-trial DataFrame of `hfbench.results.trials(dir)`
and returns a list of `Table`s, one per workload in sorted order: "best in the
column" only means something within one workload. A configuration is (workload,
label, backend, device, dtype) and its seeds are the repeats; rows are sorted by
that key. Columns a builder needs but the DataFrame lacks give [], never a KeyError.

Cells hold plain text with Unicode marks (±, ∞, †, —); `to_markdown` and `to_latex`
translate them, so both renderings come from one set of numbers. Numbers carry 4
significant digits (`fmt_num`). The averaging rules for NaN and ±inf are those of
`hfbench.report.stats`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd

from .stats import (CI, Summary, bootstrap_diff_ci, paired_permutation_p, significant,
                    summarize)

DIGITS = 4
KEY = ("label", "backend", "device", "dtype")
FIRST_METRICS = ("train_loss", "test_loss", "test_accuracy")
STATUS_NAMES = {"completed": "ok", "target_reached": "target reached",
                "budget_exhausted": "budget exhausted", "diverged": "diverged",
                "failed": "failed"}
TARGET_UNITS = {"time_s": "time (s)", "iterations": "iterations", "epochs": "epochs",
                "grad_passes": "grad passes"}
INF_RULE = ("NaN (no value) is left out of the mean and n; any infinite value (diverged) "
            "makes the mean ∞ and is never averaged in.")


# ----------------------------------------------------------------------------- the record


class Cell(NamedTuple):
    """One table cell: its text, and the number the column's `best` rule compares."""

    text: str
    value: float = math.nan  # NaN never wins; nor does ±inf (a miss is never "best")


@dataclass(frozen=True)
class Table:
    """A titled grid of cells with footnotes and a per-column best rule.

    best[j] is "min", "max" or None; every cell of column j whose value equals the
    best finite value is rendered bold. align[j] is "l" or "r"; by default "r" for
    columns with a best rule or any numeric cell (numbers right-aligned), else "l".
    """

    title: str
    headers: tuple
    rows: tuple
    caption: str = ""
    footnotes: tuple = ()
    best: tuple = ()
    align: tuple = ()

    def __post_init__(self):
        width = len(self.headers)
        rows = tuple(tuple(c if isinstance(c, Cell) else Cell(str(c)) for c in r)
                     for r in self.rows)
        if any(len(r) != width for r in rows):
            raise ValueError(f"table {self.title!r}: every row needs {width} cells "
                             f"(one per header), got {sorted({len(r) for r in rows})}")
        best = tuple(self.best) + (None,) * (width - len(self.best))
        if any(b not in ("min", "max", None) for b in best):
            raise ValueError(f"table {self.title!r}: best rules must be 'min', 'max' or "
                             f"None, got {best}")
        align = tuple(self.align) or tuple(_default_align(rows, best, j) for j in range(width))
        for name, value in (("headers", tuple(self.headers)), ("rows", rows), ("best", best),
                            ("align", align), ("footnotes", tuple(self.footnotes))):
            object.__setattr__(self, name, value)

    def bold(self) -> list[list[bool]]:
        """Which cells the best rule marks, row by row."""
        marks = [[False] * len(self.headers) for _ in self.rows]
        for j, rule in enumerate(self.best):
            for i in _best_rows([r[j].value for r in self.rows], rule):
                marks[i][j] = True
        return marks

    def to_markdown(self) -> str:
        """GitHub Markdown: a heading, the caption, the table (best in **bold**), notes."""
        esc = [[_md(c.text) for c in r] for r in self.rows]
        cells = [[f"**{t}**" if b else t for t, b in zip(r, m)] for r, m in zip(esc, self.bold())]
        rule = ["---:" if a == "r" else ":---" for a in self.align]
        lines = [f"### {_md(self.title)}", ""]
        lines += [_md(self.caption), ""] if self.caption else []
        lines += [_md_row([_md(h) for h in self.headers]), _md_row(rule)]
        lines += [_md_row(r) for r in cells] + [""]
        lines += [f"- {_md(f)}" for f in self.footnotes] + ([""] if self.footnotes else [])
        return "\n".join(lines)

    def to_latex(self) -> str:
        """A booktabs table (\\toprule, \\midrule, \\bottomrule; best in \\textbf)."""
        cells = [[rf"\textbf{{{_tex(c.text)}}}" if b else _tex(c.text) for c, b in zip(r, m)]
                 for r, m in zip(self.rows, self.bold())]
        title = _tex(self.title) + (f". {_tex(self.caption)}" if self.caption else "")
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")
        lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{title}}}",
                 rf"\label{{tab:{slug}}}", rf"\begin{{tabular}}{{{''.join(self.align)}}}",
                 r"\toprule", " & ".join(_tex(h) for h in self.headers) + r" \\", r"\midrule"]
        lines += [" & ".join(r) + r" \\" for r in cells]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.footnotes:
            lines += [r"\par\smallskip\footnotesize"]
            lines += [_tex(f) + r"\par" for f in self.footnotes]
        return "\n".join(lines + [r"\end{table}", ""])


def _default_align(rows, best, j) -> str:
    numeric = any(not math.isnan(r[j].value) for r in rows)
    return "r" if best[j] is not None or numeric else "l"


def _best_rows(values, rule) -> list[int]:
    """Rows holding the best finite value under `rule` (ties all win)."""
    finite = [v for v in values if math.isfinite(v)]
    if rule is None or not finite:
        return []
    target = min(finite) if rule == "min" else max(finite)
    return [i for i, v in enumerate(values) if v == target]


def _md(text: str) -> str:
    # only "|" would break a Markdown table; GFM leaves intraword "_" alone
    return str(text).replace("|", r"\|").replace("\n", " ")


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


_TEX = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
        "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", ">=": r"$\geq$", "<=": r"$\leq$", "≥": r"$\geq$",
        "≤": r"$\leq$", "<": "$<$", ">": "$>$", "|": r"\textbar{}", "±": r"$\pm$",
        "∞": r"$\infty$", "†": r"$^\dagger$", "—": "---", "–": "--", "−": "$-$",
        "×": r"$\times$", "Δ": r"$\Delta$"}
_TEX_RE = re.compile("|".join(re.escape(k) for k in sorted(_TEX, key=len, reverse=True)))


def _tex(text: str) -> str:
    """LaTeX-safe text: specials escaped, Unicode marks as math (one pass, no re-escaping)."""
    return _TEX_RE.sub(lambda m: _TEX[m.group(0)], str(text))


# ----------------------------------------------------------------------------- numbers


def fmt_num(x: float, digits: int = DIGITS) -> str:
    """x to `digits` significant digits, trailing zeros kept (0.5000, 12.30).

    Fixed point for 1e-3 <= |x| < 1e5, else scientific (1.235e-05); 0 as "0",
    ±inf as "∞"/"-∞", NaN as "—".
    """
    x = float(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits - 1}e}")  # round first: 9.99996 is 10.00, not 9.9996
    exponent = math.floor(math.log10(abs(rounded)))
    if -3 <= exponent < 5:
        return f"{rounded:.{max(digits - 1 - exponent, 0)}f}"
    return f"{x:.{digits - 1}e}"


def fmt_summary(s: Summary) -> str:
    """'mean ± std (n)'; 'mean (1)' for one seed; '∞ (k of n ∞)' when any is infinite."""
    if s.n == 0:
        return "—"
    if s.n_inf:
        return f"{fmt_num(s.mean)} ({s.n_inf} of {s.n} ∞)"
    if s.n == 1:
        return f"{fmt_num(s.mean)} (1)"
    return f"{fmt_num(s.mean)} ± {fmt_num(s.std)} ({s.n})"


def _summary_cell(values) -> Cell:
    s = summarize(values)
    return Cell(fmt_summary(s), s.mean)


def direction(column: str) -> str:
    """'max' for accuracies, else 'min' (losses, times, counts to target)."""
    if column.startswith("target."):
        return "min"  # time-to-target of an accuracy target is still a time
    base = column.split(".")[-1]
    return "max" if "accuracy" in base or base.endswith("_acc") else "min"


# ----------------------------------------------------------------------------- grouping


def _prepare(df) -> pd.DataFrame | None:
    """df with string key columns (NaN as "—"), or None without workload and label."""
    if df is None or len(df) == 0 or "workload" not in df.columns:
        return None
    label = next((c for c in ("label", "optimizer") if c in df.columns), None)
    if label is None:
        return None
    out = df.copy()
    out["label"] = out[label]
    for col in ("workload",) + KEY:
        out[col] = out[col].astype(object).where(out[col].notna(), "—").astype(str) \
            if col in out.columns else "—"
    return out


def _workloads(df: pd.DataFrame):
    """(workload, its rows, key columns to show, [(key, rows)] sorted), per workload.

    device and dtype are shown only where they vary within the workload.
    """
    for workload in sorted(df["workload"].unique()):
        sub = df[df["workload"] == workload]
        shown = ["label", "backend"] + [c for c in ("device", "dtype") if sub[c].nunique() > 1]
        groups = sorted(((tuple(k), g) for k, g in sub.groupby(list(KEY), sort=False)),
                        key=lambda kg: kg[0])
        yield workload, sub, shown, groups


def _key_cells(key, shown) -> list[Cell]:
    return [Cell(key[KEY.index(c)]) for c in shown]


def _numeric(sub: pd.DataFrame, columns) -> list[str]:
    """The given columns that are numeric and hold a value in `sub`."""
    return [c for c in columns if c in sub.columns and pd.api.types.is_numeric_dtype(sub[c])
            and not pd.api.types.is_bool_dtype(sub[c]) and sub[c].notna().any()]


# Bookkeeping in a record's `final` (and at marks) that is not a result to compare.
NOT_METRICS = frozenset({"step", "time_s", "eval_s", "epoch", "grad_passes", "n_grad", "n_gv",
                         "n_fwd", "n_precond", "n_curv"})


def _result_metrics(sub: pd.DataFrame, named: dict[str, str]) -> list[str]:
    """The evaluated metrics among {metric: column}: counts and clocks left out, and an
    objective (loss + l2 term) only where it differs from its loss (l2 > 0)."""
    out = []
    for m, col in named.items():
        if m in NOT_METRICS:
            continue
        if m.endswith("_objective"):
            loss = named.get(m.replace("_objective", "_loss"))
            if loss is not None and np.allclose(sub[col].to_numpy(float), sub[loss].to_numpy(float),
                                                equal_nan=True):
                continue
        out.append(m)
    return out


def _metric_order(names) -> list[str]:
    return [m for m in FIRST_METRICS if m in names] + sorted(set(names) - set(FIRST_METRICS))


def _values(rows: pd.DataFrame, column: str) -> np.ndarray:
    """The column's values in seed order (the order pairing relies on)."""
    if "seed" in rows.columns:
        rows = rows.sort_values("seed", kind="mergesort")
    return rows[column].to_numpy(dtype=float)


def _table(title, shown, headers, rows, best, caption="", footnotes=(), align=()) -> Table:
    """A Table whose first columns are the configuration key (no best rule, left-aligned)."""
    keys = tuple(shown)
    return Table(title=title, headers=keys + tuple(headers), rows=rows, caption=caption,
                 footnotes=tuple(footnotes), best=(None,) * len(keys) + tuple(best),
                 align=("l",) * len(keys) + tuple(align) if align else ())


# ----------------------------------------------------------------------------- summary


def _status_text(status: pd.Series) -> str:
    """'3 ok, 2 diverged': counts in the order of STATUS_NAMES, then others sorted."""
    counts = status.fillna("unknown").astype(str).value_counts()
    order = [s for s in STATUS_NAMES if s in counts] + sorted(set(counts.index) - set(STATUS_NAMES))
    return ", ".join(f"{counts[s]} {STATUS_NAMES.get(s, s)}" for s in order)


def _final_values(g: pd.DataFrame, column: str) -> np.ndarray:
    """A final metric per seed, a diverged seed's loss (or error) as +inf: a diverged run
    has no final evaluation, and dropping it would average the survivors into a
    misleadingly good number. Accuracies of diverged seeds stay missing (NaN)."""
    values = _values(g, column)
    if column.startswith("final.") and direction(column) == "min" and "status" in g.columns:
        status = g.sort_values("seed", kind="mergesort")["status"] if "seed" in g.columns else g["status"]
        values = np.where(status.to_numpy() == "diverged", np.inf, values)
    return values


def summary_table(df) -> list[Table]:
    """Per workload: each final.* metric and train time as mean ± std (n), and status counts.

    Best per column in bold: min for losses and time, max for accuracies.
    """
    d = _prepare(df)
    if d is None:
        return []
    tables = []
    for workload, sub, shown, groups in _workloads(d):
        named = {c[len("final."):]: c for c in _numeric(sub, [c for c in sub.columns
                                                              if c.startswith("final.")])}
        finals = _result_metrics(sub, named)
        cols = [f"final.{m}" for m in _metric_order(finals)] + _numeric(sub, ["train_time_s"])
        if not cols:
            continue
        status = "status" in sub.columns
        rows = [_key_cells(k, shown) + [_summary_cell(_final_values(g, c)) for c in cols]
                + ([Cell(_status_text(g["status"]))] if status else []) for k, g in groups]
        headers = [c[len("final."):] if c.startswith("final.") else "train time (s)" for c in cols]
        tables.append(_table(f"{workload}: final metrics", shown,
                             headers + (["status"] if status else []), rows,
                             # train time is the budget's, not a result: no best
                             [None if c == "train_time_s" else direction(c) for c in cols]
                             + ([None] if status else []),
                             "mean ± std over seeds (n); best per column in bold",
                             [INF_RULE]))
    return tables


# ----------------------------------------------------------------------------- time budget

_MARK = re.compile(r"^mark\.(?P<t>[0-9.eE+-]+)s\.(?P<metric>.+)$")


def _marks(columns) -> dict[tuple[float, str], dict[str, str]]:
    """{(t, t as written): {metric: column}} for every mark.<t>s.<metric> column."""
    out: dict[tuple[float, str], dict[str, str]] = {}
    for c in columns:
        m = _MARK.match(c)
        try:
            t = float(m["t"]) if m else None
        except ValueError:
            t = None  # not a number of seconds: not a mark column
        if t is not None:
            out.setdefault((t, m["t"]), {})[m["metric"]] = c
    return out


def time_budget_table(df) -> list[Table]:
    """Gargiani et al. (2020) Tables 1-3: per time mark t, each metric at t and the
    epochs reached by t, mean ± std (n) over the seeds that reached t."""
    d = _prepare(df)
    marks = _marks(d.columns) if d is not None else {}
    if not marks:
        return []
    tables = []
    for workload, sub, shown, groups in _workloads(d):
        cols, headers = [], []
        for t in sorted(marks):
            named = marks[t]  # sorted by seconds, not as strings (10 s after 2 s)
            shown_metrics = _result_metrics(sub, {m: c for m, c in named.items() if c in sub.columns})
            for metric in _metric_order(shown_metrics) + ["epoch"]:
                if metric in named and _numeric(sub, [named[metric]]):
                    cols.append(named[metric])
                    headers.append(f"{'epochs' if metric == 'epoch' else metric} @ {t[1]} s")
        if not cols:
            continue
        rows = [_key_cells(k, shown) + [Cell(str(len(g)), len(g))]
                + [_summary_cell(_values(g, c)) for c in cols] for k, g in groups]
        best = [None] + [None if c.endswith(".epoch") else direction(c) for c in cols]
        tables.append(_table(f"{workload}: metrics at time marks", shown, ["seeds"] + headers,
                             rows, best, "mean ± std (n) at each wall-clock mark",
                             ["n counts the seeds still running at the mark; a seed that "
                              "stopped earlier (diverged, budget) has no value there.",
                              INF_RULE]))
    return tables


# ----------------------------------------------------------------------------- targets

_TARGET = re.compile(r"^target\.(?P<spec>.+)\.(?P<unit>" + "|".join(TARGET_UNITS) + ")$")


def _target_cell(values: np.ndarray) -> Cell:
    """'mean ± std (k/n)' when all n seeds hit; '∞ (k/n)' when any missed.

    A miss (inf, or NaN: no value recorded) is neither averaged in nor dropped.
    """
    n, k = values.size, int(np.isfinite(values).sum())
    if k < n:
        return Cell(f"∞ ({k}/{n})", math.inf)
    s = summarize(values)
    spread = f" ± {fmt_num(s.std)}" if n > 1 else ""
    return Cell(f"{fmt_num(s.mean)}{spread} ({k}/{n})", s.mean)


def targets_table(df) -> list[Table]:
    """Per workload: time-, iteration-, epoch- and gradient-pass-to-target per configuration."""
    d = _prepare(df)
    if d is None:
        return []
    found = {c: _TARGET.match(c) for c in d.columns}
    found = {c: m for c, m in found.items() if m}
    units = list(TARGET_UNITS)
    order = sorted(found, key=lambda c: (found[c]["spec"], units.index(found[c]["unit"])))
    tables = []
    for workload, sub, shown, groups in _workloads(d):
        cols = _numeric(sub, order)
        if not cols:
            continue
        rows = [_key_cells(k, shown) + [_target_cell(_values(g, c)) for c in cols]
                for k, g in groups]
        headers = [f"{found[c]['spec']}: {TARGET_UNITS[found[c]['unit']]}" for c in cols]
        tables.append(_table(f"{workload}: cost to reach target", shown, headers, rows,
                             ["min"] * len(cols), "mean ± std over seeds (hits/seeds)",
                             ["∞: at least one seed missed the target or diverged; k/n "
                              "counts the seeds that hit it. A miss is never averaged in "
                              "or dropped."]))
    return tables


# ----------------------------------------------------------------------------- cost

#: (name, count column, gradient-equivalent weight, phase-time columns)
COST_PARTS = (
    ("gradient", "cost.n_grad", 1.0, ("cost.t_grad",)),
    ("curvature setup", "cost.n_curv", 0.5, ("cost.t_curvature",)),
    ("CG (Gv)", "cost.n_gv", 1.0, ("cost.t_cg",)),
    ("preconditioner", "cost.n_precond", 1.0, ("cost.t_precondition", "cost.t_precond")),
    ("forward / line search", "cost.n_fwd", 0.5,
     ("cost.t_backtrack", "cost.t_line_search", "cost.t_linesearch", "cost.t_fwd")),
)


def _mean_cell(values: np.ndarray) -> Cell:
    s = summarize(values)
    return Cell(fmt_num(s.mean), s.mean)


def _phase_seconds(g: pd.DataFrame, columns) -> np.ndarray:
    """Per trial, the sum of the given phase-time columns (NaN when none has a value)."""
    present = [c for c in columns if c in g.columns]
    if not present:
        return np.full(len(g), math.nan)
    return g[present].sum(axis=1, min_count=1).to_numpy(dtype=float)


def _total_equiv(g: pd.DataFrame, counts) -> np.ndarray:
    """Per trial Σ w·count; a count with no value counts 0, all missing gives NaN."""
    weights = {c: w for _, c, w, _ in COST_PARTS if c in counts}
    return (g[list(weights)] * pd.Series(weights)).sum(axis=1, min_count=1).to_numpy(dtype=float)


def _column_mean(column: str):
    """A configuration's mean of `column` as a Cell ("—" where the column is absent)."""
    return lambda g: _mean_cell(g[column].to_numpy(float)) if column in g.columns else Cell("—")


def _cost_columns(sub: pd.DataFrame, counts, extra) -> list[tuple]:
    """(header, cell of a configuration's rows, best rule) for each cost column.

    Per-phase seconds appear only where this workload was profiled; otherwise one
    "phases (s)" column of "—" stands for them.
    """
    cols = [("seeds", lambda g: Cell(str(len(g)), len(g)), None)]
    cols += [(f"{name} (grad eq.)", _column_mean(c), None) for name, c, _, _ in COST_PARTS]
    cols += [("total (grad eq.)", lambda g: _mean_cell(_total_equiv(g, counts)), "min")]
    if "cost.grad_equiv" in sub.columns:
        cols += [("recorded grad eq.", _column_mean("cost.grad_equiv"), None)]
    phases = [(f"{name} (s)", ts) for name, _, _, ts in COST_PARTS] + \
        ([("other (s)", extra)] if extra else [])
    if any(_numeric(sub, ts) for _, ts in phases):
        cols += [(h, lambda g, ts=ts: _mean_cell(_phase_seconds(g, ts)), None) for h, ts in phases]
    else:
        cols += [("phases (s)", lambda g: Cell("—"), None)]
    if "cost.step_s" in sub.columns:
        cols += [("step (s)", _column_mean("cost.step_s"), "min")]
    return cols


def cost_table(df) -> list[Table]:
    """Per workload: cost per step in gradient equivalents and, when profiled, in seconds.

    Gradient equivalents = n_grad + 0.5 n_curv + n_gv + n_precond + 0.5 n_fwd (a Gv
    product costs about one gradient; a forward pass or the curvature's linearization
    about half). Cells are means over seeds of each trial's mean per step.
    """
    d = _prepare(df)
    counts = [c for _, c, _, _ in COST_PARTS if d is not None and c in d.columns]
    if not counts:
        return []
    known = {t for *_, ts in COST_PARTS for t in ts}
    extra = sorted(c for c in d.columns if c.startswith("cost.t_") and c not in known)
    tables = []
    for workload, sub, shown, groups in _workloads(d):
        cols = _cost_columns(sub, counts, extra)
        rows = [_key_cells(k, shown) + [cell(g) for _, cell, _ in cols] for k, g in groups]
        notes = ["Gradient equivalents: n_grad + 0.5 n_curv + n_gv + n_precond + 0.5 n_fwd "
                 "per step; means over seeds."]
        if any(h == "phases (s)" for h, _, _ in cols):
            notes.append("—: per-phase seconds need profile=True in the suite.")
        tables.append(_table(f"{workload}: cost per step", shown, [h for h, _, _ in cols], rows,
                             [b for _, _, b in cols], "mean over seeds of each trial's mean "
                             "per step", notes, align=("r",) * len(cols)))
    return tables


# ----------------------------------------------------------------------------- significance


def _matches(key, baseline) -> bool:
    if isinstance(baseline, str):
        return key[0] == baseline
    return all(key[KEY.index(k)] == str(v) for k, v in baseline.items())


def _rank(groups, column, rule):
    """groups sorted best first by mean (NaN means last; ties by key)."""
    def order(kg):
        m = summarize(kg[1][column].to_numpy(float)).mean
        return (math.isnan(m), m if rule == "min" else -m, kg[0])
    return sorted(groups, key=order)


def _pick_baseline(groups, column, rule, baseline):
    """The baseline group: the best matching `baseline`, or by default the best of
    algorithm "sgd" (the best overall where no sgd ran). None when nothing matches."""
    if baseline is None:
        sgd = [kg for kg in groups if "algorithm" in kg[1].columns
               and kg[1]["algorithm"].astype(str).str.lower().eq("sgd").all()]
        candidates = sgd or groups
    else:
        candidates = [kg for kg in groups if _matches(kg[0], baseline)]
    return _rank(candidates, column, rule)[0] if candidates else None


def _paired(g: pd.DataFrame, base: pd.DataFrame) -> bool:
    """Both ran exactly the same seeds, once each: their values pair up by seed."""
    if "seed" not in g.columns:
        return False
    s, t = g["seed"], base["seed"]
    return s.is_unique and t.is_unique and s.notna().all() and set(s) == set(t)


def _comparison_cells(g, base, column) -> tuple[list[Cell], CI]:
    a, b = _values(g, column), _values(base, column)
    paired = _paired(g, base)
    ci = bootstrap_diff_ci(a, b, paired=paired)
    if math.isnan(ci.estimate):  # fewer than 2 seeds: the difference still shows, untested
        fa, fb = a[~np.isnan(a)], b[~np.isnan(b)]
        if fa.size and fb.size:
            with np.errstate(invalid="ignore"):  # inf - inf stays undefined (NaN)
                ci = ci._replace(estimate=float(np.mean(fa) - np.mean(fb)))
    mark = "" if significant(ci) else " †"
    interval = f"[{fmt_num(ci.low)}, {fmt_num(ci.high)}]" if not math.isnan(ci.low) else "undefined"
    p = fmt_num(paired_permutation_p(a, b)) if paired else "—"
    pairing = f"paired ({len(a)})" if paired else "unpaired"
    return [Cell(fmt_num(ci.estimate) + mark, ci.estimate), Cell(interval), Cell(pairing),
            Cell(p)], ci


def significance_table(df, metric: str, baseline: str | Mapping[str, str] | None = None
                       ) -> list[Table]:
    """Per workload: each configuration's Δ = mean - mean(baseline) on `metric`, with
    its 95% bootstrap CI, pairing, and (paired) the sign-flip permutation p-value.

    metric: a column ("final.test_loss", "target.test_accuracy>=0.9.time_s") or a bare
    final metric ("test_loss"). baseline: a label, or {key column: value} (e.g.
    {"label": "sgd(lr=0.1)", "backend": "jax"}); the best match on the metric is used.
    Default: the best configuration of algorithm "sgd", else the best overall. A
    workload where no configuration matches `baseline` gets no table.
    """
    if isinstance(baseline, Mapping) and not set(baseline) <= set(KEY):
        raise ValueError(f"baseline keys must be among {list(KEY)}, got {sorted(baseline)}; "
                         "e.g. {'label': 'sgd(lr=0.1)', 'backend': 'torch'}")
    d = _prepare(df)
    if d is None:
        return []
    column = metric if metric in d.columns else f"final.{metric}"
    if column not in d.columns or not pd.api.types.is_numeric_dtype(d[column]):
        return []
    rule = direction(column)
    tables = []
    for workload, sub, shown, groups in _workloads(d):
        base = _pick_baseline(groups, column, rule, baseline)
        if base is None or not _numeric(sub, [column]):
            continue
        rows, notes = [], set()
        for key, g in groups:
            cells = [_summary_cell(_values(g, column))]
            if key == base[0]:
                cells += [Cell("baseline"), Cell("—"), Cell("—"), Cell("—")]
            else:
                more, ci = _comparison_cells(g, base[1], column)
                cells += more
                if ci.note:
                    notes.add(ci.note)
            rows.append(_key_cells(key, shown) + cells)
        headers = [metric, "Δ vs baseline", "95% CI", "pairing", "p (perm.)"]
        footnotes = [
            f"Baseline: {' / '.join(base[0][KEY.index(c)] for c in shown)}. Δ = mean - "
            "mean(baseline); CI: percentile bootstrap, 10000 resamples, seed 0, resampling "
            "seed pairs when both ran the same seeds, each sample independently otherwise.",
            "† the 95% CI includes 0: not significant.",
            "p: exact two-sided sign-flip permutation test over the seed pairs (sampled above "
            "16 pairs); with n pairs it cannot fall below 2/2^n. With few seeds the bootstrap "
            "CI only spans the observed values and is too narrow: read it with p.",
            INF_RULE] + sorted(notes)
        tables.append(_table(f"{workload}: {metric} vs baseline", shown, headers, rows,
                             [rule, None, None, None, None], "", footnotes,
                             align=("r", "r", "r", "l", "r")))
    return tables
