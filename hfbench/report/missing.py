"""Which of a suite's trials a results folder lacks.

A trial's id is a hash of its whole configuration, so the suite file, expanded
with the budget scale and device the records were run with, says which trials a
complete run would have written. A folder run with filters (`--backend torch`)
lists the filtered-out trials too: they are missing from it, whatever the reason.
"""

from __future__ import annotations

import json

from ..errors import HFBenchError

MAX_LINES = 40  # per suite; the rest are counted


def missing_trials(records: list[dict]) -> list[str]:
    by_suite: dict[str, list[dict]] = {}
    for r in records:
        by_suite.setdefault(r.get("suite") or "?", []).append(r)
    lines = []
    for name in sorted(by_suite):
        lines += _suite_missing(name, by_suite[name])
    return lines


def _suite_missing(name: str, recs: list[dict]) -> list[str]:
    from .. import suite as suites

    try:
        spec = suites.load(name)
    except HFBenchError:
        return [f"suite {name!r}: its file is not found here, so trials it defines but the folder "
                "lacks cannot be listed"]
    have = {r.get("trial_id") for r in recs}
    runs = _runs_by_workload(recs)
    want = {}
    for scale, device in sorted({run for rs in runs.values() for run in rs}, key=str):
        try:
            trials = suites.expand(spec, budget_scale=float(scale), device=device)
        except HFBenchError:
            continue
        for t in trials:  # a workload at the scales it ran with; one never run at the usual one
            if (scale, device) in runs.get(t.workload, runs[None]):
                want[t.id] = t
    lacking = [want[i] for i in sorted(want) if i not in have]
    if not lacking:
        return []
    groups: dict[tuple, list] = {}
    for t in lacking:
        groups.setdefault((t.workload, t.optimizer, t.backend), []).append(t)
    lines = [_group_line(key, ts) for key, ts in sorted(groups.items())]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"... and {len(lines) - MAX_LINES} more groups of suite {name!r}"]
    return [f"suite {name!r}: {len(lacking)} of {len(want)} trials missing from this folder "
            "(not run yet, or filtered out when the suite ran)"] + lines


def _runs_by_workload(recs) -> dict:
    """{workload: {(budget_scale, device)}} as the records ran, and under None the most
    common pair (what a workload with no record would have been run with)."""
    runs: dict = {}
    count: dict = {}
    for r in recs:
        cfg = r.get("config") or {}
        run = (cfg.get("budget_scale", 1.0), cfg.get("device"))
        runs.setdefault(cfg.get("workload"), set()).add(run)
        count[run] = count.get(run, 0) + 1
    runs[None] = {max(sorted(count, key=str), key=count.get)}
    return runs


def _group_line(key, ts) -> str:
    """'boston / sgd / jax: 25 trials (5 grid points x seeds 0-4)'."""
    points = {json.dumps(t.params, sort_keys=True) for t in ts}
    seeds = sorted({t.seed for t in ts})
    span = f"seed {seeds[0]}" if len(seeds) == 1 else (
        f"seeds {seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1))
        else "seeds " + ", ".join(map(str, seeds)))
    grid = f"{len(points)} grid point{'s' if len(points) != 1 else ''}, "
    return f"{' / '.join(key)}: {len(ts)} trial{'s' if len(ts) != 1 else ''} ({grid}{span})"
