"""Tables of hfbench's key ratios and times, read from asv's result files.

    python benchmarks/asv_table.py --machine "$(python benchmarks/hfbench_bench/machine_name.py)" \
        --out reports/perf/asv_cpu.md

Reads the result file of one machine and one commit (`.asv/results/<machine>/
<hash[:8]>-<env>.json`, asv 0.6's format 2) and writes Markdown: one table per topic,
rows per backend x model, each value taken from the file, nothing measured here:

- curvature products and setups over one gradient (`ratios.CurvatureRatios`);
- CG's loop overhead (`ratios.CGOverhead`);
- one hf step: CG iterations and Gv products (`counts.HFStepCounts`), and its time by
  phase, in ms and as a share of the step (`counts.HFStepSplit`);
- SGD through hfbench's runner against a hand-written loop (`harness.SGDHarness`);
- the `time_*` benchmarks of `primitives` and `steps`, in ms.

A benchmark the file lacks shows `n/a`; one that asv skipped (e.g. a backend that is
not installed) `skipped`; one that failed `failed`. The header gives the machine, the
commit, when it ran, asv's and the frameworks' versions, and the commands.

The commit defaults to this checkout's HEAD; `--commit` takes any prefix. Where the
commit has results from several environments (e.g. `-E existing` and a virtualenv),
`--env` picks one (default: the one that ran last).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib.metadata
import itertools
import json
import math
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSING, SKIPPED, FAILED = "n/a", "skipped", "failed"


# -- reading asv's files ---------------------------------------------------------------
def _param(text):
    """asv stores each parameter value as its repr ("'torch'"); the value itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def decode(entry, columns) -> dict:
    """One benchmark's results ({params tuple: value}) from its row in "results".

    asv 0.6 (format 2): the row is aligned with "result_columns"; "result" lists one
    value per combination of "params", in itertools.product order (one value, with
    params [], for an unparameterized benchmark). A value is a number, NaN (skipped)
    or None (failed).
    """
    row = dict(zip(columns, entry))
    values = row.get("result")
    params = row.get("params") or []
    if not isinstance(values, list):
        values = [values]
    combos = list(itertools.product(*[[_param(p) for p in ps] for ps in params])) or [()]
    return dict(zip(combos, values))


class Run:
    """One result file: meta data, and every benchmark's {params: value}."""

    def __init__(self, path: Path, machine_info: dict, others: list[str]):
        self.path = path
        data = json.loads(path.read_text())
        self.data = data
        self.machine_info = machine_info
        self.others = others  # other environments' files for the same commit
        columns = data.get("result_columns", ["result", "params"])
        self.results = {name: decode(entry, columns) for name, entry in data["results"].items()}
        starts = [dict(zip(columns, e)).get("started_at") for e in data["results"].values()]
        self.started = [s for s in starts if isinstance(s, (int, float))]

    def get(self, name: str, *combo):
        """The value of benchmark `name` at `combo`: a float, or MISSING / SKIPPED / FAILED."""
        if name not in self.results or tuple(combo) not in self.results[name]:
            return MISSING
        value = self.results[name][tuple(combo)]
        if value is None:
            return FAILED
        if isinstance(value, float) and math.isnan(value):
            return SKIPPED
        return float(value)

    def combos(self, *names: str) -> list[tuple]:
        """The parameter combinations of the first of `names` in the file, in order."""
        for name in names:
            if name in self.results:
                return list(self.results[name])
        return []


def load(results_dir: Path, machine: str, commit: str, env: str | None = None) -> Run:
    folder = results_dir / machine
    if not folder.is_dir():
        known = sorted(p.name for p in results_dir.iterdir() if p.is_dir()) if results_dir.is_dir() else []
        raise SystemExit(f"no asv results for machine {machine!r} under {results_dir} "
                         f"(machines there: {', '.join(known) or 'none'})")
    runs = []
    for path in sorted(folder.glob("*.json")):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        if str(data.get("commit_hash", "")).startswith(commit) and (env is None or data.get("env_name") == env):
            runs.append((path, data))
    if not runs:
        raise SystemExit(f"no asv result file for commit {commit[:12]} on machine {machine!r}"
                         f"{f' in environment {env!r}' if env else ''} under {folder}")

    def last_start(item):
        _, data = item
        cols = data.get("result_columns", [])
        starts = [dict(zip(cols, e)).get("started_at") or 0 for e in data["results"].values()]
        return max(starts, default=0)

    runs.sort(key=last_start)
    path, _ = runs[-1]
    machine_file = folder / "machine.json"
    info = json.loads(machine_file.read_text()) if machine_file.is_file() else {}
    return Run(path, info, [p.name for p, _ in runs[:-1]])


