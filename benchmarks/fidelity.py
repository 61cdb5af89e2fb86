"""Paper fidelity: run what can run offline, check each paper claim, write reports/fidelity.md.

    python benchmarks/fidelity.py                       # the full report, about 40 min on 2 cores
    python benchmarks/fidelity.py --quick               # a smoke run (~2 min): /tmp/fidelity-quick.md
    python benchmarks/fidelity.py --seeds 3 --budget-scale 0.1 --curves-time 200   # a shorter full run

What runs (torch backend, CPU, float32), through hfbench's own suite machinery
(`hfbench.suite.load` / `loads`, `expand`, `hfbench.runner.suite_run.run_suite`), so the
report exercises exactly what `hfbench run` runs:

- Gargiani et al. 2020 §4.1-4.2: the shipped suite `gargiani2020`, workloads `boston` and
  `sine`, unedited (SGD lr in {0.001, 0.01, 0.1, 1, 10}; SGN with 2/3/5/10 CG iterations and
  the code-faithful options; loss_scale 2), the first `--seeds` of the suite's 5 seeds.
  Boston runs its full 100 epochs (`--boston-scale`); the sine budget, 3000 epochs = 24,000
  steps a trial, is multiplied by `--budget-scale` (`expand(budget_scale=...)`).
- Optional (`--mnist5k-standin`): §4.3's MNIST net on mnist5k for 25 s a trial, a stand-in
  for Table 1 (full MNIST needs a download).
- Martens 2010: a suite derived from `martens2010` (its YAML text, edited in
  `martens_suite` and validated by `hfbench.suite.loads`): the `curves` workload with both
  `hf` (his code) and `hf_text` (his paper's text) on a training-time budget
  (`--curves-time`) instead of 200 HF iterations, plus an SGD-with-momentum control from the
  same sparse init on the same time budget (minibatch 200). One seed, as the paper.
- Wang and Huang: a suite derived from `wang2024` with dataset mnist5k (full MNIST needs a
  download): sgd, hf_newton, hf_gauss_newton for the suite's 7 epochs; newton and
  damped_newton for `--dense-steps` iterations only (each dense step builds the 7,960 x
  7,960 Hessian from 7,960 Hessian-vector products and factors it; plain Newton's is
  singular, so it takes the least-squares path through an eigendecomposition).

Results go to `--results` (default results/fidelity/, not committed); run_suite resumes,
so a rerun with the same settings skips finished trials and only rebuilds the report.
Every verdict is computed from the trial records; the papers' numbers (PAPER below) are
quoted from the texts.

Budget estimate (the defaults), from single-thread CPU time measured per step on a 2-core
AMD EPYC: boston 5 seeds x 9 trials x 400 steps ~1 min; sine at 0.2 of 24,000 steps x 9
trials x 5 seeds ~7 min (SGN 2.5-5.7 ms a step, SGD ~0.8 ms); Wang 7 epochs < 1 min;
CURVES 3 trials x (400 s + ~25 s of untimed warm-up + ~30 s of evaluation) ~23 min;
dense Newton 2 x (2 warm-up + 2 timed) steps: damped ~10 s each, plain ~95 s each
(eigendecomposition) ~7 min. Total about 40 minutes.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import yaml

import hfbench
import hfbench.suite as S
from hfbench.runner.suite_run import run_suite
from hfbench.suite.yamlpos import parse

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The full-run defaults, chosen to fit about 40 minutes on 2 CPU cores (the estimate
# in the module docstring). --quick also cuts Wang's 7 epochs to 1 and runs only `hf`
# on CURVES (no `hf_text`).
FULL = dict(seeds=5, boston_scale=1.0, budget_scale=0.2, curves_time=400.0, dense_steps=2,
            wang_scale=1.0, curves_hf=("hf", "hf_text"), mnist5k_time=25.0)
QUICK = dict(seeds=1, boston_scale=0.05, budget_scale=0.002, curves_time=8.0, dense_steps=0,
             wang_scale=1 / 7, curves_hf=("hf",), mnist5k_time=2.0)

# The papers' numbers quoted in the report (texts: /work/shared/papers/).
PAPER = {
    "martens_rand_hf": (0.11, 0.20),  # Table 2, CURVES, RAND+HF (train, test)
    "martens_pt_ncg": (0.74, 0.82),   # Table 2, CURVES, PT+NCG (H&S pre-training + NCG)
    "wang_time": {"sgd": 222, "newton": 21257, "damped_newton": 34933, "hf_newton": 244,
                  "hf_gauss_newton": 246},                       # Table 1, seconds
    "wang_loss": {"sgd": 0.2121, "newton": 2.305, "damped_newton": 0.2837, "hf_newton": 0.2614,
                  "hf_gauss_newton": 0.2049},                    # Table 2
    "wang_acc": {"sgd": 0.9138, "newton": 0.1028, "damped_newton": 0.9003, "hf_newton": 0.9099,
                 "hf_gauss_newton": 0.9239},                     # Table 3
    "gargiani_mnist_25s": {"SGD(0.001)": 17.2, "SGD(0.01)": 35.3, "SGD(0.1)": 71.9, "SGD(1)": 89.8,
                           "SGD(10)": 11.6, "SGN(2)": 91.6, "SGN(3)": 92.9, "SGN(5)": 92.8,
                           "SGN(10)": 91.6},                     # Table 1 (left), test acc. %
}
SEVEN = ("sgd", "hf_newton", "hf_gauss_newton")  # Wang's methods run for the whole 7 epochs here
WANG_NAMES = {"sgd": "SGD", "newton": "Newton", "damped_newton": "damped Newton",
              "hf_newton": "HF-Newton", "hf_gauss_newton": "HF-Gauss-Newton"}
ON_PAR = 1.5       # "on par with SGD": per-step time within this factor of SGD's
FAR_LONGER = 10.0  # "far longer": at least this factor
BLOWUP = 10.0      # a completed SGD run "diverged" if its final loss is this many times its start


# ----------------------------------------------------------------------------- the plan


@dataclass
class Part:
    key: str
    title: str
    trials: list
    large: bool = False  # big matrix work (CURVES, dense Newton): run with --threads-large
    records: list = field(default_factory=list)
    threads: int = 0
    elapsed: float = 0.0  # wall seconds this run spent on the part (resumed trials cost nothing)


def derive(name: str, new_name: str, edit) -> S.Suite:
    """A suite built from shipped suite `name`'s YAML text, edited by `edit(data)`."""
    path = S.resolve(name)
    data, _, _ = parse(path.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["name"] = new_name
    edit(data)
    text = yaml.safe_dump(data, sort_keys=False)
    return S.loads(text, source=f"{new_name} (derived from {path})")


def martens_suite(time_s: float, hf_entries=("hf", "hf_text")) -> S.Suite:
    """martens2010's curves workload on a time budget, plus an SGD control.

    Overrides (documented in the report): budget {time_s} instead of 200 iterations;
    evaluations every 10 iterations as shipped plus at 1/4, 1/2 and 3/4 of the budget
    (time marks, so HF and SGD are compared at equal training time); the other workloads
    (MNIST, FACES) dropped (downloads); workload `curves_sgd`: the same data, net, loss,
    sparse init and budget, minibatch 200, SGD lr 0.01 momentum 0.9 (not tuned; a control).
    """
    marks = [round(time_s * f, 3) for f in (0.25, 0.5, 0.75)]

    def edit(d):
        w = d["workloads"]["curves"]
        w.update(optimizers=list(hf_entries), budget={"time_s": time_s},
                 eval={"every": 10, "time_marks": marks})
        sgd = copy.deepcopy(w)
        sgd.update(batch_size=200, curvature_batch_size=200, optimizers=["sgd_momentum"],
                   eval={"every": None, "time_marks": marks})
        d["workloads"] = {"curves": w, "curves_sgd": sgd}
        d["optimizers"]["sgd_momentum"] = {"algorithm": "sgd", "params": {"lr": 0.01, "momentum": 0.9}}
        d["description"] = "martens2010 CURVES on a CPU time budget, with an SGD control (fidelity report)"

    return derive("martens2010", "martens2010_cpu", edit)


def wang_suite(dense_steps: int) -> S.Suite:
    """wang2024 on mnist5k; the dense Newton methods in their own workload with a
    budget of `dense_steps` iterations (evaluated at the start and the end)."""

    def edit(d):
        w = d["workloads"]["mnist_mlp"]
        w.update(dataset="mnist5k", optimizers=["sgd", "hf_newton", "hf_gauss_newton"])
        dense = copy.deepcopy(w)
        dense.update(optimizers=["newton", "damped_newton"], budget={"iterations": max(1, dense_steps)})
        d["workloads"] = {"mnist5k_mlp": w, "mnist5k_mlp_dense": dense}
        d["description"] = "wang2024 on mnist5k (fidelity report); dense Newton on a few steps"

    return derive("wang2024", "wang2024_mnist5k", edit)


def gargiani_mnist5k_suite(time_s: float = 25.0) -> S.Suite:
    """gargiani2020's MNIST workload (§4.3, Table 1 left: 25 s) on mnist5k."""

    def edit(d):
        w = d["workloads"]["mnist"]
        w.update(dataset="mnist5k", device="cpu", budget={"time_s": time_s},
                 eval={"every": 50, "time_marks": [time_s]})
        d["workloads"] = {"mnist5k": w}
        d["description"] = f"gargiani2020 §4.3 net on mnist5k, {time_s:g} s (fidelity report stand-in)"

    return derive("gargiani2020", "gargiani2020_mnist5k", edit)


def plan(args) -> list[Part]:
    common = dict(backend="torch", device="cpu")
    garg = S.load("gargiani2020")
    parts = [
        Part("boston", "Gargiani boston", S.expand(garg, workload="boston", seeds=args.seeds,
                                                    budget_scale=args.boston_scale, **common)),
        Part("sine", "Gargiani sine", S.expand(garg, workload="sine", seeds=args.seeds,
                                                budget_scale=args.budget_scale, **common)),
    ]
    if args.mnist5k_standin:
        parts.append(Part("mnist5k", "Gargiani MNIST net on mnist5k (stand-in)",
                          S.expand(gargiani_mnist5k_suite(args.mnist5k_time), seeds=args.seeds, **common)))
    wang = wang_suite(args.dense_steps)
    parts.append(Part("wang", "Wang and Huang, 7 epochs",
                      S.expand(wang, workload="mnist5k_mlp", seeds=1, budget_scale=args.wang_scale, **common)))
    parts.append(Part("curves", "Martens CURVES",
                      S.expand(martens_suite(args.curves_time, args.curves_hf), seeds=1, **common), large=True))
    if args.dense_steps > 0:
        parts.append(Part("dense", "Wang and Huang, dense Newton",
                          S.expand(wang, workload="mnist5k_mlp_dense", seeds=1, **common), large=True))
    return parts


# ----------------------------------------------------------------------------- numbers


def fmt(x, digits=4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if abs(x) >= 1e5 or (x != 0 and abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def num(v) -> float | None:
    """A record value as a float (records write non-finite values as strings)."""
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def stats(values) -> tuple[float, float, float, int] | None:
    """(mean, min, max, n) of the values, None when there are none."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if any(math.isinf(v) or math.isnan(v) for v in vals):
        mean = float("inf")
    else:
        mean = statistics.fmean(vals)
    return mean, min(vals), max(vals), len(vals)


def fstat(s, digits=4) -> str:
    """mean [min, max] (n > 1) or the one value."""
    if s is None:
        return "-"
    mean, lo, hi, n = s
    if n == 1:
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def final_metric(rec, metric) -> float | None:
    """The metric at the end of training; +inf for a diverged trial (it has no end
    point: its last finite evaluation would flatter it), None for a failed one."""
    if rec is None or rec.get("status") == "failed":
        return None
    if rec.get("status") == "diverged":
        return float("inf")
    v = num((rec.get("final") or {}).get(metric))
    return float("inf") if v is not None and math.isnan(v) else v


def start_metric(rec, metric) -> float | None:
    evals = (rec or {}).get("evals") or []
    return num(evals[0].get(metric)) if evals else None


def per_step_s(rec) -> float | None:
    if not rec or not rec.get("iterations"):
        return None
    return rec["train_time_s"] / rec["iterations"]


def late_step_s(rec) -> float | None:
    """Seconds per step over the second half of the run (first-call costs excluded);
    step times between two syncs are interpolated by the runner, the ends are exact."""
    rows = [(s_["step"], num(s_.get("time_s"))) for s_ in (rec or {}).get("steps") or []]
    rows = [(k, t) for k, t in rows if t is not None]
    if len(rows) < 4:
        return per_step_s(rec)
    (k0, t0), (k1, t1) = rows[len(rows) // 2 - 1], rows[-1]
    return (t1 - t0) / (k1 - k0) if k1 > k0 else None


def label(rec) -> str:
    cfg = rec["config"]
    alg, p = cfg["algorithm"], cfg["params"]
    if cfg["suite"].startswith("gargiani"):
        return f"SGD({fmt(float(p['lr']))})" if alg == "sgd" else f"SGN({p['cg_iters']})"
    return cfg["optimizer"]


def groups(records) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for rec in records:
        if rec is not None and "config" in rec:
            out.setdefault(label(rec), []).append(rec)
    return out


def status_text(recs) -> str:
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    div = [r["diverged_at"] for r in recs if r["status"] == "diverged" and r.get("diverged_at")]
    if div:
        text += f" (at step {', '.join(map(str, div))})"
    return text


def failures(parts) -> list[str]:
    out = []
    for part in parts:
        for t, r in zip(part.trials, part.records):
            if r is None or r.get("status") == "failed":
                err = "no record" if r is None else r.get("error", "?")
                out.append(f"{t.workload}/{t.optimizer} {t.params} seed {t.seed} (trial {t.id}): {err}")
    return out


# ----------------------------------------------------------------------------- claims


@dataclass
class Claim:
    claim: str
    paper: str
    measured: str
    verdict: str


def md_table(header, rows) -> str:
    def cell(x):
        return str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def claims_table(claims) -> str:
    return md_table(["claim", "paper", "measured here", "verdict"],
                    [(c.claim, c.paper, c.measured, f"**{c.verdict}**") for c in claims])


def gargiani_results_table(records, metrics=("train_loss", "test_loss")) -> str:
    rows = []
    for name, recs in sorted(groups(records).items(), key=lambda kv: _order(kv[0])):
        rows.append([name, len(recs), status_text(recs), fstat(stats(start_metric(r, "train_loss") for r in recs))]
                    + [fstat(stats(final_metric(r, m) for r in recs)) for m in metrics]
                    + [fstat(stats(r.get("iterations") for r in recs), 5),
                       fstat(stats(r.get("train_time_s") for r in recs), 3)])
    head = ["config", "seeds", "status", "train loss at start"] + [f"final {m.replace('_', ' ')}" for m in metrics]
    return md_table(head + ["steps", "train time (s)"], rows)


def _order(name: str):
    kind, _, arg = name.partition("(")
    try:
        return (kind, float(arg.rstrip(")")))
    except ValueError:
        return (kind, 0.0)


def gargiani_claims(records, section) -> list[Claim]:
    figs = "Figs. 1-5" if "boston" in section else "Figs. 1, 6-9"
    g = groups(records)
    sgd = {k: v for k, v in g.items() if k.startswith("SGD")}
    sgn = {k: v for k, v in g.items() if k.startswith("SGN")}
    claims = []
    if not sgd or not sgn:
        return [Claim(f"{section}: SGN vs SGD", "-", "trials missing", "not testable here (no records)")]
    for metric in ("train_loss", "test_loss"):
        means = {k: stats(final_metric(r, metric) for r in v) for k, v in g.items()}
        if any(means[k] is None for k in means):
            claims.append(Claim(f"{section}: SGN reaches a lower {metric.replace('_', ' ')} than every SGD rate",
                                "figures only", "some trials failed", "not testable here (failed trials)"))
            continue
        best_sgd = min(sgd, key=lambda k: means[k][0])
        worst_sgn = max(sgn, key=lambda k: means[k][0])
        best_sgn = min(sgn, key=lambda k: means[k][0])
        beats = [k for k in sgn if means[k][0] < means[best_sgd][0]]
        # seed-level: the worst seed of the worst SGN against the best seed of the best SGD
        strict = means[worst_sgn][2] < means[best_sgd][1]
        if len(beats) == len(sgn):
            verdict = "holds" + ("" if strict else " (on the mean; seed ranges overlap)")
        elif beats:
            verdict = "partly"
        else:
            verdict = "does not hold"
        measured = (f"final {metric.replace('_', ' ')} (mean [min, max] over seeds): SGN "
                    + ", ".join(f"{k} {fstat(means[k])}" for k in sorted(sgn, key=_order))
                    + f"; best SGD: {best_sgd} {fstat(means[best_sgd])}"
                    + f"; {len(beats)} of {len(sgn)} SGN settings below the best SGD rate"
                    + (f" (best SGN: {best_sgn})" if beats else ""))
        claims.append(Claim(
            f"{section}: SGN converges to a better minimizer, \"with lower values of train and test loss\", "
            f"than SGD at every learning rate ({metric.replace('_', ' ')})",
            f"figures only ({figs}, no numbers)", measured, verdict))
    for lr, said in ((1.0, True), (10.0, False)):
        key = f"SGD({fmt(lr)})"
        recs = sgd.get(key)
        if not recs:
            continue
        n_div = sum(r["status"] == "diverged" for r in recs)
        blown = []
        for r in recs:
            if r["status"] == "diverged":
                continue
            s, f = start_metric(r, "train_loss"), final_metric(r, "train_loss")
            if s and f is not None:
                blown.append((f, f / s))
        n_blown = sum(ratio >= BLOWUP for _, ratio in blown)
        parts = [f"{n_div}/{len(recs)} seeds stopped with status \"diverged\" (non-finite loss)"]
        if blown:
            parts.append(f"{len(blown)} ran to the budget with final train loss "
                         + ", ".join(f"{fmt(f)} ({fmt(ratio, 3)}x the start)" for f, ratio in blown))
        measured = "; ".join(parts)
        bad = n_div + n_blown
        verdict = "holds" if bad == len(recs) else ("partly" if bad else "does not hold")
        if said:
            claims.append(Claim(f"{section}: SGD with learning rate 1 \"quickly diverge[s] leading to high "
                                "values of the objective function\"", "stated, not plotted", measured, verdict))
        else:
            claims.append(Claim(f"{section}: SGD with learning rate 10 (not discussed in the text)", "-", measured,
                                "for the record (" + ("blows up" if bad == len(recs)
                                                      else "does not blow up in every seed") + ")"))
    return claims


def mnist5k_claims(records, time_s) -> list[Claim]:
    at = f"{time_s:g} s"
    g = groups(records)
    def at_mark(r):  # the first evaluation at or after the time mark, else the final one
        marks = [m for m in (r.get("at_time_marks") or {}).values() if m]
        return num((marks[-1] if marks else (r.get("final") or {})).get("test_accuracy"))

    acc = {k: stats(at_mark(r) for r in v) for k, v in g.items()}
    acc = {k: v for k, v in acc.items() if v is not None}
    sgd = {k: v for k, v in acc.items() if k.startswith("SGD")}
    sgn = {k: v for k, v in acc.items() if k.startswith("SGN")}
    if not sgd or not sgn:
        return [Claim("§4.3 (stand-in)", "-", "no records", "not testable here")]
    spread = lambda d: max(v[0] for v in d.values()) - min(v[0] for v in d.values())  # noqa: E731
    p = PAPER["gargiani_mnist_25s"]
    psgd = [v for k, v in p.items() if k.startswith("SGD")]
    psgn = [v for k, v in p.items() if k.startswith("SGN")]
    pct = lambda v: (100 * v[0], 100 * v[1], 100 * v[2], v[3])  # noqa: E731
    measured = (f"test accuracy at {at} (%): " + ", ".join(f"{k} {fstat(pct(v), 3)}"
                                                        for k, v in sorted(acc.items(), key=lambda kv: _order(kv[0])))
                + f"; spread over SGN settings {100 * spread(sgn):.1f} points, over SGD rates {100 * spread(sgd):.1f}")
    robust = spread(sgn) < spread(sgd)
    better = max(v[0] for v in sgn.values()) > max(v[0] for v in sgd.values())
    return [
        Claim("§4.3 (on mnist5k, a stand-in for MNIST): SGN \"appears to be more robust to the number of CG "
              "iterations than SGD to the learning rate value\"",
              f"Table 1, 25 s: SGN {min(psgn)}-{max(psgn)} % (spread {max(psgn) - min(psgn):.1f}), "
              f"SGD {min(psgd)}-{max(psgd)} % (spread {max(psgd) - min(psgd):.1f})",
              measured, "holds on the stand-in" if robust else "does not hold on the stand-in"),
        Claim(f"§4.3 (stand-in): \"SGN not only performs better than SGD\" (best test accuracy at {at})",
              f"best SGN {max(psgn)} % vs best SGD {max(psgd)} %",
              f"best SGN {100 * max(v[0] for v in sgn.values()):.1f} % vs best SGD "
              f"{100 * max(v[0] for v in sgd.values()):.1f} %",
              "holds on the stand-in" if better else "does not hold on the stand-in"),
    ]


def mean_image_error() -> tuple[float, float]:
    """Reconstruction error (Martens' metric) of a net that always outputs the mean
    training image: the level a stalled deep autoencoder sits at."""
    ds = hfbench.data.load("curves", seed=0, task="reconstruction", flatten=True)
    mean = ds.X_train.mean(axis=0)
    err = lambda X: float(((X - mean) ** 2).sum(axis=1).mean())  # noqa: E731
    return err(ds.X_train), err(ds.X_test)


def at_time(rec, mark, metric):
    hit = (rec.get("at_time_marks") or {}).get(str(mark))
    return None if hit is None else (num(hit.get(metric)), num(hit.get("time_s")), hit.get("step"))


def at_text(rec, mark) -> str:
    """The train error at a time mark, with the evaluation's own time when it came late
    (an HF iteration takes seconds, so its first evaluation past a mark can be well past it)."""
    value, t, step = at_time(rec, mark, "train_reconstruction_error")
    late = t is not None and t > 1.1 * float(mark) + 0.5
    return fmt(value) + (f" (evaluated at {fmt(t, 3)} s, iteration {step})" if late else "")


def martens_claims(records, time_s) -> tuple[list[Claim], str]:
    by = {r["config"]["optimizer"]: r for r in records if r is not None and "config" in r}
    hf, sgd = [by.get(k) for k in ("hf", "hf_text")], by.get("sgd_momentum")
    base_train, base_test = mean_image_error()
    rows = []
    for name, r in (("hf (code)", by.get("hf")), ("hf_text (paper text)", by.get("hf_text")),
                    ("SGD control (lr 0.01, momentum 0.9, batch 200)", sgd)):
        if r is None or r.get("status") == "failed":
            rows.append([name, "failed" if r else "missing"] + ["-"] * 7)
            continue
        marks = [m for m in sorted((r.get("at_time_marks") or {}), key=float)]
        curve = "; ".join(f"{fmt(float(m), 3)} s: {at_text(r, m)}" for m in marks
                          if at_time(r, m, "train_reconstruction_error"))
        rows.append([name, r["status"], fmt(start_metric(r, "train_reconstruction_error")),
                     fmt(final_metric(r, "train_reconstruction_error")),
                     fmt(final_metric(r, "test_reconstruction_error")),
                     r["iterations"], fmt(r["train_time_s"], 4), curve or "-", fmt(per_step_s(r), 3)])
    table = md_table(["run", "status", "train error at init", "final train error", "final test error",
                      "iterations", "train time (s)", "train error at the time marks", "s / iteration"], rows)
    table += (f"\n\nA net that outputs the mean training image scores {fmt(base_train)} (train) / "
              f"{fmt(base_test)} (test) on this data: the plateau where a stalled deep autoencoder sits.")
    claims = []
    ok = [r for r in hf if r and r.get("status") not in ("failed", "diverged")]
    if not ok:
        return [Claim("HF trains the CURVES autoencoder from sparse init", "-", "HF trials failed or diverged",
                      "not testable here (see failures)")], table
    p_tr, p_te = PAPER["martens_rand_hf"]
    ends = {r["config"]["optimizer"]: (start_metric(r, "train_reconstruction_error"),
                                       final_metric(r, "train_reconstruction_error"), r) for r in ok}
    measured = "; ".join(f"{k}: train error {fmt(s)} at init -> {fmt(f)} after "
                         f"{plural(r['iterations'], 'HF iteration')} ({fmt(r['train_time_s'], 3)} s)"
                         for k, (s, f, r) in ends.items())
    below = all(f is not None and f < 0.5 * base_train for _, f, _ in ends.values())
    fell = all(f is not None and s is not None and f < s for s, f, _ in ends.values())
    claims.append(Claim(
        "§7, Table 2: HF (\"RAND+HF\") trains the 784-400-200-100-50-25-6 CURVES autoencoder from the sparse "
        "random initialization (§5), without pre-training",
        f"train/test error {p_tr}/{p_te} after training to convergence (H&S's CURVES file)",
        measured + f"; a net that outputs the mean image scores {fmt(base_train)}",
        ("holds (below half the mean-image level within the budget)" if below else
         "partly (the error falls, but is not below half the mean-image level by the end of the budget)" if fell
         else "does not hold (the error does not fall)")))
    if sgd and sgd.get("status") not in ("failed",):
        sgd_f = final_metric(sgd, "train_reconstruction_error")
        lines, wins = [], []
        for r in ok:
            k = r["config"]["optimizer"]
            f = ends[k][1]
            wins.append(f is not None and sgd_f is not None and f < sgd_f)
            lines.append(f"{k} {fmt(f)} at {fmt(r['train_time_s'], 3)} s")
        lines.append(f"SGD {fmt(sgd_f)} at {fmt(sgd['train_time_s'], 3)} s ({sgd['iterations']} steps)")
        for m in sorted((sgd.get("at_time_marks") or {}), key=float):
            pts = [r for r in ok + [sgd] if at_time(r, m, "train_reconstruction_error")]
            if pts:
                lines.append(f"at {fmt(float(m), 3)} s: " + ", ".join(
                    f"{'SGD' if r is sgd else r['config']['optimizer']} {at_text(r, m)}" for r in pts))
        verdict = "holds" if all(wins) else ("partly" if any(wins) else "does not hold")
        claims.append(Claim(
            "§2, §8: first-order methods under-fit deep autoencoders from random init, where HF does not "
            "(our control: SGD with momentum, same sparse init, same training time)",
            f"no SGD number; H&S's pre-trained + NCG fine-tuned net: {PAPER['martens_pt_ncg'][0]} train",
            "; ".join(lines),
            verdict + " at this budget (equal training time; HF's last iteration may overshoot it). The paper's "
            "claim is about the error reached after hours of training, which this budget does not test"))
    frac = max((r["iterations"] for r in ok), default=0) / 200
    claims.append(Claim(
        "Table 2's level: RAND+HF train error 0.11, test 0.20 on CURVES",
        f"{p_tr} / {p_te}",
        "; ".join(f"{r['config']['optimizer']}: {fmt(final_metric(r, 'train_reconstruction_error'))} / "
                  f"{fmt(final_metric(r, 'test_reconstruction_error'))}" for r in ok),
        f"not testable here (a {fmt(time_s, 3)} s budget, {100 * frac:.0f} % of the suite's 200 iterations at most, "
        "and hfbench's generated CURVES stand-in, not H&S's file)"))
    return claims, table


def _wang_by(records):
    return {r["config"]["optimizer"]: r for r in records if r is not None and "config" in r}


def batch_loss_at(rec, n, window=10) -> float | None:
    """Mean batch loss of steps n-window+1 .. n (a smoothed training loss at step n)."""
    rows = [num(s.get("batch_loss")) for s in (rec.get("steps") or []) if s.get("step", 0) <= n]
    rows = [v for v in rows[-window:] if v is not None]
    return statistics.fmean(rows) if rows else None


def wang_claims(seven, dense, epochs) -> tuple[list[Claim], str]:
    ep = f"{fmt(epochs, 3)} epoch{'s' if epochs != 1 else ''}"
    by = {**_wang_by(seven), **_wang_by(dense)}
    rows = []
    sgd = by.get("sgd")
    sgd_step = per_step_s(sgd)
    for k in ("sgd", "newton", "damped_newton", "hf_newton", "hf_gauss_newton"):
        r = by.get(k)
        if r is None:
            rows.append([WANG_NAMES[k], "not run"] + ["-"] * 9)
            continue
        if r.get("status") == "failed":
            rows.append([WANG_NAMES[k], "failed"] + ["-"] * 9)
            continue
        ps, late, sgd_late = per_step_s(r), late_step_s(r), late_step_s(sgd)
        rows.append([WANG_NAMES[k], r["status"], r["iterations"], fmt(r.get("epochs"), 3),
                     fmt(final_metric(r, "train_loss")), fmt(num((r.get("final") or {}).get("test_accuracy"))),
                     fmt(r["train_time_s"], 4), fmt(ps, 3),
                     fmt(ps / sgd_step, 3) if ps and sgd_step else "-",
                     fmt(late / sgd_late, 3) if late and sgd_late and k in SEVEN else "-",
                     f"{PAPER['wang_loss'][k]} / {PAPER['wang_acc'][k]} / {PAPER['wang_time'][k]} s"])
    table = md_table(["method", "status", "steps", "epochs", "final train loss", "final test accuracy",
                      "train time (s)", "s / step", "x SGD per step", "x SGD, second half",
                      "paper: loss / accuracy / time"], rows)
    claims = []
    ln10 = math.log(10)
    nw, dn = by.get("newton"), by.get("damped_newton")
    if nw and nw.get("status") != "failed":
        n = nw["iterations"]
        f = final_metric(nw, "train_loss")
        s = start_metric(nw, "train_loss")
        others = []
        for k in ("damped_newton", "sgd", "hf_newton", "hf_gauss_newton"):
            r = by.get(k)
            if r and r.get("status") != "failed":
                if k == "damped_newton":
                    others.append((k, final_metric(r, "train_loss"), "full train loss"))
                else:
                    others.append((k, batch_loss_at(r, n, window=min(n, 10)), f"batch loss, steps <= {n}"))
        stuck = f is not None and (math.isinf(f) or f > 0.9 * ln10)
        moved = [k for k, v, _ in others if v is not None and v < f - 0.05]
        measured = (f"after {plural(n, 'step')} ({fmt(nw['train_time_s'], 3)} s of training, status "
                    f"{nw['status']}): train loss "
                    f"{fmt(s)} -> {fmt(f)}, test accuracy {fmt(num((nw.get('final') or {}).get('test_accuracy')))}; "
                    "at the same step: " + ", ".join(f"{WANG_NAMES[k]} {fmt(v)} ({how})" for k, v, how in others))
        if f is not None and f > 1.5 * ln10:
            verdict = (f"holds: it does not converge, and here the loss blows up to {fmt(f)} instead of staying "
                       "near log 10" + ("" if moved else " (the others have not moved yet either)"))
        elif stuck:
            verdict = "holds" if moved else "partly (stays near log 10, but so do the others this early)"
        else:
            verdict = "does not hold"
        claims.append(Claim("Tables 2-3, Fig. 2: \"Newton's method without damping doesn't converge\" "
                            f"(train loss stays near log 10 = {ln10:.3f})",
                            f"{PAPER['wang_loss']['newton']} train loss, {PAPER['wang_acc']['newton']} test accuracy "
                            "after 7 epochs", measured,
                            f"{verdict}; only {plural(n, 'dense step')} ran (the paper ran 7 epochs)"))
    else:
        claims.append(Claim("\"Newton's method without damping doesn't converge\"", "2.305 / 0.1028",
                            "not run" if nw is None else f"failed: {nw.get('error')}",
                            "not testable here (dense Newton not run: --dense-steps 0)" if nw is None
                            else "not testable here (the trial failed)"))
    hfn, hgn = by.get("hf_newton"), by.get("hf_gauss_newton")
    if hfn and hgn and "failed" not in (hfn["status"], hgn["status"]):
        a, b = final_metric(hgn, "train_loss"), final_metric(hfn, "train_loss")
        claims.append(Claim("Table 2: HF-Gauss-Newton reaches a lower training loss than HF-Newton",
                            f"{PAPER['wang_loss']['hf_gauss_newton']} vs {PAPER['wang_loss']['hf_newton']}",
                            f"final full-train-set loss {fmt(a)} vs {fmt(b)} ({ep} of mnist5k, "
                            f"{hgn['iterations']} steps); mean batch loss of the last 62 steps "
                            f"{fmt(batch_loss_at(hgn, hgn['iterations'], 62))} vs "
                            f"{fmt(batch_loss_at(hfn, hfn['iterations'], 62))}",
                            "holds" if a < b else "does not hold"))
        seven_ok = {k: by[k] for k in SEVEN if by.get(k) and by[k]["status"] != "failed"}
        loss = {k: final_metric(r, "train_loss") for k, r in seven_ok.items()}
        acc = {k: num((r.get("final") or {}).get("test_accuracy")) for k, r in seven_ok.items()}
        best_l, best_a = min(loss, key=loss.get), max(acc, key=lambda k: acc[k] or -1)
        verdict = ("holds" if best_l == best_a == "hf_gauss_newton" else
                   "partly" if "hf_gauss_newton" in (best_l, best_a) else "does not hold")
        claims.append(Claim(
            "Tables 2-3, Fig. 5: HF-Gauss-Newton \"received the best performance\": the lowest training loss and "
            "the highest test accuracy of all methods",
            "loss " + ", ".join(f"{WANG_NAMES[k]} {PAPER['wang_loss'][k]}" for k in PAPER["wang_loss"])
            + "; accuracy " + ", ".join(f"{WANG_NAMES[k]} {PAPER['wang_acc'][k]}" for k in PAPER["wang_acc"]),
            f"after {ep}: loss " + ", ".join(f"{WANG_NAMES[k]} {fmt(v)}" for k, v in loss.items())
            + "; accuracy " + ", ".join(f"{WANG_NAMES[k]} {fmt(v)}" for k, v in acc.items())
            + f"; best loss: {WANG_NAMES[best_l]}, best accuracy: {WANG_NAMES[best_a]}",
            verdict + f" (among SGD and the HF methods; the dense Newton methods did not run {ep}, and "
            "the paper has them behind these three anyway)"))
    if sgd and sgd_step:
        ratios = {k: per_step_s(by[k]) / sgd_step for k in ("hf_newton", "hf_gauss_newton", "newton", "damped_newton")
                  if by.get(k) and by[k].get("status") != "failed" and per_step_s(by[k])}
        pt = PAPER["wang_time"]
        hf_keys = [k for k in ("hf_newton", "hf_gauss_newton") if k in ratios]
        hf_r = [ratios[k] for k in hf_keys]
        late_sgd = late_step_s(sgd)
        late = {k: late_step_s(by[k]) / late_sgd for k in hf_keys if late_sgd and late_step_s(by[k])}
        claims.append(Claim(
            "Table 1, §4.2.1: \"the speed of Hessian-free methods is on par with that of SGD\" (per-step time "
            f"within {ON_PAR}x of SGD's, our threshold)",
            f"{pt['hf_newton']} s and {pt['hf_gauss_newton']} s vs SGD {pt['sgd']} s for 7 epochs "
            f"({pt['hf_newton'] / pt['sgd']:.2f}x, {pt['hf_gauss_newton'] / pt['sgd']:.2f}x), JAX on a V100",
            f"training time for the same {sgd['iterations']} steps: SGD {fmt(sgd['train_time_s'], 3)} s "
            f"({fmt(sgd_step * 1e3, 3)} ms/step); " + ", ".join(
                f"{WANG_NAMES[k]} {fmt(by[k]['train_time_s'], 3)} s ({fmt(per_step_s(by[k]) * 1e3, 3)} ms/step, "
                f"{ratios[k]:.1f}x" + (f"; {late[k]:.1f}x over the second half" if k in late else "") + ")"
                for k in hf_keys),
            ("holds" if hf_r and max(hf_r) <= ON_PAR else "partly" if hf_r and min(hf_r) <= ON_PAR
             else "does not hold" if hf_r else "not testable here")
            + " (torch eager on a CPU; each HF step runs up to 10 CG iterations, each a curvature product)"))
        nr = [ratios[k] for k in ("newton", "damped_newton") if k in ratios]
        claims.append(Claim(
            "Table 1: \"native Newton's methods are quite time-consuming\" (far longer than SGD; we compare "
            "per-step times, since the budgets differ)",
            f"Newton {pt['newton']} s, damped {pt['damped_newton']} s vs SGD {pt['sgd']} s ("
            f"{pt['newton'] / pt['sgd']:.0f}x, {pt['damped_newton'] / pt['sgd']:.0f}x; 7 epochs of MNIST)",
            (", ".join(f"{WANG_NAMES[k]} {fmt(per_step_s(by[k]), 3)} s per step ({ratios[k]:.0f}x SGD; "
                       f"{sgd['iterations']} steps, "
                       f"SGD's {ep}, would take {fmt(per_step_s(by[k]) * sgd['iterations'] / 3600, 3)} h)"
                       for k in ("newton", "damped_newton") if k in ratios)) or "dense Newton not run",
            ("holds" if nr and min(nr) >= FAR_LONGER else "does not hold" if nr else
             "not testable here (--dense-steps 0)")))
    if dn and dn.get("status") != "failed" and sgd:
        n = dn["iterations"]
        claims.append(Claim(
            "Table 2, Fig. 3: damped Newton converges, but ends worse than SGD",
            f"{PAPER['wang_loss']['damped_newton']} vs SGD {PAPER['wang_loss']['sgd']} after 7 epochs",
            f"after {plural(n, 'step')}: train loss {fmt(start_metric(dn, 'train_loss'))} -> "
            f"{fmt(final_metric(dn, 'train_loss'))} "
            f"(SGD's batch loss at step {n}: {fmt(batch_loss_at(sgd, n, min(n, 10)))})",
            f"not testable here (only {plural(n, 'dense step')}; the numbers show the first steps)"))
    return claims, table


# ----------------------------------------------------------------------------- the report


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version(), "numpy": np.__version__, "hfbench": hfbench.__version__}
    for dist in ("torch", "jax", "jaxlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def budgets_table(args, parts) -> str:
    by = {p.key: p for p in parts}
    rows = []
    b = by["boston"].trials[0].budget
    rows.append(["Gargiani boston (§4.1)", "100 epochs (saved SGD configs), 5 runs", f"{fmt(b['epochs'], 4)} epochs "
                 f"({int(b['epochs'] * 4)} steps of 101), {args.seeds} seed(s)", f"{100 * args.boston_scale:g} %"])
    b = by["sine"].trials[0].budget
    rows.append(["Gargiani sine (§4.2)", "3000 epochs (saved SGD configs), 5 runs",
                 f"{fmt(b['epochs'], 4)} epochs ({int(b['epochs'] * 8)} steps of 1000), {args.seeds} seed(s)",
                 f"{100 * args.budget_scale:g} %"])
    if "mnist5k" in by:
        rows.append(["Gargiani MNIST net on mnist5k (§4.3 stand-in)", "25 s and 100 s on a GTX TITAN X, full MNIST",
                     f"{args.mnist5k_time:g} s on this CPU, 4,000 training images, {args.seeds} seed(s)", "a stand-in"])
    rows.append(["Martens CURVES (Table 2)", "to convergence (the suite: 200 HF iterations)",
                 f"{fmt(args.curves_time, 4)} s of training per trial "
                 f"({', '.join(args.curves_hf)}, SGD control), 1 seed",
                 "see the iterations below"])
    ep = by["wang"].trials[0].budget["epochs"]
    steps = math.ceil(ep * 4000 / 64)
    rows.append(["Wang and Huang SGD / HF-Newton / HF-GN", "7 epochs of MNIST (60,000 images), batch 64: 6,566 steps",
                 f"{plural(fmt(ep, 3), 'epoch')} of mnist5k (4,000 training images): {steps} steps of 64",
                 f"{100 * ep / 7:.0f} % of the epochs, {100 * steps / 6566:.1f} % of the steps"])
    rows.append(["Wang and Huang Newton / damped Newton", "7 epochs of MNIST (6-10 h each on a V100)",
                 f"{args.dense_steps} step(s) of 64 (after the runner's 2 untimed warm-up steps)"
                 if args.dense_steps else "not run (--dense-steps 0)",
                 f"{100 * args.dense_steps / 6566:.3f} % of the steps" if args.dense_steps else "-"])
    return (md_table(["workload", "paper", "run here", "fraction of the paper's budget"], rows)
            + "\n\nWall time of this run per part: "
            + ", ".join(f"{p.title} {duration(p.elapsed)} ({len(p.trials)} trials)" for p in parts) + ".")


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plural(n, word) -> str:
    return f"{n} {word}" + ("" if n in (1, "1") else "s")


def write_report(args, parts, started, elapsed, load_before, load_after) -> str:
    by = {p.key: p for p in parts}
    v = versions()
    n_trials = sum(len(p.trials) for p in parts)
    cmd = "python benchmarks/fidelity.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = [
        "# Paper fidelity report"
        + (" (--quick smoke run: tiny budgets, verdicts not meaningful)" if args.quick else ""),
        "",
        "Generated by `benchmarks/fidelity.py`: it runs what can run offline of the four papers' experiments "
        "through hfbench's own suite machinery (the shipped suites, or suites derived from their YAML text "
        "where a dataset needs a download or a budget cannot fit a CPU) and checks each paper claim against the "
        "trial records. Every number below comes from those records.",
        "",
        f"- Regenerate: `{cmd}` (trial records in `{args.results}`; a rerun skips finished trials)",
        f"- Date: {started:%Y-%m-%d %H:%M} (local); this run took {elapsed / 60:.1f} min for {n_trials} trials "
        "(including any resumed from earlier runs at no cost)",
        f"- Hardware: {cpu_model()}, {os.cpu_count()} logical CPUs; load average {load_before:.2f} at the start, "
        f"{load_after:.2f} at the end (other work on the machine slows every timing here)",
        "- Software: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- hfbench commit: {git_commit()}",
        "- Backend: torch, CPU, float32, eager (the suites' dtype); one backend throughout. torch intra-op threads: "
        + ", ".join(f"{p.title} {p.threads}" for p in parts)
        + " (`--threads`, `--threads-large`; records resumed from an earlier run keep the timings of that run)",
        "",
        "## Budgets",
        "",
        budgets_table(args, parts),
        "",
        "Verdicts: **holds** / **partly** / **does not hold** / **not testable here (why)**. \"mean [min, max]\" is "
        "over seeds. A trial that stopped with status \"diverged\" (a non-finite loss) counts as an infinite final "
        "loss.",
    ]
    fails = failures(parts)
    if fails:
        out += ["", "## Failed trials", ""] + [f"- {f}" for f in fails]

    out += ["", "## Gargiani, Zanelli, Diehl, Hutter 2020: SGN vs SGD", "",
            "Shipped suite `gargiani2020`, workloads `boston` and `sine`, unedited: SGN with the public code's "
            "saved-configuration options (trust-region rho, line search with a fixed right-hand side, 0.5^10 kept "
            "on failure), `loss_scale: 2` so the losses are the paper's mean((z - t)^2). Train and test losses are "
            "the full-set losses at the end of the budget. The paper gives these results as figures only.", ""]
    claims = []
    for key, section in (("boston", "§4.1 boston"), ("sine", "§4.2 sine")):
        claims += gargiani_claims(by[key].records, section)
    if "mnist5k" in by:
        claims += mnist5k_claims(by["mnist5k"].records, args.mnist5k_time)
    else:
        claims.append(Claim("§4.3: SGN \"appears to be more robust to the number of CG iterations than SGD to the "
                            "learning rate value\" (MNIST, Table 1)",
                            "25 s: SGN 91.6-92.9 %, SGD 11.6-89.8 %", "-",
                            "not testable here (full MNIST is a download; `--mnist5k-standin` runs the net on "
                            "mnist5k as a stand-in)"))
    claims.append(Claim("§4.4-4.5: Fashion-MNIST and CIFAR-10 (Tables 2-3)",
                        "test accuracies at 50/150 s and 650/2000 s",
                        "-", "not testable here (downloads; GPU time budgets)"))
    out += [claims_table(claims), ""]
    for key, title in (("boston", "Boston housing (§4.1)"), ("sine", "Sine wave (§4.2)")):
        out += [f"### {title}: every configuration", "", gargiani_results_table(by[key].records), ""]
    if "mnist5k" in by:
        out += [f"### MNIST net on mnist5k, {args.mnist5k_time:g} s (§4.3 stand-in)", "",
                gargiani_results_table(by["mnist5k"].records, ("train_loss", "test_accuracy")), ""]

    mclaims, mtable = martens_claims(by["curves"].records, args.curves_time)
    out += ["## Martens 2010: Hessian-free optimization of deep autoencoders", "",
            "Suite `martens2010_cpu`, derived from `martens2010`: the `curves` workload unchanged (784-400-200-100-"
            "50-25-6 autoencoder, logistic outputs with cross-entropy, sparse init, full-batch gradient, curvature "
            f"batch 5000) with a {fmt(args.curves_time, 4)} s training-time budget instead of 200 iterations and "
            "evaluations at 1/4, 1/2 and 3/4 of it; both optimizer entries `hf` (his released code) and `hf_text` "
            "(the paper's text). Added: workload `curves_sgd` (same data, net, loss, init and budget; minibatch 200) "
            "with SGD lr 0.01, momentum 0.9 (an untuned control). Error is Table 2's average summed squared "
            "reconstruction error. hfbench's CURVES is a generated stand-in for Hinton and Salakhutdinov's file: "
            "compare trends, not digits.", "", claims_table(mclaims), "", "### The runs", "", mtable, ""]

    w_ep = by["wang"].trials[0].budget["epochs"]
    wclaims, wtable = wang_claims(by["wang"].records, by["dense"].records if "dense" in by else [], w_ep)
    out += ["## Wang and Huang: SGD, Newton, HF-Newton, HF-Gauss-Newton", "",
            "Suite `wang2024_mnist5k`, derived from `wang2024`: the same net (784-10-10, ReLU, softmax cross-entropy), "
            "batch 64 and optimizer settings on mnist5k (full MNIST is a download); SGD, HF-Newton and HF-Gauss-Newton "
            f"for {plural(fmt(w_ep, 3), 'epoch')} (the suite's 7 times {fmt(args.wang_scale, 3)}), Newton and damped "
            + (f"Newton in a workload of their own with {plural(args.dense_steps, 'iteration')} (each step builds and "
               "factors the dense 7,960 x 7,960 matrix)" if args.dense_steps else "Newton not run (--dense-steps 0)")
            + ". One seed, as the paper. The paper ran JAX on a V100 with 60,000 training images: absolute losses, "
            "accuracies and times are not comparable, orderings and ratios are.", "", claims_table(wclaims), "",
            "### The runs", "", wtable, ""]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny budgets, 1 seed: a smoke run of a few minutes "
                    "(writes to /tmp/fidelity-quick.md and results/fidelity-quick/ unless --out/--results)")
    ap.add_argument("--out", help="the report (default reports/fidelity.md)")
    ap.add_argument("--results", help="folder of trial records (default results/fidelity/)")
    ap.add_argument("--seeds", type=int, help=f"seeds for the Gargiani runs (default {FULL['seeds']}, the suite's)")
    ap.add_argument("--budget-scale", type=float,
                    help=f"fraction of the Gargiani sine budget of 3000 epochs (default {FULL['budget_scale']})")
    ap.add_argument("--boston-scale", type=float,
                    help=f"fraction of the Gargiani boston budget of 100 epochs (default {FULL['boston_scale']})")
    ap.add_argument("--curves-time", type=float,
                    help=f"training seconds per CURVES trial (default {FULL['curves_time']:g})")
    ap.add_argument("--dense-steps", type=int,
                    help=f"iterations of (damped) Newton on mnist5k; 0 skips them (default {FULL['dense_steps']})")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for the small nets (Gargiani, Wang's SGD and HF runs). Default 1: "
                         "on a busy 2-core machine two threads made a 784-10-10 gradient take 140 ms instead of "
                         "0.2 ms; 0 keeps torch's default")
    ap.add_argument("--threads-large", type=int, default=0,
                    help="torch intra-op threads for CURVES and dense Newton, whose matrix products gain from "
                         "more (default 0: torch's default, one per core)")
    ap.add_argument("--mnist5k-standin", action="store_true",
                    help="also run Gargiani §4.3's net on mnist5k for 25 s a trial (a stand-in for MNIST; "
                         "9 trials a seed)")
    args = ap.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    args.out = pathlib.Path(args.out or ("/tmp/fidelity-quick.md" if args.quick else ROOT / "reports" / "fidelity.md"))
    args.results = str(args.results or (ROOT / "results" / ("fidelity-quick" if args.quick else "fidelity")))

    import torch

    default_threads = torch.get_num_threads()
    started, t0, load_before = datetime.datetime.now(), time.perf_counter(), os.getloadavg()[0]
    parts = plan(args)
    total = sum(len(p.trials) for p in parts)
    print(f"fidelity: {total} trials in {len(parts)} parts; records in {args.results}", file=sys.stderr)
    for part in parts:
        part.threads = (args.threads_large if part.large else args.threads) or default_threads
        torch.set_num_threads(part.threads)
        print(f"\n== {part.title}: {len(part.trials)} trials, {part.threads} torch thread(s)", file=sys.stderr)
        t_part = time.perf_counter()
        part.records = run_suite(part.trials, args.results)
        part.elapsed = time.perf_counter() - t_part
    text = write_report(args, parts, started, time.perf_counter() - t0, load_before, os.getloadavg()[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
