"""How far CG's recurrence phi drifts from the true phi in float32, and whether it moves
Martens' stop rule.

    python benchmarks/cg_phi_drift.py                # full run (~10 min on 2 CPU cores)
    python benchmarks/cg_phi_drift.py --quick        # smoke test (~1 min), prints only

hfbench's CG (hfbench.algorithms.cg) keeps phi by the recurrence
    (a) phi_{i+1} = phi_i - alpha_i/2 r_i.z_i          (float64 scalars, float32 vectors);
Martens' conjgrad_1.m recomputes it every iteration from the recursive residual:
    (b) phi_i = -1/2 x_i.(r_i + b)                     (`cg._phi`, float64 dots);
the true value of the float32 iterate is
    (c) phi(x_i) = 1/2 x_i.A x_i - b.x_i,  A = C + lambda I   (one extra product C x_i).
On the MNIST deep autoencoder (784-1000-500-250-30, sparse init, float32, GGN on a
curvature batch of 1000, b = -gradient, Martens' preconditioner (diag + lambda)^-0.75)
this runs a fixed-length CG step by step with the algorithm layer's own `cg_init` /
`cg_step` (CGConfig(stop="fixed")), records (a), (b), (c) at every iteration, and applies
the stop rules to each sequence after the fact (the rule never changes an iterate, so a
fixed-length solve holds every iterate a stop="martens" solve would have reached):
    martens:  stop at i > k, phi_i < 0, (phi_i - phi_{i-k}) / phi_i < k * 5e-4
    with k = max(10, ceil(0.1 i));
    relative: the Adaptive-HF code's variant (cg.py's stop="relative"): i > k + 1,
              (phi_i - phi_{i-k}) / phi_i < 1e-4 (no k factor, no sign test on phi),
              k = max(10, floor(0.1 (i - 1))).
Points: the initial parameters (zero start), and the parameters after a few steps of
`algorithms.get("hf")` (warm start 0.95 p_prev, as hf does); for each, several lambdas.
Timing: one CG iteration (cg_step, its Gv included) against the exact recompute (b).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import hfbench
from hfbench import algorithms, data, models
from hfbench.algorithms import CGConfig
from hfbench.algorithms.cg import _phi, cg_init, cg_step, make_operands

SIZES = [784, 1000, 500, 250, 30]
EPS_MARTENS, EPS_REL = 5e-4, 1e-4
PRECOND_EXPONENT = 0.75
CHECKPOINTS = (10, 25, 50, 100, 150, 200, 250)


# ---------------------------------------------------------------- the stop rules


def _k(rule, i):
    return max(10, math.ceil(0.1 * i)) if rule == "martens" else max(10, math.floor(0.1 * (i - 1)))


def ratios(phi, rule):
    """{i: (phi_i - phi_{i-k}) / phi_i} where `rule` may fire (cg._rule_met's arithmetic)."""
    out = {}
    for i in range(1, len(phi)):
        k = _k(rule, i)
        if rule == "martens" and i > k and phi[i] < 0:
            out[i] = (phi[i] - phi[i - k]) / phi[i]
        elif rule == "relative" and i > k + 1 and phi[i] != 0:
            out[i] = (phi[i] - phi[i - k]) / phi[i]
    return out


def stop_iteration(phi, rule):
    """First iteration at which `rule` fires on phi[0..n], or None."""
    for i, q in ratios(phi, rule).items():
        if q < (_k(rule, i) * EPS_MARTENS if rule == "martens" else EPS_REL):
            return i
    return None


# ---------------------------------------------------------------- one recorded solve


def recorded_solve(be, problem, x, gbatch, cbatch, lam, x0, iters, step=None,
                   save_iterates=True):
    """Run CG step by step; return the three phi sequences and per-iteration timings."""
    ops = be.ops
    _, g = problem.value_and_grad(x, gbatch)
    op = problem.curvature(x, cbatch, "ggn")
    # Martens' preconditioner, as hf forms it: (diag F + l2 + lambda)^-0.75
    m_inv = (problem.precondition(x, gbatch) + (problem.spec.l2 + lam)) ** (-PRECOND_EXPONENT)
    b = ops.scale(-1.0, g)
    cfg = CGConfig(stop="fixed", iters=iters, max_iters=iters, save_iterates=save_iterates)
    operands = make_operands(ops, cfg, op, b, lam, m_inv)
    step = step or cg_step

    def phi_true(v):  # 1/2 v.(C v) + lambda/2 v.v - b.v, every dot in float64
        Cv = op.matvec(v)
        return 0.5 * (ops.vdot(v, Cv) + lam * ops.vdot(v, v)) - ops.vdot(b, v)

    def phi_fused(s):  # the cheaper variant: one float32 add, one float64 dot
        return -0.5 * ops.vdot(s.x, s.r + b)

    s = cg_init(ops, cfg, operands, x0)
    be.sync(s.x)
    phi_b, phi_c = [ops.to_float(_phi(ops, operands, s.x, s.r))], [ops.to_float(phi_true(s.x))]
    t_step, t_b, t_fused, t_c = [], [], [], []
    for _ in range(cfg.limit):
        t0 = time.perf_counter()
        s_next = step(ops, cfg, operands, s)
        be.sync(s_next.x, s_next.r, s_next.p)
        t_step.append(time.perf_counter() - t0)
        if int(be.to_numpy(s_next.i)) == int(be.to_numpy(s.i)):
            break  # a no-op: the solve stopped (r.z = 0 or p.Ap <= 0)
        s = s_next
        t0 = time.perf_counter()
        pb = ops.to_float(_phi(ops, operands, s.x, s.r))
        t_b.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ops.to_float(phi_fused(s))
        t_fused.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pc = ops.to_float(phi_true(s.x))
        t_c.append(time.perf_counter() - t0)
        phi_b.append(pb)
        phi_c.append(pc)
    n = int(be.to_numpy(s.i))
    phi_a = np.asarray(be.to_numpy(s.phi), dtype=np.float64)[: n + 1]
    return {
        "n": n, "status": int(be.to_numpy(s.status)),
        "a": phi_a, "b": np.asarray(phi_b), "c": np.asarray(phi_c),
        "t_step": statistics.median(t_step), "t_b": statistics.median(t_b),
        "t_fused": statistics.median(t_fused), "t_c": statistics.median(t_c),
        "x_final": be.to_numpy(s.x), "b_vec": be.to_numpy(b), "lam": lam,
    }


def float64_check(spec, x_np, Xc, res):
    """phi of the final iterate with C in float64 (a float64 linearization at the same
    float32 weights): the noise floor of the float32 'true' phi (c)."""
    be64 = hfbench.get_backend("torch", device="cpu", dtype="float64", compile=False)
    p64 = be64.problem(spec)
    op = p64.curvature(be64.asarray(x_np), be64.batch(Xc, Xc), "ggn")
    v = be64.asarray(res["x_final"])
    b = be64.asarray(res["b_vec"])
    phi = 0.5 * (float(v @ op.matvec(v)) + res["lam"] * float(v @ v)) - float(b @ v)
    return abs(res["c"][-1] - phi) / abs(phi) if phi else float("nan")


def summarize(res):
    a, b, c = res["a"], res["b"], res["c"]
    idx = np.arange(1, len(c))
    idx = idx[c[idx] != 0]
    rel = lambda s: np.abs(s[idx] - c[idx]) / np.abs(c[idx])
    ra, rb = rel(a), rel(b)
    out = {
        "a_max": ra.max(), "a_fin": ra[-1], "b_max": rb.max(), "b_fin": rb[-1],
        "a_at": {int(i): float(v) for i, v in zip(idx, ra) if i in CHECKPOINTS},
    }
    for rule in ("martens", "relative"):
        for name in "abc":
            out[f"stop_{rule}_{name}"] = stop_iteration(res[name], rule)
    # How far the rules' own quantity moves: max over i of |ratio_s(i) - ratio_c(i)|
    # (the martens threshold k * 5e-4 is >= 5e-3, the relative one 1e-4).
    qc = ratios(c, "martens")
    for name, seq in (("a", a), ("b", b)):
        q = ratios(seq, "martens")
        common = [i for i in qc if i in q]
        out[f"dratio_{name}"] = max((abs(q[i] - qc[i]) for i in common), default=float("nan"))
    return out


# ---------------------------------------------------------------- driver


def load_data(name, seed):
    try:
        return data.load(name, seed=seed, flatten=True, task="reconstruction"), None
    except data.DataError as exc:
        if name != "mnist":
            raise
        first = str(exc).splitlines()[0]
        note = (f"full MNIST is not in the cache here ({first}); fell back to the offline "
                "5,000-image MNIST subset 'mnist5k' (same 784-pixel images). With the "
                "files cached (`hfbench data fetch mnist`), the same command uses MNIST.")
        return data.load("mnist5k", seed=seed, flatten=True, task="reconstruction"), note


def jax_step():
    import jax

    return jax.jit(cg_step, static_argnums=(0, 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 30 iterations, lambda 1, 1 hf step; prints only")
    p.add_argument("--iters", type=int)
    p.add_argument("--lambdas", type=float, nargs="+")
    p.add_argument("--hf-steps", type=int)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--grad-batch", type=int, default=4000)
    p.add_argument("--curv-batch", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--jax", default="warm:1",
                   help="one configuration also run on the JAX backend, POINT:LAMBDA with "
                        "POINT init or warm; 'none' to skip")
    p.add_argument("--out", help="report file (default reports/cpu/cg_phi_drift.txt; "
                                 "--quick writes none unless given)")
    args = p.parse_args(argv)
    iters = args.iters or (30 if args.quick else 250)
    lambdas = args.lambdas or ([1.0] if args.quick else [45.0, 1.0, 0.01])
    hf_steps = args.hf_steps if args.hf_steps is not None else (1 if args.quick else 5)
    out_path = args.out or (None if args.quick else "reports/cpu/cg_phi_drift.txt")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.time()
    spec = models.autoencoder(SIZES)
    ds, note = load_data(args.dataset, args.seed)
    rng = np.random.default_rng(args.seed)
    idx = rng.permutation(len(ds.X_train))[: args.grad_batch]
    Xg = np.ascontiguousarray(ds.X_train[idx])
    Xc = Xg[: args.curv_batch]
    be = hfbench.get_backend("torch", device="cpu", dtype="float32", compile=False)
    problem = be.problem(spec)
    gb, cb = be.batch(Xg, Xg), be.batch(Xc, Xc)
    jax_run = None
    if args.jax != "none":  # built up front, so every module is imported before the runs
        point, lam = args.jax.split(":")
        jbe = hfbench.get_backend("jax", device="cpu", dtype="float32")
        jax_run = (point, float(lam), jbe, jbe.problem(spec), jbe.batch(Xg, Xg),
                   jbe.batch(Xc, Xc), jax_step())
    hf = algorithms.get("hf")
    x_init = be.asarray(models.init_params(spec, seed=args.seed))

    # The warm point: hf's own steps (Martens' stop rule, LM damping from 45).
    x, state, hf_log = x_init, hf.init(x_init), []
    for _ in range(hf_steps):
        x, state, info = hf.step(problem, x, state, gb, cb)
        hf_log.append(info)
        print(f"  [hf step {len(hf_log)}: loss {info['loss']:.4f}, cg_iters {info['cg_iters']}, "
              f"lambda {info['lambda']:.4g}]", flush=True)
    x_warm, p_prev, lam_hf = x, state.p_prev, state.lam
    points = {"init": (x_init, None), "warm": (x_warm, be.ops.scale(0.95, p_prev))}

    plan = []  # JAX first: it is the short one
    if jax_run:
        plan.append(("jax", jax_run[0], jax_run[1]))
    plan += [("torch", pt, lam) for pt in points for lam in lambdas]
    runs, errors = [], []
    for bk, point, lam in plan:
        t0 = time.time()
        xp, x0 = points[point]
        try:
            if bk == "torch":
                res = recorded_solve(be, problem, xp, gb, cb, lam, x0, iters)
            else:
                _, _, jbe, jproblem, jgb, jcb, jstep = jax_run
                jx0 = None if x0 is None else jbe.asarray(be.to_numpy(x0))
                res = recorded_solve(jbe, jproblem, jbe.asarray(be.to_numpy(xp)), jgb, jcb, lam,
                                     jx0, iters, step=jstep, save_iterates=False)
            res["ref64"] = float64_check(spec, be.to_numpy(xp), Xc, res)
        except Exception as exc:  # keep the other runs (e.g. the JAX backend breaks)
            errors.append(f"{bk} {point} lambda={lam:g}: {type(exc).__name__}: {exc}")
            print("  [" + errors[-1] + "]", flush=True)
            continue
        runs.append((bk, point, lam, res, summarize(res), time.time() - t0))
        print(f"  [{point} lambda={lam:g} {bk}: {runs[-1][-1]:.0f} s]", flush=True)
        report = make_report(args, iters, hf_steps, spec, ds, Xg, Xc, note, hf_log, lam_hf,
                             runs, errors, time.time() - t_start, done=len(runs) + len(errors) == len(plan))
        if out_path:  # rewritten after every run, so an interrupted run keeps what it has
            os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
            with open(out_path, "w") as f:
                f.write(report)
    print()
    print(report, end="")
    if out_path:
        print(f"\nwritten to {out_path}")


def make_report(args, iters, hf_steps, spec, ds, Xg, Xc, note, hf_log, lam_hf, runs, errors,
                elapsed, done):
    import torch

    lines = []
    say = lines.append
    say("# CG phi drift in float32: recurrence phi vs residual phi vs true phi, and Martens' stop rule")
    say(f"# python benchmarks/cg_phi_drift.py{' --quick' if args.quick else ''}"
        f"   ({time.strftime('%Y-%m-%d %H:%M')}, {elapsed:.0f} s in all"
        f"{'' if done else '; PARTIAL, the run is still going or was cut short'})")
    say(f"# {platform.machine()}, {os.cpu_count()} CPU(s) shared with other jobs (load "
        f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), hfbench {hfbench.__version__} "
        f"(git {_git_head()})" + (f", jax {__import__('jax').__version__}" if args.jax != "none" else ""))
    say(f"# model autoencoder{SIZES} (sigmoid cross-entropy, sparse init, {spec.num_params:,} "
        "parameters), float32, GGN")
    say(f"# data {ds.name}: gradient batch {len(Xg)} (seeded permutation of the training set), "
        f"curvature batch its first {len(Xc)}; b = -gradient;")
    say("#   preconditioner m_inv = (diag F + lambda)^-0.75, diag F = problem.precondition on the "
        "gradient batch")
    if note:
        say(f"# NOTE: {note}")
    say(f"# CG: cg_init / cg_step, CGConfig(stop='fixed', iters={iters}, max_iters={iters}), "
        "run step by step (JAX: the step jitted,")
    say("#   save_iterates=False, which changes no iterate); phi sequences:")
    say("#   (a) recurrence phi_{i+1} = phi_i - alpha_i/2 r_i.z_i (the state's phi buffer)")
    say("#   (b) residual phi = -1/2 x_i.(r_i + b) in float64 (cg._phi; Martens' conjgrad_1.m;")
    say("#       the same numbers as CGConfig(phi='exact'))")
    say("#   (c) true phi = 1/2 x_i.(C x_i) + lambda/2 x_i.x_i - b.x_i, float64 dots, one extra Gv")
    say("# drift = |phi_s - phi_c| / |phi_c| over iterations 1..n (max, and at the last one)")
    say("# stop = first iteration the rule fires on that sequence (None: not within the run):")
    say(f"#   martens:  i > k, phi_i < 0, (phi_i - phi_(i-k)) / phi_i < k * {EPS_MARTENS:g}, "
        "k = max(10, ceil(0.1 i))")
    say(f"#   relative: i > k + 1, (phi_i - phi_(i-k)) / phi_i < {EPS_REL:g} (no k factor, no sign "
        "test), k = max(10, floor(0.1 (i-1)))")
    say("#             (the Adaptive-HF code's rule, cg.py stop='relative')")
    say("# dratio = max_i |ratio_s(i) - ratio_c(i)|, ratio = (phi_i - phi_(i-k)) / phi_i (martens k),")
    say(f"#   the stop rules' own quantity; thresholds: martens k * {EPS_MARTENS:g} >= "
        f"{10 * EPS_MARTENS:g}, relative {EPS_REL:g}")
    say("# ref64 = |phi_c - phi_64| / |phi_64| at the last iterate, phi_64 with C from a float64")
    say("#   linearization at the same weights: how far the float32 operator itself is from float64")
    say(f"# init = initial parameters, zero start; warm = after {hf_steps} hf step(s), start "
        "0.95 p_prev (hf's warm start)")
    say("# Rerun: python benchmarks/cg_phi_drift.py [--quick] [--lambdas 45 1 0.01] [--iters 250]"
        " [--jax warm:1|none]")
    say("")
    say(f"hf steps to the warm point (hf defaults, lambda from 45): lambda there {lam_hf:.4g}")
    for t, info in enumerate(hf_log, 1):
        say(f"  step {t}: loss {info['loss']:.4f} -> {info.get('loss_after', float('nan')):.4f}, "
            f"cg_iters {info['cg_iters']} ({info.get('cg_status', '?')}), lambda "
            f"{info['lambda']:.4g}, rho {info['rho']:.3f}")
    say("")
    say("| backend | point | lambda | n | phi_c last | drift (a) max | drift (a) last "
        "| drift (b) max | drift (b) last | martens stop a / b / c | relative stop a / b / c "
        "| dratio (a) | dratio (b) | ref64 |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for bk, point, lam, res, s, _ in runs:
        say(f"| {bk} | {point} | {lam:g} | {res['n']} | {res['c'][-1]:.7g} | {s['a_max']:.1e} "
            f"| {s['a_fin']:.1e} | {s['b_max']:.1e} | {s['b_fin']:.1e} "
            f"| {s['stop_martens_a']} / {s['stop_martens_b']} / {s['stop_martens_c']} "
            f"| {s['stop_relative_a']} / {s['stop_relative_b']} / {s['stop_relative_c']} "
            f"| {s['dratio_a']:.1e} | {s['dratio_b']:.1e} | {res['ref64']:.1e} |")
    for e in errors:
        say(f"FAILED {e}")
    say("")
    say("drift (a) at iterations " + ", ".join(map(str, CHECKPOINTS)) + ":")
    for bk, point, lam, res, s, _ in runs:
        say(f"  {bk:5s} {point:4s} lambda={lam:<6g} "
            + "  ".join(f"{i}: {v:.1e}" for i, v in s["a_at"].items()))
    say("")
    say("Cost per iteration (medians, ms): one CG iteration (cg_step, Gv included) vs the exact "
        "recompute (b)")
    say("| backend | point | lambda | CG iteration | (b) cg._phi, 2 float64 dots | ratio "
        "| (b') -1/2 vdot(x, r + b) | ratio | (c) true phi, 1 Gv + 3 dots | run (s) |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for bk, point, lam, res, s, wall in runs:
        ts = res["t_step"]
        say(f"| {bk} | {point} | {lam:g} | {1e3 * ts:.1f} | {1e3 * res['t_b']:.2f} "
            f"| {res['t_b'] / ts:.3f} | {1e3 * res['t_fused']:.2f} | {res['t_fused'] / ts:.3f} "
            f"| {1e3 * res['t_c']:.1f} | {wall:.0f} |")
    say("")
    pairs = [(bk, point, lam, rule, s) for bk, point, lam, _, s, _ in runs
             for rule in ("martens", "relative")]
    for name, label in (("a", "recurrence (a)"), ("b", "residual (b)")):
        moved = [(bk, pt, lam, rule, s[f"stop_{rule}_{name}"], s[f"stop_{rule}_c"])
                 for bk, pt, lam, rule, s in pairs if s[f"stop_{rule}_{name}"] != s[f"stop_{rule}_c"]]
        say(f"Stop iteration, {label} vs true (c): differs in {len(moved)} of {len(pairs)} "
            "(run, rule) pairs" + (":" if moved else "."))
        for bk, pt, lam, rule, i_s, i_c in moved:
            say(f"  {bk} {pt} lambda={lam:g} {rule}: {name} fires at {i_s}, c at {i_c}")
    return "\n".join(lines) + "\n"


def _git_head():
    try:
        import subprocess

        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "?"
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
