"""The papers' numbers beside hfbench's: one row per paper number, with its difference.

    ref = load_reference("gargiani2020")              # the suite's `reference:` block
    rows = compare(ref, hfbench.results.trials("results/"))
    print(markdown(rows))                             # or table(rows): a list of dicts
    tables(ref, trials)     # hfbench.report.tables.Table objects, one per workload

The block, in a suite file (validated with the rest of the file; errors name file:line):

    reference:
      source: "Gargiani et al. 2020, Tables 1-3"     # the paper and where (required)
      note: "..."            # what the paper reports that has no entry, and why
      hardware: "GTX TITAN X"                         # the entries' default hardware
      baseline: sgd          # what kind: time entries are divided by (default: sgd);
                             # or {optimizer: sgd, config: {lr: 0.1}}
      entries:
        - {workload: mnist, optimizer: sgn, config: {cg_iters: 2}, metric: test_accuracy,
           at: {time_s: 25}, value: 91.6, convert: percent, table: "Table 1 (left)"}
        - {workload: mnist_mlp, optimizer: sgd, metric: time_s, kind: time, value: 222,
           table: "Table 1", hardware: "V100"}

An entry's keys:
- `workload`, `optimizer`: names in the same suite; the optimizer must run on the workload.
- `config`: option values that pick one grid point of the optimizer (needed when it sweeps).
- `metric`: an evaluated metric (train_loss, test_loss, train_accuracy, test_accuracy,
  train_reconstruction_error, test_reconstruction_error; those that apply to the
  workload), or a count: time_s (training time), epoch, iterations.
- `at`: `final` (the default), `{time_s: t}` (one of the workload's eval.time_marks: the
  first evaluation at or after t seconds of training) or `{epoch: e}` (the final
  evaluation of trials that ran e epochs).
- `value`: the number as the paper prints it; `convert` maps it to hfbench's units:
  percent (v/100), error_percent (1 - v/100) or error (1 - v), for accuracy metrics.
- `kind`: `value` (compared as it is) or `time`: a hardware-bound number (seconds, or the
  epochs reached by a time mark), compared as a ratio to the baseline's number at the
  same point on the same hardware: the paper's ratio against hfbench's, per backend.
  A time entry needs the baseline's own entry in the block.
- `table` (required): where in the paper; `hardware`, `note`: free text.

A row's hfbench number is the mean ± sample std over the matching trials' finite values
(n of them), per backend (and device, where the trials carry one). Failed and diverged
trials are never averaged in; they are counted. The difference is hfbench minus paper,
absolute and relative to the paper (for time entries: of the ratios). A row's status is
"matched", or why not: "workload not run (data not downloaded)", "workload skipped",
"no trial with this configuration", "all N trials diverged/failed", "time mark not
recorded", "epoch mark not recorded", "metric not recorded", "baseline ... not recorded".

The trials table (`hfbench.results.trials`) has one row per trial: suite, workload,
optimizer, backend, status, `param.<option>`, `final.<metric>`, `mark.<t>s.<metric>`
and `mark.<t>s.epoch` (t as format(t, "g")), train_time_s, iterations, epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..suite.refcheck import at_label, describe, is_baseline_of, same
from ..suite.schema import Reference, ReferenceEntry, Suite

MATCHED = "matched"
NOT_AVERAGED = ("failed", "diverged")
GROUP_COLUMNS = ("backend", "device")
COLUMNS = ("table", "workload", "optimizer", "metric", "at", "backend", "paper", "hfbench",
           "difference", "paper ratio", "hfbench ratio", "status")
_FINAL_COLUMN = {"time_s": "train_time_s", "epoch": "epochs", "iterations": "iterations"}
_EPOCH_TOL = 1e-3  # relative: a trial "ran e epochs" when its epochs are e within this


@dataclass(frozen=True)
class SuiteReference:
    """A suite's reference block with what comparing needs from the rest of the suite."""

    reference: Reference
    suite: str | None = None  # the suite's name; trials of other suites are ignored
    datasets: Mapping[str, str] = field(default_factory=dict)  # workload -> dataset


