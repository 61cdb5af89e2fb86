"""hfbench against a hand-written loop: the harness's share of every step's time.

    python benchmarks/harness_overhead.py                    # full table -> reports/cpu/harness_overhead.txt
    python benchmarks/harness_overhead.py --quick            # a short look (few steps, 2 rounds)
    python benchmarks/harness_overhead.py --only sgn --backends jax --steps 100 --rounds 3

For every cell (model x algorithm x backend) it runs, in one process, hfbench's
runner on a trial built through the suite API (`hfbench.suite.loads` + `expand`,
`hfbench.runner.run_trial` into a temporary folder, budget {iterations: N}, eval
{every: null}, so only the start and final evaluations run, both outside
train_time_s) and the hand-written loop of `benchmarks/handwritten` on the same
model, initial vector (`models.init_params(spec, seed)`), batches (the first N of
`runner.batches.index_stream(n_train, batch, seed)`) and step count.

Timing. hfbench: the record's train_time_s (its warm-up/compilation is timed apart).
Hand-written: two warm-up steps first (a cell may set fewer), then the loop's own
clock, which starts after a sync with the data already on the device and stops after
the result (parameters and the per-step losses, read once) is back. The two sides
alternate over `--rounds` rounds (which one goes first alternates too, so load drift
on a shared machine hits both alike); the table gives the medians, their ratio, and
the range of the per-round ratios.

Check. The max relative difference of the per-step batch losses, hfbench's
record["steps"][i]["batch_loss"] against the hand-written loop's, over all N steps in
float32 ("loss check") and, untimed, over the first few steps of both sides rerun in
float64 ("f64 check"; --no-check64 skips it). sgd/adam agree to float32 rounding. sgn
is comparable only when hfbench's sgn has the options that reproduce Gargiani et
al.'s code (SGN_CODE_OPTIONS below); until then its columns say "n/c". Even then, on
the ill-conditioned boston net the float32 CG path amplifies rounding (hfbench's own
torch and JAX backends differ by about 10% at step 2 there), so the f64 column is the
one that tells whether the algorithms agree.

The second-order cells (hf_newton, hf_gauss_newton, newton, newton_tiny, adaptive_hf, hf)
run each algorithm with its suite's options (CELLS) against the loops of
`handwritten.{torch,jax}_loops` (HF_NEWTON_DOC ... NEWTON_DOC in `handwritten`), on
nets small enough for a quick CPU run, except newton, which runs at wang2024's size
(n = 7,960, a 0.47 GiB float64 Hessian, seconds a step): a cell may cap its steps per
run and rounds, and set its hand-written warm-up and float64-check steps (Cell.steps,
rounds, warmup, check64_steps; the header lists them); newton_tiny (digits 64-8-10,
n = 610) shows the per-step overhead where a step is milliseconds. In float64 they
agree with hfbench to rounding (1e-16 .. 1e-12) over the checked steps. hf's float32
check drifts (1e-4): CG iterates saved for backtracking often give the same loss to 7
digits, so float32 rounding decides which one is taken; in float64 the same happens
after ~20 steps, once lambda is small (hfbench's own torch and JAX backends part there
alike).

torch threads: --threads (default 1), set once for both sides. JAX on CPU takes its
thread pool from XLA_FLAGS, which the header records, and its dense solves (newton's
Cholesky) from LAPACK in SciPy's OpenBLAS, whose threads OPENBLAS_NUM_THREADS sets
when the library loads: the script sets it (and OMP_NUM_THREADS, MKL_NUM_THREADS) to
--threads before importing NumPy, unless the environment already sets it. (On a busy
2-core machine OpenBLAS's default 2 spinning threads made a 610 x 610 Cholesky step
swing between 5 and 600 ms.) jax_enable_x64 is turned on at
start, as hfbench's JAX backend does on construction, so both sides compile under one
setting (every array in both carries its dtype, so float32 stays float32).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _threads_arg(argv) -> str:
    """--threads N (or --threads=N) from the command line, before argparse runs."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _var in BLAS_VARS:  # read when the BLAS libraries load, so before NumPy, SciPy, jaxlib
    os.environ.setdefault(_var, _threads_arg(sys.argv[1:]))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `handwritten`

