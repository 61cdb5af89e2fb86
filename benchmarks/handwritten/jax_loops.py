"""Hand-written JAX loops on an MLP, as an expert writes them: sgd, adam and sgn, and the
second-order loops hf_newton, hf_gauss_newton, adaptive_hf, hf and newton (at the end of
this file; their algorithms are described in `handwritten`'s HF_NEWTON_DOC ... NEWTON_DOC).

    out = sgd(theta0, X, Y, batches, net=MLP(...), lr=0.1)          # -> LoopResult
    out = adam(theta0, X, Y, batches, net=net, lr=1e-3)
    out = sgn(theta0, X, Y, batches, net=net, cg_iters=10, rho=1e-4)

sgd / adam: one `jax.jit` step per iteration that gathers the batch from the
device-resident data, takes `value_and_grad` and applies the update (parameters a
list of (W, b) pytrees, the Adam step count an int32 on the device). The learning
rate and every per-step number are traced, not static, so nothing recompiles between
steps; only the MLP description (a frozen dataclass) and Adam's betas are static. The
per-step loss stays on the device until one `jax.device_get` of the list at the end
(not `jnp.stack`, which compiles anew for every list length, 100 ms inside the clock).

sgn (see `handwritten.SGN_DOC`): one jitted function per step computes f and g,
linearizes the network once (`jax.linearize`, transposed for J^T), runs the K CG
iterations in `lax.fori_loop`, and also evaluates f at the full step, which the
trust region always needs; the host reads f, f(x + p), g.p and the model decrease in
one transfer, updates rho, and runs the backtracking search with a jitted loss
(only when the full step fails the test). rho and alpha are traced arguments.

Every array carries an explicit dtype (float32 by default), so the loops give the
same numbers with `jax_enable_x64` on (hfbench's JAX backend turns it on
process-wide) or off; dtype="float64" and cg_float64 need it on.
"""

from __future__ import annotations

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import (MLP, SGN_DEFAULTS, LoopResult, hessian_chunk, join_flat, rr_floor,
               sgn_host_update, split_flat, targets)

ACT = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}


# ----------------------------------------------------------------------------- model


def forward(net: MLP, layers, x):
    h = x
    for w, b in layers[:-1]:
        h = ACT[net.activation](h @ w + b)
    w, b = layers[-1]
    return h @ w + b


def data_loss(net: MLP, z, y):
    """Batch mean of loss_scale * per-example loss."""
    if net.loss == "softmax_cross_entropy":
        logp = jax.nn.log_softmax(z, axis=-1)
        loss = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))
    else:
        loss = 0.5 * jnp.sum(jnp.square(z - y)) / z.shape[0]
    return loss if net.loss_scale == 1.0 else loss * net.loss_scale


def objective(net: MLP, layers, x, y):
    return data_loss(net, forward(net, layers, x), y)


def unflatten(net: MLP, theta):
    """(W, b) pairs as slices of a flat vector (canonical layout)."""
    out, start = [], 0
    for a, b in zip(net.sizes[:-1], net.sizes[1:]):
        w = theta[start : start + a * b].reshape(a, b)
        out.append((w, theta[start + a * b : start + a * b + b]))
        start += a * b + b
    return out


# ----------------------------------------------------------------------------- plumbing


class _Data:
    def __init__(self, X, Y, batches, net: MLP, dtype: str):
        self.dtype = dtype
        self.X = jax.device_put(np.asarray(X, dtype=dtype))
        self.Y = jax.device_put(targets(Y, net, dtype))
        self.idx = [jax.device_put(np.asarray(i, dtype=np.int32)) for i in batches]


def _layers(theta0, net: MLP, dtype: str):
    return [(jnp.asarray(w, dtype=dtype), jnp.asarray(b, dtype=dtype))
            for w, b in split_flat(np.asarray(theta0, dtype=dtype), net.sizes)]


def _timed(data: _Data, state, run, params_of) -> LoopResult:
    jax.block_until_ready((data.X, data.Y, data.idx, state))
    t0 = time.perf_counter()
    state, losses, extra = run(state)
    losses = np.asarray(jax.device_get(losses), dtype=np.float64)  # one read (see above)
    params = params_of(jax.block_until_ready(state))
    seconds = time.perf_counter() - t0
    return LoopResult(params, losses.astype(np.float64), seconds, extra)