@dataclass(frozen=True)
class Row:
    """One paper number beside hfbench's (see the module docstring)."""

    entry: ReferenceEntry
    group: str  # the backend (and device) of the trials; "" when there are none
    status: str
    mean: float | None = None  # hfbench, in hfbench's units
    std: float | None = None  # sample std; None for n < 2
    n: int = 0  # finite values averaged
    diverged: int = 0
    failed: int = 0
    baseline: str | None = None  # time entries: what the ratios divide by
    paper_ratio: float | None = None
    hfbench_ratio: float | None = None

    @property
    def matched(self) -> bool:
        return self.status == MATCHED

    @property
    def paper(self) -> float:
        """The paper's number in hfbench's units (after `convert`)."""
        return self.entry.paper_value

    @property
    def difference(self) -> float | None:
        """hfbench minus paper: of the ratios for time entries, else of the values."""
        mine, theirs = self._compared()
        return None if mine is None or theirs is None else mine - theirs

    @property
    def relative(self) -> float | None:
        """The difference over |paper| (None when the paper's number is 0)."""
        d, theirs = self.difference, self._compared()[1]
        return None if d is None or not theirs else d / abs(theirs)

    def _compared(self) -> tuple[float | None, float | None]:
        if self.entry.kind == "time":
            return self.hfbench_ratio, self.paper_ratio
        return self.mean, self.paper


# ----------------------------------------------------------------------------- loading


def load_reference(suite_name_or_path: str | Path) -> SuiteReference | None:
    """The reference block of a suite file (a path or a shipped suite's name), or None
    when it has none. Raises SuiteError when the file does not validate."""
    from ..suite import load

    return from_suite(load(suite_name_or_path))


def from_suite(suite: Suite) -> SuiteReference | None:
    if suite.reference is None:
        return None
    datasets = {name: w.dataset for name, w in suite.workloads.items()}
    return SuiteReference(suite.reference, suite.name, datasets)


def _as_suite_reference(ref: SuiteReference | Suite | Reference) -> SuiteReference:
    if isinstance(ref, SuiteReference):
        return ref
    if isinstance(ref, Suite):
        out = from_suite(ref)
        if out is None:
            from ..errors import HFBenchError

            raise HFBenchError(f"suite {ref.name!r} ({ref.source}) has no reference: block")
        return out
    if isinstance(ref, Reference):
        return SuiteReference(ref)
    raise TypeError(f"expected a SuiteReference, Suite or Reference, got {type(ref).__name__}")


# ----------------------------------------------------------------------------- comparing


def compare(suite_reference, trials, *, data_missing: Callable[[str], bool] | None = None) -> list[Row]:
    """One Row per reference entry and backend that ran its workload (one Row with the
    reason when none did).

    suite_reference: a SuiteReference (load_reference), a Suite, or a bare Reference;
    trials: the one-row-per-trial DataFrame of `hfbench.results.trials`;
    data_missing(dataset) -> bool: whether a dataset's files are absent (default: the
    download cache is checked), which tells "not downloaded" from "skipped".
    """
    ref = _as_suite_reference(suite_reference)
    trials = _of_suite(trials, ref.suite)
    missing = data_missing or _dataset_missing
    rows = []
    for entry in ref.reference.entries:
        ran = trials[trials["workload"] == entry.workload] if len(trials) else trials
        if not len(ran):
            rows.append(Row(entry, "", _why_not_run(ref, entry.workload, missing)))
            continue
        for group, sub in _groups(ran):
            rows.append(_row(ref.reference, entry, group, sub))
    return [_with_paper_ratio(ref.reference, r) for r in rows]


def _with_paper_ratio(reference: Reference, row: Row) -> Row:
    """A time entry's paper ratio does not depend on the results: give it to every row."""
    if row.entry.kind != "time" or row.paper_ratio is not None:
        return row
    base = row.entry.baseline or reference.baseline
    return replace(row, baseline=describe(base), paper_ratio=paper_ratio(reference, row.entry))


def paper_ratio(reference: Reference, entry: ReferenceEntry) -> float | None:
    """A time entry's value over the mean of its baseline's values in the block."""
    base = entry.baseline or reference.baseline
    theirs = [e.paper_value for e in reference.entries
              if is_baseline_of(entry.model_dump(), e.model_dump(), base)]
    if not theirs or not _mean(theirs):
        return None
    return entry.paper_value / _mean(theirs)


def _of_suite(trials, suite: str | None):
    if suite is not None and "suite" in trials.columns and len(trials):
        return trials[trials["suite"] == suite]
    return trials


def _why_not_run(ref: SuiteReference, workload: str, missing) -> str:
    dataset = ref.datasets.get(workload)
    if dataset is not None and missing(dataset):
        return "workload not run (data not downloaded)"
    return "workload skipped"


def _dataset_missing(name: str) -> bool:
    from ..data import DataError, get_info
    from ..data.download import dataset_dir

    try:
        info = get_info(name)
    except DataError:  # an unknown name: not a download problem
        return False
    return any(not (dataset_dir(name) / f.name).is_file() for f in info.files)


