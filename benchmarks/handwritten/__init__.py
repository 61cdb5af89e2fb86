"""Hand-written training loops: the yardstick for hfbench's per-step overhead.

Each loop is what an expert user would write in one framework for one MLP, with
no hfbench math in it (hfbench supplies only the data, the initial vector and the
batch indices, so both sides see the same numbers). `benchmarks/harness_overhead.py`
times them against `hfbench run` on the same model, batches and step count.

    from handwritten import MLP, torch_loops, jax_loops     # sys.path: benchmarks/
    net = MLP(sizes=(784, 10, 10), activation="relu", loss="softmax_cross_entropy")
    out = torch_loops.sgd(theta0, X, Y, batches, net=net, lr=0.1)
    out.params, out.losses, out.seconds

Every loop returns a `LoopResult`: the final flat parameters, the per-step batch
losses (kept on the device during the loop and read once at the end) and the
seconds of the step loop alone (setup excluded; synced before the clock starts
and on the result before it stops). Parameters use hfbench's canonical flat
layout: per Dense layer its (in, out) weight row-major, then its bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

ACTIVATIONS = ("relu", "sigmoid", "tanh")
LOSSES = ("softmax_cross_entropy", "squared_error")


@dataclass(frozen=True, kw_only=True)
class MLP:
    """Dense layers `sizes[0] -> ... -> sizes[-1]`, `activation` on every hidden
    layer, a linear output z, and the per-example loss times `loss_scale`:
    softmax cross-entropy -log softmax(z)[y], or squared error 1/2 sum_k (z_k - t_k)^2.
    The objective is the batch mean. Frozen, so it can be a static jit argument."""

    sizes: tuple[int, ...]
    activation: str = "relu"
    loss: str = "softmax_cross_entropy"
    loss_scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        if len(self.sizes) < 2:
            raise ValueError(f"MLP needs at least input and output sizes, got {self.sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLP activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"MLP loss must be one of {LOSSES}, got {self.loss!r}")

    @property
    def num_params(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


class LoopResult(NamedTuple):
    params: np.ndarray  # final flat parameters, canonical layout
    losses: np.ndarray  # batch loss before each step, float64 on the host
    seconds: float  # the step loop alone
    info: dict = {}  # loop-specific extras (sgn: per-step rho and alpha)


def split_flat(theta: np.ndarray, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W (in, out), b (out,)), ...] from a flat vector in the canonical layout."""
    theta = np.asarray(theta)
    out, start = [], 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = theta[start : start + a * b].reshape(a, b)
        bias = theta[start + a * b : start + a * b + b]
        out.append((w, bias))
        start += a * b + b
    if start != theta.size:
        raise ValueError(f"flat vector has {theta.size} values, the MLP {tuple(sizes)} needs {start}")
    return out


def join_flat(layers) -> np.ndarray:
    """Inverse of `split_flat` (NumPy arrays in, one flat float array out)."""
    return np.concatenate([np.asarray(a).reshape(-1) for wb in layers for a in wb])


def targets(Y: np.ndarray, net: MLP, dtype: str = "float32") -> np.ndarray:
    """Labels stay integers; regression targets become (N, outputs) floats."""
    if net.loss == "softmax_cross_entropy":
        return np.asarray(Y).astype(np.int64)
    Y = np.asarray(Y, dtype=dtype)
    return Y.reshape(-1, 1) if Y.ndim == 1 else Y