def _flat_layers(layers) -> np.ndarray:
    return join_flat([(np.asarray(w), np.asarray(b)) for w, b in jax.device_get(layers)])


# ----------------------------------------------------------------------------- sgd / adam


@functools.partial(jax.jit, static_argnums=0)
def _sgd_step(net, layers, X, Y, idx, lr):
    loss, g = jax.value_and_grad(objective, argnums=1)(net, layers, X[idx], Y[idx])
    return jax.tree.map(lambda p, gi: p - lr * gi, layers, g), loss


@functools.partial(jax.jit, static_argnums=(0, 6, 7))  # the betas fold into constants
def _adam_step(net, state, X, Y, idx, lr, b1, b2, eps):
    layers, m, v, t = state
    loss, g = jax.value_and_grad(objective, argnums=1)(net, layers, X[idx], Y[idx])
    t = t + 1
    tf = t.astype(layers[0][0].dtype)
    # 1 - b^t as -expm1(t log b), log b in float64 on the host: in float32 the plain
    # form cancels (1 - 0.999f is off by 1e-5 of its value); torch.optim and hfbench
    # compute it in float64 on the host
    bc1, bc2 = -jnp.expm1(tf * float(np.log(b1))), -jnp.expm1(tf * float(np.log(b2)))
    m = jax.tree.map(lambda mi, gi: b1 * mi + (1 - b1) * gi, m, g)
    v = jax.tree.map(lambda vi, gi: b2 * vi + (1 - b2) * gi * gi, v, g)
    layers = jax.tree.map(lambda p, mi, vi: p - lr * (mi / bc1) / (jnp.sqrt(vi / bc2) + eps),
                          layers, m, v)
    return (layers, m, v, t), loss


def sgd(theta0, X, Y, batches, *, net: MLP, lr: float, dtype: str = "float32") -> LoopResult:
    """Plain SGD: x <- x - lr g."""
    data = _Data(X, Y, batches, net, dtype)

    def run(layers):
        losses = []
        for idx in data.idx:
            layers, loss = _sgd_step(net, layers, data.X, data.Y, idx, lr)
            losses.append(loss)
        return layers, losses, {}

    return _timed(data, _layers(theta0, net, dtype), run, _flat_layers)


def adam(theta0, X, Y, batches, *, net: MLP, lr: float = 1e-3, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8, dtype: str = "float32") -> LoopResult:
    """Kingma and Ba 2015, Alg. 1: m_hat / (sqrt(v_hat) + eps), bias-corrected."""
    data = _Data(X, Y, batches, net, dtype)
    layers = _layers(theta0, net, dtype)
    zeros = jax.tree.map(jnp.zeros_like, layers)
    state = (layers, zeros, jax.tree.map(jnp.zeros_like, layers), jnp.zeros((), jnp.int32))

    def run(state):
        losses = []
        for idx in data.idx:
            state, loss = _adam_step(net, state, data.X, data.Y, idx, lr, beta1, beta2, eps)
            losses.append(loss)
        return state, losses, {}

    return _timed(data, state, run, lambda s: _flat_layers(s[0]))


# ----------------------------------------------------------------------------- sgn


def _loss_hessian(net: MLP, z):
    """u -> H u (per-example loss Hessian in z) times loss_scale / B (batch mean)."""
    scale = net.loss_scale / z.shape[0]
    if net.loss == "squared_error":
        return lambda u: u * scale
    p = jax.nn.softmax(z, axis=-1)
    return lambda u: (p * u - p * jnp.sum(p * u, axis=-1, keepdims=True)) * scale


def _dot(a, b, wide: bool):
    return jnp.vdot(a.astype(jnp.float64), b.astype(jnp.float64)).astype(a.dtype) if wide else jnp.vdot(a, b)


def ggn_products(net: MLP, theta, xb, yb):
    """(f, g, v -> G v) with G v = J^T H J v / B (undamped): the network linearized once."""
    z, jvp = jax.linearize(lambda th: forward(net, unflatten(net, th), xb), theta)
    vjp = jax.linear_transpose(jvp, theta)
    f0, dz = jax.value_and_grad(lambda z: data_loss(net, z, yb))(z)
    (g,) = vjp(dz)  # g = J^T df/dz: one forward pass serves f, g and every product
    h = _loss_hessian(net, z)

    def gv(v):
        (out,) = vjp(h(jvp(v)))
        return out

    return f0, g, gv


