"""From a validated suite to trials: workload x optimizer grid point x backend x seed.

A `Trial` is a frozen, fully resolved record: every default is filled in, so the
runner needs nothing else, and `config()` is what its id hashes. The id is the
first 16 hex digits of the SHA-256 of `config()` as canonical JSON (sorted keys,
no spaces). It is stable across runs and machines, and changes when any setting
changes, names included (a renamed workload is a new trial). `options` holds the
algorithm's defaults too, so a default changed in a later hfbench also makes a new
trial: the old result was made with other settings. `backend_options` likewise
holds the backend's resolved options (its defaults filled in; device, dtype and tf32
are fields of their own), and `backend_kwargs()` is everything the backend is built
with. `budget_scale` multiplies the budget and the time marks and is itself part of
the config, so a scaled quick look never passes for (or resumes as) the full trial.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import algorithms
from ..devices import parse_device
from ..errors import DeviceError, HFBenchError, unknown
from ..models import ModelSpec
from . import datasets, grid, models, options as backend_options
from .schema import Suite, Workload

ID_LENGTH = 16


@dataclass(frozen=True, kw_only=True)
class Trial:
    """One run: a workload, one grid point of one optimizer, a backend and a seed."""

    id: str = field(default="", compare=False)
    suite: str
    workload: str
    optimizer: str
    algorithm: str
    params: dict  # this grid point, as written (ints promoted for float options)
    options: dict  # every option of the algorithm: its defaults overridden by params
    backend: str
    seed: int
    device: str  # canonical (hfbench.devices)
    dtype: str
    tf32: bool
    backend_options: dict  # the backend's other options, resolved (suite/options.py)
    dataset: str
    model: dict  # {type: mlp, sizes: [...], activation: ...}; see `model_spec()`
    loss: str
    batch_size: int | str  # an int, or "full": the whole training set every step
    curvature_batch_size: int | str
    l2: float
    loss_scale: float
    init: str
    budget: dict  # any of time_s, epochs, iterations, grad_passes; already scaled
    budget_scale: float
    targets: list  # [{metric, op, value, stop}]
    eval: dict  # {every, epoch_end, time_marks}; time marks already scaled
    # where each backend option was set ("file:line key.path"), for messages; not config
    origins: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not self.id:
            object.__setattr__(self, "id", trial_id(self.config()))

    def __hash__(self) -> int:
        return hash(self.id)

    def config(self) -> dict[str, Any]:
        """The fully resolved settings as plain JSON-able data (a copy); what the id hashes."""
        out = copy.deepcopy(asdict(self))
        del out["id"], out["origins"]
        return out

    def backend_kwargs(self) -> dict[str, Any]:
        """What `hfbench.get_backend(trial.backend, **kwargs)` builds the backend with."""
        return {"device": self.device, "dtype": self.dtype, "tf32": self.tf32,
                **copy.deepcopy(self.backend_options)}

    def model_spec(self) -> ModelSpec:
        """The network, built by `hfbench.models.zoo` from the model entry."""
        return models.build(self.model, self.loss, self.l2, self.init, self.loss_scale)


def trial_id(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def expand(
    suite: Suite,
    *,
    workload: str | Iterable[str] | None = None,
    optimizer: str | Iterable[str] | None = None,
    backend: str | Iterable[str] | None = None,
    seeds: int | Iterable[int] | None = None,
    device: str | None = None,
    budget_scale: float = 1.0,
) -> list[Trial]:
    """The suite's trials, optionally narrowed.

    workload / optimizer / backend: names (one or several: their union) of the
    suite's own; seeds: N for the suite's first N seeds, or a list of the suite's
    seeds; device: replaces every trial's device; budget_scale: multiplies every
    budget and time mark. An unknown name or seed, or filters that leave no trial,
    are an HFBenchError that lists what the suite has.
    """
    where = f"suite {suite.name!r} ({suite.source})"
    workloads = _select("workload", workload, list(suite.workloads), where)
    wanted_opts = _select("optimizer", optimizer, list(suite.optimizers), where)
    backends = _select("backend", backend, suite.backends, where)
    seed_list = _seeds(seeds, suite.seeds, where, _at_line(suite, ("seeds",)))
    scale = _scale(budget_scale)
    if device is not None:
        device = _checked_device(device)
    _check_count(suite, workloads, wanted_opts, backends, seed_list, where)
    trials = [
        trial
        for w in workloads
        for trial in _workload_trials(suite, w, wanted_opts, backends, seed_list, device, scale)
    ]
    if not trials:
        raise HFBenchError(f"{where}: the filters select no trials; a workload runs only the "
                           f"optimizers in its `optimizers` list: {_allowlists(suite, workloads)}")
    return trials


MAX_TRIALS = 100_000  # the largest shipped suite has ~500; beyond this, listing them never ends


def _check_count(suite, workloads, wanted_opts, backends, seeds, where) -> None:
    """Refuse, before building any, more trials than MAX_TRIALS (a typo in a grid or a seed
    count, usually)."""
    n = 0
    for name in workloads:
        allowed = suite.workloads[name].optimizers
        for opt_name in wanted_opts:
            if allowed is None or opt_name in allowed:
                opt = suite.optimizers[opt_name]
                n += grid.size(opt.params, opt.zip) * len(backends) * len(seeds)
    if n > MAX_TRIALS:
        raise HFBenchError(f"{where}: the suite expands to {n:,} trials, over the limit of "
                           f"{MAX_TRIALS:,}; narrow it (--workload, --optimizer, --backend, "
                           "--seeds) or split its grids")


def _workload_trials(suite, name, wanted_opts, backends, seeds, device, scale) -> list[Trial]:
    w = suite.workloads[name]
    allowed = w.optimizers if w.optimizers is not None else list(suite.optimizers)
    base = _workload_config(suite, name, w, device, scale)
    per_backend = {be: _backend_options(suite, name, w, be) for be in backends}
    device_from = _device_origin(suite, name, w, device)
    out = []
    for opt_name in (o for o in suite.optimizers if o in allowed and o in wanted_opts):
        opt = suite.optimizers[opt_name]
        defaults = {k: d.value for k, d in algorithms.defaults(opt.algorithm).items()}
        points = grid.points(opt.algorithm, opt.params, opt.zip)
        for point, be, seed in itertools.product(points, backends, seeds):
            resolved, origins = per_backend[be]
            out.append(Trial(
                optimizer=opt_name, algorithm=opt.algorithm, params=dict(point),
                options={**defaults, **point}, backend=be, seed=seed,
                backend_options=copy.deepcopy(resolved), origins={**origins, **device_from},
                **copy.deepcopy(base),  # no two trials share a mutable dict
            ))
    return out


def _backend_options(suite: Suite, name: str, w: Workload, backend: str) -> tuple[dict, dict]:
    """(resolved options, where each was set) of one backend for one workload's trials:
    the suite's backend_options, then the workload's, option by option."""
    levels = [(("backend_options", backend), suite.backend_options.get(backend, {})),
              (("workloads", name, "backend_options", backend),
               (w.backend_options or {}).get(backend, {}))]
    origins = {key: suite.where(loc + (key,)) for loc, level in levels for key in level}
    try:
        resolved = backend_options.resolve(backend, *(level for _, level in levels))
    except (TypeError, ValueError) as exc:  # load() reports these; a Suite made in code may not
        raise HFBenchError(f"{', '.join(origins.values()) or suite.source}: {exc}") from None
    return resolved, origins


def _device_origin(suite: Suite, name: str, w: Workload, override: str | None) -> dict:
    """{"device": where the trials' device was set} (the --device option, the workload's
    key or the suite's), so a device this machine lacks is named at its line; {} when
    it is the default."""
    if override is not None:
        return {"device": f"--device {override}"}
    for path in (("workloads", name, "device"), ("device",)):
        if path in getattr(suite, "_lines", {}):
            return {"device": suite.where(path)}
    return {}


def _workload_config(suite: Suite, name: str, w: Workload, device: str | None, scale: float) -> dict:
    """Everything a workload's trials share, resolved (defaults and suite-level values)."""
    model = w.model.model_dump()
    budget = w.budget or suite.budget  # validation guarantees one of them
    ev = (w.eval or suite.eval).model_dump()
    ev["time_marks"] = [_round(m * scale) for m in ev["time_marks"]]
    return dict(
        suite=suite.name, workload=name, device=device or w.device or suite.device,
        dtype=suite.dtype, tf32=suite.tf32, dataset=w.dataset, model=model,
        loss=w.loss or models.default_loss(model, datasets.info(w.dataset)),
        batch_size=w.batch_size,
        curvature_batch_size=w.batch_size if w.curvature_batch_size is None else w.curvature_batch_size,
        l2=float(w.l2), loss_scale=float(w.loss_scale), init=w.init or models.default_init(model),
        budget=scale_budget(budget.limits(), scale), budget_scale=scale,
        targets=[t.model_dump() for t in (w.targets if w.targets is not None else suite.targets)],
        eval=ev,
    )


def scale_budget(limits: dict, scale: float) -> dict:
    """Every limit times `scale`; iterations round up and stay >= 1."""
    out = {}
    for key, value in limits.items():
        if key == "iterations":
            out[key] = max(1, math.ceil(_round(value * scale)))
        else:
            out[key] = _round(value * scale)
    return out


def _round(x: float) -> float:
    """12 significant digits: 0.1 * 30 is 3.0, not 3.0000000000000004, so ids stay tidy."""
    return float(f"{x:.12g}")


# ----------------------------------------------------------------------------- filters


def _select(kind: str, wanted, available: list[str], where: str) -> list[str]:
    """The suite's names among `wanted` (one name or several: their union), in suite order."""
    if wanted is None:
        return list(available)
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    if not names:
        raise HFBenchError(f"{where}: an empty {kind} filter selects nothing "
                           f"(the suite's: {', '.join(available)})")
    for n in names:
        if n not in available:
            raise HFBenchError(f"{where}: {unknown(kind, n, available)}")
    return [a for a in available if a in names]


def _seeds(wanted, available: list[int], where: str, key_at: str = "") -> list[int]:
    if wanted is None:
        return list(available)
    if isinstance(wanted, bool) or not isinstance(wanted, (int, list, tuple)):
        raise HFBenchError(f"{where}: seeds must be a count N or a list of seeds, got {wanted!r}")
    if isinstance(wanted, int):
        if not 1 <= wanted <= len(available):
            raise HFBenchError(f"{where}: {_seed_count_problem(wanted, available, key_at)}")
        return list(available[:wanted])
    if not wanted or not all(type(s) is int and s >= 0 for s in wanted):
        raise HFBenchError(f"{where}: seeds must be integers >= 0, got {list(wanted)!r}")
    missing = [s for s in wanted if s not in available]
    if missing:
        raise HFBenchError(f"{where}: seed {', '.join(map(str, missing))} is not in the suite; "
                           f"its seeds: {', '.join(map(str, available))} (--seed S picks "
                           "among them, --seeds N takes the first N)")
    return [s for s in available if s in wanted]


def _at_line(suite: Suite, path: tuple) -> str:
    """` (file:line)` of a key the suite's file gives, or '' (absent, or made in code)."""
    shown = suite.where(path)
    return f" ({shown.split(' ', 1)[0]})" if path in getattr(suite, "_lines", {}) else ""


def _seed_count_problem(n: int, available: list[int], key_at: str = "") -> str:
    """Why `--seeds n` cannot be: a count below 1, or more seeds than the suite lists
    (--seeds and --seed choose among the suite's seeds; its `seeds:` key adds more)."""
    k = len(available)
    has = f"the suite has {k} seed{'s' if k != 1 else ''} ({', '.join(map(str, available))})"
    if n < 1:
        return f"--seeds {n}: give a count of at least 1; {has}"
    counts = "--seeds 1" if k == 1 else f"--seeds 1 to --seeds {k}"
    return (f"--seeds {n} asks for the first {n} seeds, but {has}; give {counts}, or to "
            f"run more, list them in the suite's `seeds:` key{key_at}: `seeds: {n}` means seeds 0 to {n - 1}")


def _scale(value) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise HFBenchError(f"budget scale must be a finite number > 0, got {value!r}")
    return float(value)


def _checked_device(device: str) -> str:
    """The canonical name of a device given on the command line."""
    try:
        return parse_device(device)
    except DeviceError as exc:
        raise HFBenchError(f"--device: {exc}") from None


def _allowlists(suite: Suite, workloads: list[str]) -> str:
    """Each workload's optimizers, with the line of its list: `digits: sgd, sgn (x.yaml:13
    workloads.digits.optimizers)`."""
    parts = []
    for name in workloads:
        allowed = suite.workloads[name].optimizers
        if allowed is None:
            parts.append(f"{name}: all")
        else:
            parts.append(f"{name}: {', '.join(allowed)} ({suite.where(('workloads', name, 'optimizers'))})")
    return "; ".join(parts)
