"""Report figures: curves, best per optimizer, sensitivity, performance profiles, HF diagnostics.

    steps, trials = hfbench.results.load(d), hfbench.results.trials(d)
    looks = style.line_styles(figures.line_keys(steps))      # one colour per label, everywhere
    figs = figures.curves(steps, "report/", colors=looks)
    figs += figures.performance_profile(trials, "report/", steps=steps, colors=looks)

Every function writes, for each figure, `<out>/<name>.pdf`, `.png` and `.csv` (exactly the
numbers it plots, in long format) and returns `Figure` records; data without the columns
a figure needs gives no figure (an empty list), not an error. Output is deterministic:
the same input writes the same CSV bytes, and the PDF and PNG carry no date.

matplotlib and pandas are imported inside the functions (the `report` extra), and figures
are drawn on the Agg canvas without pyplot, so nothing touches a display or pyplot's state.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np

from . import style

X_AXES = ("time_s", "epoch", "step", "grad_passes")
BAND = "min–max over seeds"
DIAGNOSTICS = ("cg_iters", "lambda", "rho", "cond_est")
RATIO_RTOL = 1e-9  # performance ratios closer than this are ties
RHO_VIEW = (-1.0, 2.0)  # ρ of a rejected step can be -1e6; the axis shows the useful range


@dataclasses.dataclass(frozen=True)
class Figure:
    """One written figure: `path_stem` + ".pdf"/".png", and the CSV of what it plots."""

    path_stem: pathlib.Path
    title: str
    caption: str
    csv_path: pathlib.Path

    @property
    def pdf(self) -> pathlib.Path:
        return pathlib.Path(f"{self.path_stem}.pdf")

    @property
    def png(self) -> pathlib.Path:
        return pathlib.Path(f"{self.path_stem}.png")


# ---------------------------------------------------------------- public figures


def curves(steps, out, *, colors=None) -> list[Figure]:
    """Per workload: train loss and the test metric against wall time, epochs, iterations and
    gradient passes, from the evaluation rows. One line per configuration (its label, plus
    the backend when there are several): the median over seeds, shaded min–max.

    The test metric is the first non-loss `test_*` column with data (test_accuracy first),
    else test_loss. Loss axes go log when they span two decades, and any x axis does when
    its positive values do (its x = 0 point then drops out). A loss axis is capped just
    above the highest starting loss, so one diverging run cannot flatten the rest."""
    evals = _evals(steps)
    if evals is None:
        return []
    looks = colors or style.line_styles(evals["line"])
    return _curve_figures(evals, pathlib.Path(out), "curves", "training curves", looks, "")


def best_per_optimizer(steps, trials, out, *, by="train_loss", colors=None) -> list[Figure]:
    """`curves` with only the best configuration of each optimizer on each workload (and
    backend). Best: the lowest mean final train loss over seeds (`by="train_loss"`), or the
    best mean final test metric (`by="test"`: accuracy higher, losses lower). A configuration
    with a diverged or failed seed has a non-finite mean and ranks last."""
    evals = _evals(steps)
    best = best_configs(trials, by)
    if evals is None or best.empty:
        return []
    looks = colors or style.line_styles(evals["line"])
    cfg = _config_column(evals, trials)
    chosen = set(_ident(best, cfg))
    keep = [t in chosen for t in _ident(evals, cfg)]
    note = (f" Only the best configuration of each optimizer per workload, by mean final "
            f"{'train loss' if by == 'train_loss' else 'test metric'} over seeds.")
    return _curve_figures(evals[keep], pathlib.Path(out), "best",
                          "best configuration per optimizer", looks, note)


def sensitivity(trials, out, *, colors=None) -> list[Figure]:
    """Per workload and final metric (train loss, test metric): the metric against each swept
    hyperparameter (a `param.*` column with more than one value for an optimizer), one panel
    per optimizer and parameter. Markers: seeds; line: their mean (Gargiani et al. 2020 claim
    SGN is robust to its hyperparameters; this is where that shows or not)."""
    if trials is None or not _has(trials, "workload", "optimizer") or trials.empty:
        return []
    trials = trials.assign(line=line_keys(trials))
    looks = colors or style.line_styles(trials["line"])
    figs = []
    for workload, rows in _groups(trials, "workload"):
        for metric in _final_metrics(rows):
            table = sensitivity_table(rows, metric)
            if not table.empty:
                figs.append(_sensitivity_figure(table, workload, metric, pathlib.Path(out), looks))
    return figs


def performance_profile(trials, out, target_col=None, *, steps=None, eps=0.1, best_only=False,
                        colors=None) -> list[Figure]:
    """Dolan and Moré (2002) performance profile over problems = workload × seed.

    A problem's time for a configuration is its train time to reach the workload's target
    (`target_col`, else the workload's first `target.*.time_s` column); a workload without a
    target uses the first evaluation whose train loss is within `eps` (relative) of the best
    final train loss any configuration reached there, read from `steps`' eval curves. The
    profile is the fraction of problems solved within τ × the fastest time; an unsolved
    problem (missed, diverged, failed, not run: inf) never counts. `best_only`: one line per
    optimizer, its best configuration per workload (as `best_per_optimizer`)."""
    if trials is None or not _has(trials, "workload") or trials.empty:
        return []
    rows = trials
    if best_only:
        best = best_configs(trials, "train_loss")
        cfg = _config_column(trials, trials)
        chosen = set(_ident(best, cfg))
        rows = trials[[t in chosen for t in _ident(trials, cfg)]]
        rows = rows.assign(line=_backend_suffix(rows["optimizer"].astype(str), rows,
                                                _several_backends(trials)))
    else:
        rows = rows.assign(line=line_keys(trials))
    times, measures = problem_times(rows, target_col, steps, eps)
    if times.empty:
        return []
    table = profile_table(times)
    looks = colors or style.line_styles(rows["line"])
    return [_profile_figure(table, times, measures, pathlib.Path(out), looks, best_only)]


def hf_diagnostics(steps, out, *, colors=None) -> list[Figure]:
    """Per workload, for Hessian-free runs (step rows with λ, ρ or a condition estimate): CG
    iterations, λ, ρ and the condition estimate (`cond_est`, else ritz_max / ritz_min) per
    step; median over seeds, shaded min–max. Log y for λ and the condition estimate."""
    rows = _hf_steps(steps)
    if rows is None:
        return []
    looks = colors or style.line_styles(line_keys(steps))
    figs = []
    for workload, wl in _groups(rows, "workload"):
        metrics = [m for m in DIAGNOSTICS if m in wl and np.isfinite(_num(wl[m])).any()]
        table = _smooth(curve_table(wl, ("step",), metrics))
        if not table.empty:
            figs.append(_diagnostics_figure(table, workload, metrics, pathlib.Path(out), looks))
    return figs


SMOOTH_POINTS = 60  # a diagnostic curve longer than this many steps is averaged down to it


def _smooth(table):
    """Per-step CG counts and condition estimates jump every step (7, 9, 7, ...): drawn
    raw, a few hundred steps read as solid bars. Longer curves get a centred moving
    average over `smoothing_window` steps of their median, min and max (the CSV holds
    what is drawn, with the window)."""
    if table.empty:
        return table
    out = []
    for _, g in table.groupby(["line", "metric"], sort=True):
        g = g.sort_values("x", kind="stable").copy()
        w = max(1, len(g) // SMOOTH_POINTS) | 1  # odd, so the window is centred
        if w > 1:
            for col in ("median", "min", "max"):
                g[col] = g[col].rolling(w, center=True, min_periods=1).mean()
        g["smoothing_window"] = w
        out.append(g)
    import pandas as pd

    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- tables (what gets plotted)


def line_keys(df):
    """Each row's line: its configuration `label` (else its optimizer), plus " [backend]"
    when the frame holds several backends."""
    import pandas as pd

    key = pd.Series("config", index=df.index, dtype=object)
    for col in ("optimizer", "label"):  # the later column wins where it has a value
        if col in df.columns:
            key = df[col].astype(object).where(df[col].notna(), key)
    return _backend_suffix(key.astype(str), df)


def seed_band(df, x, y, trial="trial_id"):
    """Median, min and max over trials (seeds) of `y` against `x`.

    Each trial's curve is interpolated linearly onto the union of all trials' x values,
    only inside its own x range (no extrapolation), so each point's statistics use the
    trials that reach it (`n_seeds`). Non-finite points are dropped first."""
    import pandas as pd

    curves = []
    for _, g in df.groupby(trial, sort=True):
        xs, ys = _num(g[x]), _num(g[y])
        ok = np.isfinite(xs) & np.isfinite(ys)
        # The last row wins at a repeated x (a time-mark eval at an eval step).
        s = pd.Series(ys[ok], index=xs[ok]).groupby(level=0, sort=True).last()
        if len(s):
            curves.append((s.index.to_numpy(float), s.to_numpy(float)))
    if not curves:
        return pd.DataFrame(columns=["x", "median", "min", "max", "n_seeds"])
    grid = np.unique(np.concatenate([c[0] for c in curves]))
    ys = np.full((len(curves), len(grid)), np.nan)
    for i, (cx, cy) in enumerate(curves):
        inside = (grid >= cx[0]) & (grid <= cx[-1])
        ys[i, inside] = np.interp(grid[inside], cx, cy)
    return pd.DataFrame({"x": grid, "median": np.nanmedian(ys, 0), "min": np.nanmin(ys, 0),
                         "max": np.nanmax(ys, 0), "n_seeds": np.isfinite(ys).sum(0)})


def curve_table(rows, x_axes, metrics):
    """Long table (workload, line, metric, x_axis, x, median, min, max, n_seeds) of `seed_band`
    for every line, x axis and metric that has data."""
    import pandas as pd

    trial = next((c for c in ("trial_id", "seed") if c in rows), None)
    if trial is None:  # no way to tell seeds apart: each line is one curve
        rows, trial = rows.assign(_trial=0), "_trial"
    parts = []
    for (workload, line), g in rows.groupby(["workload", "line"], sort=True):
        for metric in metrics:
            for x in x_axes:
                if metric in g and x in g:
                    band = seed_band(g, x, metric, trial)
                    parts.append(band.assign(workload=workload, line=line, metric=metric, x_axis=x))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame()
    cols = ["workload", "line", "metric", "x_axis", "x", "median", "min", "max", "n_seeds"]
    return pd.concat(parts, ignore_index=True)[cols]


def best_configs(trials, by="train_loss"):
    """The best configuration per (workload, optimizer, backend): one row each, with the
    configuration column (`config_id`, else `label`, else `optimizer`) and `score`, the mean
    over seeds of the final metric (`by`: "train_loss" or "test"). Non-finite finals rank last."""
    import pandas as pd

    if by not in ("train_loss", "test"):
        raise ValueError(f"best_configs: by={by!r} is not one of 'train_loss', 'test'")
    if trials is None or trials.empty or not _has(trials, "workload", "optimizer"):
        return pd.DataFrame()
    cfg = _config_column(trials, trials)
    rows = trials.assign(backend=trials["backend"].astype(str) if "backend" in trials else "")
    keys = list(dict.fromkeys(["optimizer", "backend", cfg]))
    out = []
    for workload, wl in _groups(rows, "workload"):
        metric = "final.train_loss" if by == "train_loss" else _test_final(wl)
        if metric is None or metric not in wl:
            continue
        sign = -1.0 if "accuracy" in metric else 1.0  # rank by sign * mean: lower is better
        score = wl.assign(v=sign * _num(wl[metric])).groupby(keys)["v"]
        score = score.agg(lambda v: v.mean() if np.isfinite(v).all() else np.inf).reset_index()
        best = score.sort_values(list(dict.fromkeys(["optimizer", "backend", "v", cfg])),
                                 kind="stable")
        best = best.groupby(["optimizer", "backend"], sort=True).head(1)
        out.append(best.assign(workload=workload, score=sign * best["v"]).drop(columns="v"))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def sensitivity_table(rows, metric):
    """For one workload: every (optimizer, swept param) with each seed's final `metric`
    (kind "seed") and the mean over seeds per value (kind "mean"; NaN when a seed has no
    final value: it diverged or failed).
    A mean line is drawn per combination of the optimizer's other swept params (`group`)."""
    import pandas as pd

    parts = []
    for optimizer, opt in _groups(rows, "optimizer"):
        swept = _swept_params(opt)
        for param in swept:
            others = [p for p in swept if p != param]
            group = _describe(opt, others)
            seeds = pd.DataFrame({"optimizer": optimizer, "param": param[6:], "group": group,
                                  "x": opt[param].astype(object), "line": opt["line"],
                                  "seed": opt["seed"] if "seed" in opt else np.nan,
                                  "status": opt["status"] if "status" in opt else "",
                                  "value": _num(opt[metric])})
            # A diverged or failed seed has no final value (NaN): its mean is NaN too, a gap
            # in the line, rather than the mean of the seeds that survived.
            means = seeds.groupby(["group", "x"], sort=True)["value"].agg(
                lambda v: v.mean() if np.isfinite(v).all() else np.nan).reset_index()
            parts += [seeds.assign(kind="seed"), means.assign(optimizer=optimizer,
                                                              param=param[6:], kind="mean")]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    table["sort_x"] = table["x"].map(_sort_value)
    table = table.sort_values(["optimizer", "param", "group", "kind", "sort_x", "line", "seed"],
                              kind="stable").reset_index(drop=True)
    table["seed"] = table["seed"].astype("Int64") if _all_ints(table["seed"]) else table["seed"]
    table.insert(0, "workload", rows["workload"].iloc[0])
    table.insert(1, "metric", metric)
    cols = ["workload", "metric", "optimizer", "param", "group", "kind", "x", "line", "seed",
            "status", "value"]
    return table[cols]


def problem_times(trials, target_col=None, steps=None, eps=0.1):
    """(times, measures): one row per (workload, seed, line) with `time` (inf when unsolved),
    and per workload the measure used (a target column, or "train loss ≤ (1+eps) best")."""
    import pandas as pd

    parts, measures = [], {}
    for workload, wl in _groups(trials, "workload"):
        col = target_col or _target_column(wl)
        if col is not None and col in wl and wl[col].notna().any():
            time = _num(wl[col])
            measures[workload] = _target_text(col)
        elif (time := _loss_target_times(wl, steps, eps)) is not None:
            measures[workload] = (f"a train loss within (1 + {eps:g}) × the best final train "
                                  f"loss there (eval curves; diverged runs never reach it)")
        else:
            continue  # no target and no curves: nothing to time
        time = np.where(np.isfinite(time), time, np.inf)  # NaN: failed, never finished
        seed = wl["seed"] if "seed" in wl else 0
        parts.append(pd.DataFrame({"workload": workload, "seed": seed, "line": wl["line"],
                                   "time": time}))
    if not parts:
        return pd.DataFrame(), measures
    return pd.concat(parts, ignore_index=True), measures


def profile_table(times):
    """Dolan-Moré ρ_s(τ) = |{p : t_ps ≤ τ · min_s t_ps}| / |P| at every breakpoint τ (each
    finite ratio, 1, and a right edge past the largest), for every line s. A problem a line
    was not run on counts as unsolved for it; inf times never count."""
    import pandas as pd

    t = times.pivot_table(index=["workload", "seed"], columns="line", values="time",
                          aggfunc="min").astype(float).fillna(np.inf)
    best = t.min(axis=1).to_numpy()[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(t.to_numpy()),
                         np.where(t.to_numpy() == best, 1.0, t.to_numpy() / best), np.inf)
    # Ratios equal up to rounding (0.33 / 0.11 and 0.3 / 0.1) are one breakpoint, not two.
    taus = _merge_close(np.unique(np.concatenate([[1.0], ratio[np.isfinite(ratio)]])))
    taus = np.append(taus, taus[-1] * 2.0 if taus[-1] > 1 else 10.0)  # show the final level
    rows = [{"line": line, "tau": tau,
             "fraction": float(np.mean(ratio[:, j] <= tau * (1 + RATIO_RTOL)))}
            for j, line in enumerate(t.columns) for tau in taus]
    return pd.DataFrame(rows, columns=["line", "tau", "fraction"])


# ---------------------------------------------------------------- drawing


def _curve_figures(evals, out, prefix, what, looks, note):
    figs = []
    for workload, rows in _groups(evals, "workload"):
        metrics = ["train_loss"] + [m for m in [_test_metric(rows)] if m]
        xs = [x for x in X_AXES if x in rows and np.isfinite(_num(rows[x])).any()]
        table = curve_table(rows, xs, metrics)
        if table.empty:
            continue
        with style.context():
            fig = style.figure(len(metrics), len(xs), 1.0 + 1.5 * len(metrics))
            scales = []
            for i, metric in enumerate(metrics):
                for j, x in enumerate(xs):
                    ax = fig.axes[i * len(xs) + j]
                    scales.append(_draw_bands(ax, table, metric, x, looks, logx_ok=True))
                    ax.set_xlabel(style.axis_label(x) if i == len(metrics) - 1 else "")
                    ax.set_ylabel(style.axis_label(metric) if j == 0 else "")
            style.legend(fig, table["line"], looks)
            caption = _curve_caption(table, workload, metrics, xs, scales) + note
            figs.append(_save(fig, out / _safe(f"{prefix}_{workload}"), table,
                              f"{workload}: {what}", caption))
    return figs


def _draw_bands(ax, table, metric, x, looks, logx_ok=False):
    """Lines and bands of one panel, log scales by the data. Returns what it did to the axes."""
    sel = table[(table["metric"] == metric) & (table["x_axis"] == x)]
    for line, g in sel.groupby("line", sort=True):
        look = looks.get(line, {"color": "0.3", "linestyle": "-"})
        ax.fill_between(g["x"], g["min"], g["max"], color=look["color"], alpha=0.2, lw=0)
        # Markers show where the evaluations are when they are few enough to be apart.
        ax.plot(g["x"], g["median"], marker="o" if len(g) <= 15 else None, markersize=2.5, **look)
    done = {"metric": metric, "x": x, "logx": False, "logy": False, "capped": False}
    if "loss" in metric:
        done.update(_loss_axis(ax, sel))
    if logx_ok and _spans_decades(sel["x"].to_numpy(), drop_zero=True):
        ax.set_xscale("log", nonpositive="mask")
        done["logx"] = True
    elif x == "step":
        _integer_ticks(ax.xaxis)
    return done


def _integer_ticks(axis):
    """Counts (iterations, CG iterations) get whole-number ticks, not 2.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins="auto", integer=True))  # "auto": by axis length


def _loss_axis(ax, sel):
    """Log y when the losses span two decades or more, and the axis capped just above the
    highest starting loss (×2 on a log axis, ×1.25 on a linear one): a line that leaves
    the top diverged, and letting it set the scale (1e21 for SGD at lr = 10 on Boston)
    would flatten every other line."""
    values = sel[["median", "min", "max"]].to_numpy(float).ravel()
    values = values[np.isfinite(values)]
    first = sel.sort_values("x", kind="stable").groupby("line")["median"].first()
    start = np.nanmax(_num(first)) if len(first) else np.nan
    if not values.size or not start > 0:  # nothing to cap against: only the log decision
        logy = _spans_decades(values)
        if logy:
            ax.set_yscale("log", nonpositive="mask")
        return {"logy": logy, "capped": False}
    logy = _spans_decades(values[values <= 2.0 * start])
    top = start * (2.0 if logy else 1.25)
    shown = values[values <= top]
    capped = bool(shown.size and values.max() > top)
    if logy:
        ax.set_yscale("log", nonpositive="mask")
    if capped:
        lo = shown.min()
        ax.set_ylim(lo / 1.5 if logy else lo - 0.05 * (top - lo), top)
    return {"logy": logy, "capped": capped}


def _curve_caption(table, workload, metrics, xs, scales):
    n = table.groupby("line")["n_seeds"].max()
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"
    names = " and ".join(style.axis_label(m) for m in metrics)
    axes = ", ".join(style.axis_label(x) for x in xs)
    text = f"{workload}: {names} against {axes} (evaluations)."
    if n.max() == 1:
        text += " One seed per configuration, so no band."
    else:
        text += (f" Lines: median over seeds ({seeds} per configuration); shaded: {BAND}. Seeds "
                 f"are interpolated linearly onto the union of their evaluation points; a "
                 f"point uses the seeds whose run reaches it.")
    return text + _scales_note(scales)


def _scales_note(scales):
    """The caption's sentence on log axes and capped losses, from what the panels did."""
    logy = list(dict.fromkeys(style.axis_label(s["metric"]) for s in scales if s["logy"]))
    logx = list(dict.fromkeys(style.axis_label(s["x"]) for s in scales if s["logx"]))
    capped = list(dict.fromkeys(style.axis_label(s["metric"]) for s in scales if s["capped"]))
    text = f" Log scale: {', '.join(logy + logx)}." if logy or logx else ""
    if capped:
        axes = " and ".join(capped) + (" axes are" if len(capped) > 1 else " axis is")
        text += (f" The {axes} capped just above the highest starting loss (×2 on a log "
                 f"axis, ×1.25 on a linear one); a line leaving the top diverged.")
    return text


def _sensitivity_figure(table, workload, metric, out, looks):
    panels = list(dict.fromkeys(zip(table["optimizer"], table["param"])))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    name = style.axis_label(metric.replace("final.", ""))
    with style.context():
        fig = style.figure(nrows, ncols, 0.6 + 1.7 * nrows)
        scales = []
        for i, (ax, (opt, param)) in enumerate(zip(fig.axes, panels)):
            sel = table[(table["optimizer"] == opt) & (table["param"] == param)]
            scales.append(_draw_sensitivity(ax, sel, metric, looks))
            ax.set_title(opt, loc="left")
            ax.set_xlabel(param)
            ax.set_ylabel(f"final {name}" if i % ncols == 0 else "")
        for ax in fig.axes[len(panels):]:
            ax.set_visible(False)
        stem = out / _safe(f"sensitivity_{workload}_{metric.replace('final.', '')}")
        return _save(fig, stem, table, f"{workload}: sensitivity of final {name}",
                     _sensitivity_caption(workload, name, scales))


def _sensitivity_caption(workload, name, scales):
    text = (f"{workload}: final {name} against each swept hyperparameter, one panel per "
            f"optimizer and parameter. Markers: individual seeds, coloured as the "
            f"configuration is in every figure; grey line and dashes: mean over seeds (one per "
            f"combination of the optimizer's other swept parameters, dashed in turn; a gap "
            f"where a seed diverged or failed); ×: seeds without a finite final value, at the "
            f"top, with their count.")
    logs = [s for scale in scales for s in scale]
    return text + (f" Log scale: {', '.join(dict.fromkeys(logs))}." if logs else "")


def _draw_sensitivity(ax, sel, metric, looks):
    """One panel: seeds as markers, means as grey lines, categorical x for non-numbers.
    Returns the names of the axes it put on a log scale."""
    pos, ticks, labels = _positions(sel["x"].dropna().tolist())
    seeds, means = sel[sel["kind"] == "seed"], sel[sel["kind"] == "mean"]
    for line, g in seeds.groupby("line", sort=True):
        _draw_seeds(ax, g, pos, looks.get(line, {"color": "0.3"})["color"])
    for k, (group, g) in enumerate(means.groupby("group", sort=True)):
        # A "_" at each mean keeps a group of one value (no line to draw) visible.
        ax.plot([pos(v) for v in g["x"]], g["value"].to_numpy(float), color="0.45", lw=0.8,
                ls=style.DASHES[k % len(style.DASHES)], marker="_", markersize=8,
                label=group or None)
    logs = []
    # Hyperparameter grids are geometric: one decade (lr 0.01, 0.1) already wants log x.
    if labels is None and _spans_decades(ticks, decades=1.0):
        ax.set_xscale("log")
        logs.append(sel["param"].iloc[0])
    elif len(ticks) <= 8:  # ticks at the grid values, not at 3, 4, 6, 7 between them
        slant = {"rotation": 30, "ha": "right"} if labels else {}
        ax.set_xticks(ticks, labels, **slant)
    if "loss" in metric and _spans_decades(seeds["value"].to_numpy(float)):
        ax.set_yscale("log", nonpositive="mask")
        logs.append(style.axis_label(metric.replace("final.", "")))
    if means["group"].nunique() > 1:
        ax.legend(loc="best")
    return logs


def _positions(values):
    """(x position of a value, the distinct positions, their labels): numbers stand for
    themselves (labels None); anything else is a category at 0, 1, 2, ... in sorted order."""
    cats = sorted({str(v) for v in values}, key=_sort_value)
    if all(_is_number(v) for v in values):
        return float, np.array(sorted({float(v) for v in values})), None
    return (lambda v: float(cats.index(str(v)))), np.arange(len(cats), dtype=float), cats


def _draw_seeds(ax, g, pos, color):
    """Each seed's final value; seeds without one as a × at the top, with their count."""
    xs, ys = np.array([pos(v) for v in g["x"]]), g["value"].to_numpy(float)
    ok = np.isfinite(ys)
    ax.plot(xs[ok], ys[ok], "o", color=color, alpha=0.8, ls="none")
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for xd in np.unique(xs[~ok]):
        lost = g["status"].to_numpy()[~ok][xs[~ok] == xd]
        why = "diverged" if (lost == "diverged").all() else "failed"
        ax.plot([xd], [0.97], "x", color=color, transform=top, clip_on=False)
        ax.text(xd, 0.91, f"{len(lost)} {why}", transform=top, ha="center", va="top",
                fontsize=style.FONT_PT - 2, color=color)


def _profile_figure(table, times, measures, out, looks, best_only):
    with style.context():
        fig = style.figure(1, 1, 2.6, width=style.SINGLE_COLUMN_IN)
        ax = fig.axes[0]
        for line, g in table.groupby("line", sort=True):
            ax.plot(g["tau"], g["fraction"], drawstyle="steps-post",
                    **looks.get(line, {"color": "0.3", "linestyle": "-"}))
        ax.set_xscale("log")
        ax.set_xlim(1.0, table["tau"].max())
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("τ (time / fastest time)")
        ax.set_ylabel("fraction solved")
        style.legend(fig, table["line"], looks, width=style.SINGLE_COLUMN_IN)
        return _save(fig, out / ("profile_best" if best_only else "profile"), table,
                     "Performance profile (train time to target)",
                     _profile_caption(times, measures, best_only))


def _profile_caption(times, measures, best_only):
    n = len(times[["workload", "seed"]].drop_duplicates())
    how = "; ".join(f"{w}: {m}" for w, m in sorted(measures.items()))
    who = "each optimizer's best configuration per workload" if best_only else "each configuration"
    caption = (f"Dolan–Moré performance profile of {who} over {n} problems (workload × seed): "
               f"the fraction of problems solved within τ times the fastest train time on that "
               f"problem. Time to reach: {how}. Unsolved problems (target missed, diverged, "
               f"failed or not run) never count, so a line's right end is its success rate.")
    return caption


def _diagnostics_figure(table, workload, metrics, out, looks):
    ncols = 2 if len(metrics) > 1 else 1
    nrows = -(-len(metrics) // ncols)
    clipped, logy = False, []
    with style.context():
        fig = style.figure(nrows, ncols, 1.0 + 1.5 * nrows, sharex="all")
        for ax, metric in zip(fig.axes, metrics):
            _draw_bands(ax, table, metric, "step", looks)
            # λ and the condition number move by factors: log y once they span a decade
            # (less, and the log ticks read "2×10¹"). Zeros (no damping) are masked.
            values = table.loc[table["metric"] == metric, ["min", "max"]].to_numpy()
            if metric in ("lambda", "cond_est") and _spans_decades(values, 1.0, drop_zero=True):
                ax.set_yscale("log", nonpositive="mask")
                logy.append(metric)
            if metric == "cg_iters":
                _integer_ticks(ax.yaxis)
            if metric == "rho":
                clipped = _rho_axis(ax, table[table["metric"] == "rho"])
            ax.set_ylabel(style.axis_label(metric))
        for ax in fig.axes[len(metrics):]:
            ax.set_visible(False)
        # the last panel of each column carries the x axis, also above an empty slot
        for ax in fig.axes[max(0, len(metrics) - ncols):len(metrics)]:
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(style.axis_label("step"))
        style.legend(fig, table["line"], looks)
        return _save(fig, out / _safe(f"hf_{workload}"), table, f"{workload}: HF diagnostics",
                     _diagnostics_caption(workload, metrics, logy, clipped))


def _diagnostics_caption(workload, metrics, logy, clipped):
    names = ", ".join(style.axis_label(m) for m in metrics)
    text = (f"{workload}: Hessian-free diagnostics per step ({names}); the condition estimate "
            f"is of the damped, preconditioned curvature, from CG's Lanczos coefficients. "
            f"Median over seeds; shaded: {BAND}.")
    text += (" Curves longer than {0} steps are centred moving averages (window in the CSV's "
             "smoothing_window column).".format(SMOOTH_POINTS))
    if logy:
        text += f" Log scale: {', '.join(style.axis_label(m) for m in logy)}."
    if "rho" in metrics:
        text += " Dotted: ρ = ¼ and ¾ (Martens 2010's Levenberg–Marquardt thresholds)."
    if clipped:
        text += f" The ρ axis is clipped to [{RHO_VIEW[0]:g}, {RHO_VIEW[1]:g}]."
    return text


def _rho_axis(ax, sel):
    """Martens' thresholds, and the axis limited to RHO_VIEW when ρ leaves it."""
    for level in (0.25, 0.75):
        ax.axhline(level, color="black", lw=0.5, ls=":")
    lo, hi = np.nanmin(sel["min"].to_numpy(float)), np.nanmax(sel["max"].to_numpy(float))
    if lo < RHO_VIEW[0] or hi > RHO_VIEW[1]:
        ax.set_ylim(max(lo, RHO_VIEW[0]), min(hi, RHO_VIEW[1]))
        return True
    return False


def _save(fig, stem, table, title, caption):
    """PDF, PNG and CSV of one figure. No dates or versions embedded: reruns are byte-equal."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv = pathlib.Path(f"{stem}.csv")
    table.to_csv(csv, index=False, lineterminator="\n")
    fig.savefig(f"{stem}.pdf", metadata={"CreationDate": None, "Producer": None})
    fig.savefig(f"{stem}.png", metadata={"Software": None})
    return Figure(stem, title, caption, csv)


# ---------------------------------------------------------------- data helpers


def _evals(steps):
    """Eval rows with a `line` column (keyed over the whole frame), or None if unusable."""
    if steps is None or not _has(steps, "workload", "kind", "train_loss"):
        return None
    steps = steps.assign(line=line_keys(steps))
    evals = steps[steps["kind"] == "eval"]
    if evals.empty or not np.isfinite(_num(evals["train_loss"])).any():
        return None
    return evals


def _hf_steps(steps):
    """Step rows of trials that report λ, ρ or a condition estimate; `cond_est` filled from
    ritz_max / ritz_min where only the Ritz values are there."""
    if steps is None or not _has(steps, "workload", "kind", "step"):
        return None
    rows = steps.assign(line=line_keys(steps))
    rows = rows[rows["kind"] == "step"].copy()
    if {"ritz_max", "ritz_min"} <= set(rows.columns):
        ratio = _num(rows["ritz_max"]) / _num(rows["ritz_min"])
        cond = _num(rows["cond_est"]) if "cond_est" in rows else np.full(len(rows), np.nan)
        rows["cond_est"] = np.where(np.isfinite(cond), cond, ratio)
    present = [c for c in ("lambda", "rho", "cond_est") if c in rows]
    if not present or rows.empty:
        return None
    has = np.isfinite(np.column_stack([_num(rows[c]) for c in present])).any(axis=1)
    trial = "trial_id" if "trial_id" in rows else "line"
    hf = set(rows.loc[has, trial])
    rows = rows[rows[trial].isin(hf)]
    return rows if not rows.empty else None


def _loss_target_times(trials_wl, steps, eps):
    """Per trial of one workload: first eval time with train loss ≤ best + eps·|best|, where
    best is the lowest final (last-eval) train loss of the trials there that neither
    diverged nor failed; inf if never, or if the trial diverged or failed. None when there
    are no eval curves to read."""
    need = ("kind", "workload", "train_loss", "time_s", "step", "trial_id")
    if steps is None or not _has(steps, *need) or "trial_id" not in trials_wl:
        return None
    ev = steps[(steps["kind"] == "eval") & (steps["workload"] == trials_wl["workload"].iloc[0])]
    ev = ev[np.isfinite(_num(ev["train_loss"]))]
    if ev.empty:
        return None
    if "status" in trials_wl:  # a run that blew up is a miss, however good it was before
        lost = trials_wl.loc[trials_wl["status"].isin(["diverged", "failed"]), "trial_id"]
        ev = ev[~ev["trial_id"].isin(set(lost))]
    if ev.empty:
        return np.full(len(trials_wl), np.inf)
    ev = ev.sort_values(["trial_id", "step", "time_s"], kind="stable")
    finals = _num(ev.groupby("trial_id")["train_loss"].last())
    best = np.min(finals)
    reached = ev[_num(ev["train_loss"]) <= best + eps * abs(best)]
    first = reached.groupby("trial_id")["time_s"].min()
    return np.array([first.get(t, np.inf) for t in trials_wl["trial_id"]], dtype=float)


def _test_metric(rows):
    """The workload's test metric: a non-loss test column with data (accuracy first), else
    the test loss."""
    skip = ("test_loss", "test_objective")
    cols = [c for c in rows.columns if c.startswith("test_") and c not in skip]
    cols = sorted(cols, key=lambda c: (c != "test_accuracy", c))
    for col in cols + ["test_loss"]:
        if col in rows and np.isfinite(_num(rows[col])).any():
            return col
    return None


def _final_metrics(rows):
    """final.train_loss and the final test metric, those with data."""
    cols = ["final.train_loss", _test_final(rows)]
    return [c for c in dict.fromkeys(cols) if c and c in rows and np.isfinite(_num(rows[c])).any()]


def _test_final(rows):
    names = [c[6:] for c in rows.columns if c.startswith("final.test_")]
    if not names:
        return None
    metric = _test_metric(rows.rename(columns={f"final.{n}": n for n in names})[names])
    return f"final.{metric}" if metric else None


def _target_column(rows):
    cols = sorted(c for c in rows.columns if re.fullmatch(r"target\..+\.time_s", c))
    return next((c for c in cols if rows[c].notna().any()), None)


def _target_text(col):
    """"target.test_accuracy>=0.9.time_s" -> "test accuracy ≥ 0.9" (else the column name)."""
    m = re.fullmatch(r"target\.([A-Za-z_]+?)(>=|<=|==|>|<)(.+)\.time_s", col)
    if not m:
        return col
    op = {">=": "≥", "<=": "≤"}.get(m.group(2), m.group(2))
    return f"{style.axis_label(m.group(1))} {op} {m.group(3)}"


def _describe(rows, params):
    """Per row, "name=value, ..." of `params` ("" when there are none)."""
    if not params:
        return ""
    return rows[params].apply(lambda r: ", ".join(f"{c[6:]}={v}" for c, v in r.items()), axis=1)


def _swept_params(rows):
    """param.* columns with more than one distinct value among these rows."""
    cols = sorted(c for c in rows.columns if c.startswith("param."))
    return [c for c in cols if rows[c].dropna().astype(str).nunique() > 1]


def _config_column(df, other):
    """The column naming a configuration in both frames: config_id, else label, else optimizer."""
    both = [c for c in ("config_id", "label") if c in df and c in other]
    return both[0] if both else "optimizer"


def _backend_suffix(key, df, several=None):
    """`key` + " [backend]" when there are several backends (in `df`, unless `several` says)."""
    several = _several_backends(df) if several is None else several
    return key + " [" + df["backend"].astype(str) + "]" if several else key


def _several_backends(df):
    return "backend" in df.columns and df["backend"].nunique() > 1


def _ident(df, cfg):
    """(workload, backend, configuration) of every row; backend "" when there is none."""
    backend = df["backend"].astype(str) if "backend" in df else [""] * len(df)
    return list(zip(df["workload"], backend, df[cfg]))


def _groups(df, col):
    return df.groupby(col, sort=True) if col in df else []


def _has(df, *cols):
    return all(c in df.columns for c in cols)


def _num(values):
    """Float array of a column; strings and None become NaN."""
    import pandas as pd

    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def _spans_decades(values, decades=2.0, drop_zero=False):
    """True when the finite values span at least `decades` powers of ten. Values ≤ 0 veto
    a log axis (it would hide them), except zeros with `drop_zero` (time 0 of a curve's
    first evaluation: losing that one point is the price of seeing the rest)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if drop_zero:
        v = v[v != 0]
    if v.size == 0 or (v <= 0).any():
        return False
    # log10(max) - log10(min): max / min overflows for a denormal minimum (λ ~ 1e-300)
    return np.log10(v.max()) - np.log10(v.min()) >= decades - 1e-9


def _merge_close(sorted_values, rtol=RATIO_RTOL):
    """Sorted values without those within `rtol` of the previous one kept."""
    kept = []
    for v in sorted_values:
        if not kept or v > kept[-1] * (1 + rtol):
            kept.append(v)
    return np.array(kept)


def _all_ints(values):
    v = values.dropna()
    return all(_is_number(x) and float(x).is_integer() for x in v)


def _is_number(v):
    numbers = (int, float, np.integer, np.floating)
    return isinstance(v, numbers) and not isinstance(v, (bool, np.bool_))


def _sort_value(v):
    """Numbers in numeric order before anything else in string order."""
    return (0, float(v), "") if _is_number(v) else (1, 0.0, str(v))


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(name))
