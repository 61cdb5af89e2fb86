"""Report figures: each CSV holds what its figure plots, recomputed here from a hand-made
results fixture (medians with pandas, profiles by counting); files exist; output is
byte-deterministic; missing data gives no figure rather than an error."""

from __future__ import annotations

import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from hfbench.report import figures, style  # noqa: E402

TARGET = "target.test_accuracy>=0.9.time_s"
EVAL_STEPS = {"sgd": [0, 10, 20, 30], "hf": [0, 2, 4]}
RATES = {("sgd", 0.01): 0.02, ("sgd", 0.1): 0.08, ("sgd", 1.0): 0.3,
         ("hf", 1.0): 1.0, ("hf", 100.0): 0.4}
SEEDS = (0, 1, 2)


# ----------------------------------------------------------------------------- fixture


def _trial(workload, optimizer, value, seed):
    """Identity columns of one trial, as hfbench.results.load/trials give them."""
    name = "lr" if optimizer == "sgd" else "damping"
    return {"trial_id": f"{workload}-{optimizer}-{value}-{seed}", "suite": "fixture",
            "workload": workload, "optimizer": optimizer, "algorithm": optimizer,
            "backend": "torch", "device": "cpu", "dtype": "float32", "seed": seed,
            "status": "completed", "label": f"{optimizer}({name}={value})",
            "config_id": f"{workload}/{optimizer}/{value}", f"param.{name}": value,
            "param.momentum" if optimizer == "sgd" else "param.cg_max_iters":
                0.0 if optimizer == "sgd" else 250}


def _loss(workload, optimizer, value, seed, step):
    # sgd at lr = 1 diverges on "reg" for seed 2 after its first evaluation.
    if workload == "reg" and (optimizer, value, seed) == ("sgd", 1.0, 2) and step > 10:
        return math.inf
    # Seed factors 1, 1.05, 1.2: the median over seeds differs from the mean.
    return 2.0 * math.exp(-RATES[optimizer, value] * step) * (1 + 0.05 * seed ** 2)


def _eval_rows(ident, workload, optimizer, value, seed):
    dt = 0.01 if optimizer == "sgd" else 0.2
    rows = []
    for step in EVAL_STEPS[optimizer]:
        loss = _loss(workload, optimizer, value, seed, step)
        row = {**ident, "kind": "eval", "step": step, "epoch": step / 10,
               "time_s": step * dt * (1 + 0.1 * seed),  # seeds differ in time, not in steps
               "grad_passes": step * (1 if optimizer == "sgd" else 20),
               "train_loss": loss, "test_loss": 1.1 * loss, "why": "every"}
        if workload == "clf":
            row["test_accuracy"] = 1.0 - loss / 4 if math.isfinite(loss) else math.nan
        rows.append(row)
    return rows


def _step_rows(ident, optimizer, value, seed):
    last = EVAL_STEPS[optimizer][-1]
    rows = []
    for step in range(1, last + 1):
        row = {**ident, "kind": "step", "step": step, "epoch": step / 10, "batch_loss": 1.0,
               "cg_iters": 0}
        if optimizer == "hf":
            row.update(cg_iters=5 + step + seed, **{"lambda": value * 0.5 ** (step + seed)},
                       rho=0.5 + 0.1 * seed, cond_est=10.0 * step + seed)
        rows.append(row)
    return rows


def _frames():
    steps, trials = [], []
    for workload in ("clf", "reg"):
        for (optimizer, value) in RATES:
            for seed in SEEDS:
                ident = _trial(workload, optimizer, value, seed)
                evals = _eval_rows(ident, workload, optimizer, value, seed)
                steps += _step_rows(ident, optimizer, value, seed) + evals
                trials.append(_trial_row(ident, workload, evals))
    return pd.DataFrame(steps), pd.DataFrame(trials)


def _trial_row(ident, workload, evals):
    last = evals[-1]
    row = {**ident, "final.train_loss": last["train_loss"], "final.test_loss": last["test_loss"],
           "train_time_s": last["time_s"], "iterations": last["step"]}
    if workload == "clf":
        row["final.test_accuracy"] = last["test_accuracy"]
        hits = [e["time_s"] for e in evals if e["test_accuracy"] >= 0.9]
        row[TARGET] = min(hits) if hits else math.inf
    if not math.isfinite(last["train_loss"]):  # as results.trials: no finals, targets missed
        row.update({k: math.nan for k in row if k.startswith("final.")}, status="diverged")
        row.update({k: math.inf for k in row if k.startswith("target.")})
    return row