# -- formatting --------------------------------------------------------------------------
def _ratio(v) -> str:
    return v if isinstance(v, str) else f"{v:.2f}"


def _ms(v) -> str:
    """Seconds as milliseconds, 3 significant digits (at least 2 decimals under 1 ms)."""
    if isinstance(v, str):
        return v
    ms = v * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}" if ms >= 0.01 else f"{ms:.2g}"


def _plain_ms(v) -> str:
    """A value already in ms."""
    return v if isinstance(v, str) else _ms(v / 1e3)


def _count(v) -> str:
    return v if isinstance(v, str) else f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def table(run: Run, keys: list[str], columns: list[tuple[str, str, callable]]) -> list[str]:
    """Rows per parameter combination (`keys` names its parts) of the first benchmark
    in `columns` that the file holds; each column is (heading, benchmark, format)."""
    combos = run.combos(*[name for _, name, _ in columns])
    if not combos:
        return [f"_Not in this result file_ (benchmarks {', '.join(sorted({c[1].rsplit('.', 1)[0] for c in columns}))})."]
    lines = ["| " + " | ".join(keys + [c[0] for c in columns]) + " |",
             "|" + "---|" * len(keys) + "---:|" * len(columns)]
    for combo in combos:
        cells = [str(p) for p in combo] + [fmt(run.get(name, *combo)) for _, name, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


PHASES = [("grad + curvature", "grad_curvature"), ("precondition", "precondition"), ("CG", "cg"),
          ("backtrack", "backtrack"), ("update", "update")]


def phase_table(run: Run) -> list[str]:
    """counts.HFStepSplit: each phase in ms and as a share of the step's total."""
    name = "counts.HFStepSplit.track_phase_seconds"
    if name not in run.results:
        return ["_Not in this result file_ (benchmarks counts.HFStepSplit)."]
    pairs = list(dict.fromkeys(combo[:2] for combo in run.results[name]))
    lines = ["| backend | model | " + " | ".join(h for h, _ in PHASES) + " | total (ms) |",
             "|---|---|" + "---:|" * (len(PHASES) + 1)]
    for b, m in pairs:
        total = run.get(name, b, m, "total")
        cells = []
        for _, phase in PHASES:
            v = run.get(name, b, m, phase)
            share = (f" ({100 * v / total:.0f}%)" if not isinstance(v, str) and not isinstance(total, str)
                     and total > 0 else "")
            cells.append(_ms(v) + share)
        lines.append(f"| {b} | {m} | " + " | ".join(cells) + f" | {_ms(total)} |")
    return lines


# -- the report --------------------------------------------------------------------------
def _when(ms) -> str:
    return dt.datetime.fromtimestamp(ms / 1e3, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(run: Run) -> str:
    """asv's, Python's and the frameworks' versions, and where each comes from."""
    d = run.data
    params, reqs = d.get("params", {}), d.get("requirements", {})
    env = str(d.get("env_name", ""))
    here = env.startswith("existing") and Path(str(d.get("python", ""))).resolve() == Path(sys.executable).resolve()
    parts = [f"asv {_version('asv') or '?'} (result format {d.get('version', '?')})"]
    python = str(params.get("python", d.get("python", "?")))
    if here:
        python = f"{platform.python_version()} ({python})"
    parts.append(f"Python {python}")
    for pkg in ("torch", "jax"):
        pinned = reqs.get(pkg) or params.get(pkg)
        if pinned:
            parts.append(f"{pkg} {pinned} (the environment's pin)")
        elif here and _version(pkg):
            parts.append(f"{pkg} {_version(pkg)}")
        else:
            parts.append(f"{pkg} not recorded")
    note = " (torch and jax: installed in this Python, which `-E existing` ran in)" if here else ""
    return ", ".join(parts) + note


def cpu_line(run: Run) -> str:
    info = run.machine_info
    if info.get("cpu"):
        cores = f", {info['num_cpu']} cores" if info.get("num_cpu") else ""
        return f"{info['cpu']}{cores} ({info.get('arch', '')} {info.get('os', '')}; asv machine.json)".replace(" ;", ";")
    sys.path.insert(0, str(ROOT / "benchmarks" / "hfbench_bench"))
    from machine_name import cores, cpu_model  # standard library only

    return (f"{cpu_model()}, {cores()} usable cores, {platform.machine()}, {platform.system()} "
            f"{platform.release()} (read when the table was made; asv's machine.json names the "
            f"machine only: `asv machine --machine NAME` stores no other field)")


def render(run: Run, command: str, table_command: str, notes=()) -> str:
    d = run.data
    commit = d.get("commit_hash", "?")
    measured = (f"{_when(min(run.started))} to {_when(max(run.started))}" if run.started else "not recorded")
    env_vars = d.get("env_vars") or {}
    lines = [
        "# asv results: curvature ratios, CG overhead, the hf step, harness overhead, times",
        "",
        f"Generated by `{table_command}` from asv's result file "
        f"`{run.path.relative_to(ROOT) if run.path.is_relative_to(ROOT) else run.path}`; "
        f"every number is read from it, nothing is pasted or measured here.",
        "",
        f"- machine: `{d.get('params', {}).get('machine', '?')}`",
        f"- CPU: {cpu_line(run)}",
        f"- commit: `{commit}` (commit date {_when(d['date']) if d.get('date') else '?'})",
        f"- measured: {measured}",
        f"- environment: `{d.get('env_name', '?')}`" + (f", env vars {env_vars}" if env_vars else ""),
        f"- versions: {versions(run)}",
        f"- command: `{command}`",
        *[f"- {n}" for n in notes],
    ]
    if run.others:
        lines.append(f"- other environments with results for this commit (not shown): {', '.join(run.others)}")
    lines += [
        "",
        "Models (`benchmarks/hfbench_bench/_common.py`): `mlp` 784-64-10 ReLU at batch 256; "
        "`autoencoder` Martens' MNIST autoencoder 784-1000-500-250-30 (2.84M weights) at batch "
        "100; `lenet` LeNet-5 at batch 64. Synthetic seed-0 data, float32, the CPU. `n/a`: not "
        "in the result file; `skipped`: asv skipped it (a backend missing); `failed`: it raised.",
        "",
        "## Curvature products and setups, in gradients",
        "",
        "Time of each call over the time of one `value_and_grad` on the same batch, calls "
        "interleaved in one process so that load drift hits both sides alike "
        "(`ratios.CurvatureRatios`, 10 rounds, ratio of medians). Gv: the Gauss-Newton "
        "product after `curvature(\"ggn\")`; Hv: the Hessian's; Fisher·v: the empirical "
        "Fisher's; precondition: Martens' diagonal; curvature setup: `curvature(\"ggn\")` "
        "itself (the linearization). Issue #2's floors: Gv <= 1.25 (torch), <= 1.2 (JAX); "
        "precondition <= 1.5.",
        "",
        *table(run, ["backend", "model"], [
            ("Gv / grad", "ratios.CurvatureRatios.track_gv_over_grad", _ratio),
            ("Hv / grad", "ratios.CurvatureRatios.track_hv_over_grad", _ratio),
            ("Fisher·v / grad", "ratios.CurvatureRatios.track_fisher_v_over_grad", _ratio),
            ("precondition / grad", "ratios.CurvatureRatios.track_precondition_over_grad", _ratio),
            ("curvature setup / grad", "ratios.CurvatureRatios.track_curvature_setup_over_grad", _ratio),
        ]),
        "",
        "## CG loop overhead",
        "",
        "A fixed 20-iteration CG solve on (G + I) p = -g with HF's buffers, over 20 times one "
        "Gv of the same operator, interleaved (`ratios.CGOverhead`, 5 rounds). 1.00: the loop "
        "costs nothing beyond its products. Issue #3's floors (50 iterations, batch 1000): "
        "<= 1.05 on the autoencoder, <= 2 on a small MLP.",
        "",
        *table(run, ["backend", "model"], [
            ("CG solve / (iterations x Gv)", "ratios.CGOverhead.track_cg_overhead", _ratio)]),
        "",
        "## One hf step: CG work",
        "",
        "hf at its defaults from the seed-0 start (`counts.HFStepCounts`; the step "
        "`steps.HFStep` times). Counts, so noise-free: a change means the algorithm or its "
        "numerics changed.",
        "",
        *table(run, ["backend", "model"], [
            ("CG iterations", "counts.HFStepCounts.track_cg_iters", _count),
            ("Gv products", "counts.HFStepCounts.track_gv_products", _count)]),
        "",
        "## One hf step: time by phase",
        "",
        "The same step with `profile=True`, which syncs between phases "
        "(`counts.HFStepSplit`): median ms over 3 steps after a warm-up one, and in "
        "brackets each phase's share of the total. grad + curvature: the gradient and the "
        "linearization; backtrack: choosing among CG's saved iterates (and any line search).",
        "",
        *phase_table(run),
        "",
        "## SGD through hfbench's runner against a hand-written loop",
        "",
        "SGD (lr 0.1) on MNIST-5k, 784-64-10 ReLU, batch 256, 100 steps per run, 3 "
        "interleaved rounds (`harness.SGDHarness`, `benchmarks/harness_overhead.py`): ms per "
        "step on each side and their ratio. The issue's target: ratio <= 1.3.",
        "",
        *table(run, ["backend"], [
            ("runner (ms/step)", "harness.SGDHarness.track_runner_ms_per_step", _plain_ms),
            ("hand-written (ms/step)", "harness.SGDHarness.track_hand_written_ms_per_step", _plain_ms),
            ("runner / hand-written", "harness.SGDHarness.track_overhead_ratio", _ratio)]),
        "",
        "## Times of the primitives (ms)",
        "",
        "asv's `time_*` benchmarks (`primitives`): its estimate (the median of its samples) "
        "of one call, waited for on its result. CG: a fixed 10-iteration solve. These are "
        "raw times on a shared machine; the ratios above hold steadier.",
        "",
        *table(run, ["backend", "model"], [
            ("gradient", "primitives.Gradient.time_value_and_grad", _ms),
            ("Gv", "primitives.GaussNewtonProduct.time_gv", _ms),
            ("curvature setup", "primitives.CurvatureSetup.time_curvature", _ms),
            ("precondition", "primitives.Preconditioner.time_precondition", _ms),
            ("CG, 10 iterations", "primitives.CGSolve.time_cg_fixed", _ms)]),
        "",
        "## Times of whole steps (ms)",
        "",
        "One step of each optimizer from the same point (`steps`): hf at its defaults, sgn "
        "at its defaults (10 CG iterations), sgd.",
        "",
        *table(run, ["backend", "model"], [
            ("hf step", "steps.HFStep.time_hf_step", _ms),
            ("sgn step", "steps.SGNStep.time_sgn_step", _ms),
            ("sgd step", "steps.SGDStep.time_sgd_step", _ms)]),
        "",
    ]
    return "\n".join(lines)


def _head() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machine", required=True, help="asv machine name (the results folder)")
    ap.add_argument("--commit", help="commit hash or prefix (default: this checkout's HEAD)")
    ap.add_argument("--env", help="asv environment name, where the commit has several")
    ap.add_argument("--results-dir", type=Path, default=ROOT / ".asv" / "results")
    ap.add_argument("--command", default="not given",
                    help="the asv command that produced the results, for the header")
    ap.add_argument("--note", action="append", default=[], help="an extra header line (repeatable)")
    ap.add_argument("--out", type=Path, help="Markdown file to write (default: stdout)")
    args = ap.parse_args(argv)
    commit = args.commit or _head()
    if not commit:
        ap.error("--commit is needed outside a git checkout")
    run = load(args.results_dir, args.machine, commit, args.env)
    shown = ["python", "benchmarks/asv_table.py", "--machine", args.machine]
    for flag, value in (("--commit", args.commit), ("--env", args.env), ("--out", args.out)):
        shown += [flag, str(value)] if value else []
    text = render(run, args.command, shlex.join(shown), args.note)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