import hfbench  # noqa: E402
from hfbench import algorithms, data, models, suite  # noqa: E402
from hfbench.runner import record, run_trial  # noqa: E402
from hfbench.runner.batches import index_stream  # noqa: E402

from handwritten import MLP  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "reports" / "cpu" / "harness_overhead.txt"
GPU_OUT = ROOT / "reports" / "gpu" / "harness_overhead.txt"
SEED = 0
WARMUP_STEPS = 2
CHECK64_STEPS = 10
BACKENDS = ("torch", "jax")

# The hfbench sgn options that make it run as Gargiani et al.'s public code does
# (ratio at the full step, rho floor, 1 + 10 line-search evaluations, keep the last
# alpha on failure, a fixed Armijo right-hand side). Used only when sgn has them all.
SGN_CODE_OPTIONS = {"rho_point": "full", "damping_min": 1.0e-6, "ls_max_trials": 11,
                    "ls_on_failure": "keep_last", "ls_rhs": "fixed"}
SGN_PARAMS = {"cg_iters": 10, "damping": 1.0e-4, "damping_rule": "trust_region", "line_search": True}


@dataclass(frozen=True)
class Cell:
    label: str
    dataset: str
    sizes: tuple
    activation: str
    loss: str
    batch: int
    algorithm: str
    params: dict = field(default_factory=dict)  # hfbench params; hand-written kwargs below
    hand: dict = field(default_factory=dict)
    loss_scale: float = 1.0  # multiplies the per-example loss on both sides
    name: str = ""  # the --only key, the table's algorithm and the hand loop (default: algorithm)
    curvature_batch: int | None = None  # hfbench's curvature_batch_size (first K of the batch)
    loop: str = ""  # the hand-written loop, when not the key
    # per-cell limits for slow steps: at most this many steps per run / rounds (None: the
    # command line's), hand-written warm-up steps, float64-check steps
    steps: int | None = None
    rounds: int | None = None
    warmup: int = WARMUP_STEPS
    check64_steps: int = CHECK64_STEPS

    @property
    def key(self) -> str:
        return self.name or self.algorithm

    @property
    def hand_name(self) -> str:
        return self.loop or self.key

    def runs(self, steps: int, rounds: int) -> tuple[int, int]:
        """(steps per run, rounds) for this cell under the command line's."""
        return (min(steps, self.steps or steps), min(rounds, self.rounds or rounds))

    @property
    def limited(self) -> bool:
        return (self.steps is not None or self.rounds is not None or self.warmup != WARMUP_STEPS
                or self.check64_steps != CHECK64_STEPS)


