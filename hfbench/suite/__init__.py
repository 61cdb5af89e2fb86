"""Suites: YAML files of workloads x optimizer grids x backends x seeds, validated whole.

    suite = hfbench.suite.load("suites/quickstart.yaml")     # or load("quickstart")
    trials = hfbench.suite.expand(suite, backend="torch", seeds=1, budget_scale=0.5)
    print(hfbench.suite.dry_run_table(trials))

`load` reports every problem of a file at once, each as `file:line key.path: what
is wrong, what is accepted, the closest valid name`. The format is documented in
suites/README.md.
"""

from .datasets import known as dataset_info, names as dataset_names
from .errors import SuiteError
from .expand import Trial, expand, scale_budget, trial_id
from .schema import METRICS, Suite
from .table import COLUMNS, dry_run_rows, dry_run_table, summary
from .validate import load, loads, resolve, shipped

__all__ = [
    "COLUMNS", "METRICS", "Suite", "SuiteError", "Trial", "dataset_info", "dataset_names",
    "dry_run_rows", "dry_run_table", "expand", "load", "loads", "resolve", "scale_budget",
    "shipped", "summary", "trial_id",
]