SGN_DEFAULTS = dict(cg_iters=10, rho=1e-4, rho_min=1e-6, c=1e-4, ls_shrink=0.5, ls_max=10)
SGN_DOC = """sgn as Gargiani et al.'s public code (gmatilde/SGN, SGN/optimizers/solvers.py,
class SGN, with TR and LS on, no preconditioner, no gradient momentum) runs it. Per step:
  1. f and g on the batch.
  2. CG from zero, exactly K iterations, on (G + rho I) p = -g with G v = J^T H J v / B
     (H: the per-example loss Hessian in z; batch mean):
       r = g, d = -r; repeat K: a = r.r / d.(G + rho)d; p += a d; r += a (G + rho)d;
       b = r'.r' / r.r; d = -r' + b d.
     (The code also stops when max|r| <= CG_TOL = 1e-6; with K = 10 in float32 that
     does not fire on these nets, and the brief asks for exactly K.)
  3. Trust region at the FULL step: ratio = (f(x + p) - f) / (1/2 (r + g).p), where r is
     CG's recurrence residual, so 1/2 (r + g).p = g.p + 1/2 p.(G + rho I)p with no extra
     product. ratio < 1/4: rho *= 3/2; ratio > 3/4: rho = max(2/3 rho, rho_min); the new
     rho is the next step's. (A NaN ratio moves nothing, as in the code.)
  4. Backtracking: rhs = f + c g.p, computed once (not rescaled by alpha); alpha = 1;
     while f(x + alpha p) > rhs and tries < 10: alpha *= 1/2. After 10 shrinks alpha =
     1/2^10 is kept whatever f is. x += alpha p.
"""


def sgn_host_update(rho: float, f0: float, f1: float, model: float, rho_min: float) -> float:
    """The trust-region rule of step 3 (the next step's rho)."""
    ratio = (f1 - f0) / model if model != 0 else float("nan")
    if ratio < 0.25:
        return rho * 1.5
    if ratio > 0.75:
        return max(rho * (2.0 / 3.0), rho_min)
    return rho


# The second-order loops (torch_loops / jax_loops: hf_newton, hf_gauss_newton,
# adaptive_hf, hf, newton). Each is written from its paper (and the paper's public
# code where the suite follows it), not from hfbench's algorithm layer. In all of
# them CG solves A p = b, b = -g, phi(p) = 1/2 p.A p - b.p, r = b - A p; an iteration
# that meets p.Ap <= 0 (or NaN) stops CG before it changes p (the last good iterate).
# CG's scalars never underflow in float32 (once CG has converged past float32's
# precision its vectors keep shrinking, and a float32 d.Ad of 0 would end the solve
# early): torch keeps them as Python floats, redoing a float32 dot in float64 when it
# is near underflow; JAX computes them in float64 (jax_enable_x64 on, as the harness
# and hfbench's JAX backend set it). Vectors stay in the working dtype.

HF_NEWTON_DOC = """hf_newton as suites/wang2024.yaml runs it (Wang and Huang 2024, HF-Newton). Per step:
  1. f, g on the batch; H v = the true Hessian's product (torch: double backward of the
     gradient kept with create_graph; JAX: jax.linearize of jax.value_and_grad).
  2. CG from zero on (H + lambda I) p = -g, lambda = 32 fixed: stop when
     |r| <= 1e-10 |b|, after 10 iterations, or at p.Ap <= 0 (keep the last iterate).
  3. x += 0.5 p (no loss evaluation).
"""

HF_GAUSS_NEWTON_DOC = """hf_gauss_newton as suites/wang2024.yaml runs it (Wang and Huang's HF-Gauss-Newton =
hfbench's sgn with damping 4, damping_rule fixed, step_size 0.5, cg_iters 10, no line
search). Per step: f, g and the GGN products of sgn (one forward pass); exactly 10 CG
iterations from zero on (G + 4 I) p = -g; x += 0.5 p.
"""