def _groups(trials) -> list[tuple[str, Any]]:
    """(label, trials) per backend and device: ratios never mix machines or frameworks."""
    cols = [c for c in GROUP_COLUMNS if c in trials.columns]
    if not cols:
        return [("", trials)]
    keyed = trials.assign(_group=trials[cols].apply(_group_label, axis=1))
    return [(str(k), sub) for k, sub in keyed.groupby("_group", sort=True)]


def _group_label(values) -> str:
    return "/".join(v for v in values if isinstance(v, str) and v)


def _row(reference: Reference, entry: ReferenceEntry, group: str, trials) -> Row:
    mine = select(trials, entry.optimizer, entry.config)
    if not len(mine):
        return Row(entry, group, "no trial with this configuration")
    counts = _counts(mine)
    usable = _usable(mine, entry.at)
    if not len(usable):
        return Row(entry, group, _why_none(counts, len(mine)), **counts)
    values = _values(usable, entry.metric, entry.at)
    if not values:
        return Row(entry, group, _not_recorded(entry), **counts)
    stats = dict(mean=_mean(values), std=_std(values), n=len(values), **counts)
    if entry.kind != "time":
        return Row(entry, group, MATCHED, **stats)
    return _time_row(reference, entry, group, trials, stats)


def _time_row(reference: Reference, entry: ReferenceEntry, group: str, trials, stats: dict) -> Row:
    base = entry.baseline or reference.baseline
    label, theirs = describe(base), paper_ratio(reference, entry)
    base_trials = _usable(select(trials, base.optimizer, base.config), entry.at)
    ours = _values(base_trials, entry.metric, entry.at)
    if not ours or not _mean(ours):
        return Row(entry, group, f"baseline {label} not recorded", baseline=label,
                   paper_ratio=theirs, **stats)
    return Row(entry, group, MATCHED, baseline=label, paper_ratio=theirs,
               hfbench_ratio=stats["mean"] / _mean(ours), **stats)


def select(trials, optimizer: str, config: Mapping[str, Any]):
    """The trials of `optimizer` whose `param.<k>` equal every value of `config`."""
    keep = trials["optimizer"] == optimizer
    for key, value in config.items():
        col = f"param.{key}"
        if col not in trials.columns:
            return trials.iloc[0:0]
        keep &= trials[col].map(lambda v, value=value: _param_equal(v, value)).astype(bool)
    return trials[keep]


def _param_equal(v, value) -> bool:
    if hasattr(v, "item"):  # a numpy scalar from the DataFrame
        v = v.item()
    if isinstance(v, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return same(v, value)


def _counts(trials) -> dict:
    status = trials["status"] if "status" in trials.columns else None
    if status is None:
        return {"diverged": 0, "failed": 0}
    return {k: int((status == k).sum()) for k in ("diverged", "failed")}


def _usable(trials, at):
    """Trials that may be averaged: not failed or diverged, and (for {epoch: e}) ran e epochs."""
    if "status" in trials.columns:
        trials = trials[~trials["status"].isin(NOT_AVERAGED)]
    if isinstance(at, dict) and "epoch" in at and "epochs" in trials.columns:
        e = at["epoch"]
        trials = trials[trials["epochs"].map(lambda x: _close(x, e, _EPOCH_TOL))]
    return trials


def _close(x, e: float, tol: float) -> bool:
    try:
        return math.isfinite(float(x)) and abs(float(x) - e) <= tol * abs(e)
    except (TypeError, ValueError):
        return False


def _why_none(counts: dict, total: int) -> str:
    d, f = counts["diverged"], counts["failed"]
    if d + f < total:
        return "epoch mark not recorded"  # the others ran a different number of epochs
    if d and f:
        return f"all {total} trials diverged or failed ({d} diverged, {f} failed)"
    return f"all {total} trials {'diverged' if d else 'failed'}"


def _not_recorded(entry: ReferenceEntry) -> str:
    if isinstance(entry.at, dict) and "time_s" in entry.at:
        return "time mark not recorded"
    if isinstance(entry.at, dict):
        return "epoch mark not recorded"
    return "metric not recorded"


def column(metric: str, at) -> str:
    """The trials-table column holding `metric` at `at`."""
    if isinstance(at, dict) and "time_s" in at:
        return f"mark.{format(float(at['time_s']), 'g')}s.{metric}"
    return _FINAL_COLUMN.get(metric, f"final.{metric}")


def _values(trials, metric: str, at) -> list[float]:
    col = column(metric, at)
    if col not in trials.columns:
        return []
    out = []
    for v in trials[col]:
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            out.append(v)
    return out


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


# ----------------------------------------------------------------------------- the table


def table(rows: list[Row]) -> list[dict[str, str]]:
    """The rows as text cells, keyed by COLUMNS."""
    return [_cells(r) for r in rows]


def _cells(r: Row) -> dict[str, str]:
    e = r.entry
    return {
        "table": e.table, "workload": e.workload,
        "optimizer": e.optimizer + (" " + _show_config(e.config) if e.config else ""),
        "metric": e.metric, "at": at_label(e.at), "backend": r.group or "-",
        "paper": _paper_cell(e), "hfbench": _hfbench_cell(r), "difference": _difference_cell(r),
        "paper ratio": _fmt(r.paper_ratio) if e.kind == "time" else "",
        "hfbench ratio": _fmt(r.hfbench_ratio) if e.kind == "time" else "",
        "status": r.status,
    }


def _show_config(config: Mapping) -> str:
    return "(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in config.items()) + ")"