MNIST = dict(dataset="mnist5k", activation="relu", loss="softmax_cross_entropy", batch=64)
CELLS = [
    Cell("mnist5k 784-10-10 relu", sizes=(784, 10, 10), algorithm="sgd",
         params={"lr": 0.1}, hand={"lr": 0.1}, **MNIST),
    Cell("mnist5k 784-10-10 relu", sizes=(784, 10, 10), algorithm="adam", **MNIST),
    Cell("mnist5k 784-256-10 relu", sizes=(784, 256, 10), algorithm="sgd",
         params={"lr": 0.1}, hand={"lr": 0.1}, **MNIST),
    Cell("mnist5k 784-256-10 relu", sizes=(784, 256, 10), algorithm="adam", **MNIST),
    Cell("sine 1-20-20-20-1 sigmoid", dataset="sine", sizes=(1, 20, 20, 20, 1), activation="sigmoid",
         loss="squared_error", batch=1000, algorithm="sgn", hand={"cg_iters": 10, "rho": 1e-4}),
    Cell("boston 13-100-100-1 sigmoid", dataset="boston", sizes=(13, 100, 100, 1), activation="sigmoid",
         loss="squared_error", batch=101, algorithm="sgn", hand={"cg_iters": 10, "rho": 1e-4}),
    # The second-order methods, each with its suite's settings (the hand-written side's
    # defaults are the same numbers; see handwritten.HF_NEWTON_DOC ... NEWTON_DOC).
    # suites/wang2024.yaml: hf_newton, hf_gauss_newton (sgn with a fixed damping), and
    # damped_newton, at the suite's size (n = 7,960: a step builds a 0.47 GiB float64
    # Hessian and factors it, seconds on a CPU, so 3 steps and 3 rounds; hfbench's newton
    # warms up with 1 step, so does the hand side) and on digits 64-8-10 (610 weights,
    # milliseconds a step: there the per-step dispatch overhead shows).
    Cell("mnist5k 784-10-10 relu", sizes=(784, 10, 10), algorithm="hf_newton",
         params={"damping": 32.0, "step_size": 0.5, "adaptive_damping": False, "cg_stop": "residual",
                 "cg_tol": 1.0e-10, "cg_max_iters": 10}, **MNIST),
    Cell("mnist5k 784-10-10 relu", sizes=(784, 10, 10), algorithm="sgn", name="hf_gauss_newton",
         params={"damping": 4.0, "damping_rule": "fixed", "step_size": 0.5, "cg_iters": 10,
                 "line_search": False}, **MNIST),
    Cell("mnist5k 784-10-10 relu", sizes=(784, 10, 10), algorithm="newton",
         params={"damped": True, "damping": 32.0, "step_size": 0.5},
         steps=3, rounds=3, warmup=1, check64_steps=2, **MNIST),
    Cell("digits 64-8-10 relu", dataset="digits", sizes=(64, 8, 10), activation="relu",
         loss="softmax_cross_entropy", batch=64, algorithm="newton", name="newton_tiny",
         loop="newton", params={"damped": True, "damping": 32.0, "step_size": 0.5}),
    # suites/motokawa2020.yaml's adaptive_hf at one grid point (lambda 10, eps 1e-3, sigma 50,
    # L 100), on an MLP instead of LeNet (a LeNet step with 50 Hessian products is slow on a CPU).
    Cell("mnist5k 784-32-10 relu", sizes=(784, 32, 10), algorithm="adaptive_hf",
         params={"damping": 10.0, "eps": 1.0e-3, "sigma": 50.0, "L": 100.0, "beta2": 1.0e-6,
                 "curvature": "hessian", "cg_max_iters": 50, "cg_stop": "relative", "cg_eps": 1.0e-4,
                 "warm_start": True, "rho_point": "taken", "rho_model": "undamped", "damping_min": 0.1},
         **{**MNIST, "batch": 128}),
    # suites/martens2010.yaml's hf entry (his code's settings) on a small classifier instead of
    # the deep autoencoders: logistic hidden units as his, gradient batch 1000 of mnist5k's 4000,
    # curvature batch its first 250 (the suite: full set and 5000-7500).
    Cell("mnist5k 784-32-10 sigmoid b1000/250", sizes=(784, 32, 10), algorithm="hf",
         params={"line_search": True, "ls_c1": 1.0e-2, "ls_shrink": 0.8, "ls_max_trials": 60,
                 "rho_model": "undamped", "rho_batch": "curvature", "rho_point": "full",
                 "backtrack_first": 5},
         hand={"curvature_batch": 250}, curvature_batch=250,
         **{**MNIST, "activation": "sigmoid", "batch": 1000}),
]


# ----------------------------------------------------------------------------- setup


def sgn_comparable() -> bool:
    return set(SGN_CODE_OPTIONS) <= set(algorithms.defaults("sgn"))


def hfbench_params(cell: Cell) -> dict:
    if cell.key != "sgn":
        return dict(cell.params)
    return {**SGN_PARAMS, **(SGN_CODE_OPTIONS if sgn_comparable() else {})}


def comparable(cell: Cell) -> bool:
    return cell.key != "sgn" or sgn_comparable()


