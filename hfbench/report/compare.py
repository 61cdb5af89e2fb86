"""`hfbench report --compare A B`: two results folders side by side.

Two commits, two backends or two devices: per trial configuration, the ratio of
times (B / A: per-step time and total training time) and the difference of final
metrics (B - A) with a 95% bootstrap interval, paired by seed where both folders ran
the same seeds. A configuration is matched on workload and label, plus whichever of
backend, device and dtype the two folders share: comparing a torch folder with a
JAX one matches torch's sgd with JAX's sgd.
"""

from __future__ import annotations

import math

import numpy as np

from . import stats
from .tables import Cell, Table, fmt_num

KEYS = ("workload", "label", "backend", "device", "dtype")
METRICS = ("train_loss", "test_loss", "test_accuracy")


def match_keys(a, b) -> list[str]:
    """Workload and label always; backend/device/dtype when the folders share a value."""
    keys = ["workload", "label"]
    for k in ("backend", "device", "dtype"):
        if set(a[k].dropna()) & set(b[k].dropna()):
            keys.append(k)
    return keys


def compare_table(a, b, name_a: str = "A", name_b: str = "B") -> Table:
    keys = match_keys(a, b)
    ga, gb = dict(_groups(a, keys)), dict(_groups(b, keys))
    common = sorted(set(ga) & set(gb), key=str)
    metrics = [m for m in METRICS if f"final.{m}" in a.columns and f"final.{m}" in b.columns]
    headers = [*keys, "seeds (A/B)", "step time B/A", "train time B/A"]
    for m in metrics:
        headers += [f"{m} A", f"{m} B", f"Δ {m} (B−A) [95% CI]"]
    rows = [_row(key, ga[key], gb[key], metrics) for key in common]
    only = sorted(set(ga) ^ set(gb), key=str)
    notes = [f"matched on {', '.join(keys)}; A = {name_a}, B = {name_b}",
             "Δ marked † when its interval contains 0 (not significant); paired by seed when both ran "
             "the same seeds"]
    notes += [f"only in {'A' if k in ga else 'B'}: {' / '.join(map(str, k))}" for k in only]
    return Table(title=f"{name_b} vs {name_a}", headers=headers, rows=rows,
                 caption="Ratios of medians over seeds; metric differences of means.",
                 footnotes=tuple(notes))


def _groups(df, keys):
    for key, g in df.groupby(list(keys), sort=True, dropna=False):
        yield tuple(key), g


def _row(key, a, b, metrics) -> list[Cell]:
    cells = [Cell(str(v)) for v in key]
    cells.append(Cell(f"{len(a)}/{len(b)}"))
    cells.append(_ratio(_median(b, "cost.step_s"), _median(a, "cost.step_s")))
    cells.append(_ratio(_median(b, "train_time_s"), _median(a, "train_time_s")))
    for m in metrics:
        col = f"final.{m}"
        cells += [Cell(fmt_num(stats.summarize(a[col]).mean), stats.summarize(a[col]).mean),
                  Cell(fmt_num(stats.summarize(b[col]).mean), stats.summarize(b[col]).mean),
                  _diff(a, b, col)]
    return cells


def _median(df, col) -> float:
    if col not in df.columns:
        return math.nan
    v = df[col].to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else math.nan


def _ratio(num: float, den: float) -> Cell:
    if not (den > 0) or math.isnan(num):
        return Cell("—")
    r = num / den
    return Cell(fmt_num(r), r)


def _diff(a, b, col) -> Cell:
    sa, sb = a.set_index("seed")[col], b.set_index("seed")[col]
    paired = sorted(sa.index) == sorted(sb.index) and len(sa) >= 2
    if paired:
        xs, ys = sb.sort_index().to_numpy(float), sa.sort_index().to_numpy(float)
    else:
        xs, ys = sb.to_numpy(float), sa.to_numpy(float)
    ci = stats.bootstrap_diff_ci(xs, ys, paired=paired)
    if math.isnan(ci.estimate):
        return Cell("—")
    mark = "" if stats.significant(ci) else " †"
    interval = "" if math.isnan(ci.low) else f" [{fmt_num(ci.low)}, {fmt_num(ci.high)}]"
    return Cell(f"{fmt_num(ci.estimate)}{interval}{mark}", ci.estimate)