def _cg_fixed(gv, g, iters, wide):
    """K CG iterations from zero on A p = -g (no guards); (p, r) with r = A p + g."""

    def body(_, s):
        p, r, d, rr = s
        ad = gv(d)
        a = rr / _dot(d, ad, wide)
        p, r = p + a * d, r + a * ad
        rr_new = _dot(r, r, wide)
        return p, r, -r + (rr_new / rr) * d, rr_new

    s0 = (jnp.zeros_like(g), g, -g, _dot(g, g, wide))
    p, r, _, _ = lax.fori_loop(0, iters, body, s0)
    return p, r


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _sgn_solve(net, iters, wide, theta, X, Y, idx, rho):
    """f, g, K CG iterations on (G + rho I) p = -g, and f(x + p); see SGN_DOC."""
    xb, yb = X[idx], Y[idx]
    f0, g, gv0 = ggn_products(net, theta, xb, yb)

    def gv(v):
        return gv0(v) + rho * v

    p, r = _cg_fixed(gv, g, iters, wide)
    f1 = objective(net, unflatten(net, theta + p), xb, yb)
    scalars = jnp.stack([f0, f1, jnp.vdot(g, p), 0.5 * jnp.vdot(r + g, p)])
    return p, scalars


@functools.partial(jax.jit, static_argnums=0)
def _loss_at(net, theta, p, alpha, X, Y, idx):
    return objective(net, unflatten(net, theta + alpha * p), X[idx], Y[idx])


@jax.jit
def _axpy(theta, p, alpha):
    return theta + alpha * p


def sgn(theta0, X, Y, batches, *, net: MLP, cg_iters: int = SGN_DEFAULTS["cg_iters"],
        rho: float = SGN_DEFAULTS["rho"], rho_min: float = SGN_DEFAULTS["rho_min"],
        c: float = SGN_DEFAULTS["c"], cg_float64: bool = False, dtype: str = "float32") -> LoopResult:
    """Gargiani et al.'s SGN with trust region and line search (see SGN_DOC)."""
    data = _Data(X, Y, batches, net, dtype)
    theta = jnp.asarray(np.asarray(theta0, dtype=dtype))
    if data.idx:  # compile the line search's loss now, not at its first use inside the clock
        jax.block_until_ready(_loss_at(net, theta, theta, 0.5, data.X, data.Y, data.idx[0]))
        jax.block_until_ready(_axpy(theta, theta, 0.5))

    def run(theta):
        losses, rhos, alphas, cur = [], [], [], float(rho)
        for idx in data.idx:
            p, scalars = _sgn_solve(net, cg_iters, cg_float64, theta, data.X, data.Y, idx, cur)
            f0, f1, gp, model = (float(v) for v in np.asarray(scalars))  # one read
            rhos.append(cur)
            cur = sgn_host_update(cur, f0, f1, model, rho_min)
            rhs, alpha, lhs, tries = f0 + c * gp, 1.0, f1, 0
            while lhs > rhs and tries < SGN_DEFAULTS["ls_max"]:
                tries += 1
                alpha *= SGN_DEFAULTS["ls_shrink"]
                lhs = float(_loss_at(net, theta, p, alpha, data.X, data.Y, idx))
            theta = _axpy(theta, p, alpha)
            losses.append(f0)
            alphas.append(alpha)
        return theta, losses, {"rho": rhos, "alpha": alphas}

    return _timed(data, theta, run, lambda th: np.asarray(th))


# ----------------------------------------------------------------------------- the second-order loops
#
# hf_newton, hf_gauss_newton, adaptive_hf, hf and newton (see the docs in
# `handwritten`). hf_newton, hf_gauss_newton, adaptive_hf and newton are one jitted
# function per step each: CG in `lax.while_loop` / `fori_loop` with its stop rule on the
# device, the damping (adaptive_hf's LM rule, step size and Adam moments too) traced,
# so a step never waits on the host. hf has host decisions by nature (backtracking and
# the line search evaluate f until a test passes): one jitted call for f, g, the
# preconditioner and the whole CG solve, then the host walks back over the saved
# iterates and runs the line search with a jitted loss, as Martens' code does.


def _hessian_products(net: MLP, theta, xb, yb):
    """(f, g, v -> H v): forward over reverse, the gradient linearized once."""
    f = lambda th: objective(net, unflatten(net, th), xb, yb)  # noqa: E731
    (f0, g), lin = jax.linearize(jax.value_and_grad(f), theta)
    return f0, g, lambda v: lin(v)[1]