def make_trial(cell: Cell, backend: str, steps: int, dtype: str, device: str = "cpu"):
    """One hfbench trial through the suite API (validated like a suite file)."""
    doc = {
        "name": "harness_overhead", "backends": [backend], "seeds": [SEED], "device": device,
        "dtype": dtype, "tf32": False,
        "workloads": {"cell": {
            "dataset": cell.dataset,
            "model": {"type": "mlp", "sizes": list(cell.sizes), "activation": cell.activation},
            "loss": cell.loss, "batch_size": cell.batch,
            **({"loss_scale": cell.loss_scale} if cell.loss_scale != 1.0 else {}),
            **({"curvature_batch_size": cell.curvature_batch} if cell.curvature_batch else {}),
        }},
        "optimizers": {"opt": {"algorithm": cell.algorithm, "params": hfbench_params(cell)}},
        "budget": {"iterations": steps},
        "eval": {"every": None},
    }
    (trial,) = suite.expand(suite.loads(yaml.safe_dump(doc, sort_keys=False), source="harness_overhead"))
    return trial


class Workload:
    """What both sides share: data, initial vector, index batches, the MLP."""

    def __init__(self, trial, steps: int):
        spec = trial.model_spec()
        self.ds = data.load(trial.dataset, seed=trial.seed, flatten=True)
        self.theta0 = models.init_params(spec, seed=trial.seed, dtype=trial.dtype)
        stream = index_stream(len(self.ds.X_train), int(trial.batch_size), trial.seed)
        self.batches = [next(stream).grad for _ in range(steps)]
        layers = [layer for layer in spec.layers if isinstance(layer, models.Dense)]
        acts = {layer.activation for layer in layers[:-1]}
        assert len(acts) == 1 and layers[-1].activation == "linear", spec
        self.net = MLP(sizes=(layers[0].in_features, *(la.out_features for la in layers)),
                       activation=acts.pop(), loss=spec.loss,
                       loss_scale=float(getattr(spec, "loss_scale", 1.0)))


def hand_loop(cell: Cell, backend: str):
    if backend == "torch":
        from handwritten import torch_loops as loops
    else:
        from handwritten import jax_loops as loops
    return getattr(loops, cell.hand_name)


def run_hand(cell: Cell, backend: str, w: Workload, batches, dtype="float32", device="cpu"):
    fn = hand_loop(cell, backend)
    # the JAX loops take JAX's default device: the GPU where there is one, as hfbench's "cuda"
    where = {"device": device} if backend == "torch" else {}
    return fn(w.theta0, w.ds.X_train, w.ds.y_train, batches, net=w.net, dtype=dtype, **where, **cell.hand)


def run_hfbench(trial, folder) -> dict:
    rec = run_trial(trial, folder)
    if rec.get("status") not in ("completed", "budget_exhausted", "target_reached"):
        raise RuntimeError(f"hfbench trial {trial.id} ({trial.algorithm}, {trial.backend}) ended "
                           f"{rec.get('status')}: {rec.get('error', '')}\n{rec.get('traceback', '')}")
    return rec


def loss_diff(rec: dict, hand_losses) -> float:
    hf = np.array([s["batch_loss"] for s in rec["steps"]], dtype=np.float64)
    hw = np.asarray(hand_losses, dtype=np.float64)
    n = min(len(hf), len(hw))
    if n == 0:
        return float("nan")
    return float(np.max(np.abs(hf[:n] - hw[:n]) / np.maximum(np.abs(hw[:n]), 1e-30)))


# ----------------------------------------------------------------------------- measuring


@dataclass
class Row:
    cell: Cell
    backend: str
    hf_ms: float
    hw_ms: float
    ratio_lo: float
    ratio_hi: float
    check: float
    check64: float | None
    hf_counts: dict
    hw_fwd: float | None  # hand-written sgn: loss evaluations per step (full step + shrinks)
    hw_work: dict = field(default_factory=dict)  # hand-written: mean n_gv / n_fwd per step, if it says
    steps: int = 0  # steps per run and rounds this cell ran
    rounds: int = 0


