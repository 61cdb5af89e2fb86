"""Reading a results folder: one JSON record per trial, as records or DataFrames.

    scan = hfbench.results.scan("results/")          # Scan(records, skipped)
    df = hfbench.results.load("results/")            # a row per step and per evaluation
    tr = hfbench.results.trials("results/")          # a row per trial
    hfbench.results.export_csv("results/", "out/")   # out/trials.csv, out/steps.csv

Reading. One bad file must not cost the folder: a record torn by an older version,
a file edited by hand or a stray JSON that is not a record is skipped with a
warning naming it (`Scan.skipped`), and the rest are read. Temporary files of
interrupted writes (`.*.tmp`) are not records yet and are passed over silently. A
folder that does not exist or holds no record raises HFBenchError. Records store
non-finite numbers as the strings "nan"/"inf", read back as floats. pandas (the
`results` extra) is imported inside load, trials and export_csv only.

Configuration columns, in both frames: dtype, budget_scale, `param.<option>` (one
per resolved algorithm option, lists and dicts as JSON text), `config_id` (10 hex
characters of the SHA-1 of the whole configuration but its seed: the rows of one
config_id are one configuration's seeds) and `label`: the optimizer's name when it
has one option set in the folder, else `name(k=v, ...)` with only the options that
differ between its option sets, sorted, numbers as format(v, "g"):
`hf(damping=10)`. Backend, device and dtype are columns of their own, not in the
label.

trials(): one row per trial, sorted by (workload, optimizer, label, backend, seed):
trial_id, suite, workload, optimizer, algorithm, backend, device, dtype, seed,
status, budget_scale, label, config_id, diverged_at, train_time_s, compile_s,
iterations, epochs, grad_passes, then

- `final.<metric>`: every number of the final evaluation (NaN without one: failed
  and diverged trials have no final metrics);
- `target.<metric><op><value>.<unit>`, unit in time_s, iterations, epochs,
  grad_passes: where the first evaluation met the target; math.inf when it was
  never met or the trial diverged or failed (a run that blows up is a miss, as in
  AlgoPerf's scoring, however good it was before);
- `mark.<t>s.<metric>` and `mark.<t>s.epoch`: the first evaluation at or after t
  seconds of training (NaN when the run never got there);
- `cost.<count>`: the mean per-step increment of each cumulative count of the step
  rows (n_grad, n_gv, n_fwd, n_precond, n_curv), `cost.grad_equiv` the same in
  gradient equivalents, `cost.t_<phase>` the mean per-step seconds of each profiled
  phase, `cost.step_s` = train_time_s / iterations;
- `param.<option>`.

load(): long format, one row per step (kind="step": batch_loss, cg_iters, lambda,
rho, cumulative counts and every other number the algorithm reports) and one per
evaluation (kind="eval": train_loss, test_loss, test_accuracy, ...), each with the
identity and configuration columns; a trial with neither (failed) has one row of
kind="trial".
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
import warnings
from dataclasses import dataclass, field

from .errors import HFBenchError

__all__ = [
    "COLUMNS", "GRAD_EQUIV", "ID_COLUMNS", "Scan", "config_columns", "config_id", "export_csv",
    "identity", "is_record", "labels", "load", "records", "scan", "summary", "trials",
]


# ------------------------------------------------------------ reading a folder

RUN_HINT = "run a suite into it first (hfbench run SUITE --results DIR)"


@dataclass(frozen=True)
class Scan:
    """The records of a folder, in file-name order, and the files skipped: (path, why)."""

    records: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan(results_dir) -> Scan:
    """Read every trial record in `results_dir`; skip (with a warning) what is not one.

    Raises HFBenchError when the folder does not exist or holds no record at all.
    Non-finite numbers, stored as the strings "nan"/"inf"/"-inf", come back as floats;
    a record without a `trial_id` gets its file's name.
    """
    folder = _folder(results_dir)
    found, skipped = [], []
    for path in sorted(folder.glob("*.json")):
        rec, why = _read(path)
        if rec is None:
            skipped.append((str(path), why))
        else:
            rec.setdefault("trial_id", path.stem)
            found.append(rec)
    if not found:
        raise HFBenchError(_no_records(folder, skipped))
    for path, why in skipped:
        warnings.warn(f"{path}: skipped, not a trial record ({why}); delete it or rerun "
                      "its trial", stacklevel=2)
    return Scan(found, skipped)


def records(results_dir) -> list[dict]:
    """Every trial record in `results_dir` (see `scan`, which also lists the skipped files)."""
    return scan(results_dir).records


def is_record(obj) -> bool:
    """A trial record: a JSON object with a status string and a config object."""
    return (isinstance(obj, dict) and isinstance(obj.get("status"), str)
            and isinstance(obj.get("config"), dict))


def _folder(results_dir) -> pathlib.Path:
    folder = pathlib.Path(results_dir)
    if not folder.exists():
        raise HFBenchError(f"results folder {str(folder)!r} does not exist; {RUN_HINT}, "
                           "or pass the folder given to --results")
    if not folder.is_dir():
        raise HFBenchError(f"{str(folder)!r} is a file, not a results folder; pass the folder "
                           "that holds the trial records (one <trial_id>.json per trial)")
    return folder


def _read(path: pathlib.Path) -> tuple[dict | None, str]:
    """(the record, "") or (None, why it is not one)."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError too
        return None, f"unreadable JSON: {exc}"
    if not is_record(obj):
        return None, "valid JSON, but no 'status' and 'config' of a trial record"
    return _floats(obj), ""


