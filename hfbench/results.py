"""Reading a results folder: one record per trial, as a long-format DataFrame.

    df = hfbench.results.load("results/")

One row per step (kind="step": batch_loss, cg_iters, lambda, rho, counts) and one
per evaluation (kind="eval": train_loss, test_loss, test_accuracy, ...), each
carrying the trial's identity columns (trial_id, suite, workload, optimizer,
algorithm, backend, device, seed, status). Records are JSON; non-finite numbers
are stored as the strings "nan"/"inf" and read back as floats.
"""

from __future__ import annotations

import json
import math
import pathlib

from .errors import HFBenchError

ID_COLUMNS = ("trial_id", "suite", "workload", "optimizer", "algorithm", "backend", "device",
              "seed", "status")
COLUMNS = ID_COLUMNS + ("kind", "step", "epoch", "time_s", "train_loss", "test_loss",
                        "test_accuracy", "n_grad", "n_gv", "cg_iters")


def records(results_dir) -> list[dict]:
    """Every trial record in `results_dir` (temporary files of interrupted writes skipped)."""
    folder = pathlib.Path(results_dir)
    if not folder.is_dir():
        raise HFBenchError(
            f"results folder {str(folder)!r} does not exist; run a suite first "
            "(hfbench run SUITE --results DIR)"
        )
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(_floats(json.loads(path.read_text())))
        except ValueError as exc:
            raise HFBenchError(f"{path}: not a valid trial record ({exc}); delete it and rerun") from None
    return out


def identity(rec: dict) -> dict:
    cfg = rec.get("config", {})
    return {
        "trial_id": rec.get("trial_id"), "suite": rec.get("suite"),
        "workload": cfg.get("workload"), "optimizer": cfg.get("optimizer"),
        "algorithm": cfg.get("algorithm"), "backend": cfg.get("backend"),
        "device": cfg.get("device"), "seed": cfg.get("seed"), "status": rec.get("status"),
    }


def load(results_dir):
    """A pandas DataFrame in long format (see the module docstring)."""
    try:
        import pandas as pd
    except ImportError:
        raise HFBenchError("results.load needs pandas: pip install pandas") from None
    rows = []
    for rec in records(results_dir):
        ident = identity(rec)
        rows += [{**ident, "kind": "step", **s} for s in rec.get("steps", [])]
        rows += [{**ident, "kind": "eval", **e} for e in rec.get("evals", [])]
        if not rec.get("steps") and not rec.get("evals"):
            rows.append({**ident, "kind": "trial"})  # failed trials still show up
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = math.nan
    return df[list(COLUMNS) + [c for c in df.columns if c not in COLUMNS]]


def _floats(obj):
    if isinstance(obj, dict):
        return {k: _floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_floats(v) for v in obj]
    if obj in ("nan", "inf", "-inf"):
        return float(obj)
    return obj