@pytest.fixture(scope="module")
def frames():
    return _frames()


@pytest.fixture(scope="module")
def drawn(frames, tmp_path_factory):
    """Every figure of the fixture, drawn once into one folder."""
    steps, trials = frames
    out = tmp_path_factory.mktemp("figures")
    return {
        "curves": figures.curves(steps, out),
        "best": figures.best_per_optimizer(steps, trials, out),
        "sensitivity": figures.sensitivity(trials, out),
        "profile": figures.performance_profile(trials, out, steps=steps),
        "profile_best": figures.performance_profile(trials, out, steps=steps, best_only=True),
        "hf": figures.hf_diagnostics(steps, out),
    }


def _csv(figs, name):
    (fig,) = [f for f in figs if f.path_stem.name == name]
    return pd.read_csv(fig.csv_path)


# ----------------------------------------------------------------------------- curves


def test_every_figure_writes_a_nonempty_pdf_png_and_csv(drawn):
    names = {kind: sorted(f.path_stem.name for f in figs) for kind, figs in drawn.items()}
    assert names["curves"] == ["curves_clf", "curves_reg"]
    assert names["best"] == ["best_clf", "best_reg"]
    assert names["hf"] == ["hf_clf", "hf_reg"]
    assert names["profile"] == ["profile"] and names["profile_best"] == ["profile_best"]
    for fig in [f for figs in drawn.values() for f in figs]:
        assert fig.pdf.read_bytes().startswith(b"%PDF")
        assert fig.png.read_bytes().startswith(b"\x89PNG")
        assert fig.csv_path.stat().st_size > 0
        assert fig.title and fig.caption


def test_curves_are_median_and_min_max_over_seeds(frames, drawn):
    steps, _ = frames
    ev = steps[(steps["kind"] == "eval") & (steps["workload"] == "clf")]
    want = ev.groupby(["label", "step"])["train_loss"].agg(["median", "min", "max", "count"])
    got = _csv(drawn["curves"], "curves_clf")
    got = got[(got["metric"] == "train_loss") & (got["x_axis"] == "step")]
    got = got.set_index(["line", "x"]).sort_index()
    assert got.index.tolist() == [(label, float(s)) for label, s in want.index]
    np.testing.assert_allclose(got[["median", "min", "max"]], want[["median", "min", "max"]])
    assert (got["n_seeds"].to_numpy() == want["count"].to_numpy()).all()


def test_curves_use_each_workloads_test_metric(drawn):
    assert set(_csv(drawn["curves"], "curves_clf")["metric"]) == {"train_loss", "test_accuracy"}
    assert set(_csv(drawn["curves"], "curves_reg")["metric"]) == {"train_loss", "test_loss"}
    assert set(_csv(drawn["curves"], "curves_clf")["x_axis"]) == {"time_s", "epoch", "step",
                                                                  "grad_passes"}


def test_seeds_with_different_x_are_interpolated_only_inside_their_range(tmp_path):
    # seed 0 evaluates at t = 0, 1, 2; seed 1 at t = 0, 1.5 (it stopped early).
    rows = [{"trial_id": f"s{seed}", "workload": "w", "optimizer": "sgd", "seed": seed,
             "kind": "eval", "time_s": t, "train_loss": y}
            for seed, pts in ((0, [(0, 4.0), (1, 2.0), (2, 1.0)]), (1, [(0, 4.0), (1.5, 3.0)]))
            for t, y in pts]
    (fig,) = figures.curves(pd.DataFrame(rows), tmp_path)
    got = pd.read_csv(fig.csv_path).set_index("x")
    # At t = 1 seed 1 is 4 + (3 - 4) / 1.5; at t = 1.5 seed 0 is halfway from 2 to 1;
    # at t = 2 only seed 0 is still running.
    s1_at_1 = 4 - 1 / 1.5
    assert got.loc[1.0, "median"] == pytest.approx((2.0 + s1_at_1) / 2)
    assert (got.loc[1.0, "min"], got.loc[1.0, "max"]) == pytest.approx((2.0, s1_at_1))
    assert got.loc[1.5, "median"] == pytest.approx((1.5 + 3.0) / 2)
    assert (got.loc[2.0, "median"], got.loc[2.0, "n_seeds"]) == (1.0, 1)


