"""`hfbench report RESULTS --out DIR`: tables, figures, the paper's numbers and a page.

    out/index.html            every table (inline) and figure, and the run's metadata
    out/tables.md, tables.tex every table, Markdown and LaTeX (booktabs)
    out/tables/<name>.md/.tex one file per table, to paste into a paper
    out/figures/<name>.pdf/.png/.csv   each figure with the data it plots
    out/data/trials.csv, steps.csv     with --csv: the records as flat tables

The same records give byte-identical tables and CSVs: everything is sorted, the
bootstrap is seeded, and nothing on the page depends on when it was made.
"""

from __future__ import annotations

import math
import pathlib
import re
from dataclasses import dataclass, field

from .. import results
from ..errors import HFBenchError
from . import html, tables
from .missing import missing_trials

SIGNIFICANCE_METRICS = ("train_loss", "test_accuracy", "test_loss")


@dataclass
class Report:
    out_dir: pathlib.Path
    tables: list = field(default_factory=list)  # (section, name, Table)
    figures: list = field(default_factory=list)  # figures.Figure
    missing: list = field(default_factory=list)  # lines
    index: pathlib.Path | None = None


def build(results_dir, out_dir, *, csv: bool = False, figures: bool = True) -> Report:
    """Read `results_dir`, write the report to `out_dir`; returns what was written."""
    _require()
    scan = results.scan(results_dir)  # read once: a skipped file is warned about once
    trials = results.trials(scan)
    steps = results.load(scan)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(out)
    rep.tables = _tables(trials) + _reference_tables(trials)
    _write_tables(out, rep.tables)
    if figures:
        rep.figures = _figures(steps, trials, out / "figures")
    if csv:
        results.export_csv(scan, out / "data")
    rep.missing = _missing_lines(scan, trials)
    rep.index = out / "index.html"
    rep.index.write_text(_page(scan.records, rep, csv), encoding="utf-8")
    return rep


def _require() -> None:
    for mod, extra in (("pandas", "results"), ("matplotlib", "report")):
        try:
            __import__(mod)
        except ImportError:
            raise HFBenchError(f"hfbench report needs {mod}: pip install 'hfbench[{extra}]'") from None


# ----------------------------------------------------------------------------- tables


def _tables(trials) -> list:
    out = []
    for section, fn in (("summary", tables.summary_table), ("time_budgets", tables.time_budget_table),
                        ("targets", tables.targets_table), ("cost", tables.cost_table)):
        out += [(section, t) for t in fn(trials)]
    for metric in SIGNIFICANCE_METRICS:
        if f"final.{metric}" in trials.columns and trials[f"final.{metric}"].notna().any():
            out += [("significance", t) for t in tables.significance_table(trials, metric)]
    return [(section, _slug(f"{section}_{t.title}"), t) for section, t in out]


def _reference_tables(trials) -> list:
    from . import reference

    out = []
    for suite in sorted(set(trials["suite"].dropna())):
        try:
            ref = reference.load_reference(suite)
        except HFBenchError:
            continue  # a suite file not found here (a user's own, moved): no paper numbers
        if ref is None:
            continue
        for t in reference.tables(ref, trials[trials["suite"] == suite]):
            out.append(("paper", _slug(f"paper_{t.title}"), t))
    return out


def _write_tables(out: pathlib.Path, items) -> None:
    folder = out / "tables"
    folder.mkdir(exist_ok=True)
    md, tex = [], []
    for _, name, t in items:
        (folder / f"{name}.md").write_text(t.to_markdown() + "\n", encoding="utf-8")
        (folder / f"{name}.tex").write_text(t.to_latex() + "\n", encoding="utf-8")
        md.append(t.to_markdown())
        tex.append(t.to_latex())
    (out / "tables.md").write_text("\n\n".join(md) + "\n", encoding="utf-8")
    (out / "tables.tex").write_text(
        "% needs \\usepackage{booktabs}\n" + "\n\n".join(tex) + "\n", encoding="utf-8")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:80]


# ----------------------------------------------------------------------------- figures


def _figures(steps, trials, folder: pathlib.Path) -> list:
    from . import figures as F
    from . import style

    folder.mkdir(parents=True, exist_ok=True)
    colors = style.line_styles(F.line_keys(steps))  # one colour per configuration everywhere
    made = []
    made += F.curves(steps, folder, colors=colors)
    made += F.best_per_optimizer(steps, trials, folder, colors=colors)
    made += F.sensitivity(trials, folder, colors=colors)
    made += F.performance_profile(trials, folder, steps=steps, colors=colors)
    made += F.hf_diagnostics(steps, folder, colors=colors)
    return made


# ----------------------------------------------------------------------------- missing