def _no_records(folder: pathlib.Path, skipped: list) -> str:
    if not skipped:
        return f"results folder {str(folder)!r} holds no trial records (*.json); {RUN_HINT}"
    shown = "; ".join(f"{pathlib.Path(p).name}: {why}" for p, why in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return (f"results folder {str(folder)!r} holds no readable trial record: {len(skipped)} "
            f"JSON file(s) skipped ({shown}{more}); point at a folder written by "
            f"`hfbench run --results`, or {RUN_HINT}")


def _floats(obj):
    """The record with "nan"/"inf"/"-inf" strings (how records store them) as floats."""
    if isinstance(obj, dict):
        return {k: _floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_floats(v) for v in obj]
    if obj in ("nan", "inf", "-inf"):
        return float(obj)
    return obj


# ------------------------------------------------------- configuration columns

# Not part of a configuration: the seed (what repeats a configuration), the suite
# (a file's name, not a setting) and `params` (the options as the suite spelled
# them; `options` holds the same settings resolved, so equal settings hash alike).
NOT_CONFIGURATION = ("seed", "suite", "params")
ID_LENGTH = 10
MISSING = "-"  # an option one configuration of an optimizer has and another lacks


def options(config: dict) -> dict:
    """The resolved algorithm options (records older than `options` have only params)."""
    opts = config.get("options")
    return dict(opts if isinstance(opts, dict) else config.get("params") or {})


def param_columns(config: dict) -> dict:
    """{"param.<name>": value}; lists and dicts as JSON text."""
    return {f"param.{k}": _plain(v) for k, v in options(config).items()}


def config_id(config: dict) -> str:
    """A stable short id of the configuration without the seed (see NOT_CONFIGURATION)."""
    rest = {k: v for k, v in config.items() if k not in NOT_CONFIGURATION}
    rest["options"] = options(config)
    text = json.dumps(_canonical(rest), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:ID_LENGTH]


def labels(configs: list[dict]) -> list[str | None]:
    """The label of each configuration, from all the configurations of the folder."""
    sets = {}  # optimizer -> {option-set key: options}
    for cfg in configs:
        opts = _canonical(options(cfg))
        sets.setdefault(cfg.get("optimizer"), {})[_key(opts)] = opts
    names = {name: _names(name, s) for name, s in sets.items()}
    return [names[cfg.get("optimizer")].get(_key(_canonical(options(cfg))))
            for cfg in configs]


def _names(name, option_sets: dict) -> dict:
    """{option-set key: label} for one optimizer (None: a config without an optimizer)."""
    if name is None:
        return {}
    keys = _varying(list(option_sets.values()))
    out = {k: _label(name, opts, keys) for k, opts in option_sets.items()}
    if len(set(out.values())) < len(out):  # "g" keeps 6 digits: 0.1234561 vs 0.1234564
        out = {k: _label(name, opts, keys, exact=True) for k, opts in option_sets.items()}
    return out


def config_columns(records: list[dict]) -> list[dict]:
    """dtype, budget_scale, label, config_id and the param.* columns of each record."""
    configs = [rec.get("config") or {} for rec in records]
    return [
        {"dtype": cfg.get("dtype"), "budget_scale": cfg.get("budget_scale"), "label": label,
         "config_id": config_id(cfg), **param_columns(cfg)}
        for cfg, label in zip(configs, labels(configs))
    ]


def format_value(value, exact: bool = False) -> str:
    """An option value in a label: numbers with format(v, "g") (exact: as repr, the
    shortest text that reads back as the same number), the rest as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value) if exact else format(value, "g")
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _label(name: str, opts: dict, keys: list[str], exact: bool = False) -> str:
    if not keys:
        return name
    parts = [f"{k}={format_value(opts[k], exact) if k in opts else MISSING}" for k in keys]
    return f"{name}({', '.join(parts)})"


def _varying(option_sets: list[dict]) -> list[str]:
    """Sorted names of the options whose values are not the same in every set."""
    names = sorted({k for opts in option_sets for k in opts})
    return [k for k in names if len({_key(opts.get(k, MISSING)) for opts in option_sets}) > 1]


def _canonical(obj):
    """Integral floats as ints, so `damping: 10` and a default of 10.0 are one setting."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    return obj


def _key(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _plain(value):
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return value


# ----------------------------------------------------- one trial's summary row

# The runner's weights, hfbench.runner.trial.GRAD_EQUIV, copied so that reading
# results imports no runner (tests/test_results.py checks that the two agree).
GRAD_EQUIV = {"n_grad": 1.0, "n_gv": 1.0, "n_precond": 1.0, "n_fwd": 0.5, "n_curv": 0.5}
COUNTS = tuple(GRAD_EQUIV)
TARGET_UNITS = {"time_s": "time_s", "iterations": "iteration", "epochs": "epoch",
                "grad_passes": "grad_passes"}  # column unit -> key in a target hit / eval row
FINAL_ALWAYS = ("train_loss", "test_loss", "test_accuracy")  # columns even when no trial has them
# Keys of an evaluation row that are bookkeeping, not metrics (epoch is added apart).
NOT_METRICS = frozenset(("step", "epoch", "time_s", "grad_passes", "eval_s", "why") + COUNTS)
FAILED = ("diverged", "failed")
NAN = math.nan


def summary(rec: dict) -> dict:
    """The trial's outcome, final, target, mark and cost columns (see the module docstring)."""
    return {**outcome(rec), **final_columns(rec), **target_columns(rec), **mark_columns(rec),
            **cost_columns(rec)}


def outcome(rec: dict) -> dict:
    """diverged_at, train_time_s, compile_s, iterations, epochs, grad_passes."""
    return {
        "diverged_at": _num(rec.get("diverged_at")),
        "train_time_s": _num(rec.get("train_time_s")),
        "compile_s": _num(rec.get("compile_s")),
        "iterations": _num(rec.get("iterations")),
        "epochs": _num(rec.get("epochs")),
        "grad_passes": total_grad_passes(rec),
    }


def total_grad_passes(rec: dict) -> float:
    """Gradient passes spent: the final evaluation's, else (a diverged trial) the last
    recorded step's, else NaN."""
    for row in (rec.get("final"), *(rec.get("steps") or [])[-1:]):
        if isinstance(row, dict) and _is_number(row.get("grad_passes")):
            return float(row["grad_passes"])
    return NAN


def final_columns(rec: dict) -> dict:
    final = rec.get("final") if isinstance(rec.get("final"), dict) else {}
    out = {f"final.{k}": NAN for k in FINAL_ALWAYS}
    out.update({f"final.{k}": v for k, v in final.items() if _is_number(v)})
    return out


def target_name(target: dict) -> str:
    """`<metric><op><value:g>`, e.g. test_accuracy>=0.9."""
    return f"{target['metric']}{target['op']}{format(float(target['value']), 'g')}"


def target_columns(rec: dict) -> dict:
    cfg_targets = (rec.get("config") or {}).get("targets") or []
    hits = rec.get("targets") or []
    out = {}
    for i, tgt in enumerate(cfg_targets):
        hit = hits[i] if i < len(hits) and rec.get("status") not in FAILED else None
        for unit, key in TARGET_UNITS.items():
            out[f"target.{target_name(tgt)}.{unit}"] = _hit_value(rec, hit, key)
    return out


def _hit_value(rec: dict, hit, key: str) -> float:
    """The hit's value in one unit; inf for a miss. Records older than grad_passes in
    target hits take it from the evaluation that met the target."""
    if not isinstance(hit, dict):
        return math.inf
    value = hit.get(key)
    if value is None and key == "grad_passes":
        value = _eval_at(rec, hit).get("grad_passes")
    return float(value) if _is_number(value) else NAN


def _eval_at(rec: dict, hit: dict) -> dict:
    """The evaluation row the hit was read from (same step and training time)."""
    for row in rec.get("evals") or []:
        if row.get("step") == hit.get("iteration") and row.get("time_s") == hit.get("time_s"):
            return row
    return {}


def mark_columns(rec: dict) -> dict:
    cfg = rec.get("config") or {}
    marks = (cfg.get("eval") or {}).get("time_marks") or []
    at = rec.get("at_time_marks") or {}
    rows = {t: _mark_row(at, t) for t in marks}
    # a mark never reached still gets a NaN column for each metric the trial evaluates
    names = _metric_names([*(rec.get("evals") or [])[:1], *rows.values()])
    out = {}
    for t, row in rows.items():
        prefix = f"mark.{format(float(t), 'g')}s."
        out[prefix + "epoch"] = _num(row.get("epoch"))
        out.update({prefix + k: _num(row.get(k)) for k in names})
    return out


def _metric_names(rows: list[dict]) -> list[str]:
    """The metrics of evaluation rows, in first-seen order (not the bookkeeping keys)."""
    names = {k: None for row in rows for k, v in row.items()
             if k not in NOT_METRICS and _is_number(v)}
    return list(names)


def _mark_row(at: dict, t) -> dict:
    """The record's row for mark t, keyed by str(mark) as written (10 or 10.0)."""
    row = at.get(str(t))
    if row is None:
        row = next((v for k, v in at.items() if _same_number(k, t)), None)
    return row if isinstance(row, dict) else {}


def cost_columns(rec: dict) -> dict:
    steps = rec.get("steps") or []
    out = {f"cost.{k}": mean_increment([s.get(k) for s in steps]) for k in COUNTS}
    out["cost.grad_equiv"] = sum(GRAD_EQUIV[k] * out[f"cost.{k}"] for k in COUNTS)
    phases = sorted({k for s in steps for k in s if k.startswith("t_")})
    out.update({f"cost.{k}": _mean([s.get(k) for s in steps]) for k in phases})
    iterations = rec.get("iterations")
    time_s = rec.get("train_time_s")
    out["cost.step_s"] = (float(time_s) / iterations if _is_number(time_s) and _is_number(iterations)
                          and iterations > 0 else NAN)
    return out


def mean_increment(cumulative: list) -> float:
    """Mean per-step increment of a cumulative count (counted from 0 before step 1)."""
    if not cumulative or not all(_is_number(c) for c in cumulative):
        return NAN
    increments = [b - a for a, b in zip([0, *cumulative], cumulative)]
    return sum(increments) / len(increments)


def _mean(values: list) -> float:
    nums = [float(v) for v in values if _is_number(v)]
    return sum(nums) / len(nums) if nums else NAN


def _num(value) -> float:
    return float(value) if _is_number(value) else NAN


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_number(text: str, t) -> bool:
    try:
        return float(text) == float(t)
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------ DataFrames

ID_COLUMNS = ("trial_id", "suite", "workload", "optimizer", "algorithm", "backend", "device",
              "dtype", "seed", "status", "budget_scale", "label", "config_id")
COLUMNS = ID_COLUMNS + ("kind", "step", "epoch", "time_s", "train_loss", "test_loss",
                        "test_accuracy", "n_grad", "n_gv", "cg_iters")
TRIAL_ORDER = ("workload", "optimizer", "label", "backend", "seed")


def identity(rec: dict) -> dict:
    """The trial's identity columns that come from the record alone (no label, config_id)."""
    cfg = rec.get("config") or {}
    return {
        "trial_id": rec.get("trial_id"), "suite": rec.get("suite", cfg.get("suite")),
        "workload": cfg.get("workload"), "optimizer": cfg.get("optimizer"),
        "algorithm": cfg.get("algorithm"), "backend": cfg.get("backend"),
        "device": cfg.get("device"), "dtype": cfg.get("dtype"), "seed": cfg.get("seed"),
        "status": rec.get("status"), "budget_scale": cfg.get("budget_scale"),
    }


def load(results_dir):
    """Long format: one row per step (kind="step": batch_loss, cg_iters, lambda, rho,
    cumulative counts and every other number the algorithm reports) and one per
    evaluation (kind="eval": train_loss, test_loss, test_accuracy, ...), each with the
    identity and configuration columns; a trial with neither (failed) has one row of
    kind="trial". `results_dir`: a folder, or a `Scan` already read."""
    pd = _pandas("load")
    recs = _records(results_dir)
    rows = []
    for rec, cfg_cols in zip(recs, config_columns(recs)):
        ident = {**identity(rec), **cfg_cols}
        rows += [{**ident, "kind": "step", **s} for s in rec.get("steps") or []]
        rows += [{**ident, "kind": "eval", **e} for e in rec.get("evals") or []]
        if not rec.get("steps") and not rec.get("evals"):
            rows.append({**ident, "kind": "trial"})  # failed trials still show up
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = math.nan
    return df[list(COLUMNS) + [c for c in df.columns if c not in COLUMNS]]


def trials(results_dir):
    """One row per trial, sorted by (workload, optimizer, label, backend, seed): identity
    and configuration columns, outcome, `final.*`, `target.*`, `mark.*`, `cost.*` and
    `param.*` (see hfbench.results). `results_dir`: a folder, or a `Scan` already read."""
    pd = _pandas("trials")
    recs = _records(results_dir)
    rows = [trial_row(rec, cfg_cols) for rec, cfg_cols in zip(recs, config_columns(recs))]
    df = pd.DataFrame(rows)
    df = df[_trial_column_order(df.columns)]
    # trial_id last: a stable order for ties (same configuration and seed in two suites)
    df = df.sort_values([*TRIAL_ORDER, "trial_id"], kind="mergesort", na_position="last")
    return df.reset_index(drop=True)


def trial_row(rec: dict, cfg_cols: dict) -> dict:
    """The trials() row of one record, given its configuration columns."""
    params = {k: v for k, v in cfg_cols.items() if k.startswith("param.")}
    ident = {**identity(rec), **{k: v for k, v in cfg_cols.items() if k not in params}}
    return {**ident, **summary(rec), **params}


def export_csv(results_dir, out_dir) -> tuple[pathlib.Path, pathlib.Path]:
    """Write `trials.csv` (trials()) and `steps.csv` (load()) into `out_dir`; returns
    their paths. The folder is read once, so a skipped file warns once."""
    data = results_dir if isinstance(results_dir, Scan) else scan(results_dir)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "trials.csv", out / "steps.csv"
    trials(data).to_csv(paths[0], index=False)
    load(data).to_csv(paths[1], index=False)
    return paths


def _trial_column_order(columns) -> list[str]:
    """Identity and outcome first (as built), then final, target, mark, cost, param."""
    groups = ("final.", "target.", "mark.", "cost.", "param.")
    head = [c for c in columns if not c.startswith(groups)]
    return head + [c for g in groups for c in columns if c.startswith(g)]


def _records(results_dir) -> list[dict]:
    return results_dir.records if isinstance(results_dir, Scan) else scan(results_dir).records


def _pandas(what: str):
    try:
        import pandas as pd
    except ImportError:
        raise HFBenchError(f"hfbench.results.{what} needs pandas, the 'results' extra: "
                           "pip install 'hfbench[results]' (or pip install pandas)") from None
    return pd