def test_losses_spanning_decades_get_a_log_axis(drawn):
    captions = {f.path_stem.name: f.caption for f in drawn["curves"]}
    # clf: sgd(lr=1) falls from 2 to 2e-4; the captions report the scale the panels use.
    assert "Log scale: train loss" in captions["curves_clf"]


def test_best_per_optimizer_keeps_the_lowest_mean_final_train_loss(frames, drawn):
    _, trials = frames
    for workload in ("clf", "reg"):
        mean = trials[trials["workload"] == workload].groupby(["optimizer", "label"])[
            "final.train_loss"].agg(lambda v: v.mean() if v.notna().all() else math.inf)
        want = {mean[opt].idxmin() for opt in mean.index.get_level_values(0).unique()}
        assert set(_csv(drawn["best"], f"best_{workload}")["line"]) == want
    assert "sgd(lr=1.0)" not in set(_csv(drawn["best"], "best_reg")["line"])


def test_a_failed_seed_ranks_its_configuration_last(frames, tmp_path):
    steps, trials = frames
    failed = (trials["label"] == "sgd(lr=1.0)") & (trials["seed"] == 0)
    trials = trials.assign(**{"final.train_loss": trials["final.train_loss"].mask(failed)})
    mean = trials[trials["workload"] == "clf"].groupby(["optimizer", "label"])["final.train_loss"]
    mean = mean.agg(lambda v: v.mean() if v.notna().all() else math.inf)
    want = {mean[opt].idxmin() for opt in ("sgd", "hf")}
    assert "sgd(lr=1.0)" not in want
    figs = figures.best_per_optimizer(steps, trials, tmp_path)
    assert set(_csv(figs, "best_clf")["line"]) == want


# ----------------------------------------------------------------------------- sensitivity


def test_sensitivity_plots_each_seed_and_the_mean_per_swept_value(frames, drawn):
    _, trials = frames
    got = _csv(drawn["sensitivity"], "sensitivity_reg_train_loss")
    assert set(zip(got["optimizer"], got["param"])) == {("sgd", "lr"), ("hf", "damping")}
    reg = trials[trials["workload"] == "reg"]
    for opt, param in (("sgd", "param.lr"), ("hf", "param.damping")):
        rows = reg[reg["optimizer"] == opt]
        means = got[(got["optimizer"] == opt) & (got["kind"] == "mean")]
        # A seed without a final value (diverged) leaves no mean: a gap in the line.
        want = rows.groupby(param)["final.train_loss"].agg(
            lambda v: v.mean() if v.notna().all() else math.nan)
        np.testing.assert_allclose(means["x"].astype(float), want.index.to_numpy(float))
        np.testing.assert_allclose(means["value"], want.to_numpy())
        seeds = got[(got["optimizer"] == opt) & (got["kind"] == "seed")]
        got_seeds = seeds.set_index(["x", "seed"]).sort_index()["value"]
        want_seeds = rows.set_index([param, "seed"]).sort_index()["final.train_loss"]
        assert got_seeds.index.tolist() == want_seeds.index.tolist()
        np.testing.assert_allclose(got_seeds.to_numpy(), want_seeds.to_numpy())
    assert np.isnan(got.loc[(got["kind"] == "mean") & (got["x"].astype(float) == 1.0)
                            & (got["optimizer"] == "sgd"), "value"]).all()


def test_sensitivity_figures_per_workload_and_final_metric(drawn):
    names = sorted(f.path_stem.name for f in drawn["sensitivity"])
    assert names == ["sensitivity_clf_test_accuracy", "sensitivity_clf_train_loss",
                     "sensitivity_reg_test_loss", "sensitivity_reg_train_loss"]


def test_sensitivity_sweeps_of_words_are_categories(frames, tmp_path):
    _, trials = frames
    sgd = trials[(trials["optimizer"] == "sgd") & (trials["workload"] == "clf")]
    rule = sgd["param.lr"].map({0.01: "fixed", 0.1: "linear", 1.0: "cosine"})
    figs = figures.sensitivity(sgd.assign(**{"param.schedule": rule}), tmp_path)
    (fig,) = [f for f in figs if f.path_stem.name == "sensitivity_clf_train_loss"]
    got = pd.read_csv(fig.csv_path)
    means = got[(got["param"] == "schedule") & (got["kind"] == "mean")].set_index("x")["value"]
    want = sgd.groupby(rule)["final.train_loss"].mean()
    np.testing.assert_allclose(means.sort_index(), want.sort_index())
    assert fig.png.stat().st_size > 0


