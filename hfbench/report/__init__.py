"""Reports for papers: a results folder as tables, figures, the paper's numbers and a page.

    hfbench report results/ --out report/          # or: hfbench.report.build(...)
    hfbench report --compare results/a results/b   # two folders side by side

Modules: `stats` (summaries, bootstrap CIs, paired tests), `tables` (Markdown and
booktabs LaTeX), `figures` and `style` (matplotlib, the `report` extra),
`reference` (the paper's published numbers beside ours), `compare`, `missing`,
`html` (the offline index page) and `build` (all of it). Importing this package
loads none of them; pandas and matplotlib load when a report is built.
"""

from __future__ import annotations


def build(results_dir, out_dir, **kw):
    """See `hfbench.report.build.build`."""
    from .build import build as _build

    return _build(results_dir, out_dir, **kw)
