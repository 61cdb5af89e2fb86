"""Hand-written PyTorch loops on an MLP, as an expert writes them: sgd, adam and sgn, and the
second-order loops hf_newton, hf_gauss_newton, adaptive_hf, hf and newton (at the end of
this file; their algorithms are described in `handwritten`'s HF_NEWTON_DOC ... NEWTON_DOC).

    out = sgd(theta0, X, Y, batches, net=MLP(...), lr=0.1)          # -> LoopResult
    out = adam(theta0, X, Y, batches, net=net, lr=1e-3)
    out = sgn(theta0, X, Y, batches, net=net, cg_iters=10, rho=1e-4)

The data and the index batches go to the device once, before the clock; each step
gathers its batch there (`index_select`), as a loop over a tensor dataset does.

sgd / adam, `style`:
- "functional" (default, the faster at these sizes): per-layer leaf tensors W (in, out)
  and b, `torch.addmm`, `torch.autograd.grad`, and the update as in-place
  `torch._foreach_*` ops under no_grad (what `torch.optim` runs inside with
  foreach=True, without its per-call bookkeeping).
- "module": `nn.Sequential` of `nn.Linear` + `torch.optim.SGD` / `Adam` (foreach),
  `zero_grad(set_to_none=True)`, `backward()`, `step()`.
The per-step loss stays a tensor (detached) until one `torch.stack` at the end.

sgn: see `handwritten.SGN_DOC`. The GGN product reuses one forward pass per step:
the gradient is taken as J^T u with u = df/dz and create_graph, so it doubles as
a function of u whose derivative along v is J v (one double-backward per product),
and J^T w is one backward through the kept graph; H is applied in closed form. CG is a Python
loop of K iterations whose scalars stay 0-d tensors (no host read inside it); the
trust region and the line search read scalars on the host, once per evaluation.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import (MLP, SGN_DEFAULTS, LoopResult, hessian_chunk, join_flat, rr_floor,
               sgn_host_update, split_flat, targets)

ACT = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
ACT_MODULE = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


# ----------------------------------------------------------------------------- shared


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Data:
    """The training arrays and the index batches on the device, made once."""

    def __init__(self, X, Y, batches, net: MLP, device, dtype: str):
        self.device, self.dtype = torch.device(device), dtype
        self.X = torch.as_tensor(np.asarray(X, dtype=dtype), device=self.device)
        self.Y = torch.as_tensor(targets(Y, net, dtype), device=self.device)
        self.idx = [torch.as_tensor(np.asarray(i, dtype=np.int64), device=self.device) for i in batches]

    def batch(self, idx):
        return self.X.index_select(0, idx), self.Y.index_select(0, idx)


def forward(layers, x, act):
    """z = last(act(... act(x W1 + b1) ...)); layers = [W1, b1, W2, b2, ...], W (in, out)."""
    h = x
    n = len(layers) // 2
    for i in range(n - 1):
        h = act(torch.addmm(layers[2 * i + 1], h, layers[2 * i]))
    return torch.addmm(layers[-1], h, layers[-2])


def objective(net: MLP, z, y):
    """Batch mean of loss_scale * per-example loss."""
    if net.loss == "softmax_cross_entropy":
        loss = F.cross_entropy(z, y)
        return loss if net.loss_scale == 1.0 else loss * net.loss_scale
    # 1/2 sum_k (z_k - t_k)^2 per example, mean over the batch: one reduction, one scale
    return F.mse_loss(z, y, reduction="sum") * (0.5 * net.loss_scale / z.shape[0])


def _leaves(theta0, net: MLP, data: _Data) -> list[torch.Tensor]:
    out = []
    for w, b in split_flat(np.asarray(theta0, dtype=data.dtype), net.sizes):
        out += [torch.tensor(w, device=data.device, requires_grad=True),
                torch.tensor(b, device=data.device, requires_grad=True)]
    return out


def _flat(layers) -> np.ndarray:
    arrays = [t.detach().cpu().numpy() for t in layers]
    return join_flat(list(zip(arrays[0::2], arrays[1::2])))


def _timed(data: _Data, run, params_of) -> LoopResult:
    """Sync, start the clock, run the steps, read the result back once, stop the clock."""
    _sync(data.device)
    t0 = time.perf_counter()
    losses, extra = run()
    losses = torch.stack(losses).cpu().numpy() if losses and torch.is_tensor(losses[0]) else np.asarray(losses)
    params = params_of()
    _sync(data.device)
    seconds = time.perf_counter() - t0
    return LoopResult(params, losses.astype(np.float64), seconds, extra)


# ----------------------------------------------------------------------------- sgd / adam


def sgd(theta0, X, Y, batches, *, net: MLP, lr: float, style: str = "functional",
        device="cpu", dtype: str = "float32") -> LoopResult:
    """Plain SGD: x <- x - lr g."""
    data = _Data(X, Y, batches, net, device, dtype)
    if style == "module":
        return _module_loop(data, theta0, net, lambda ps: torch.optim.SGD(ps, lr=lr, foreach=True))
    params, act = _leaves(theta0, net, data), ACT[net.activation]

    def run():
        losses = []
        for idx in data.idx:
            xb, yb = data.batch(idx)
            loss = objective(net, forward(params, xb, act), yb)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                torch._foreach_add_(params, grads, alpha=-lr)
            losses.append(loss.detach())
        return losses, {}

    return _timed(data, run, lambda: _flat(params))


def adam(theta0, X, Y, batches, *, net: MLP, lr: float = 1e-3, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8, style: str = "functional", device="cpu",
         dtype: str = "float32") -> LoopResult:
    """Kingma and Ba 2015, Alg. 1 (bias-corrected), in torch.optim.Adam's arithmetic:
    x <- x - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    data = _Data(X, Y, batches, net, device, dtype)
    if style == "module":
        return _module_loop(data, theta0, net, lambda ps: torch.optim.Adam(
            ps, lr=lr, betas=(beta1, beta2), eps=eps, foreach=True))
    params, act = _leaves(theta0, net, data), ACT[net.activation]
    m = [torch.zeros_like(p, requires_grad=False) for p in params]
    v = [torch.zeros_like(p, requires_grad=False) for p in params]

    def run():
        losses = []
        for t, idx in enumerate(data.idx, start=1):
            xb, yb = data.batch(idx)
            loss = objective(net, forward(params, xb, act), yb)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                torch._foreach_lerp_(m, grads, 1 - beta1)  # m <- b1 m + (1 - b1) g
                torch._foreach_mul_(v, beta2)
                torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
                denom = torch._foreach_sqrt(v)
                torch._foreach_div_(denom, math.sqrt(1 - beta2**t))
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(params, m, denom, value=-lr / (1 - beta1**t))
            losses.append(loss.detach())
        return losses, {}

    return _timed(data, run, lambda: _flat(params))