def test_sensitivity_needs_a_swept_parameter(frames, tmp_path):
    _, trials = frames
    one_each = trials[trials["label"].isin(["sgd(lr=0.1)", "hf(damping=1.0)"])]
    assert figures.sensitivity(one_each, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- profiles


def _expected_times(steps, trials, eps=0.1):
    """Per (workload, seed, label): time to the target (clf) or to a train loss within eps
    of the best final train loss there (reg, from the eval curves)."""
    out = {}
    for _, t in trials.iterrows():
        if t["workload"] == "clf":
            out[t["workload"], t["seed"], t["label"]] = t[TARGET]
    reg = steps[(steps["workload"] == "reg") & (steps["kind"] == "eval")]
    diverged = set(trials.loc[trials["status"] == "diverged", "trial_id"])
    finals = reg.sort_values("step").groupby("trial_id")["train_loss"].last()
    best = finals[~finals.index.isin(diverged)].min()
    for tid, g in reg.groupby("trial_id"):
        hit = g.loc[g["train_loss"] <= (1 + eps) * best, "time_s"]
        # A run that blew up is a miss, however good it was before.
        solved = len(hit) and tid not in diverged
        out["reg", g["seed"].iloc[0], g["label"].iloc[0]] = hit.min() if solved else math.inf
    return out


def test_performance_profile_is_dolan_more(frames, drawn):
    steps, trials = frames
    times = _expected_times(steps, trials)
    problems = sorted({(w, s) for w, s, _ in times})
    labels = sorted({label for _, _, label in times})
    ratio = {}
    for p in problems:
        best = min(times[p + (label,)] for label in labels)
        for label in labels:
            t = times[p + (label,)]
            ratio[p + (label,)] = t / best if math.isfinite(t) else math.inf
    got = _csv(drawn["profile"], "profile")
    assert set(got["line"]) == set(labels)
    finite = {r for r in ratio.values() if math.isfinite(r)}
    assert all(any(math.isclose(r, tau) for tau in got["tau"]) for r in finite)
    for _, row in got.iterrows():
        solved = sum(ratio[p + (row["line"],)] <= row["tau"] * (1 + 1e-9) for p in problems)
        assert row["fraction"] == pytest.approx(solved / len(problems))


def test_unsolved_problems_never_count(drawn):
    got = _csv(drawn["profile"], "profile")
    # sgd at lr = 0.01 reaches neither the accuracy target nor the loss target.
    assert (got.loc[got["line"] == "sgd(lr=0.01)", "fraction"] == 0).all()
    assert got["fraction"].max() <= 1.0


def test_a_run_that_diverged_never_reaches_the_loss_target(tmp_path):
    # "fast" gets to 0.5 at t = 1, then blows up; "slow" ends at 1.0, first met at t = 2.
    curves = {"fast": [(0, 4.0), (1, 0.5), (2, math.inf)], "slow": [(0, 4.0), (1, 3.0), (2, 1.0)]}
    steps = pd.DataFrame([{"trial_id": name, "workload": "w", "optimizer": name, "seed": 0,
                           "kind": "eval", "step": t, "time_s": float(t), "train_loss": y}
                          for name, pts in curves.items() for t, y in pts])
    trials = pd.DataFrame({"trial_id": ["fast", "slow"], "workload": "w", "seed": 0,
                           "optimizer": ["fast", "slow"], "status": ["diverged", "completed"],
                           "final.train_loss": [math.nan, 1.0]})
    (fig,) = figures.performance_profile(trials, tmp_path, steps=steps)
    got = pd.read_csv(fig.csv_path).groupby("line")["fraction"]
    assert got.max().to_dict() == {"fast": 0.0, "slow": 1.0}


def test_profile_of_best_configurations_has_one_line_per_optimizer(drawn):
    assert set(_csv(drawn["profile_best"], "profile_best")["line"]) == {"hf", "sgd"}


def test_profile_without_targets_or_curves_gives_no_figure(frames, tmp_path):
    _, trials = frames
    assert figures.performance_profile(trials.drop(columns=TARGET), tmp_path) == []


# ----------------------------------------------------------------------------- HF diagnostics


def test_hf_diagnostics_are_per_step_medians_of_hf_runs(frames, drawn):
    steps, _ = frames
    got = _csv(drawn["hf"], "hf_clf")
    assert set(got["line"]) == {"hf(damping=1.0)", "hf(damping=100.0)"}
    assert set(got["metric"]) == {"cg_iters", "lambda", "rho", "cond_est"}
    st = steps[(steps["workload"] == "clf") & (steps["kind"] == "step")
               & (steps["optimizer"] == "hf")]
    for metric in ("lambda", "cg_iters"):
        want = st.groupby(["label", "step"])[metric].median()
        sel = got[got["metric"] == metric].set_index(["line", "x"]).sort_index()["median"]
        np.testing.assert_allclose(sel.to_numpy(), want.to_numpy())


def test_condition_falls_back_to_the_ritz_ratio(frames, tmp_path):
    steps, _ = frames
    hf = steps[(steps["optimizer"] == "hf") & (steps["workload"] == "clf")]
    hf = hf.drop(columns="cond_est").assign(ritz_max=hf["cond_est"] * 2, ritz_min=2.0)
    (fig,) = figures.hf_diagnostics(hf, tmp_path)
    got = pd.read_csv(fig.csv_path)
    got = got[got["metric"] == "cond_est"].set_index(["line", "x"]).sort_index()["median"]
    want = hf[hf["kind"] == "step"].groupby(["label", "step"])["ritz_max"].median() / 2.0
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy())