def _dot64(a, b):
    """a.b in float64 (CG's scalars: in float32 d.Ad underflows once CG has converged past
    float32's precision, ending the solve early). Needs jax_enable_x64, as hfbench's JAX
    backend turns on; the vectors keep their dtype."""
    return jnp.vdot(a.astype(jnp.float64), b.astype(jnp.float64))


def _theta0(theta0, dtype):
    return jnp.asarray(np.asarray(theta0, dtype=dtype))


def _run_jitted(data: _Data, step, extra_keys=()):
    """The loop of a one-call-per-step method: step(state, idx) -> (state, loss, extras)."""

    def run(state):
        losses, extras = [], []
        for idx in data.idx:
            state, loss, extra = step(state, idx)
            losses.append(loss)
            extras.append(extra)
        info = {}
        if extra_keys:
            got = jax.device_get(extras)  # read once, with the losses (outside the loop)
            info = {k: [np.asarray(e[j]).item() for e in got] for j, k in enumerate(extra_keys)}
        return state, losses, info

    return run


@functools.partial(jax.jit, static_argnums=(0, 1))
def _hf_newton_step(net, max_iters, theta, X, Y, idx, lam, step, tol2):
    f0, g, hv = _hessian_products(net, theta, X[idx], Y[idx])
    rr0, dt = _dot64(g, g), g.dtype

    def body(s):
        i, p, r, d, rr, _ = s
        ad = hv(d) + lam * d
        dad = _dot64(d, ad)
        ok = (dad > 0) & (rr != 0)  # p.Ap <= 0 or NaN: stop, keep p
        a = jnp.where(ok, rr / dad, 0.0).astype(dt)
        p = jnp.where(ok, p + a * d, p)
        r = r - a * ad
        rr_new = _dot64(r, r)
        done = ~ok | (rr_new <= tol2 * rr0)
        return i + ok, p, r, r + (rr_new / rr).astype(dt) * d, rr_new, done

    s0 = (jnp.int32(0), jnp.zeros_like(g), -g, -g, rr0, jnp.bool_(False))
    i, p, *_ = lax.while_loop(lambda s: (s[0] < max_iters) & ~s[5], body, s0)
    return theta + step * p, f0, i


def hf_newton(theta0, X, Y, batches, *, net: MLP, damping: float = 32.0, step_size: float = 0.5,
              cg_max_iters: int = 10, cg_tol: float = 1e-10, dtype: str = "float32") -> LoopResult:
    """Wang and Huang's HF-Newton (see handwritten.HF_NEWTON_DOC)."""
    data = _Data(X, Y, batches, net, dtype)

    def step(theta, idx):
        theta, f0, it = _hf_newton_step(net, cg_max_iters, theta, data.X, data.Y, idx, damping,
                                        step_size, cg_tol**2)
        return theta, f0, (it,)

    return _timed(data, _theta0(theta0, dtype), _run_jitted(data, step, ("n_gv",)), np.asarray)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _hf_gauss_newton_step(net, iters, theta, X, Y, idx, lam, step):
    f0, g, gv = ggn_products(net, theta, X[idx], Y[idx])
    p, _ = _cg_fixed(lambda v: gv(v) + lam * v, g, iters, False)
    return theta + step * p, f0


def hf_gauss_newton(theta0, X, Y, batches, *, net: MLP, damping: float = 4.0,
                    step_size: float = 0.5, cg_iters: int = 10, dtype: str = "float32") -> LoopResult:
    """Wang and Huang's HF-Gauss-Newton (see handwritten.HF_GAUSS_NEWTON_DOC)."""
    data = _Data(X, Y, batches, net, dtype)

    def step(theta, idx):
        theta, f0 = _hf_gauss_newton_step(net, cg_iters, theta, data.X, data.Y, idx, damping, step_size)
        return theta, f0, ()

    out = _timed(data, _theta0(theta0, dtype), _run_jitted(data, step), np.asarray)
    return out._replace(info={"n_gv": [cg_iters] * len(out.losses)})