def _paper_cell(e: ReferenceEntry) -> str:
    text = format(e.value, "g")
    return f"{text} ({e.convert}: {_fmt(e.paper_value)})" if e.convert else text


def _hfbench_cell(r: Row) -> str:
    if r.mean is None:
        text = "-"
    else:
        spread = "" if r.std is None else f" ± {_fmt(r.std)}"
        text = f"{_fmt(r.mean)}{spread} (n={r.n})"
    extra = [f"{k} {getattr(r, k)}" for k in ("diverged", "failed") if getattr(r, k)]
    return text + (f", {', '.join(extra)}" if extra else "")


def _difference_cell(r: Row) -> str:
    d, rel = r.difference, r.relative
    if d is None:
        return "-"
    return f"{d:+.4g}" + ("" if rel is None else f" ({100 * rel:+.3g}%)")


def _fmt(x: float | None) -> str:
    return "-" if x is None else format(x, ".4g")


def markdown(rows: list[Row]) -> str:
    """The table as Markdown (a header row and one line per Row)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for cells in table(rows):
        lines.append("| " + " | ".join(cells[c].replace("|", "\\|") for c in COLUMNS) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- report tables

_TABLE_HEADERS = ("paper's table", "optimizer", "metric", "at", "backend", "paper", "hfbench",
                  "difference", "paper ratio", "hfbench ratio", "status", "note")
_NUMERIC = {"paper", "hfbench", "difference", "paper ratio", "hfbench ratio"}


def tables(suite_reference, trials, *, data_missing: Callable[[str], bool] | None = None) -> list:
    """The comparison as `hfbench.report.tables.Table`s: one per workload, in the block's
    order (one Table holding the block's note when it has no entries)."""
    from .tables import Table  # pandas and numpy: only when a report is built

    ref = _as_suite_reference(suite_reference)
    block = ref.reference
    name = ref.suite or "paper"
    if not block.entries:
        return [Table(title=f"{name}: the paper's numbers", headers=("note",),
                      rows=((block.note or "no entries",),), caption=block.source)]
    rows = compare(ref, trials, data_missing=data_missing)
    out = []
    for workload in dict.fromkeys(e.workload for e in block.entries):
        mine = [r for r in rows if r.entry.workload == workload]
        timed = any(r.entry.kind == "time" for r in mine)
        noted = any(r.entry.note for r in mine)
        keep = [h for h in _TABLE_HEADERS
                if (timed or "ratio" not in h) and (noted or h != "note")]
        cells = [{**_cells(r), "paper's table": r.entry.table, "note": r.entry.note} for r in mine]
        out.append(Table(
            title=f"{name}: {workload}, the paper's numbers", headers=tuple(keep),
            rows=tuple(tuple(c[h] for h in keep) for c in cells),
            caption=_caption(block, mine), footnotes=_footnotes(block, timed),
            align=tuple("r" if h in _NUMERIC else "l" for h in keep)))
    return out


def _caption(block: Reference, rows: list[Row]) -> str:
    hardware = sorted({r.entry.hardware or block.hardware or "" for r in rows} - {""})
    where = f" Paper's hardware: {'; '.join(hardware)}." if hardware else ""
    matched = sum(r.matched for r in rows)
    return f"{block.source}. {matched} of {len(rows)} numbers matched.{where}"


def _footnotes(block: Reference, timed: bool) -> tuple[str, ...]:
    notes = ["hfbench: mean ± sample std over the matching trials (n); diverged and failed "
             "trials are counted, never averaged in. Difference: hfbench − paper (relative "
             "to the paper)."]
    if timed:
        notes.append("Time entries (seconds, or epochs reached by a time mark) depend on the "
                     "hardware: each is divided by its baseline's number at the same point "
                     "on the same hardware, and the difference is that of the ratios.")
    if block.note:
        notes.append(block.note)
    return tuple(notes)
