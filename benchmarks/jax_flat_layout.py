"""What a flat parameter vector costs a jitted JAX SGD step, against a pytree of layers.

    python benchmarks/jax_flat_layout.py [--steps 400] [--rounds 9]

hfbench's protocol hands algorithms one flat parameter vector; a hand-written JAX
loop keeps a list of (W, b). Both steps here are the hand-written loop's own code
(`handwritten.jax_loops`: the same objective, data on the device, one jit per step
that gathers its batch), differing only in the parameters' layout: `flat` slices
the vector into layers inside the jit (as hfbench's network does), `pytree` takes
the layers, and `joined` is `flat` with the gradient taken in the layers' arrays and
written into one vector by dynamic_update_slice, as hfbench's JAX backend does
(`hfbench_jax.network.join`). The ratio joined / pytree is the part of hfbench's JAX
sgd / adam time against the hand-written loop that the layout alone explains: XLA on
a CPU copies a sliced weight into its own buffer before the dot, and through plain
autodiff the gradient comes back as a sum of pads (the `flat` column). Interleaved
rounds, medians; each timed run syncs on its result before reading the clock.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from handwritten import MLP  # noqa: E402
from handwritten import jax_loops as J  # noqa: E402

from hfbench import data, models  # noqa: E402
from hfbench.runner.batches import index_stream  # noqa: E402
from hfbench_jax.network import join  # noqa: E402

SIZES = ((784, 10, 10), (784, 256, 10))


@functools.partial(jax.jit, static_argnums=0)
def _flat_step(net, theta, X, Y, idx, lr):
    loss, g = jax.value_and_grad(lambda t: J.objective(net, J.unflatten(net, t), X[idx], Y[idx]))(theta)
    return theta - lr * g, loss


@functools.partial(jax.jit, static_argnums=0)
def _joined_step(net, theta, X, Y, idx, lr):
    layers = J.unflatten(net, theta)
    loss, g = jax.value_and_grad(lambda ls: J.objective(net, ls, X[idx], Y[idx]))(layers)
    return theta - lr * join(jax.tree.leaves(g), theta), loss


def _run(step, net, params, d, steps, lr=0.1):
    jax.block_until_ready(params)
    t0 = time.perf_counter()
    for idx in d.idx[:steps]:
        params, loss = step(net, params, d.X, d.Y, idx, lr)
    jax.block_until_ready((params, loss))
    return (time.perf_counter() - t0) / steps


def measure(sizes, steps: int, rounds: int) -> dict:
    ds = data.load("mnist5k", seed=0, flatten=True)
    net = MLP(sizes=sizes, activation="relu", loss="softmax_cross_entropy")
    spec = models.mlp(list(sizes), activation="relu", loss="softmax_cross_entropy")
    theta0 = models.init_params(spec, seed=0, dtype="float32")
    stream = index_stream(len(ds.X_train), 64, 0)
    d = J._Data(ds.X_train, ds.y_train, [next(stream).grad for _ in range(steps)], net, "float32")
    flat0, layers0 = jnp.asarray(theta0), J._layers(theta0, net, "float32")
    sides = {"flat": (_flat_step, flat0), "joined": (_joined_step, flat0),
             "pytree": (J._sgd_step, layers0)}
    for step, p0 in sides.values():  # compile, untimed
        _run(step, net, p0, d, 2)
    times = {k: [] for k in sides}
    for r in range(rounds):
        for k in (sorted(sides) if r % 2 == 0 else sorted(sides, reverse=True)):
            step, p0 = sides[k]
            times[k].append(_run(step, net, p0, d, steps))
    out = {k: statistics.median(v) for k, v in times.items()}
    for k in ("flat", "joined"):
        ratios = [a / b for a, b in zip(times[k], times["pytree"])]
        out[k + "_ratio"] = (statistics.median(ratios), min(ratios), max(ratios))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--out", default=str(ROOT / "reports" / "cpu" / "jax_flat_layout.txt"))
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # as hfbench's JAX backend does
    lines = [
        "# A jitted JAX SGD step on a flat parameter vector against the same step on a pytree",
        f"# python benchmarks/jax_flat_layout.py --steps {args.steps} --rounds {args.rounds}",
        f"# python {platform.python_version()}, jax {jax.__version__}, devices {jax.devices()}",
        f"# {platform.machine()}, mnist5k, batch 64, float32, lr 0.1; medians of interleaved rounds"
        " (ratio: median of per-round ratios, min-max in brackets)",
        "",
        "| model | flat (ms/step) | joined (ms/step) | pytree (ms/step) | flat / pytree | joined / pytree |",
        "|---|---|---|---|---|---|",
    ]
    for sizes in SIZES:
        m = measure(sizes, args.steps, args.rounds)
        cells = [f"{1e3 * m[k]:.3f}" for k in ("flat", "joined", "pytree")]
        cells += ["{:.2f} ({:.2f}-{:.2f})".format(*m[k + "_ratio"]) for k in ("flat", "joined")]
        lines.append(f"| {'-'.join(map(str, sizes))} relu | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