def _k_table(limit: int, k_min: int, rule: str):
    """The look-back k at iteration i = 0 .. limit, as the codes compute it in floats:
    Martens' max(k_min, ceil(0.1 i)), the TF code's max(k_min, floor(0.1 (i - 1)))."""
    f = (lambda i: math.ceil(0.1 * i)) if rule == "martens" else (lambda i: math.floor(0.1 * (i - 1)))
    return tuple(max(k_min, f(i)) for i in range(limit + 1))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _adaptive_hf_step(net, cfg, cold, state, X, Y, idx):
    limit, cg_eps, k_table, floor, decay, L, sigma, eps, beta2, mu, lam_min = cfg
    theta, d_prev, m, v, lam, t = state  # lam, like every scalar here, in float64
    xb, yb = X[idx], Y[idx]
    f0, g, hv = _hessian_products(net, theta, xb, yb)
    dt = g.dtype
    av = lambda u: hv(u) + lam.astype(dt) * u  # noqa: E731
    ks = jnp.asarray(k_table, jnp.int32)
    # CG from x0 = decay d_prev; at the first step (cold, a second compiled version) from
    # zero, with r0 = b and no product
    b = -g
    if cold:
        x0, r0, phi0 = jnp.zeros_like(g), b, 0.0
    else:
        x0 = decay * d_prev
        r0 = b - av(x0)
        phi0 = -0.5 * (_dot64(x0, r0) + _dot64(x0, b))
    phi = jnp.zeros(limit + 1, jnp.float64).at[0].set(phi0)

    def body(s):
        i, x, r, d, rr, phi, _ = s
        ad = av(d)
        dad = _dot64(d, ad)
        ok = (dad > 0) & (rr != 0)
        a = jnp.where(ok, rr / dad, 0.0)
        x = jnp.where(ok, x + a.astype(dt) * d, x)
        r = r - a.astype(dt) * ad
        i1 = i + ok
        phi_i = phi[i] - 0.5 * a * rr
        phi = phi.at[i1].set(phi_i)
        k = ks[i1]
        prev = phi[jnp.maximum(i1 - k, 0)]
        rule = (i1 > k + 1) & (phi_i != 0) & ((phi_i - prev) / jnp.where(phi_i != 0, phi_i, 1.0) < cg_eps)
        rr_new = _dot64(r, r)
        solved = rr_new < floor  # the code's numerical stop (r.r < 1e-20 in float32)
        return i1, x, r, r + (rr_new / rr).astype(dt) * d, rr_new, phi, ~ok | rule | solved

    s0 = (jnp.int32(0), x0, r0, r0, _dot64(r0, r0), phi, jnp.bool_(False))
    i, d, _, _, _, phi, _ = lax.while_loop(lambda s: (s[0] < limit) & ~s[6], body, s0)
    # Eq. 3 step size and the bias-corrected Adam moments of d
    dd = _dot64(d, d)
    dn = jnp.sqrt(dd)
    b1 = eps / (eps + 2 * sigma)
    tf = t.astype(jnp.float64)
    b1t, b2t = jnp.power(b1, tf), jnp.power(beta2, tf)
    alpha = 4 * (dd * (1 - b1) - dn * (b1 - b1t) * sigma) / (3 * L * (1 - b1t) ** 2 * sigma)
    m = b1 * m + (1 - b1) * d
    v = beta2 * v + (1 - beta2) * d * d
    c1, c2 = (1 / (1 - b1t)).astype(dt), (1 / (1 - b2t)).astype(dt)
    new = theta + alpha.astype(dt) * ((c1 * m) / (jnp.sqrt(c2 * v) + mu))
    # rho at the step taken over the undamped model at d; Levenberg-Marquardt on lambda
    f1 = objective(net, unflatten(net, new), xb, yb)
    df = (f1 - f0).astype(jnp.float64)
    model = phi[i] - 0.5 * lam * dd
    rho = jnp.where(model < 0, df / jnp.where(model < 0, model, -1.0), jnp.where(df > 0, -jnp.inf, 0.0))
    rho = jnp.where(jnp.isfinite(f1), rho, jnp.nan)
    lam = jnp.where(~(rho >= 0.25), lam * 1.5, jnp.where(rho > 0.75, lam * (2.0 / 3.0), lam))
    lam = jnp.maximum(lam, lam_min)
    return (new, d, m, v, lam, t + 1), f0, i


