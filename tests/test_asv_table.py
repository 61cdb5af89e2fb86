"""benchmarks/asv_table.py reads asv 0.6 result files (format 2) into Markdown tables.

An oracle test: a hand-made result file in tmp_path, in the layout asv writes
(`<results>/<machine>/<hash[:8]>-<env>.json` beside `machine.json`), whose values the
tables must show, each in its row and column, with asv's parameter reprs decoded and
its skipped (NaN) and failed (None) values marked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import asv_table  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
           "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
           "samples", "profile"]
BACKENDS = ["'torch'", "'jax'"]
MODELS = ["'mlp'", "'autoencoder'"]
STARTED = 1_700_000_000_000  # ms since the epoch: 2023-11-14 22:13 UTC


def _row(values, params):
    """One "results" row as asv 0.6 writes it (statistics omitted: trailing Nones)."""
    return [values, params, "f" * 64, STARTED, 1.5] + [None] * (len(COLUMNS) - 5)


def _write(tmp_path: Path) -> Path:
    bm = [BACKENDS, MODELS]
    ratios = {  # product order: torch-mlp, torch-autoencoder, jax-mlp, jax-autoencoder
        "track_gv_over_grad": [1.21, 1.05, 1.1, None],
        "track_hv_over_grad": [2.5, 2.25, 2.0, 1.75],
        "track_fisher_v_over_grad": [1.5, 1.25, 1.125, 1.0],
        "track_precondition_over_grad": [1.3, 1.4, float("nan"), 1.2],
        "track_curvature_setup_over_grad": [0.5, 0.75, 0.625, 0.875],
    }
    results = {f"ratios.CurvatureRatios.{k}": _row(v, bm) for k, v in ratios.items()}
    results["ratios.CGOverhead.track_cg_overhead"] = _row([1.5, 1.02, 2.0, 1.01], bm)
    results["counts.HFStepCounts.track_cg_iters"] = _row([12, 30, 12, 31], bm)
    results["counts.HFStepCounts.track_gv_products"] = _row([12, 30, 12, 31], bm)
    phases = ["'grad_curvature'", "'precondition'", "'cg'", "'backtrack'", "'update'", "'total'"]
    split = []
    for _ in range(4):  # every backend x model: 0.01 + 0.005 + 0.03 + 0.004 + 0.001 = 0.05 s
        split += [0.01, 0.005, 0.03, 0.004, 0.001, 0.05]
    results["counts.HFStepSplit.track_phase_seconds"] = _row(split, [BACKENDS, MODELS, phases])
    results["harness.SGDHarness.track_runner_ms_per_step"] = _row([1.3, 0.9], [BACKENDS])
    results["harness.SGDHarness.track_hand_written_ms_per_step"] = _row([1.0, 0.75], [BACKENDS])
    results["harness.SGDHarness.track_overhead_ratio"] = _row([1.3, 1.2], [BACKENDS])
    results["primitives.Gradient.time_value_and_grad"] = _row([0.00123, 0.0201, 0.00098, 0.0562], bm)
    data = {
        "commit_hash": COMMIT, "env_name": "virtualenv-py3.11-torch2.13.0", "date": STARTED,
        "params": {"machine": "hand-made", "python": "3.11", "torch": "2.13.0"},
        "python": "3.11", "requirements": {"torch": "2.13.0"}, "env_vars": {},
        "result_columns": COLUMNS, "results": results, "durations": {}, "version": 2,
    }
    folder = tmp_path / "results" / "hand-made"
    folder.mkdir(parents=True)
    (folder / "machine.json").write_text(json.dumps(
        {"machine": "hand-made", "cpu": "Test CPU 9000", "num_cpu": "2", "arch": "x86_64",
         "os": "Linux", "version": 1}))
    (folder / f"{COMMIT[:8]}-virtualenv-py3.11-torch2.13.0.json").write_text(json.dumps(data))
    return tmp_path / "results"


def _rows(text: str, heading: str) -> list[list[str]]:
    """The body rows (cells) of the table under `## heading`."""
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def test_decode_parameterized_and_plain():
    entry = _row([1.0, 2.0, 3.0, 4.0], [BACKENDS, MODELS])
    assert asv_table.decode(entry, COLUMNS) == {
        ("torch", "mlp"): 1.0, ("torch", "autoencoder"): 2.0,
        ("jax", "mlp"): 3.0, ("jax", "autoencoder"): 4.0}
    assert asv_table.decode(_row([7.5], []), COLUMNS) == {(): 7.5}
    assert asv_table.decode(_row(7.5, []), COLUMNS) == {(): 7.5}


def test_ratio_tables_from_hand_made_results(tmp_path):
    results = _write(tmp_path)
    out = tmp_path / "asv.md"
    assert asv_table.main(["--machine", "hand-made", "--commit", COMMIT[:10], "--results-dir",
                           str(results), "--command", "asv run -E existing", "--out", str(out),
                           "--note", "a note"]) == 0
    text = out.read_text()

    assert _rows(text, "Curvature products and setups, in gradients") == [
        ["torch", "mlp", "1.21", "2.50", "1.50", "1.30", "0.50"],
        ["torch", "autoencoder", "1.05", "2.25", "1.25", "1.40", "0.75"],
        ["jax", "mlp", "1.10", "2.00", "1.12", "skipped", "0.62"],
        ["jax", "autoencoder", "failed", "1.75", "1.00", "1.20", "0.88"],
    ]
    assert _rows(text, "CG loop overhead") == [
        ["torch", "mlp", "1.50"], ["torch", "autoencoder", "1.02"],
        ["jax", "mlp", "2.00"], ["jax", "autoencoder", "1.01"]]
    assert _rows(text, "One hf step: CG work")[3] == ["jax", "autoencoder", "31", "31"]
    assert _rows(text, "One hf step: time by phase")[0] == [
        "torch", "mlp", "10.0 (20%)", "5.00 (10%)", "30.0 (60%)", "4.00 (8%)", "1.00 (2%)", "50.0"]
    assert _rows(text, "SGD through hfbench's runner against a hand-written loop") == [
        ["torch", "1.30", "1.00", "1.30"], ["jax", "0.90", "0.75", "1.20"]]
    assert _rows(text, "Times of the primitives (ms)")[1] == [
        "torch", "autoencoder", "20.1", "n/a", "n/a", "n/a", "n/a"]
    assert "_Not in this result file_ (benchmarks steps.HFStep, steps.SGDStep, steps.SGNStep)" in text

    assert "- machine: `hand-made`" in text
    assert "Test CPU 9000, 2 cores" in text
    assert f"- commit: `{COMMIT}` (commit date 2023-11-14 22:13 UTC)" in text
    assert "torch 2.13.0 (the environment's pin)" in text and "jax not recorded" in text
    assert "- command: `asv run -E existing`" in text and "- a note" in text


def test_unknown_commit_says_so(tmp_path):
    results = _write(tmp_path)
    with pytest.raises(SystemExit, match="no asv result file for commit ffff"):
        asv_table.main(["--machine", "hand-made", "--commit", "ffff", "--results-dir", str(results)])
