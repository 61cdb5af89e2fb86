"""One look for every report figure: two-column paper sizes, colour-blind-safe colours, unit labels.

    with matplotlib.rc_context(style.rc()):
        fig = matplotlib.figure.Figure(figsize=(style.DOUBLE_COLUMN_IN, 3.0))
    looks = style.line_styles(["hf", "sgd(lr=0.1)", "sgn(cg_iters=5)"])  # key -> colour, dash

matplotlib is imported only inside the functions that draw (`context`, `figure`,
`legend`): `rc()` is a plain dict, so the module imports without the `report` extra.
"""

from __future__ import annotations

import contextlib
import warnings

SINGLE_COLUMN_IN = 3.3   # one column of a two-column paper (inches)
DOUBLE_COLUMN_IN = 6.9   # the full text width
FONT_PT = 8

# Paul Tol's "muted" scheme: nine colours distinct under the common colour-vision
# deficiencies, one more than Okabe and Ito's (2008), so a nine-point sweep (Gargiani's five SGD
# rates and four CG lengths) needs no repeat.
TOL_MUTED = (
    "#332288",  # indigo
    "#88CCEE",  # cyan
    "#44AA99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#DDCC77",  # sand
    "#CC6677",  # rose
    "#882255",  # wine
    "#AA4499",  # purple
)
DASHES = ("-", "--", ":", "-.")  # one per optimizer (the label before its parentheses)

# Axis labels with their units, by column name.
AXIS_LABELS = {
    "time_s": "wall time (s)",
    "epoch": "epochs",
    "step": "iterations",
    "grad_passes": "gradient passes",
    "train_loss": "train loss",
    "test_loss": "test loss",
    "test_accuracy": "test accuracy",
    "batch_loss": "batch loss",
    "cg_iters": "CG iterations",
    "lambda": "damping λ",
    "rho": "reduction ratio ρ",
    "cond_est": "condition estimate",
}


def rc() -> dict:
    """rcParams for a two-column paper: 8 pt text, thin lines, a light grid, Type 42 fonts."""
    return {
        "font.size": FONT_PT, "axes.titlesize": FONT_PT, "axes.labelsize": FONT_PT,
        "xtick.labelsize": FONT_PT - 1, "ytick.labelsize": FONT_PT - 1,
        "legend.fontsize": FONT_PT - 1, "legend.frameon": False,
        "lines.linewidth": 1.0, "lines.markersize": 3.0, "axes.linewidth": 0.6,
        "xtick.major.width": 0.6, "ytick.major.width": 0.6,
        "xtick.minor.width": 0.4, "ytick.minor.width": 0.4,
        "axes.grid": True, "axes.grid.which": "major",
        "grid.color": "#dddddd", "grid.linewidth": 0.4, "grid.linestyle": "-",
        "axes.spines.top": False, "axes.spines.right": False,
        # A string, so that this module need not import cycler (matplotlib parses it).
        "axes.prop_cycle": f"cycler(color={list(TOL_MUTED)!r})",
        "figure.dpi": 100, "savefig.dpi": 300, "savefig.bbox": None,
        # Type 42 (TrueType) rather than Type 3: publishers reject Type 3 fonts.
        "pdf.fonttype": 42, "ps.fonttype": 42,
        "svg.hashsalt": "hfbench",  # deterministic ids should anyone save SVG
    }


def line_styles(keys) -> dict:
    """A colour and dash for each key, fixed by the sorted set of keys.

    Call it once with every key of a report (every configuration label) and pass the
    result to each figure: the same label then has the same colour everywhere, even in
    a figure that shows only some of the labels.

    Colours run through TOL_MUTED in sorted order (distinct up to nine keys); the dash
    tells optimizers apart (sgd solid, sgn dashed, ...), so a repeated colour beyond
    nine keys still differs in dash whenever the two keys are different optimizers.
    """
    ordered = sorted({str(k) for k in keys})
    families = sorted({_family(k) for k in ordered})
    return {key: {"color": TOL_MUTED[i % len(TOL_MUTED)],
                  "linestyle": DASHES[families.index(_family(key)) % len(DASHES)]}
            for i, key in enumerate(ordered)}


def _family(key: str) -> str:
    """The optimizer of a label: 'sgn(cg_iters=5) torch' -> 'sgn'."""
    return key.split("(")[0].split()[0] if key.strip() else key


def axis_label(column: str) -> str:
    """`column`'s axis label with its unit ("time_s" -> "wall time (s)")."""
    if column in AXIS_LABELS:
        return AXIS_LABELS[column]
    return column.replace("final.", "final ").replace("param.", "").replace("_", " ")


@contextlib.contextmanager
def context():
    """`rc()` in force, and the warnings that sparse benchmark data always raise silenced:
    an all-NaN slice (no seed reaches a point) and log axes masking zeros."""
    import matplotlib

    with matplotlib.rc_context(rc()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"All-NaN slice|Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", r".*(non-positive|no positive values).*", UserWarning)
        yield


def figure(nrows, ncols, height, width=DOUBLE_COLUMN_IN, sharex=False):
    """A figure of nrows × ncols axes (`fig.axes`, row by row) on the Agg canvas: no pyplot,
    so no display and no global figure registry to leak into."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(nrows, ncols, sharex=sharex, squeeze=False)
    return fig


def legend(fig, lines, looks, width=DOUBLE_COLUMN_IN):
    """One legend under the panels, never over the data, in as many columns as the
    label lengths allow in `width` inches."""
    from matplotlib.lines import Line2D

    names = sorted(set(lines))
    handles = [Line2D([], [], **looks.get(n, {"color": "0.3", "linestyle": "-"})) for n in names]
    per_col = 4.4 * max(len(n) for n in names) + 30  # points: ~4.4 pt per 7 pt character
    ncols = int(max(1, min(len(names), width * 72 // per_col)))
    fig.legend(handles, names, loc="outside lower center", ncols=ncols)