def adaptive_hf(theta0, X, Y, batches, *, net: MLP, damping: float = 10.0, eps: float = 1e-3,
                sigma: float = 50.0, L: float = 100.0, beta2: float = 1e-6, mu: float = 1e-8,
                cg_max_iters: int = 50, cg_eps: float = 1e-4, cg_k_min: int = 10,
                cg_rr_floor: float | None = None, decay: float = 0.95, damping_min: float = 0.1,
                dtype: str = "float32") -> LoopResult:
    """Motokawa and Tezuka's Adaptive HF (see handwritten.ADAPTIVE_HF_DOC)."""
    data = _Data(X, Y, batches, net, dtype)
    theta = _theta0(theta0, dtype)
    zeros = jnp.zeros_like(theta)
    state = (theta, zeros, zeros, zeros, jnp.asarray(max(damping, damping_min), jnp.float64), jnp.int32(1))
    floor = rr_floor(dtype) if cg_rr_floor is None else float(cg_rr_floor)
    cfg = (cg_max_iters, cg_eps, _k_table(cg_max_iters, cg_k_min, "relative"), floor, decay, L,
           sigma, eps, beta2, mu, damping_min)

    started = False  # the first step runs cold: no warm start, so no product for it

    def step(state, idx):
        nonlocal started
        cold, started = not started, True
        state, f0, it = _adaptive_hf_step(net, cfg, cold, state, data.X, data.Y, idx)
        return state, f0, (it, it + (not cold))  # + the warm start's product

    out = _timed(data, state, _run_jitted(data, step, ("cg_iters", "n_gv")), lambda s: np.asarray(s[0]))
    return out._replace(info={**out.info, "n_fwd": [1] * len(out.losses)})  # f at the new point


def _grad_and_fisher_diag(net: MLP, theta, xb, yb):
    """f, g and the empirical Fisher's diagonal (1/B) sum_i g_i^2 from one forward and one
    backward pass: a zero perturbation e of every pre-activation s; df/de = delta has
    row i = dl_i/ds_i / B, and per Dense layer with input a: g(W) = a^T delta,
    g(b) = sum_i delta_i, d(W) = B (a^2)^T delta^2, d(b) = B sum_i delta_i^2."""
    layers, n = unflatten(net, theta), xb.shape[0]

    def f_of(es):
        h, ins = xb, []
        for j, ((w, b), e) in enumerate(zip(layers, es)):
            ins.append(h)
            s = h @ w + b + e
            h = ACT[net.activation](s) if j < len(layers) - 1 else s
        return data_loss(net, h, yb), ins

    es = [jnp.zeros((n, b.shape[0]), theta.dtype) for _, b in layers]
    (f0, ins), deltas = jax.value_and_grad(f_of, has_aux=True)(es)
    gs, ds = [], []
    for a, delta in zip(ins, deltas):
        d2 = jnp.square(delta)
        gs += [(a.T @ delta).reshape(-1), jnp.sum(delta, axis=0)]
        ds += [(jnp.square(a).T @ d2).reshape(-1), jnp.sum(d2, axis=0)]
    return f0, jnp.concatenate(gs), jnp.concatenate(ds) * n


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _hf_front(net, cfg, cold, theta, X, Y, idx, p_prev, lam):
    """f, g, D, the GGN on the curvature batch, and preconditioned CG with Martens' stop
    (cold: the first step, CG from zero with no product for x0, p_prev unused)."""
    limit, cg_eps, k_table, slot_table, n_slots, kc, exponent, decay = cfg
    xb, yb = X[idx], Y[idx]
    f0, g, diag = _grad_and_fisher_diag(net, theta, xb, yb)
    fc0, _, gv = ggn_products(net, theta, xb[:kc], yb[:kc])
    m_inv = (diag + lam) ** (-exponent)
    av = lambda v: gv(v) + lam * v  # noqa: E731
    ks, slots = jnp.asarray(k_table, jnp.int32), jnp.asarray(slot_table, jnp.int32)
    b, dt = -g, g.dtype
    if cold:
        x0, r0, phi0 = jnp.zeros_like(g), b, 0.0
    else:
        x0 = decay * p_prev
        r0 = b - av(x0)
        phi0 = -0.5 * (_dot64(x0, r0) + _dot64(x0, b))
    z0 = m_inv * r0
    phi = jnp.zeros(limit + 1, jnp.float64).at[0].set(phi0)
    saved = jnp.zeros((n_slots, g.shape[0]), dt)

    def body(s):
        i, x, r, d, rz, phi, saved, _ = s
        ad = av(d)
        dad = _dot64(d, ad)
        ok = (dad > 0) & (rz != 0)
        a = jnp.where(ok, rz / dad, 0.0)
        x = jnp.where(ok, x + a.astype(dt) * d, x)
        r = r - a.astype(dt) * ad
        z = m_inv * r
        rz_new = _dot64(r, z)
        i1 = i + ok
        phi_i = phi[i] - 0.5 * a * rz
        phi = phi.at[i1].set(phi_i)
        slot = slots[i1]
        j = jnp.maximum(slot, 0)
        saved = saved.at[j].set(jnp.where(ok & (slot >= 0), x, saved[j]))
        k = ks[i1]
        prev = phi[jnp.maximum(i1 - k, 0)]
        rule = (i1 > k) & (phi_i < 0) & ((phi_i - prev) / jnp.where(phi_i < 0, phi_i, -1.0) < k * cg_eps)
        return i1, x, r, z + (rz_new / rz).astype(dt) * d, rz_new, phi, saved, ~ok | rule

    s0 = (jnp.int32(0), x0, r0, z0, _dot64(r0, z0), phi, saved, jnp.bool_(False))
    i, x, _, _, _, phi, saved, _ = lax.while_loop(lambda s: (s[0] < limit) & ~s[7], body, s0)
    return x, saved, g, jnp.stack([f0, fc0]), i, phi