def _missing_lines(scan, trials) -> list[str]:
    lines = [f"{path}: skipped, not a readable trial record ({why})" for path, why in scan.skipped]
    bad = trials[trials["status"].isin(["failed"])]
    for _, row in bad.iterrows():
        lines.append(f"{row['trial_id']} ({row['workload']} / {row['label']} / {row['backend']} / "
                     f"seed {row['seed']}): failed")
    lines += missing_trials(scan.records)
    return lines


# ----------------------------------------------------------------------------- page


def _page(records, rep: Report, csv: bool) -> str:
    sections = []
    by_section: dict[str, list] = {}
    for section, name, t in rep.tables:
        by_section.setdefault(section, []).append(_table_item(t, name))
    titles = {"summary": "Summary", "time_budgets": "Time budgets", "targets": "Targets",
              "cost": "Cost per step", "significance": "Significance", "paper": "The paper's numbers"}
    for key, title in titles.items():
        if key in by_section:
            sections.append(html.Section(title, tuple(by_section[key])))
    if rep.figures:
        sections.append(html.Section("Figures", tuple(_figure_item(f, rep.out_dir) for f in rep.figures)))
    downloads = [("all tables (Markdown)", "tables.md"), ("all tables (LaTeX)", "tables.tex")]
    if csv:
        downloads += [("trials.csv", "data/trials.csv"), ("steps.csv", "data/steps.csv")]
    items = [html.TextItem(" · ".join(f"{label}: {path}" for label, path in downloads))]
    items += [html.TextItem(line) for line in rep.missing] or [html.TextItem("nothing missing")]
    sections.append(html.Section("Missing and downloads", tuple(items)))
    suites = ", ".join(sorted({r.get("suite") or "?" for r in records}))
    return html.page(f"hfbench report: {suites}", metadata_rows(records), sections)


def _table_item(t, name: str) -> html.TableItem:
    bold = frozenset((i, j) for i, row in enumerate(t.bold()) for j, b in enumerate(row) if b)
    return html.TableItem(
        title=t.title, headers=tuple(t.headers), rows=tuple(tuple(c.text for c in r) for r in t.rows),
        bold=bold, caption=t.caption, footnotes=tuple(t.footnotes),
        links=(("Markdown", f"tables/{name}.md"), ("LaTeX", f"tables/{name}.tex")))


def _figure_item(f, out_dir: pathlib.Path) -> html.FigureItem:
    stem = pathlib.Path(f.path_stem)
    rel = stem.relative_to(out_dir) if stem.is_absolute() else stem
    links = [("PDF", f"{rel}.pdf"), ("PNG", f"{rel}.png")]
    if f.csv_path:
        csv = pathlib.Path(f.csv_path)
        links.append(("data (CSV)", str(csv.relative_to(out_dir) if csv.is_absolute() else csv)))
    return html.FigureItem(title=f.title, png=f"{rel}.png", caption=f.caption, links=tuple(links))


def metadata_rows(records) -> list[tuple[str, str]]:
    """What produced these numbers: one line per distinct value across the records."""
    meta = [r.get("metadata") or {} for r in records]
    cfg = [r.get("config") or {} for r in records]

    def distinct(values) -> str:
        vals = sorted({str(v) for v in values if v not in (None, "")})
        return ", ".join(vals) if vals else "unknown"

    frameworks = [f"{(m.get('backend') or {}).get('framework', '?')} {m.get('framework_version', '?')}"
                  for m in meta]
    devices = [f"{c.get('device', '?')}: {m.get('gpu_model') or m.get('cpu_model') or m.get('device_name')}"
               for m, c in zip(meta, cfg)]
    stamps = sorted(m.get("timestamp_utc") for m in meta if m.get("timestamp_utc"))
    statuses = {}
    for r in records:
        statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
    return [
        ("suites", distinct(r.get("suite") for r in records)),
        ("trials", f"{len(records)} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})"),
        ("dates (UTC)", f"{stamps[0]} .. {stamps[-1]}" if stamps else "unknown"),
        ("hfbench", distinct(m.get("hfbench_version") for m in meta)),
        ("commit", distinct(m.get("git_commit") for m in meta)),
        ("frameworks", distinct(frameworks)),
        ("devices", distinct(devices)),
        ("CUDA / cuDNN / jaxlib", distinct(f"{m.get('cuda')} / {m.get('cudnn')} / {m.get('jaxlib')}"
                                          for m in meta if m.get("cuda") or m.get("jaxlib"))),
        ("dtype", distinct(c.get("dtype") for c in cfg)),
        ("python / numpy", distinct(f"{m.get('python')} / {m.get('numpy')}" for m in meta)),
        ("hosts", distinct(m.get("hostname") for m in meta)),
        ("budget scale", distinct(c.get("budget_scale") for c in cfg)),
    ]


def fmt_ratio(x: float) -> str:
    return "∞" if math.isinf(x) else tables.fmt_num(x)