def measure(cell: Cell, backend: str, steps: int, rounds: int, check64: bool, log,
            device: str = "cpu") -> Row:
    steps, rounds = cell.runs(steps, rounds)
    trial = make_trial(cell, backend, steps, "float32", device)
    w = Workload(trial, steps)
    hf_s, hw_s, rec, hand = [], [], None, None
    with tempfile.TemporaryDirectory(prefix="hfbench_overhead_") as folder:
        for r in range(rounds):
            order = ("hf", "hw") if r % 2 == 0 else ("hw", "hf")
            for side in order:
                if side == "hf":
                    rec = run_hfbench(trial, folder)
                    hf_s.append(rec["train_time_s"] / rec["iterations"])
                else:
                    run_hand(cell, backend, w, w.batches[:cell.warmup], device=device)  # warm-up, untimed
                    hand = run_hand(cell, backend, w, w.batches, device=device)
                    hw_s.append(hand.seconds / steps)
            log(f"    round {r + 1}/{rounds}: hfbench {1e3 * hf_s[-1]:.3f} ms/step, "
                f"hand {1e3 * hw_s[-1]:.3f} ms/step")
        c64 = _check64(cell, backend, folder, device) if check64 else None
    ratios = [a / b for a, b in zip(hf_s, hw_s)]
    counts = {k: rec["steps"][-1].get(k, 0) / rec["iterations"] for k in ("n_grad", "n_gv", "n_fwd")}
    alphas = hand.info.get("alpha") if cell.key == "sgn" else None  # sgn's line search
    hw_fwd = None if alphas is None else float(np.mean([1 + round(-np.log2(a)) for a in alphas]))
    hw_work = {k: float(np.mean(hand.info[k])) for k in ("n_gv", "n_fwd") if hand.info.get(k)}
    return Row(cell, backend, 1e3 * statistics.median(hf_s), 1e3 * statistics.median(hw_s),
               min(ratios), max(ratios), loss_diff(rec, hand.losses), c64, counts, hw_fwd, hw_work,
               steps, rounds)


def _check64(cell: Cell, backend: str, folder, device: str = "cpu") -> float:
    """Untimed: both sides in float64 for a few steps, the same loss comparison."""
    trial = make_trial(cell, backend, cell.check64_steps, "float64", device)
    w = Workload(trial, cell.check64_steps)
    rec = run_hfbench(trial, folder)
    return loss_diff(rec, run_hand(cell, backend, w, w.batches, dtype="float64", device=device).losses)


# ----------------------------------------------------------------------------- output


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def cpu_model() -> str:
    return record.cpu_model() or "?"


def header(args, backends, cells=()) -> list[str]:
    import torch

    lines = [
        "# hfbench vs a hand-written loop: per-step training time on the same model, batches and steps",
        f"# python benchmarks/harness_overhead.py {' '.join(sys.argv[1:])}".rstrip(),
        f"# date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"# cpu: {cpu_model()}; {os.cpu_count()} logical cores, "
        f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"# python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"hfbench {hfbench.__version__} from {Path(hfbench.__file__).parent.parent} "
        f"(checkout git {_sh(['git', 'rev-parse', '--short', 'HEAD']) or '?'}"
        f"{', dirty' if _sh(['git', 'status', '--porcelain', '--untracked-files=no']) else ''})",
        f"# threads: torch {torch.get_num_threads()} intra-op / {torch.get_num_interop_threads()} "
        f"inter-op (both sides); XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')!r}; "
        + ", ".join(f"{v}={os.environ.get(v, '(unset)')}" for v in BLAS_VARS),
    ]
    if "jax" in backends:
        import jax
        import jaxlib

        lines.append(f"# jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
                     f"x64 {jax.config.jax_enable_x64}, devices {[str(d) for d in jax.devices()]}")
    if args.device != "cpu":
        lines.append(f"# gpu: {torch.cuda.get_device_name(args.device)}; torch cuda {torch.version.cuda}, "
                     f"cudnn {torch.backends.cudnn.version()}")
    lines += [
        f"# float32, device {args.device}, seed {SEED}; {args.steps} steps per run, {args.rounds} interleaved "
        f"rounds, medians; hand-written: {WARMUP_STEPS} warm-up steps then its own clock",
        "# hand-written: data and index batches on the device once (untimed), each step gathers its "
        "batch there; hfbench: its runner's own batch path",
        "# ratio = hfbench / hand-written (issue target: <= 1.3); range = min-max of per-round ratios",
        "# loss check = max_i |l_hf(i) - l_hand(i)| / |l_hand(i)| over all steps (float32); "
        f"f64 check = the same over {CHECK64_STEPS} steps, both sides rerun in float64",
        "# work/step = hfbench's counts per step from its record (n_grad + n_gv, n_fwd); for sgn also "
        "the hand-written loop's loss evaluations, for the second-order loops its curvature "
        "products (Gv: G or H; for newton the n basis vectors of the dense Hessian) and loss "
        "evaluations",
    ]
    for c in cells:
        if c.limited:
            steps, rounds = c.runs(args.steps, args.rounds)
            lines.append(f"# {c.key} ({c.label}) runs fewer: {steps} steps per run, {rounds} round{'s' if rounds != 1 else ''}, "
                         f"{c.warmup} hand-written warm-up step{'s' if c.warmup != 1 else ''}, "
                         f"f64 check over {c.check64_steps} steps")
    return lines


