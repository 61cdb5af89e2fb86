"""The `hfbench` command line.

Bad input (an `HFBenchError`) prints one message on stderr and exits with 2; no
traceback. Anything else unexpected exits with 1.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import HFBenchError
from .registry import EXTRAS, installed

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[1])
err = Console(stderr=True)
# Not a terminal (a log, CI): rich would wrap tables at 80 columns; give them room.
out = Console() if Console().is_terminal else Console(width=160)


@app.callback()
def _root() -> None:
    """hfbench: benchmarks for Hessian-free optimizers on PyTorch and JAX."""


@app.command()
def backends(
    check: bool = typer.Option(True, help="Run the conformance check on each installed backend."),
) -> None:
    """List the registered backends and run the conformance check on each installed one."""
    from .testing import check_backend

    table = Table(title="hfbench backends")
    for col in ("backend", "status", "conformance"):
        table.add_column(col)
    failed, unchecked = False, []
    for name, why in installed().items():
        if why is not None:
            hint = f"pip install 'hfbench[{EXTRAS.get(name, name)}]'"
            table.add_row(name, f"not importable: {why}; {hint}", "-")
            continue
        verdict = "skipped"
        if check:
            with out.status(f"checking {name} ..."):
                report = check_backend(name, raise_on_failure=False)
            verdict = _conformance_verdict(report)
            unchecked += [(name, r) for r in report.not_checked()]
            if not report.passed:
                failed = True
                err.print(str(report), markup=False, soft_wrap=True)
        table.add_row(name, "installed", verdict)
    out.print(table)
    for name, r in unchecked:  # never silently counted as passed: say what and why
        out.print(f"{name}: NOT CHECKED  {r.name}: {r.detail}", markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _conformance_verdict(report) -> str:
    """`58/61 checks passed, 3 not checked here` (a check not made is neither)."""
    made = [r for r in report.results if r.checked]
    text = f"{sum(r.passed for r in made)}/{len(made)} checks passed"
    skipped = len(report.results) - len(made)
    return text + (f", {skipped} not checked here" if skipped else "")


@app.command()
def run(
    suite: str = typer.Argument(None, help="Suite file or name (default: the quickstart)."),
    results: str = typer.Option("results", "--results", help="Folder for the trial records."),
    workload: Optional[list[str]] = typer.Option(None, help="Run only this workload (repeat "
                                                 "the option for several)."),
    optimizer: Optional[list[str]] = typer.Option(None, help="Run only this optimizer (repeat "
                                                  "the option for several)."),
    backend: Optional[list[str]] = typer.Option(None, help="Run only this backend (repeat the "
                                                "option for several)."),
    seeds: int = typer.Option(None, help="Run only the suite's first N seeds."),
    seed: Optional[list[int]] = typer.Option(None, "--seed", help="Run only this seed of the "
                                             "suite's (repeat the option for several)."),
    device: str = typer.Option(None, help="Override the device: cpu, cuda, cuda:N (gpu, gpu:N "
                               "alike), auto."),
    budget_scale: float = typer.Option(1.0, help="Multiply every budget (quick looks)."),
    threads: int = typer.Option(None, min=1, help="CPU threads of the framework (torch; JAX's "
                                "CPU pool is set for it from XLA_FLAGS). Default: the framework's."),
    executor: str = typer.Option("local", help="Where trials run: local (one at a time in this "
                                 "process) or ray (Ray tasks on this machine's or a cluster's GPUs "
                                 "and CPUs; pip install 'hfbench[ray]')."),
    address: str = typer.Option(None, help="With --executor ray: the cluster to join, auto (one "
                                "`ray start` began) or HOST:PORT. Default: start one sized to this machine."),
    retries: int = typer.Option(0, min=0, help="Run a failed trial again, up to N times."),
    cpus_per_trial: int = typer.Option(None, min=1, help="With --executor ray: CPUs each trial "
                                       "reserves, also its framework's threads [default: 1]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expanded trials and stop."),
) -> None:
    """Run a suite: every workload x optimizer x backend x seed, resumable."""
    from . import suite as suites
    from .executors import get_executor
    from .runner.record import check_writable
    from .runner.suite_run import pending, preflight, run_suite, summary_table

    spec = suites.load(suite or "quickstart")
    if seeds is not None and seed:
        raise HFBenchError("give --seeds N (the suite's first N seeds) or --seed S (these seeds), "
                           "not both")
    trials = suites.expand(spec, workload=workload, optimizer=optimizer, backend=backend,
                           seeds=seed or seeds, device=device, budget_scale=budget_scale)
    if dry_run:
        out.print(suites.dry_run_table(trials))
        return
    if threads is not None:
        _limit_xla_threads(threads)  # before preflight, which starts the frameworks
    runner = get_executor(executor, threads=threads, retries=retries, address=address,
                          cpus_per_trial=cpus_per_trial)
    if not pending(trials, results):  # all finished: start no Ray, no framework
        runner = contextlib.nullcontext(runner)
    else:  # a folder that cannot hold records fails now, before Ray and the frameworks start
        check_writable(results)
    with runner as runner:  # Ray starts here, before preflight starts JAX (its threads make Ray's fork warn)
        # joining a cluster, the driver may run no trial: its data and devices say nothing
        if address is None:
            preflight(trials)
        try:
            recs = run_suite(trials, results, console=err, executor=runner)
        except KeyboardInterrupt as exc:  # run_suite said what finished and how to resume
            raise typer.Exit(getattr(exc, "exit_code", 130)) from None  # SIGTERM: 143
    out.print(summary_table(recs))
    out.print(f"records: {len(recs)} trials in {results}/ (hfbench.results.load({results!r}))")
    out.print(f"next: hfbench report {results} --out {results}/report   "
              "(tables, figures and a page; pip install 'hfbench[report]')", highlight=False, markup=False)
    if any(r is None or r.get("status") == "failed" for r in recs):
        raise typer.Exit(1)


@app.command()
def report(
    results: str = typer.Argument(None, help="Results folder of `hfbench run` (default: results)."),
    out_dir: str = typer.Option(None, "--out", help="Report folder (default: RESULTS/report)."),
    csv: bool = typer.Option(False, "--csv", help="Also write the records as trials.csv and steps.csv."),
    figures: bool = typer.Option(True, help="Draw the figures (the slow part)."),
    compare: Optional[tuple[str, str]] = typer.Option(None, help="Two results folders A B side by "
                                            "side: time ratios and metric differences."),
) -> None:
    """Tables (Markdown, LaTeX), figures, the paper's numbers and an index.html."""
    if compare:
        _compare(*compare, out_dir)
        return
    from .report.build import build

    results = results or "results"
    target = out_dir or os.path.join(results, "report")
    with err.status(f"building the report of {results}/ ..."):
        rep = build(results, target, csv=csv, figures=figures)
    out.print(f"report: {len(rep.tables)} tables, {len(rep.figures)} figures -> {rep.index}", highlight=False)
    if rep.missing:
        out.print(f"missing or failed: {len(rep.missing)} lines, listed on the page", highlight=False)


