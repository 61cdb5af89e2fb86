"""Full-dataset evaluation in fixed-size chunks (bounded memory, few JAX shapes).

Metrics are example-weighted means over chunks, so they equal one evaluation on
the whole set. Names: train_loss / test_loss (mean data loss, no l2),
train_objective (with l2), train_accuracy / test_accuracy (classification),
train_reconstruction_error / test_reconstruction_error (autoencoders: Martens
2010 Table 2's average sum of squared reconstruction error).
"""

from __future__ import annotations

import numpy as np

CHUNK = 2000


def _evaluate_set(be, problem, x, X, Y) -> dict[str, float]:
    totals, n = {}, len(X)
    for start in range(0, n, CHUNK):
        sl = slice(start, min(start + CHUNK, n))
        m = problem.evaluate(x, be.batch(X[sl], Y[sl]))
        w = (sl.stop - sl.start) / n
        for k, v in m.items():
            totals[k] = totals.get(k, 0.0) + w * v
    return totals


def evaluate_full(be, problem, x, ds) -> dict[str, float]:
    out = {}
    for split, X, Y in (("train", ds.X_train, ds.y_train), ("test", ds.X_test, ds.y_test)):
        for k, v in _evaluate_set(be, problem, x, X, Y).items():
            out[f"{split}_{k}"] = float(v) if np.isfinite(v) else float("nan")
    return out
