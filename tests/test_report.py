"""`hfbench report`: the page, its links, the missing section, determinism, --compare, errors.

Built from hand-made records (tests/test_results.py's `make_record`) whose numbers
are known here; tables' own arithmetic is checked in test_report_tables.py.
"""

from __future__ import annotations

import copy
import html.parser
import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("pandas", reason="reports need pandas (the results extra)")

from hfbench.errors import HFBenchError  # noqa: E402
from hfbench.report.build import build  # noqa: E402
from test_results import make_record, write  # noqa: E402


def _sgd(trial_id, seed, loss, time_s, **kw):
    rec = make_record(trial_id, optimizer="sgd", options={"lr": 0.1}, seed=seed, **kw)
    rec["final"]["train_loss"] = loss
    rec["train_time_s"] = time_s
    return rec


def folder(tmp_path, name="res", times=(0.2, 0.2, 0.2)):
    """hf (3 seeds, one diverged) and sgd (3 seeds) on one workload."""
    d = tmp_path / name
    recs = [make_record(f"hf{s}", seed=s) for s in range(3)]
    recs[2].update(status="diverged", diverged_at=2, final=None)
    recs += [_sgd(f"sgd{s}", s, 1.0 + 0.1 * s, times[s]) for s in range(3)]
    write(d, *recs)
    return d


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("href", "src")]


def test_page_links_resolve_and_nothing_is_fetched(tmp_path):
    rep = build(folder(tmp_path), tmp_path / "out", csv=True, figures=False)
    page = rep.index.read_text()
    parser = Links()
    parser.feed(page)
    parser.close()
    files = [r for r in parser.refs if not r.startswith("#")]
    assert files, "the page links its tables"
    for ref in files:
        assert "://" not in ref and not ref.startswith("//"), ref  # opens offline
        assert (rep.out_dir / ref).is_file(), ref
    assert "<script" not in page and "@import" not in page


def test_diverged_trial_is_infinite_not_averaged(tmp_path):
    rep = build(folder(tmp_path), tmp_path / "out", figures=False)
    md = (rep.out_dir / "tables.md").read_text()
    hf_row = next(line for line in md.splitlines() if line.startswith("| hf |"))
    # two finite seeds (1.4 each) and a diverged one: never averaged to a number
    assert "1 diverged" in hf_row and "∞ (1 of 3 ∞)" in hf_row  # its train and test loss
    sgd_row = next(line for line in md.splitlines() if line.startswith("| sgd |"))
    assert "1.100 ± 0.1000 (3)" in sgd_row  # mean and std of 1.0, 1.1, 1.2


def test_same_records_give_identical_files(tmp_path):
    d = folder(tmp_path)
    a = build(d, tmp_path / "a", csv=True, figures=False).out_dir
    b = build(d, tmp_path / "b", csv=True, figures=False).out_dir
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_corrupt_file_and_missing_trials_are_listed(tmp_path):
    d = folder(tmp_path)
    (d / "torn.json").write_text('{"status": "compl')
    smoke = copy.deepcopy(make_record("not-a-smoke-id"))
    smoke["suite"] = smoke["config"]["suite"] = "smoke"
    write(d, smoke)
    with pytest.warns(UserWarning, match="torn.json"):
        rep = build(d, tmp_path / "out", figures=False)
    text = "\n".join(rep.missing)
    assert "torn.json" in text
    assert "suite 'smoke':" in text and "trials missing" in text
    assert "torn.json" in rep.index.read_text()


def test_partly_failed_suite_reports_what_it_has(tmp_path):
    d = folder(tmp_path)
    failed = make_record("boom", seed=7, status="failed", final=None, steps=[], evals=[])
    write(d, failed)
    rep = build(d, tmp_path / "out", figures=False)
    assert any("boom" in line and "failed" in line for line in rep.missing)
    assert rep.tables  # the rest is still reported


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hfbench.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("contents", ["empty", "foreign", "absent"])
def test_empty_or_foreign_folder_is_a_clear_error(tmp_path, contents):
    d = tmp_path / "r"
    if contents != "absent":
        d.mkdir()
    if contents == "foreign":
        (d / "notes.json").write_text(json.dumps({"hello": 1}))
    proc = _cli("report", str(d), "--out", str(tmp_path / "o"), "--no-figures")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and str(d) in proc.stderr.replace("\n", "")
    with pytest.raises(HFBenchError):
        build(d, tmp_path / "o2", figures=False)


def test_compare_gives_time_ratios_and_metric_differences(tmp_path):
    a = folder(tmp_path, "a", times=(0.2, 0.2, 0.2))
    b = folder(tmp_path, "b", times=(0.4, 0.4, 0.4))
    proc = _cli("report", "--compare", str(a), str(b), "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = [c.strip() for c in next(x for x in lines if x.startswith("| workload")).strip("|").split("|")]
    sgd = next(line for line in lines if line.startswith("| digits_mlp | sgd |"))
    row = dict(zip(head, (c.strip() for c in sgd.strip("|").split("|"))))
    assert row["seeds (A/B)"] == "3/3"
    assert row["train time B/A"] == "2.000"  # 0.4 s / 0.2 s
    assert row["train_loss A"] == row["train_loss B"] == "1.100"
    assert row["Δ train_loss (B−A) [95% CI]"].startswith("0 ")  # same losses: no difference
    assert (tmp_path / "cmp" / "compare.tex").read_text().count("\\toprule") == 1


def test_cli_report_writes_the_page(tmp_path):
    d = folder(tmp_path)
    proc = _cli("report", str(d), "--out", str(tmp_path / "o"), "--no-figures", "--csv")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "index.html").is_file()
    assert (tmp_path / "o" / "data" / "trials.csv").is_file()
    assert "index.html" in proc.stdout


def test_report_with_figures_links_every_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (the report extra)")
    rep = build(folder(tmp_path), tmp_path / "out", figures=True)
    assert rep.figures
    page = rep.index.read_text()
    for f in rep.figures:
        stem = pathlib.Path(f.path_stem)
        for ext in (".png", ".pdf"):
            assert stem.with_suffix(ext).is_file()
        assert f"{stem.relative_to(rep.out_dir)}.png" in page
