"""The `hfbench` command line.

Bad input (an `HFBenchError`) prints one message on stderr and exits with 2; no
traceback. Anything else unexpected exits with 1.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from .errors import HFBenchError
from .registry import EXTRAS, installed

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[1])
err = Console(stderr=True)
out = Console()


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
    failed = False
    for name, why in installed().items():
        if why is not None:
            hint = f"pip install 'hfbench[{EXTRAS.get(name, name)}]'"
            table.add_row(name, f"not importable: {why}; {hint}", "-")
            continue
        verdict = "skipped"
        if check:
            with out.status(f"checking {name} ..."):
                report = check_backend(name, raise_on_failure=False)
            n_ok = sum(r.passed for r in report.results)
            verdict = f"{n_ok}/{len(report.results)} checks passed"
            if not report.passed:
                failed = True
                err.print(str(report))
        table.add_row(name, "installed", verdict)
    out.print(table)
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point. Click handles usage errors itself (exit 2) in standalone mode."""
    try:
        app()
    except HFBenchError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