def _compare(a: str, b: str, out_dir: str | None) -> None:
    from . import results as R
    from .report.compare import compare_table

    table = compare_table(R.trials(a), R.trials(b), a, b)
    out.print(table.to_markdown(), highlight=False, soft_wrap=True)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for ext, text in (("md", table.to_markdown()), ("tex", table.to_latex())):
            with open(os.path.join(out_dir, f"compare.{ext}"), "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        out.print(f"written to {out_dir}/compare.md and compare.tex", highlight=False)


def _limit_xla_threads(n: int) -> None:
    """XLA reads its CPU thread settings once, when JAX starts: set them before that."""
    if "jax" in sys.modules:
        return  # already started (only when run in-process); the record shows XLA_FLAGS
    from .executors.base import xla_flags

    os.environ["XLA_FLAGS"] = xla_flags(n, os.environ.get("XLA_FLAGS", ""))


data_app = typer.Typer(help="Manage datasets: list them, fetch the downloadable ones.")
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list() -> None:
    """List the datasets, where they come from and whether they are cached."""
    from . import data

    table = Table(title=f"hfbench datasets (cache: {data.cache_dir()})")
    rows = data.list_datasets()
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@data_app.command("fetch")
def data_fetch(name: str, force: bool = typer.Option(False, help="Download again.")) -> None:
    """Download dataset NAME into the cache and check its SHA-256."""
    from . import data

    data.get_info(name)  # an unknown name (with its did-you-mean) fails before anything is drawn
    with _LazyProgress(f"fetching {name}") as progress:
        path = data.fetch(name, force=force, progress=progress.update)
    out.print(f"{name}: ready in {path}")


class _LazyProgress:
    """A download bar drawn at the first bytes, not before: a name that needs no download,
    a cached dataset or a refused fetch print their line without an empty bar above it."""

    def __init__(self, label: str):
        self.label, self.bar, self.task = label, None, None

    def __enter__(self) -> "_LazyProgress":
        return self

    def update(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            self.bar = Progress(*Progress.get_default_columns(), DownloadColumn(),
                                TransferSpeedColumn(), console=err)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def main() -> None:
    """Entry point. Click handles usage errors itself (exit 2) in standalone mode."""
    try:
        app()
    except HFBenchError as exc:
        # escaped: a message quotes the user's YAML ("[torch, jax]" is markup to rich);
        # soft_wrap: a piped `file:line` message stays on one line for editors and grep
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