ADAPTIVE_HF_DOC = """adaptive_hf as suites/motokawa2020.yaml runs it (Motokawa and Tezuka 2020, Alg. 1
and Eq. 3, with their public code's CG and damping). Per step t = 1, 2, ...:
  1. f, g on the batch; H v the true Hessian's product (as hf_newton), same batch.
  2. CG on (H + lambda I) d = -g from x0 = 0.95 d_{t-1} (zero at t = 1): r0 = b - A x0,
     phi_0 = -1/2 x0.(r0 + b), phi_{i+1} = phi_i - alpha_i/2 r_i.r_i; stop at i
     (iterations done) when i > k + 1, phi_i != 0 and (phi_i - phi_{i-k}) / phi_i < 1e-4,
     k = max(10, floor(0.1 (i - 1))), or once r_i.r_i < 1e-20 (1e-80 in float64; the code
     tests r.r before every iteration, which is this test on the residual just computed),
     or at 50 iterations, or at p.Ap <= 0.
  3. beta1 = eps / (eps + 2 sigma); alpha_t = 4 (|d|^2 (1 - beta1) - |d| (beta1 - beta1^t)
     sigma) / (3 L (1 - beta1^t)^2 sigma); m = beta1 m + (1 - beta1) d, v = beta2 v +
     (1 - beta2) d^2; x_new = x + alpha_t (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + mu).
  4. rho = (f(x_new) - f(x)) / (phi(d) - lambda/2 |d|^2) (the undamped model at d; no
     decrease predicted: -inf if f rose, else 0); lambda *= 3/2 if rho < 1/4 or NaN,
     *= 2/3 if rho > 3/4; lambda >= 0.1.
  Grid point: lambda_0 10, eps 1e-3, sigma 50, L 100, beta2 1e-6, mu 1e-8.
"""


def rr_floor(dtype: str) -> float:
    """Motokawa and Tezuka's code ends CG once r.r falls below this (by the vectors' dtype)."""
    return 1e-80 if "64" in str(dtype) else 1e-20


def hessian_chunk(n: int, itemsize: int, budget: int = 64 << 20) -> int:
    """Basis vectors per batched Hessian product in the newton loops: about `budget` bytes
    of temporaries (per row a few working-dtype vectors of length n and its float64 copy)."""
    return max(1, min(n, budget // (n * (3 * itemsize + 8))))


HF_DOC = """hf as suites/martens2010.yaml's `hf` entry runs it (Martens 2010, as his released
nnet_train_2.m / conjgrad_1.m do). Per step:
  1. f, g and the empirical Fisher's diagonal D = (1/B) sum_i g_i^2 on the gradient batch,
     from one forward and one backward pass (closed form per Dense layer).
  2. G v, the GGN product on the curvature batch (the first K examples of the gradient
     batch), one forward pass for all products (as sgn's); f there comes with it.
  3. Preconditioned CG on (G + lambda I) p = -g, M = (D + lambda)^0.75, from
     x0 = 0.95 p_prev (the last un-backtracked solution; zero at the first step); stop at
     i when i > k, phi_i < 0 and (phi_i - phi_{i-k}) / phi_i < k 5e-4, k = max(10,
     ceil(0.1 i)), or at 250 iterations; iterates saved at ceil(5 * 1.3^j).
  4. Backtracking over the saved iterates and the last: from the last, step back while
     the earlier one's f (gradient batch) is not larger (a NaN is walked past).
  5. rho = (f_K(x + p) - f_K(x)) / (1/2 p.G p + g.p) at the backtracked p, f_K on the
     curvature batch, p.G p = 2 (phi(p) - g.p) - lambda |p|^2 (undamped, no product).
  6. Line search: a = 0.8^j, j = 0 .. 59, the first with f(x + a p) <= f(x) + 1e-2 a g.p;
     none (or g.p >= 0): the step is rejected. x += a p.
  7. lambda *= 3/2 if rho < 1/4 or NaN, *= 2/3 if rho > 3/4 (from 45).
"""

NEWTON_DOC = """newton as suites/wang2024.yaml's damped_newton entry runs it. Per step:
  1. f, g on the batch, and the dense Hessian H of the batch objective, built row by row
     into one n x n float64 buffer from Hessian-vector products in the working dtype,
     one batched (vmapped) product per chunk of basis vectors e_s .. e_s+k-1 (torch:
     torch.func.vmap of the double backward of the gradient kept with create_graph;
     JAX: jax.vmap of jax.linearize of jax.value_and_grad, chunks in a lax.fori_loop).
     k keeps a chunk's temporaries near 64 MiB (all n rows at once for small n).
  2. (H + 32 I) p = -g by Cholesky in float64 (the lower triangle; no symmetrisation),
     p back in the working dtype; x += 0.5 p.
At n = 7,960 (wang2024's net) the matrix is 0.47 GiB: torch factors it in place (one
buffer, allocated once); XLA's Cholesky writes a second one.
"""
