"""Report tables and seed statistics, checked against numbers computed here by hand.

Each expected cell is worked out in the test itself (statistics.mean/stdev, or by
listing sign flips), never taken from what the code printed.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import statistics
import subprocess

import pandas as pd
import pytest

from hfbench.report import stats, tables
from hfbench.report.tables import Cell, Table

INF = math.inf
SGD, SGD_SLOW, SGN = "sgd(lr=0.1)", "sgd(lr=0.01)", "sgn(cg_iters=5)"
TARGET = "target.test_accuracy>=0.9"


def trial(label, algorithm, seed, status="completed", backend="torch", **cols):
    """One row of the trials DataFrame; `cols` uses __ for '.' (final__train_loss)."""
    return {"trial_id": f"{label}/{backend}/{seed}", "suite": "s", "workload": "mnist",
            "optimizer": label.split("(")[0], "algorithm": algorithm, "label": label,
            "backend": backend, "device": "cpu", "dtype": "float32", "seed": seed,
            "status": status, "config_id": label,
            **{k.replace("__", "."): v for k, v in cols.items()}}


def configs(**per_label) -> pd.DataFrame:
    """Rows from {label: (algorithm, backend, {column: [value per seed]}, [status per seed])}."""
    rows = []
    for label, (algorithm, backend, cols, status) in per_label.items():
        for seed in range(len(status)):
            values = {c: v[seed] for c, v in cols.items()}
            rows.append(trial(label.split("@")[0], algorithm, seed, status[seed], backend,
                              **values))
    return pd.DataFrame(rows)


OK3 = ["completed"] * 3


@pytest.fixture
def df():
    return configs(**{
        SGD: ("sgd", "torch", {
            "final__train_loss": [1.0, 2.0, 3.0], "final__test_loss": [0.3, 0.4, 0.5],
            "final__test_accuracy": [0.80, 0.82, 0.84], "train_time_s": [10.0, 12.0, 14.0],
            f"{TARGET}.time_s": [10.0, INF, 20.0], f"{TARGET}.iterations": [100.0, INF, 300.0],
            "mark.10s.test_accuracy": [0.5, 0.6, math.nan], "mark.10s.epoch": [1.0, 2.0, math.nan],
            "mark.2s.test_accuracy": [0.1, 0.2, 0.3], "mark.2s.epoch": [0.5, 0.5, 0.5],
            "cost__n_grad": [1.0] * 3, "cost__n_gv": [0.0] * 3, "cost__n_fwd": [0.0] * 3,
            "cost__n_curv": [0.0] * 3, "cost__n_precond": [0.0] * 3,
            "cost__step_s": [0.01, 0.02, 0.03]}, OK3),
        SGN: ("sgn", "torch", {
            "final__train_loss": [0.5, 0.5, 0.8], "final__test_loss": [0.2, INF, 0.1],
            "final__test_accuracy": [0.90, 0.91, 0.95], "train_time_s": [20.0, 20.0, 20.0],
            f"{TARGET}.time_s": [10.0, 20.0, 30.0], f"{TARGET}.iterations": [5.0, 6.0, 7.0],
            "mark.10s.test_accuracy": [0.9, 0.9, 0.9], "mark.10s.epoch": [3.0, 3.0, 3.0],
            "mark.2s.test_accuracy": [0.4, 0.5, 0.6], "mark.2s.epoch": [1.0, 1.0, 1.0],
            "cost__n_grad": [1.0] * 3, "cost__n_gv": [10.0, 12.0, 14.0], "cost__n_fwd": [2.0] * 3,
            "cost__n_curv": [1.0] * 3, "cost__n_precond": [1.0] * 3,
            "cost__step_s": [0.5, 0.5, 0.5]}, ["completed", "diverged", "completed"]),
    })


def md_row(markdown: str, label: str) -> list[str]:
    """The cells of the Markdown row whose first cell is `label`."""
    line = next(r for r in markdown.splitlines() if r.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def md_header(markdown: str) -> list[str]:
    line = next(r for r in markdown.splitlines() if r.startswith("| label |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def cell(markdown: str, label: str, header: str) -> str:
    return md_row(markdown, label)[md_header(markdown).index(header)]


def mean_std(values, decimals: int, n_decimals_std: int | None = None) -> str:
    """'mean ± std (n)' formatted by hand with fixed decimals."""
    m, s = statistics.mean(values), statistics.stdev(values)
    return f"{m:.{decimals}f} ± {s:.{n_decimals_std or decimals}f} ({len(values)})"


# ----------------------------------------------------------------------------- stats


def test_summarize_mean_std_n():
    s = stats.summarize([1.0, 2.0, math.nan, 3.0])  # NaN is "no value": left out
    assert (s.mean, s.std, s.n, s.n_inf) == (2.0, 1.0, 3, 0)
    one = stats.summarize([4.0])
    assert one.mean == 4.0 and math.isnan(one.std) and one.n == 1


def test_summarize_never_averages_infinity():
    s = stats.summarize([0.2, INF, 0.1])
    assert s.mean == INF and math.isnan(s.std) and (s.n, s.n_inf) == (3, 1)
    assert math.isnan(stats.summarize([]).mean) and stats.summarize([]).n == 0


def test_bootstrap_ci_clear_case_contains_true_difference_and_excludes_zero():
    a = [9.0, 10.0, 11.0, 9.5, 10.5]  # mean 10
    b = [-1.0, 0.0, 1.0, -0.5, 0.5]  # mean 0: true difference 10
    for paired in (True, False):
        ci = stats.bootstrap_diff_ci(a, b, paired=paired)
        assert ci.estimate == pytest.approx(10.0)
        assert ci.low <= 10.0 <= ci.high and stats.significant(ci)
        # every resampled difference lies in [min(a) - max(b), max(a) - min(b)] = [8, 12]
        assert 8.0 <= ci.low and ci.high <= 12.0


def test_bootstrap_ci_identical_samples_include_zero():
    a = [1.0, 2.0, 3.0, 4.0]
    paired = stats.bootstrap_diff_ci(a, list(a), paired=True)
    assert (paired.low, paired.high) == (0.0, 0.0) and not stats.significant(paired)
    unpaired = stats.bootstrap_diff_ci(a, list(a), paired=False)
    assert unpaired.low < 0.0 < unpaired.high and not stats.significant(unpaired)


def test_bootstrap_ci_infinities():
    undefined = stats.bootstrap_diff_ci([1.0, INF, 2.0], [INF, 3.0, 4.0], paired=False)
    assert math.isnan(undefined.low) and math.isnan(undefined.high)
    assert "undefined" in undefined.note and not stats.significant(undefined)
    one_sided = stats.bootstrap_diff_ci([1.0, INF, 2.0], [1.0, 2.0, 3.0], paired=True)
    assert one_sided.estimate == INF and one_sided.high == INF and one_sided.note == ""


def test_bootstrap_ci_too_few_and_misaligned():
    assert "at least 2" in stats.bootstrap_diff_ci([1.0], [2.0, 3.0], paired=False).note
    with pytest.raises(ValueError, match="equal lengths"):
        stats.bootstrap_diff_ci([1.0, 2.0], [1.0, 2.0, 3.0], paired=True)


def test_bootstrap_ci_is_deterministic():
    a, b = [1.0, 3.0, 2.0, 5.0], [0.0, 1.0, 1.5, 2.0]
    assert stats.bootstrap_diff_ci(a, b, True) == stats.bootstrap_diff_ci(a, b, True)


def test_permutation_p_n3_by_hand():
    # d = (1, 2, 3), |Σd| = 6. The 8 sign flips give Σ s·d =
    # +6, 0, +2, -4, +4, -2, 0, -6; |.| >= 6 for 2 of them: p = 2/8.
    assert stats.paired_permutation_p([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]) == 0.25


def test_permutation_p_n4_by_hand():
    # d = (2, 1, 1, -1), |Σd| = 3. Flips of the 2 (s0) and of three ±1 terms (sum t in
    # {3, 1, -1, -3} in 1, 3, 3, 1 ways): |2·s0 + t| >= 3 for s0=+1, t in {3, 1}
    # (1 + 3 ways) and s0=-1, t in {-3, -1} (1 + 3 ways): p = 8/16.
    a, b = [3.0, 2.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]
    assert stats.paired_permutation_p(a, b) == 0.5
    d = [x - y for x, y in zip(a, b)]
    flips = list(itertools.product((1, -1), repeat=4))
    listed = sum(abs(sum(s * x for s, x in zip(f, d))) >= abs(sum(d)) for f in flips)
    assert listed / len(flips) == 0.5


def test_permutation_p_edge_cases():
    assert stats.paired_permutation_p([1.0, 2.0], [1.0, 2.0]) == 1.0  # all ties
    assert math.isnan(stats.paired_permutation_p([1.0, INF], [0.0, 0.0]))


# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("x, text", [
    (0.5, "0.5000"), (12.3, "12.30"), (-2.5, "-2.500"), (9.99996, "10.00"), (1234.5, "1234"),
    (1.23456e-5, "1.235e-05"), (123456.0, "1.235e+05"), (0.0, "0"), (INF, "∞"),
    (math.nan, "—"),
])
def test_fmt_num_four_significant_digits(x, text):
    assert tables.fmt_num(x) == text


def test_table_latex_booktabs_escapes_and_bold():
    t = Table(title="a_b 5% & c", headers=("x_y", "value"),
              rows=[["p&q_r 50%", Cell("1.000", 1.0)], ["s", Cell("∞", INF)]],
              footnotes=("# of ~ trials",), best=(None, "min"))
    tex = t.to_latex()
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    assert r"a\_b 5\% \& c" in tex and r"x\_y & value \\" in tex
    assert r"p\&q\_r 50\% & \textbf{1.000} \\" in tex and r"s & $\infty$ \\" in tex
    assert r"\# of \textasciitilde{} trials" in tex and r"\begin{tabular}{lr}" in tex
    assert not re.search(r"(?<!\\)[_%#]", tex)  # nothing left unescaped
    md = t.to_markdown()
    assert "| p&q_r 50% | **1.000** |" in md and "| s | ∞ |" in md and "| :--- | ---: |" in md


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="2 cells"):
        Table(title="t", headers=("a", "b"), rows=[["only one"]])


# ----------------------------------------------------------------------------- builders


def test_summary_table_mean_std_best_and_status(df):
    [table] = tables.summary_table(df)
    md, tex = table.to_markdown(), table.to_latex()
    assert md_header(md) == ["label", "backend", "train_loss", "test_loss", "test_accuracy",
                             "train time (s)", "status"]
    # min for losses: SGN's seed 1 diverged, so its loss is ∞ and SGD's 2.000 ± 1.000 is best
    assert cell(md, SGD, "train_loss") == f"**{mean_std([1, 2, 3], 3)}**"
    assert cell(md, SGD, "train_loss") == "**2.000 ± 1.000 (3)**"
    assert cell(md, SGN, "train_loss") == "∞ (1 of 3 ∞)"  # a diverged seed's loss, not dropped
    # max for accuracy: 0.92 ± 0.02646 (std below 0.1: five decimals for 4 digits)
    assert cell(md, SGN, "test_accuracy") == f"**{mean_std([0.90, 0.91, 0.95], 4, 5)}**"
    assert cell(md, SGD, "train time (s)") == mean_std([10, 12, 14], 2, 3)  # a budget: no best
    assert cell(md, SGD, "status") == "3 ok" and cell(md, SGN, "status") == "2 ok, 1 diverged"
    sgn_tex = next(r for r in tex.splitlines() if r.startswith(r"sgn(cg\_iters=5) &"))
    assert r"$\infty$" in sgn_tex
    assert r"\textbf{2.000 $\pm$ 1.000 (3)}" in tex


def test_summary_table_infinity_shown_not_averaged(df):
    md = tables.summary_table(df)[0].to_markdown()
    assert cell(md, SGN, "test_loss") == "∞ (1 of 3 ∞)"  # not the mean of 0.2, inf, 0.1
    assert cell(md, SGD, "test_loss") == f"**{mean_std([0.3, 0.4, 0.5], 4)}**"
    assert "inf" not in md.replace("infinite", "")


def test_summary_table_shows_dtype_only_when_it_varies(df):
    assert "dtype" not in md_header(tables.summary_table(df)[0].to_markdown())
    extra = trial(SGN, "sgn", 0, **{"final.train_loss": 0.1})
    extra["dtype"] = "float64"
    md = tables.summary_table(pd.concat([df, pd.DataFrame([extra])]))[0].to_markdown()
    assert md_header(md)[:3] == ["label", "backend", "dtype"]


def test_targets_table_inf_with_hit_count(df):
    [table] = tables.targets_table(df)
    md = table.to_markdown()
    t_col, it_col = f"{TARGET[7:]}: time (s)", f"{TARGET[7:]}: iterations"
    assert md_header(md)[2:] == [t_col, it_col]
    assert cell(md, SGD, t_col) == "∞ (2/3)"  # one miss: never averaged, never dropped
    assert cell(md, SGN, t_col) == f"**{statistics.mean([10, 20, 30]):.2f} ± " \
                                   f"{statistics.stdev([10, 20, 30]):.2f} (3/3)**"
    assert cell(md, SGN, it_col) == "**6.000 ± 1.000 (3/3)**"
    assert r"$\infty$ (2/3)" in table.to_latex()


def test_targets_table_counts_a_missing_value_as_a_miss(df):
    df.loc[(df.label == SGN) & (df.seed == 1), f"{TARGET}.iterations"] = math.nan
    md = tables.targets_table(df)[0].to_markdown()
    assert cell(md, SGN, f"{TARGET[7:]}: iterations") == "∞ (2/3)"


def test_time_budget_table_marks_in_time_order(df):
    [table] = tables.time_budget_table(df)
    md = table.to_markdown()
    assert md_header(md)[2:] == ["seeds", "test_accuracy @ 2 s", "epochs @ 2 s",
                                 "test_accuracy @ 10 s", "epochs @ 10 s"]
    # seed 2 of SGD stopped before 10 s: two values, n = 2
    assert cell(md, SGD, "test_accuracy @ 10 s") == mean_std([0.5, 0.6], 4, 5)
    assert cell(md, SGD, "epochs @ 10 s") == mean_std([1.0, 2.0], 3, 4)
    assert cell(md, SGN, "test_accuracy @ 10 s").startswith("**0.9000 ± 0 (3)")
    assert cell(md, SGN, "epochs @ 2 s") == "1.000 ± 0 (3)"  # epochs: no best rule
    assert cell(md, SGD, "seeds") == "3"


def test_cost_table_gradient_equivalents(df):
    [table] = tables.cost_table(df)
    md = table.to_markdown()
    # SGN per step: 1 grad + 0.5·1 curv + n_gv + 1 precond + 0.5·2 fwd = 3.5 + n_gv
    total = statistics.mean(3.5 + gv for gv in (10, 12, 14))
    assert cell(md, SGN, "total (grad eq.)") == f"{total:.2f}" == "15.50"
    assert cell(md, SGD, "total (grad eq.)") == "**1.000**"
    assert cell(md, SGN, "CG (Gv) (grad eq.)") == "12.00"
    assert cell(md, SGD, "step (s)") == "**0.02000**"
    assert cell(md, SGN, "phases (s)") == "—" and "profile=True" in md


def test_cost_table_seconds_when_profiled(df):
    df["cost.t_cg"] = [math.nan] * 3 + [0.1, 0.2, 0.3]
    df["cost.t_backtrack"] = [math.nan] * 3 + [0.01] * 3
    df["cost.t_line_search"] = [math.nan] * 3 + [0.03] * 3
    md = tables.cost_table(df)[0].to_markdown()
    assert cell(md, SGN, "CG (Gv) (s)") == f"{statistics.mean([0.1, 0.2, 0.3]):.4f}"
    assert cell(md, SGN, "forward / line search (s)") == "0.04000"  # 0.01 + 0.03
    assert cell(md, SGD, "CG (Gv) (s)") == "—" and "profile=True" not in md


@pytest.fixture
def three_configs(df):
    slow = configs(**{SGD_SLOW: ("sgd", "torch", {"final__train_loss": [4.0, 5.0, 6.0]}, OK3),
                      f"{SGD}@jax": ("sgd", "jax", {"final__train_loss": [1.0, 2.0, 3.0]}, OK3)})
    return pd.concat([df, slow], ignore_index=True)


def test_significance_table_default_baseline_and_cis(three_configs):
    [table] = tables.significance_table(three_configs, "train_loss")
    md = table.to_markdown()
    # the best sgd has mean 2: sgd(lr=0.1) on jax and on torch tie; the key order
    # (label, backend, ...) breaks the tie, so jax is the baseline
    assert "Baseline: sgd(lr=0.1) / jax." in md
    assert md_row(md, SGD)[:4] == [SGD, "jax", "2.000 ± 1.000 (3)", "baseline"]
    # SGN vs baseline, paired by seed: d = (-0.5, -1.5, -2.2), Δ = -1.4
    sgn = md_row(md, SGN)
    assert sgn[3] == "-1.400" and sgn[5] == "paired (3)"
    low, high = (float(x) for x in sgn[4].strip("[]").split(", "))
    assert -2.2 <= low <= -1.4 <= high <= -0.5
    assert sgn[6] == "0.2500"  # |Σ±d| >= 4.2 only for the two uniform flips: 2/8
    # sgd(lr=0.01) is 3 above on every seed: the interval is exactly [3, 3]
    assert md_row(md, SGD_SLOW)[3:5] == ["3.000", "[3.000, 3.000]"]
    assert "† the 95% CI includes 0" in md


def test_significance_table_marks_non_significant(three_configs):
    md = tables.significance_table(three_configs, "final.train_loss",
                                   baseline={"label": SGD, "backend": "torch"})[0].to_markdown()
    jax = next(r for r in md.splitlines() if r.startswith(f"| {SGD} | jax |"))
    assert "| 0 † | [0, 0] | paired (3) | 1.000 |" in jax  # identical seeds: Δ = 0, n.s.
    assert "Baseline: sgd(lr=0.1) / torch" in md
    assert tables.significance_table(three_configs, "train_loss", baseline="nope") == []
    with pytest.raises(ValueError, match="baseline keys"):
        tables.significance_table(three_configs, "train_loss", baseline={"algorithm": "sgd"})


def test_significance_table_unpaired_and_undefined(df):
    df.loc[(df.label == SGN) & (df.seed == 2), "seed"] = 7  # seed sets differ: unpaired
    df.loc[df.label == SGD, "final.test_loss"] = [0.3, INF, 0.5]
    md = tables.significance_table(df, "test_loss", baseline=SGD)[0].to_markdown()
    sgn = md_row(md, SGN)
    assert sgn[4:7] == ["undefined", "unpaired", "—"] and "inf - inf" in md


def test_builders_without_their_columns_return_empty():
    bare = pd.DataFrame([{"workload": "w", "label": "a", "seed": 0}])
    builders = (tables.summary_table, tables.time_budget_table, tables.targets_table,
                tables.cost_table)
    for build in builders:
        assert build(bare) == [] and build(pd.DataFrame()) == []
        assert build(pd.DataFrame([{"x": 1.0}])) == []
    assert tables.significance_table(bare, "final.test_loss") == []
    assert tables.significance_table(pd.DataFrame(), "test_loss") == []


def _render_all(frame) -> str:
    out = [t.to_markdown() + t.to_latex() for build in (
        tables.summary_table, tables.time_budget_table, tables.targets_table, tables.cost_table)
        for t in build(frame)]
    out += [t.to_markdown() + t.to_latex() for t in tables.significance_table(frame, "train_loss")]
    return "".join(out)


def test_output_is_byte_identical_across_calls_and_row_orders(three_configs):
    first = _render_all(three_configs)
    assert first == _render_all(three_configs)
    shuffled = three_configs.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert first == _render_all(shuffled)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH")
def test_latex_compiles(three_configs, tmp_path):
    body = "".join(t.to_latex() for build in (tables.summary_table, tables.targets_table,
                                              tables.time_budget_table, tables.cost_table)
                   for t in build(three_configs))
    body += "".join(t.to_latex() for t in tables.significance_table(three_configs, "train_loss"))
    doc = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
           "\\usepackage[margin=0.5in,landscape]{geometry}\n\\begin{document}\n"
           + body + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