@functools.partial(jax.jit, static_argnums=(0, 1))
def _hf_rho_terms(net, kc, theta, p, g, X, Y, idx):
    """f on the curvature batch at x + p, g.p and p.p: one read."""
    fc1 = objective(net, unflatten(net, theta + p), X[idx[:kc]], Y[idx[:kc]])
    return jnp.stack([fc1.astype(jnp.float64), _dot64(g, p), _dot64(p, p)])


@functools.partial(jax.jit, static_argnums=0)
def _loss_at_row(net, theta, saved, j, X, Y, idx):
    return objective(net, unflatten(net, theta + saved[j]), X[idx], Y[idx])


@jax.jit
def _row(saved, j):
    return saved[j]


def _save_slots(first: float, gamma: float, limit: int):
    """(save point -> slot, slot table over iterations 0 .. limit)."""
    pts, j = set(), 0
    while math.ceil(first * gamma**j) <= limit:
        pts.add(math.ceil(first * gamma**j))
        j += 1
    slot_of = {it: k for k, it in enumerate(sorted(pts))}
    return slot_of, tuple(slot_of.get(i, -1) for i in range(limit + 1))


def hf(theta0, X, Y, batches, *, net: MLP, curvature_batch: int, damping: float = 45.0,
       cg_max_iters: int = 250, cg_eps: float = 5e-4, cg_k_min: int = 10, decay: float = 0.95,
       save_first: float = 5.0, gamma: float = 1.3, exponent: float = 0.75, ls_c: float = 1e-2,
       ls_shrink: float = 0.8, ls_max: int = 60, dtype: str = "float32") -> LoopResult:
    """Martens' HF as his released code runs it (see handwritten.HF_DOC)."""
    data = _Data(X, Y, batches, net, dtype)
    theta = _theta0(theta0, dtype)
    slot_of, slot_table = _save_slots(save_first, gamma, cg_max_iters)
    kc = int(curvature_batch)
    cfg = (cg_max_iters, cg_eps, _k_table(cg_max_iters, cg_k_min, "martens"), slot_table,
           len(slot_of), kc, exponent, decay)
    if data.idx:  # compile the host-side helpers now, not at their first use inside the clock
        jax.block_until_ready([
            _loss_at(net, theta, theta, 0.5, data.X, data.Y, data.idx[0]),
            _loss_at_row(net, theta, jnp.zeros((len(slot_of), theta.size), theta.dtype), 0, data.X,
                         data.Y, data.idx[0]),
            _row(jnp.zeros((len(slot_of), theta.size), theta.dtype), 0),
            _hf_rho_terms(net, kc, theta, theta, theta, data.X, data.Y, data.idx[0]),
            _axpy(theta, theta, 0.5)])

    def run(theta):
        losses, iters, fwds = [], [], []
        trace = {"backtrack_iter": [], "lambda": [], "rho": [], "alpha": []}
        lam, p_prev, products = float(damping), None, []
        for idx in data.idx:
            cold = p_prev is None
            x, saved, g, fs, n, phi = _hf_front(net, cfg, cold, theta, data.X, data.Y, idx,
                                                theta if cold else p_prev, lam)
            fs, n, phi = jax.device_get((fs, n, phi))  # one read
            f0, fc0, n = float(fs[0]), float(fs[1]), int(n)

            def loss(it):
                if it == n:
                    return float(_loss_at(net, theta, x, 1.0, data.X, data.Y, idx))
                return float(_loss_at_row(net, theta, saved, slot_of[it], data.X, data.Y, idx))

            # CG-iterate backtracking: walk back while the earlier iterate is no worse
            cands = [it for it in sorted(slot_of) if it < n] + [n]
            it, nf = n, 1
            best = loss(n)
            for prev in reversed(cands[:-1]):
                val = loss(prev)
                nf += 1
                if not math.isfinite(val):
                    continue
                if math.isfinite(best) and best < val:
                    break
                it, best = prev, val
            p = x if it == n else _row(saved, slot_of[it])
            fc1, gp, pp = (float(a) for a in np.asarray(
                _hf_rho_terms(net, kc, theta, p, g, data.X, data.Y, idx)))
            nf += 1
            model = 0.5 * (2.0 * (float(phi[it]) - gp) - lam * pp) + gp
            rho = (math.nan if not math.isfinite(fc1) else (fc1 - fc0) / model if model < 0
                   else -math.inf if fc1 > fc0 else 0.0)
            alpha = 0.0
            if gp < 0:  # line search from a = 1, whose f is known
                a, val = 1.0, best
                for j in range(ls_max):
                    if j > 0:
                        a *= ls_shrink
                        val = float(_loss_at(net, theta, p, a, data.X, data.Y, idx))
                        nf += 1
                    if val <= f0 + ls_c * a * gp:
                        alpha = a
                        break
            if alpha > 0:
                theta = _axpy(theta, p, alpha)
            for k, val in zip(trace, (it, lam, rho, alpha)):
                trace[k].append(val)
            lam = lam * 1.5 if not rho >= 0.25 else lam * (2.0 / 3.0) if rho > 0.75 else lam
            p_prev = x
            losses.append(f0)
            iters.append(n)
            products.append(n + (not cold))  # + the warm start's product
            fwds.append(nf)
        return theta, losses, {"cg_iters": iters, "n_gv": products, "n_fwd": fwds, **trace}

    return _timed(data, theta, run, np.asarray)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _newton_step(net, chunk, theta, X, Y, idx, lam, step):
    f = lambda th: objective(net, unflatten(net, th), X[idx], Y[idx])  # noqa: E731
    (f0, g), lin = jax.linearize(jax.value_and_grad(f), theta)
    n, dt = theta.size, theta.dtype

    def rows(i, H):  # H[j] = H e_j for one chunk of j (the last chunk overlaps: same rows)
        start = jnp.minimum(i * chunk, n - chunk)
        E = (jnp.arange(n)[None, :] == (start + jnp.arange(chunk))[:, None]).astype(dt)
        Hv = jax.vmap(lambda v: lin(v)[1])(E)
        return lax.dynamic_update_slice_in_dim(H, Hv.astype(jnp.float64), start, 0)

    H = lax.fori_loop(0, -(-n // chunk), rows, jnp.zeros((n, n), jnp.float64))
    diag = jnp.arange(n)
    c = jax.scipy.linalg.cho_factor(H.at[diag, diag].add(lam), lower=True)  # in place: no eye
    p = jax.scipy.linalg.cho_solve(c, g.astype(jnp.float64)).astype(dt)
    return theta - step * p, f0


def newton(theta0, X, Y, batches, *, net: MLP, damping: float = 32.0, step_size: float = 0.5,
           chunk: int | None = None, dtype: str = "float32") -> LoopResult:
    """Wang and Huang's damped Newton (see handwritten.NEWTON_DOC)."""
    data = _Data(X, Y, batches, net, dtype)
    theta = _theta0(theta0, dtype)
    k = chunk or hessian_chunk(theta.size, theta.dtype.itemsize)

    def step(theta, idx):
        theta, f0 = _newton_step(net, k, theta, data.X, data.Y, idx, damping, step_size)
        return theta, f0, ()

    out = _timed(data, theta, _run_jitted(data, step), np.asarray)
    return out._replace(info={"n_gv": [theta.size] * len(out.losses)})  # one product per basis vector
