"""CG loop overhead and the cost split of one hf step, per backend.

    python benchmarks/cg_overhead.py --threads 2
    python benchmarks/cg_overhead.py --from-json reports/perf/cg_overhead.json

A driver of the pytest-benchmark kernels in tests/benchmarks (it keeps their JSON
and renders the report from it; --from-json renders an earlier one):

- `test_bench_ratios.py::test_cg_overhead`: CG overhead = (time of a CG solve of n
  iterations) / (n x time of one Gv), for the same operator, with HF's settings
  (float64 scalars, saved iterates, phi history), Gv and solves timed in
  interleaved rounds. Issue #3 floors: <= 1.05 on the MNIST autoencoder at batch
  1000, <= 2 on a 3x20 sigmoid MLP at batch 1000 (where a Python loop shows).
- `test_bench_ratios.py::test_hf_phases`: one full hf step split into gradient,
  curvature setup, preconditioner, CG, backtracking and line search (hf's
  `profile=True`, which syncs between phases), medians over consecutive steps.

Compilation is excluded: every timed kernel is called once first, and the extra
time of that first call is reported apart. The torch backend runs with each
`--torch-compile` setting (eager vector updates, and fused by torch.compile; see
`hfbench_torch.compiled`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curvature_ratios import (ROOT, bench_options, header, load, results, run_benchmarks,
                              spread, write)

MODELS = ("mnist_autoencoder", "mlp_3x20", "mlp_784_64_10")
COMPILE_VARIANT = {"auto": "torch", "true": "torch-compiled", "false": "torch-eager"}


def render(data: dict, json_path: Path) -> list[str]:
    lines = header("CG loop overhead and the phases of one hf step", data, json_path,
                   "benchmarks/cg_overhead.py")
    rows = results(data, "cg_overhead")
    if rows:
        r0 = rows[0]
        lines += [
            f"CG solves of {r0['cg_iters']} iterations on the GGN, batch {r0['batch']}, "
            f"{r0['dtype']}, {r0['device']}, {r0['interleaved']['rounds']} interleaved rounds.",
            "",
            "- overhead = CG solve / (iterations x Gv), Gv (3 per round) and solves timed in "
            "interleaved rounds; in brackets its range within single rounds;",
            "- in situ = a solve's time / the sum of its own Gv times, synced around each (torch);",
            "- loop alone = a solve whose operator returns a stored vector, per iteration (torch);",
            "- first-call extra = first solve minus a steady one (compilation, caches).",
            "",
            "Issue #3 floors: overhead <= 1.05 on mnist_autoencoder, <= 2 on mlp_3x20 (batch 1000).",
            "",
            "| backend | options | model | threads | Gv (ms) | CG solve (ms) | overhead | in situ "
            "| loop alone (ms/iter) | first-call extra (s) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            in_situ = "-" if r["in_situ"] is None else f"{r['in_situ']:.3f}"
            loop = "-" if r["loop_s_per_iter"] is None else f"{1e3 * r['loop_s_per_iter']:.2f}"
            lines.append(
                f"| {r['backend']} | {_options(r)} | {r['model']} | {r.get('num_threads', '-')} "
                f"| {1e3 * r['gv_s']:.2f} | {1e3 * r['cg_s']:.1f} | {r['overhead']:.3f} "
                f"[{spread(r['interleaved']['ratio_rounds']['cg'])}] | {in_situ} | {loop} "
                f"| {r['cg_first_call_extra_s']:.1f} |")
        lines.append("")
    phases = results(data, "hf_phases")
    if phases:
        keys = list(dict.fromkeys(k for r in phases for k in r["phases_s"]))  # torch has no "grad"
        lines += [
            f"One hf step (Armijo line search on, profile=True), median seconds per phase over "
            f"{phases[0]['steps']} consecutive steps after two warm-up steps (\"-\": the "
            "backend fuses that phase into the next, e.g. torch's value_grad_curvature "
            "puts the gradient in curvature):",
            "",
            "| backend | options | model | total (s) | CG iterations | " + " | ".join(keys) + " |",
            "|---" * (len(keys) + 5) + "|",
        ]
        for r in phases:
            cells = " | ".join(f"{r['phases_s'][k]:.3f}" if k in r["phases_s"] else "-" for k in keys)
            lines.append(f"| {r['backend']} | {_options(r)} | {r['model']} | {r['total_s']:.3f} "
                         f"| {r['cg_iters']:g} | {cells} |")
    return lines


def _options(r: dict) -> str:
    return f"compile={r['compile']}" if r["backend"] == "torch" else "-"


def variants(args) -> list[str]:
    names = args.backend or ["jax", "torch"]
    modes = args.torch_compile or ["false", "true"]
    return [v for n in names for v in ([COMPILE_VARIANT[m] for m in modes] if n == "torch" else [n])]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", action="append", choices=["torch", "jax"])
    p.add_argument("--model", action="append", choices=MODELS,
                   help="default: mnist_autoencoder and mlp_3x20")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--hf-steps", type=int, default=3, help="0: no hf phase split")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--torch-compile", action="append", choices=["auto", "true", "false"],
        help="torch backend's compile option(s) to measure (default: false and true)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "reports/perf/cg_overhead.md")
    p.add_argument("--json", type=Path, help="the pytest-benchmark JSON (default: --out with .json)")
    p.add_argument("--from-json", type=Path, help="render this JSON; run nothing")
    args = p.parse_args(argv)
    json_path = (args.from_json or args.json or args.out.with_suffix(".json")).resolve()
    if args.from_json:
        data = load(json_path)
    else:
        tests = ["test_bench_ratios.py::test_cg_overhead"]
        tests += ["test_bench_ratios.py::test_hf_phases"] if args.hf_steps > 0 else []
        opts = bench_options(args, backend=variants(args),
                             model=args.model or ["mnist_autoencoder", "mlp_3x20"],
                             cg_iters=args.iters, hf_steps=args.hf_steps or None)
        data = run_benchmarks(tests, opts, json_path, ["benchmarks/cg_overhead.py", *argv])
    lines = render(data, json_path)
    print("\n".join(lines))
    write(args.out, lines)


if __name__ == "__main__":
    main()