def fmt_check(value, ok: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if ok else f"n/c ({value:.1e})"


def table(rows: list[Row]) -> list[str]:
    out = ["| model | algorithm | backend | hfbench (ms/step) | hand-written (ms/step) | ratio | "
           "range | loss check | f64 check | work/step |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = comparable(r.cell)
        c = r.hf_counts
        hand = [] if r.hw_fwd is None else [f"{r.hw_fwd:.3g} fwd"]
        hand += [f"{r.hw_work[k]:.3g} {label}" for k, label in (("n_gv", "Gv"), ("n_fwd", "fwd"))
                 if k in r.hw_work]
        out.append(
            f"| {r.cell.label} | {r.cell.key} | {r.backend} | {r.hf_ms:.3f} | {r.hw_ms:.3f} | "
            f"{r.hf_ms / r.hw_ms:.2f} | {r.ratio_lo:.2f}-{r.ratio_hi:.2f} | {fmt_check(r.check, ok)} | "
            f"{fmt_check(r.check64, ok)} | {c['n_grad'] + c['n_gv']:.3g} grad+Gv, {c['n_fwd']:.3g} fwd"
            f"{' (hand: ' + ', '.join(hand) + ')' if hand else ''} |")
    return out


def notes(rows: list[Row]) -> list[str]:
    out = []
    if any(r.cell.key == "sgn" for r in rows):
        out += [
            "",
            "sgn in float32: 10 CG iterations at rho ~ 1e-4 amplify rounding, so two correct codes",
            "drift apart within a few steps (on boston hfbench's own torch and JAX backends differ",
            "by ~10% at step 2); the f64 check is the one that says whether the algorithms agree.",
        ]
    keys = {r.cell.key for r in rows}
    if any(r.backend == "jax" and r.cell.key in ("sgd", "adam") and r.cell.sizes[1] >= 256
           for r in rows):
        out += [
            "",
            "jax sgd/adam at 784-256-10: hfbench's parameters are one flat vector (the protocol's),",
            "the hand-written loop's a pytree of layers. XLA on a CPU copies a slice of the flat",
            "vector into a buffer of its own before a dot, so each step copies the 784x256 weight",
            "(0.8 MB) once more. hfbench's JAX gradient is taken in the layers' arrays and written",
            "into one vector (network.join), which removed the rest of the layout's cost; what is",
            "left: benchmarks/jax_flat_layout.py (reports/cpu/jax_flat_layout.txt) times the",
            "hand-written SGD step on a flat vector, joined as hfbench does, against the pytree.",
        ]
    if "hf" in keys:
        out += [
            "",
            "hf in float32: the backtracking walk compares CG iterates whose losses agree to about",
            "7 digits, so rounding picks the iterate and the two sides drift apart (the f64 check",
            "agrees to ~1e-12 over its 10 steps). work/step: hfbench evaluates f on the curvature",
            "batch at x for rho (one more forward pass); the hand-written loops get it from the GGN's",
            "forward pass, and the gradient, loss and Fisher diagonal from one forward/backward pass.",
        ]
    if keys & {"newton", "newton_tiny"}:
        out += [
            "",
            "newton: both sides build H from n Hessian-vector products in the working dtype (float32),",
            "batched over chunks of basis vectors, into a float64 matrix, and factor H + lambda I by",
            "Cholesky in float64 (hfbench's documented choice; the hand-written loops do the same).",
            "Both read the lower triangle of the built H (hfbench averages H with its transpose only",
            "for its LU / least-squares fallbacks).",
            "At n = 7,960 the Cholesky (1.7e11 flops) is most of a step.",
        ]
    if "adaptive_hf" in keys:
        out += [
            "",
            "adaptive_hf at this grid point: Eq. 3's step is ~1e-6 of |d|, so rho (at the step taken,",
            "over the model decrease at d) stays ~1e-3 and lambda grows 1.5x every step; CG then",
            "converges in a few iterations, and the code's r.r < 1e-20 stop ends it first (12",
            "iterations at step 1, 2 from about step 25 on; the relative rule alone ran 7-13).",
        ]
    if not all(comparable(r.cell) for r in rows):
        missing = sorted(set(SGN_CODE_OPTIONS) - set(algorithms.defaults("sgn")))
        out += [
            "",
            "n/c: the sgn loss check is not comparable yet. hfbench's sgn lacks the options that run",
            "it as Gargiani et al.'s code does:",
            f"  {', '.join(missing)};",
            f"so it ran with {', '.join(f'{k}={v}' for k, v in SGN_PARAMS.items())}: rho at the step",
            "taken, Armijo with a rescaled right-hand side, rejection on failure. The bracketed values",
            "are for information only, and the times compare different line-search work per step.",
        ]
    return out


# ----------------------------------------------------------------------------- main


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, help="steps per run (default 200; --quick 30)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5; --quick 2)")
    p.add_argument("--quick", action="store_true", help="a short look: 30 steps, 2 rounds")
    p.add_argument("--only", help="comma-separated algorithms (sgd, adam, sgn, hf_newton, "
                   "hf_gauss_newton, newton, newton_tiny, adaptive_hf, hf)")
    p.add_argument("--backends", default="torch,jax", help="comma-separated (default torch,jax)")
    p.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda: both sides on that device")
    p.add_argument("--no-check64", action="store_true", help="skip the float64 loss check")
    p.add_argument("--out", help=f"text output (default {DEFAULT_OUT.relative_to(ROOT)}; "
                   "reports/gpu/ with --device cuda)")
    args = p.parse_args(argv)
    args.out = args.out or str(DEFAULT_OUT if args.device == "cpu" else GPU_OUT)
    args.steps = args.steps or (30 if args.quick else 200)
    args.rounds = args.rounds or (2 if args.quick else 5)
    if args.steps <= WARMUP_STEPS or args.rounds < 1:  # a cell's own warm-up may be shorter
        p.error(f"--steps must exceed {WARMUP_STEPS} and --rounds be >= 1")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in BACKENDS]
    only = None if not args.only else {a.strip() for a in args.only.split(",") if a.strip()}
    known = {c.key for c in CELLS}
    if bad or (only and not only <= known):
        sys.exit(f"unknown backend {bad} or algorithm {sorted((only or set()) - known)}; "
                 f"backends: {', '.join(BACKENDS)}; algorithms: {', '.join(sorted(known))}")
    import torch

    torch.set_num_threads(args.threads)
    if "jax" in backends:
        import jax

        jax.config.update("jax_enable_x64", True)  # as hfbench's JAX backend does on construction
    cells = [c for c in CELLS if only is None or c.key in only]
    head = header(args, backends, cells)
    print("\n".join(head), flush=True)
    rows, t0 = [], time.perf_counter()
    for cell in cells:
        for be in backends:
            print(f"  {cell.label} {cell.key} {be} ...", flush=True)
            rows.append(measure(cell, be, args.steps, args.rounds, not args.no_check64,
                                lambda s: print(s, flush=True), args.device))
    text = "\n".join(head + [f"# total {time.perf_counter() - t0:.0f} s", ""] + table(rows) + notes(rows)) + "\n"
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
