"""The dry-run listing: what `hfbench run --dry-run` prints before anything runs."""

from __future__ import annotations

from collections.abc import Sequence

from .expand import Trial

COLUMNS = ("#", "id", "workload", "optimizer", "params", "backend", "seed", "device", "budget")


def dry_run_rows(trials: Sequence[Trial]) -> list[tuple[str, ...]]:
    """One row of strings per trial, in COLUMNS order (for a rich table in the CLI)."""
    return [
        (str(i), t.id, t.workload, t.optimizer, _kv(t.params) or "-", t.backend, str(t.seed),
         t.device, _kv(t.budget))
        for i, t in enumerate(trials, 1)
    ]


def dry_run_table(trials: Sequence[Trial]) -> str:
    """The expanded trials as an aligned plain-text table, and their count."""
    rows = [COLUMNS, *dry_run_rows(trials)]
    widths = [max(len(r[c]) for r in rows) for c in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + ["", summary(trials)])


def summary(trials: Sequence[Trial]) -> str:
    """'12 trials (2 workloads, 3 optimizer configs, 2 backends, 1 seed)'."""
    n = len(trials)
    parts = {
        "workloads": {t.workload for t in trials},
        "optimizer configs": {(t.optimizer, _kv(t.params)) for t in trials},
        "backends": {t.backend for t in trials},
        "seeds": {t.seed for t in trials},
    }
    counts = ", ".join(_count(len(v), k) for k, v in parts.items())
    return f"{_count(n, 'trials')} ({counts})"


def _count(n: int, plural: str) -> str:
    return f"{n} {plural if n != 1 else plural[:-1]}"


def _kv(d: dict) -> str:
    return " ".join(f"{k}={_num(v)}" for k, v in d.items())


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