# ----------------------------------------------------------------------------- robustness


def test_output_is_byte_identical_across_runs(frames, tmp_path):
    steps, trials = frames
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        figures.curves(steps, out)
        figures.performance_profile(trials, out, steps=steps)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 9
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("call", [
    lambda s, t, out: figures.curves(s, out),
    lambda s, t, out: figures.best_per_optimizer(s, t, out),
    lambda s, t, out: figures.sensitivity(t, out),
    lambda s, t, out: figures.performance_profile(t, out, steps=s),
    lambda s, t, out: figures.hf_diagnostics(s, out),
], ids=["curves", "best", "sensitivity", "profile", "hf"])
@pytest.mark.parametrize("data", ["empty", "no_columns", "no_rows", "failed_only"])
def test_missing_data_gives_no_figure(frames, tmp_path, call, data):
    steps, trials = frames
    if data == "empty":
        s, t = pd.DataFrame(), pd.DataFrame()
    elif data == "no_columns":  # identity only: no curves, finals, params or targets
        keep = ["trial_id", "workload", "optimizer", "seed", "kind"]
        s, t = steps[keep], trials[keep[:-1]]
    elif data == "no_rows":
        s, t = steps.iloc[0:0], trials.iloc[0:0]
    else:  # failed trials: one identity row each, no numbers
        s = trials[["trial_id", "workload", "optimizer", "seed"]].assign(kind="trial")
        t = trials[["trial_id", "workload", "optimizer", "seed", "label"]]
    assert call(s, t, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_sgd_only_runs_have_no_hf_diagnostics(frames, tmp_path):
    steps, _ = frames
    assert figures.hf_diagnostics(steps[steps["optimizer"] == "sgd"], tmp_path) == []


# ----------------------------------------------------------------------------- style


def test_line_styles_fix_a_colour_per_label_whatever_the_order():
    keys = ["sgd(lr=0.1)", "hf", "sgn(cg_iters=5)", "hf"]
    looks = style.line_styles(keys)
    assert looks == style.line_styles(reversed(keys))
    assert set(looks) == {"hf", "sgd(lr=0.1)", "sgn(cg_iters=5)"}
    colors = [v["color"] for v in looks.values()]
    assert len(set(colors)) == 3 and set(colors) <= set(style.TOL_MUTED)


def test_more_lines_than_colours_change_the_dash():
    looks = style.line_styles([f"c{i:02d}" for i in range(12)])
    pairs = {(v["color"], v["linestyle"]) for v in looks.values()}
    assert len(pairs) == 12


def test_axis_labels_carry_units():
    assert style.axis_label("time_s") == "wall time (s)"
    assert [style.axis_label(x) for x in ("epoch", "step", "grad_passes")] == [
        "epochs", "iterations", "gradient passes"]