def _module_loop(data: _Data, theta0, net: MLP, make_opt) -> LoopResult:
    """nn.Linear layers set from the flat vector (nn.Linear keeps W as (out, in))."""
    mods = []
    for i, (w, b) in enumerate(split_flat(np.asarray(theta0, dtype=data.dtype), net.sizes)):
        lin = nn.Linear(*w.shape, device=data.device, dtype=getattr(torch, data.dtype))
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.T))
            lin.bias.copy_(torch.as_tensor(b))
        mods += [lin] if i == len(net.sizes) - 2 else [lin, ACT_MODULE[net.activation]()]
    model = nn.Sequential(*mods)
    opt = make_opt(model.parameters())
    linears = [m for m in model if isinstance(m, nn.Linear)]

    def run():
        losses = []
        for idx in data.idx:
            xb, yb = data.batch(idx)
            opt.zero_grad(set_to_none=True)
            loss = objective(net, model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return losses, {}

    def params():
        return join_flat([(m.weight.detach().T.cpu().numpy(), m.bias.detach().cpu().numpy())
                          for m in linears])

    return _timed(data, run, params)


# ----------------------------------------------------------------------------- sgn


def _loss_hessian(net: MLP, z):
    """u -> H u per example (H the Hessian of the per-example loss in z), times
    loss_scale / B for the batch mean."""
    scale = net.loss_scale / z.shape[0]
    if net.loss == "squared_error":
        return lambda u: u * scale
    p = torch.softmax(z.detach(), dim=1)
    return lambda u: (p * u - p * (p * u).sum(dim=1, keepdim=True)) * scale


def _dot(a, b, wide: bool):
    return torch.dot(a.double(), b.double()).to(a.dtype) if wide else torch.dot(a, b)


def cg_fixed(gv, g, iters: int, wide: bool = False):
    """Unpreconditioned CG from zero on A p = -g for exactly `iters` iterations.
    Returns (p, r) with r = A p + g from the recurrence. No host reads."""
    p = torch.zeros_like(g)
    r = g.clone()
    d = -g
    rr = _dot(r, r, wide)
    for _ in range(iters):
        ad = gv(d)
        a = rr / _dot(d, ad, wide)
        p.addcmul_(a, d)
        r.addcmul_(a, ad)
        rr_new = _dot(r, r, wide)
        d = torch.addcmul(-r, rr_new / rr, d)  # d <- -r + beta d
        rr = rr_new
    return p, r


def ggn_products(net: MLP, net_out, th, xb, yb):
    """(f, g, v -> G v) on one batch from one forward pass; G v = J^T H J v / B, undamped.

    u = df/dz: then J^T u is the gradient g, and, built with create_graph, its
    derivative in u along v is J v. One backward gives both; each product is then one
    double-backward (J v) and one backward through the kept graph (J^T)."""
    th = th.detach().requires_grad_()
    z = net_out(th, xb)
    f0 = objective(net, z, yb)
    (u,) = torch.autograd.grad(f0, z, retain_graph=True)
    u = u.detach().requires_grad_()
    (jtu,) = torch.autograd.grad(z, th, u, create_graph=True)
    h = _loss_hessian(net, z)

    def gv(v):
        (jv,) = torch.autograd.grad(jtu, u, v, retain_graph=True)  # J v
        (out,) = torch.autograd.grad(z, th, h(jv), retain_graph=True)  # J^T H J v
        return out

    return f0.detach(), jtu.detach(), gv


def sgn(theta0, X, Y, batches, *, net: MLP, cg_iters: int = SGN_DEFAULTS["cg_iters"],
        rho: float = SGN_DEFAULTS["rho"], rho_min: float = SGN_DEFAULTS["rho_min"],
        c: float = SGN_DEFAULTS["c"], cg_float64: bool = False, device="cpu",
        dtype: str = "float32") -> LoopResult:
    """Gargiani et al.'s SGN with trust region and line search (see SGN_DOC)."""
    data = _Data(X, Y, batches, net, device, dtype)
    theta = torch.as_tensor(np.asarray(theta0, dtype=dtype), device=data.device).clone()
    shapes = [s for w, b in split_flat(np.asarray(theta0), net.sizes) for s in (w.shape, b.shape)]
    sizes = [math.prod(s) for s in shapes]
    act = ACT[net.activation]

    def net_out(th, xb):
        return forward([t.view(s) for t, s in zip(th.split(sizes), shapes)], xb, act)

    def f_at(xb, yb, th):
        with torch.no_grad():
            return objective(net, net_out(th, xb), yb)

    def step(th, xb, yb, rho):
        f0, g, gv = ggn_products(net, net_out, th, xb, yb)
        p, r = cg_fixed(lambda v: gv(v).add_(v, alpha=rho), g, cg_iters, cg_float64)
        return f0, g, p, r

    def run():
        nonlocal theta
        losses, rhos, alphas, cur = [], [], [], float(rho)
        for idx in data.idx:
            xb, yb = data.batch(idx)
            f0, g, p, r = step(theta, xb, yb, cur)
            f1 = f_at(xb, yb, theta + p)
            f0_, f1_, gp, model = torch.stack(
                [f0, f1, torch.dot(g, p), 0.5 * torch.dot(r + g, p)]).tolist()  # one read
            rhos.append(cur)
            cur = sgn_host_update(cur, f0_, f1_, model, rho_min)
            rhs, alpha, lhs, tries = f0_ + c * gp, 1.0, f1_, 0
            while lhs > rhs and tries < SGN_DEFAULTS["ls_max"]:
                tries += 1
                alpha *= SGN_DEFAULTS["ls_shrink"]
                lhs = f_at(xb, yb, theta + alpha * p).item()
            theta = theta.add(p, alpha=alpha)
            losses.append(f0_)
            alphas.append(alpha)
        return losses, {"rho": rhos, "alpha": alphas}

    return _timed(data, run, lambda: theta.cpu().numpy())


# ----------------------------------------------------------------------------- the second-order loops
#
# hf_newton, hf_gauss_newton, adaptive_hf, hf and newton (see the docs in
# `handwritten`: HF_NEWTON_DOC ... NEWTON_DOC). The parameters are one flat tensor
# (per-layer views for the forward pass), so CG's vectors are plain tensors. On the
# CPU a torch op runs synchronously, so these loops keep CG's scalars as Python floats
# (one `.item()` per dot product costs the call and nothing else) and branch on them
# as the algorithms say; the vectors never leave the device.


def _flat_net(net: MLP):
    """net_out(th, x) for the MLP on a flat parameter vector (canonical layout)."""
    shapes = [s for a, b in zip(net.sizes[:-1], net.sizes[1:]) for s in ((a, b), (b,))]
    sizes = [math.prod(s) for s in shapes]
    act = ACT[net.activation]

    def net_out(th, xb):
        return forward([t.view(s) for t, s in zip(th.split(sizes), shapes)], xb, act)

    return net_out


def _theta(theta0, data: _Data) -> torch.Tensor:
    return torch.as_tensor(np.asarray(theta0, dtype=data.dtype), device=data.device).clone()


def _hessian_products(net: MLP, net_out, th, xb, yb):
    """(f, g, v -> H v): the gradient kept with its graph, each product one double
    backward (reverse over reverse: what torch's autograd does best)."""
    th = th.detach().requires_grad_()
    f = objective(net, net_out(th, xb), yb)
    (g,) = torch.autograd.grad(f, th, create_graph=True)

    def hv(v):
        (out,) = torch.autograd.grad(g, th, v, retain_graph=True)
        return out

    return f.detach(), g.detach(), hv


def _dotf(a, b) -> float:
    """a.b as a Python float. Once CG has converged past float32's precision its vectors
    keep shrinking, and a float32 d.Ad underflows to 0 (ending the solve as if at
    negative curvature, a few products early); near underflow it is redone in float64."""
    v = torch.dot(a, b).item()
    if abs(v) < 1e-30 and a.dtype != torch.float64:
        v = torch.dot(a.double(), b.double()).item()
    return v


def hf_newton(theta0, X, Y, batches, *, net: MLP, damping: float = 32.0, step_size: float = 0.5,
              cg_max_iters: int = 10, cg_tol: float = 1e-10, device="cpu",
              dtype: str = "float32") -> LoopResult:
    """Wang and Huang's HF-Newton (see handwritten.HF_NEWTON_DOC)."""
    data = _Data(X, Y, batches, net, device, dtype)
    theta, net_out = _theta(theta0, data), _flat_net(net)
    tol2 = cg_tol * cg_tol

    def run():
        nonlocal theta
        losses, iters = [], []
        for idx in data.idx:
            xb, yb = data.batch(idx)
            f0, g, hv = _hessian_products(net, net_out, theta, xb, yb)
            # CG from zero on (H + lambda I) p = -g; r = -g - A p
            p, r = torch.zeros_like(g), -g
            d, rr = r.clone(), _dotf(g, g)
            stop, it = tol2 * rr, 0
            while it < cg_max_iters:
                ad = hv(d).add_(d, alpha=damping)
                dad = _dotf(d, ad)
                if not dad > 0 or rr == 0:  # negative curvature (or NaN): keep p
                    break
                a = rr / dad
                p.add_(d, alpha=a)
                r.add_(ad, alpha=-a)
                rr_new, it = _dotf(r, r), it + 1
                if rr_new <= stop:
                    break
                d = torch.add(r, d, alpha=rr_new / rr)
                rr = rr_new
            theta = theta.add(p, alpha=step_size)
            losses.append(f0)
            iters.append(it)
        return losses, {"n_gv": iters}

    return _timed(data, run, lambda: theta.cpu().numpy())


def hf_gauss_newton(theta0, X, Y, batches, *, net: MLP, damping: float = 4.0,
                    step_size: float = 0.5, cg_iters: int = 10, device="cpu",
                    dtype: str = "float32") -> LoopResult:
    """Wang and Huang's HF-Gauss-Newton (see handwritten.HF_GAUSS_NEWTON_DOC): sgn's GGN
    products and K-iteration CG, a fixed lambda, x += alpha p, no loss evaluation."""
    data = _Data(X, Y, batches, net, device, dtype)
    theta, net_out = _theta(theta0, data), _flat_net(net)

    def run():
        nonlocal theta
        losses = []
        for idx in data.idx:
            xb, yb = data.batch(idx)
            f0, g, gv = ggn_products(net, net_out, theta, xb, yb)
            p, _ = cg_fixed(lambda v: gv(v).add_(v, alpha=damping), g, cg_iters)
            theta = theta.add(p, alpha=step_size)
            losses.append(f0)
        return losses, {"n_gv": [cg_iters] * len(losses)}

    return _timed(data, run, lambda: theta.cpu().numpy())


def _lm(lam: float, rho: float, floor: float = 0.0) -> float:
    """Levenberg-Marquardt (Martens 2010 §4.1): a NaN rho counts as a bad step."""
    if not rho >= 0.25:
        lam *= 1.5
    elif rho > 0.75:
        lam *= 2.0 / 3.0
    return max(lam, floor)


def _ratio(f0: float, f1: float, model: float) -> float:
    """(f1 - f0) / model; NaN for a non-finite f1; -inf / 0 when the model predicts no decrease."""
    if not math.isfinite(f1):
        return math.nan
    if model < 0:
        return (f1 - f0) / model
    return -math.inf if f1 > f0 else 0.0


def adaptive_hf(theta0, X, Y, batches, *, net: MLP, damping: float = 10.0, eps: float = 1e-3,
                sigma: float = 50.0, L: float = 100.0, beta2: float = 1e-6, mu: float = 1e-8,
                cg_max_iters: int = 50, cg_eps: float = 1e-4, cg_k_min: int = 10,
                cg_rr_floor: float | None = None, decay: float = 0.95, damping_min: float = 0.1,
                device="cpu", dtype: str = "float32") -> LoopResult:
    """Motokawa and Tezuka's Adaptive HF (see handwritten.ADAPTIVE_HF_DOC)."""
    data = _Data(X, Y, batches, net, device, dtype)
    theta, net_out = _theta(theta0, data), _flat_net(net)
    b1 = eps / (eps + 2 * sigma)
    floor = rr_floor(dtype) if cg_rr_floor is None else float(cg_rr_floor)

    def cg(av, g, x0):
        """CG on A x = b = -g from x0 with the 'relative' stop; (x, phi(x), iterations, products)."""
        b = -g
        if x0 is None:
            x, r, phi, n_gv = torch.zeros_like(g), b.clone(), [0.0], 0
        else:
            x, n_gv = x0, 1
            r = b - av(x0)
            phi = [-0.5 * (_dotf(x, r) + _dotf(x, b))]
        d, rr, it = r.clone(), _dotf(r, r), 0
        while it < cg_max_iters:
            ad = av(d)
            n_gv += 1
            dad = _dotf(d, ad)
            if not dad > 0 or rr == 0:  # negative curvature, NaN, or solved: keep x
                break
            a = rr / dad
            x.add_(d, alpha=a)
            r.add_(ad, alpha=-a)
            it += 1
            phi.append(phi[-1] - 0.5 * a * rr)
            k = max(cg_k_min, math.floor(0.1 * (it - 1)))
            if it > k + 1 and phi[it] != 0 and (phi[it] - phi[it - k]) / phi[it] < cg_eps:
                break
            rr_new = _dotf(r, r)
            if rr_new < 2 * floor and r.dtype != torch.float64:  # the test below in float64
                rr_new = torch.dot(r.double(), r.double()).item()
            if rr_new < floor:  # the code's numerical stop (r.r < 1e-20 in float32)
                break
            d = torch.add(r, d, alpha=rr_new / rr)
            rr = rr_new
        return x, phi[it], it, n_gv

    def run():
        nonlocal theta
        losses, iters, products = [], [], []
        lam, m, v, d_prev = max(float(damping), damping_min), None, None, None
        for t, idx in enumerate(data.idx, start=1):
            xb, yb = data.batch(idx)
            f0, g, hv = _hessian_products(net, net_out, theta, xb, yb)
            x0 = None if d_prev is None else d_prev.mul(decay)
            d, phi, it, n_gv = cg(lambda u: hv(u).add_(u, alpha=lam), g, x0)
            dd = _dotf(d, d)
            dn = math.sqrt(dd)
            b1t = b1**t
            alpha = 4 * (dd * (1 - b1) - dn * (b1 - b1t) * sigma) / (3 * L * (1 - b1t) ** 2 * sigma)
            if m is None:
                m, v = d.mul(1 - b1), d.square().mul_(1 - beta2)
            else:
                m.mul_(b1).add_(d, alpha=1 - b1)
                v.mul_(beta2).addcmul_(d, d, value=1 - beta2)
            denom = v.mul(1 / (1 - beta2**t)).sqrt_().add_(mu)
            new = theta.addcdiv(m, denom, value=alpha / (1 - b1t))
            with torch.no_grad():
                f1 = objective(net, net_out(new, xb), yb).item()
            rho = _ratio(f0.item(), f1, phi - 0.5 * lam * dd)  # undamped model at d
            lam = _lm(lam, rho, damping_min)
            theta, d_prev = new, d
            losses.append(f0)
            iters.append(it)
            products.append(n_gv)
        return losses, {"cg_iters": iters, "n_gv": products, "n_fwd": [1] * len(losses)}

    return _timed(data, run, lambda: theta.cpu().numpy())


def _save_points(first: float, gamma: float, limit: int) -> set:
    pts, j = set(), 0
    while math.ceil(first * gamma**j) <= limit:
        pts.add(math.ceil(first * gamma**j))
        j += 1
    return pts


def _grad_and_fisher_diag(net: MLP, th, xb, yb):
    """f, g and the empirical Fisher's diagonal (1/B) sum_i g_i^2 from one forward and one
    backward pass (th must not require grad). The backward of f to every layer's
    pre-activation s gives delta = df/ds, whose row i is dl_i/ds_i / B (examples do
    not mix), and per Dense layer with input a:
        g(W) = a^T delta,   g(b) = sum_i delta_i,
        d(W) = B (a^2)^T delta^2,   d(b) = B sum_i delta_i^2."""
    n_layers, act = len(net.sizes) - 1, ACT[net.activation]
    h, ins, pre, start = xb, [], [], 0
    for i, (a, b) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
        w, bias = th[start : start + a * b].view(a, b), th[start + a * b : start + a * b + b]
        start += a * b + b
        s = torch.addmm(bias, h, w)
        if i == 0:
            s.requires_grad_()
        ins.append(h.detach())
        pre.append(s)
        h = act(s) if i < n_layers - 1 else s
    f = objective(net, h, yb)
    deltas = torch.autograd.grad(f, pre)
    gs, ds = [], []
    for a, delta in zip(ins, deltas):
        d2 = delta.square()
        gs += [(a.T @ delta).view(-1), delta.sum(0)]
        ds += [(a.square().T @ d2).view(-1), d2.sum(0)]
    return f.detach(), torch.cat(gs), torch.cat(ds).mul_(xb.shape[0])


def hf(theta0, X, Y, batches, *, net: MLP, curvature_batch: int, damping: float = 45.0,
       cg_max_iters: int = 250, cg_eps: float = 5e-4, cg_k_min: int = 10, decay: float = 0.95,
       save_first: float = 5.0, gamma: float = 1.3, exponent: float = 0.75, ls_c: float = 1e-2,
       ls_shrink: float = 0.8, ls_max: int = 60, device="cpu", dtype: str = "float32") -> LoopResult:
    """Martens' HF as his released code runs it (see handwritten.HF_DOC)."""
    data = _Data(X, Y, batches, net, device, dtype)
    theta, net_out = _theta(theta0, data), _flat_net(net)
    saves = _save_points(save_first, gamma, cg_max_iters)
    kc = int(curvature_batch)

    def loss(th, xb, yb) -> float:
        with torch.no_grad():
            return objective(net, net_out(th, xb), yb).item()

    def pcg(av, b, m_inv, x0):
        """Preconditioned CG on A x = b from x0, Martens' stop; (x, i, phi, saved iterates)."""
        if x0 is None:
            x, r, phi = torch.zeros_like(b), b.clone(), [0.0]
        else:
            x = x0
            r = b - av(x0)
            phi = [-0.5 * (_dotf(x, r) + _dotf(x, b))]
        z = m_inv * r
        d, rz, it, saved = z, _dotf(r, z), 0, {}
        while it < cg_max_iters:
            ad = av(d)
            dad = _dotf(d, ad)
            if not dad > 0 or rz == 0:
                break
            a = rz / dad
            x.add_(d, alpha=a)
            r.add_(ad, alpha=-a)
            it += 1
            phi.append(phi[-1] - 0.5 * a * rz)
            if it in saves:
                saved[it] = x.clone()
            k = max(cg_k_min, math.ceil(0.1 * it))
            if it > k and phi[it] < 0 and (phi[it] - phi[it - k]) / phi[it] < k * cg_eps:
                break
            z = m_inv * r
            rz_new = _dotf(r, z)
            d = torch.add(z, d, alpha=rz_new / rz)
            rz = rz_new
        return x, it, phi, saved

    def run():
        nonlocal theta
        losses, iters, fwds, products, trace = [], [], [], [], {"backtrack_iter": [], "lambda": [],
                                                               "rho": [], "alpha": []}
        lam, p_prev = float(damping), None
        for idx in data.idx:
            xb, yb = data.batch(idx)
            xc, yc = xb[:kc], yb[:kc]
            f0t, g, diag = _grad_and_fisher_diag(net, theta, xb, yb)
            f0 = f0t.item()
            fc0, _, gv = ggn_products(net, net_out, theta, xc, yc)  # f on the curvature batch too
            m_inv = diag.add_(lam).pow_(-exponent)
            x0 = None if p_prev is None else p_prev.mul(decay)
            x, n, phi, saved = pcg(lambda v: gv(v).add_(v, alpha=lam), -g, m_inv, x0)
            # CG-iterate backtracking: walk back while the earlier iterate is no worse
            cands = [(i, saved[i]) for i in sorted(saved) if i < n] + [(n, x)]
            it, p = cands[-1]
            best, nf = loss(theta + p, xb, yb), 1
            for i, q in reversed(cands[:-1]):
                val = loss(theta + q, xb, yb)
                nf += 1
                if not math.isfinite(val):
                    continue
                if math.isfinite(best) and best < val:
                    break
                it, p, best = i, q, val
            gp, pp = _dotf(g, p), _dotf(p, p)
            # rho: undamped model, f on the curvature batch, at the backtracked p
            fc1 = loss(theta + p, xc, yc)
            nf += 1
            model = 0.5 * (2.0 * (phi[it] - gp) - lam * pp) + gp
            rho = _ratio(fc0.item(), fc1, model)
            # line search: f(x + a p) <= f(x) + c a g.p, a = 0.8^j, j < 60; else reject
            alpha = 0.0
            if gp < 0:
                a, val = 1.0, best
                for j in range(ls_max):
                    if j > 0:
                        a *= ls_shrink
                        val = loss(theta + a * p, xb, yb)
                        nf += 1
                    if val <= f0 + ls_c * a * gp:
                        alpha = a
                        break
            if alpha > 0:
                theta = theta.add(p, alpha=alpha)
            for k, val in zip(trace, (it, lam, rho, alpha)):
                trace[k].append(val)
            lam = _lm(lam, rho)
            products.append(n + (x0 is not None))
            p_prev = x
            losses.append(f0)
            iters.append(n)
            fwds.append(nf)
        return losses, {"cg_iters": iters, "n_gv": products, "n_fwd": fwds, **trace}

    return _timed(data, run, lambda: theta.cpu().numpy())


def newton(theta0, X, Y, batches, *, net: MLP, damping: float = 32.0, step_size: float = 0.5,
           chunk: int | None = None, device="cpu", dtype: str = "float32") -> LoopResult:
    """Wang and Huang's damped Newton (see handwritten.NEWTON_DOC): the dense Hessian from
    vmapped double backwards over chunks of the basis, float64 Cholesky in place."""
    data = _Data(X, Y, batches, net, device, dtype)
    theta, net_out = _theta(theta0, data), _flat_net(net)
    n = theta.numel()
    k = chunk or hessian_chunk(n, theta.element_size())
    # rows[j] = H e_j; rows.mT (a view) is H in the column-major order LAPACK factors in place
    rows = torch.empty((n, n), dtype=torch.float64, device=theta.device)
    basis = torch.zeros((k, n), dtype=theta.dtype, device=theta.device)
    info = torch.empty((), dtype=torch.int32, device=theta.device)

    def run():
        nonlocal theta
        losses = []
        for idx in data.idx:
            xb, yb = data.batch(idx)
            th = theta.detach().requires_grad_()
            f = objective(net, net_out(th, xb), yb)
            (g,) = torch.autograd.grad(f, th, create_graph=True)
            hv = torch.func.vmap(lambda v: torch.autograd.grad(g, th, v, retain_graph=True)[0])
            for start in range(0, n, k):
                m = min(k, n - start)
                E = basis[:m].zero_()
                E.diagonal(offset=start).fill_(1.0)  # E[i, start + i] = 1
                rows[start : start + m].copy_(hv(E))
            A = rows.mT
            A.diagonal().add_(damping)
            L, _ = torch.linalg.cholesky_ex(A, out=(A, info))  # reads the lower triangle
            rhs = g.detach().to(torch.float64).unsqueeze(1)
            y = torch.linalg.solve_triangular(L, rhs, upper=False)
            p = torch.linalg.solve_triangular(L.mT, y, upper=True).squeeze(1)
            theta = theta.add(p.to(theta.dtype), alpha=-step_size)
            losses.append(f.detach())
        return losses, {"n_gv": [n] * len(losses)}

    return _timed(data, run, lambda: theta.cpu().numpy())
