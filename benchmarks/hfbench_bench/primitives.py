"""Time of the primitives a Hessian-free step is made of, per backend and model.

- `Gradient.time_value_and_grad`: one `problem.value_and_grad(x, batch)`;
- `GaussNewtonProduct.time_gv`: one `op.matvec(v)` of the GGN, after `problem.curvature`
  (the linearization) ran in setup;
- `CurvatureSetup.time_curvature`: `problem.curvature(x, batch, "ggn")` itself;
- `Preconditioner.time_precondition`: `problem.precondition(x, batch)`, the diagonal
  empirical Fisher (Martens' preconditioner before damping and the 0.75 power);
- `CGSolve.time_cg_fixed`: one CG solve of exactly `CG_ITERS` iterations on
  (G + I) p = -g, with HF's buffers (float64 scalars, saved iterates, phi history),
  run as hfbench.algorithms runs it (`cg_solve` -> `backend.iterate`: one jitted
  while_loop on JAX, a Python loop with compiled updates on torch).

Models and data: see `_common`. Each setup makes the call once (JAX compiles, torch
warms its caches and, for CG on 100k+ weights, compiles its vector updates); each
timed body ends by waiting for its result on the device.
"""

from __future__ import annotations

from hfbench.algorithms import CGConfig, cg_solve

from ._common import BACKENDS, MODEL_NAMES, Work

CG_ITERS = 10


class _Timed:
    params = (BACKENDS, MODEL_NAMES)
    param_names = ("backend", "model")
    timeout = 300  # setup included: compiling the autoencoder on 2 cores takes seconds


class Gradient(_Timed):
    def setup(self, backend, model):
        self.w = Work(backend, model)
        self.w.run(lambda: self.w.problem.value_and_grad(self.w.x, self.w.batch))

    def time_value_and_grad(self, backend, model):
        w = self.w
        w.block(w.problem.value_and_grad(w.x, w.batch))


class GaussNewtonProduct(_Timed):
    def setup(self, backend, model):
        self.w = w = Work(backend, model)
        self.op = w.run(lambda: w.problem.curvature(w.x, w.batch, "ggn"))
        w.run(lambda: self.op.matvec(w.v))

    def time_gv(self, backend, model):
        self.w.block(self.op.matvec(self.w.v))


class CurvatureSetup(_Timed):
    def setup(self, backend, model):
        self.w = w = Work(backend, model)
        w.run(lambda: w.problem.curvature(w.x, w.batch, "ggn"))

    def time_curvature(self, backend, model):
        w = self.w
        w.block(w.problem.curvature(w.x, w.batch, "ggn"))  # JAX: the operator is a pytree


class Preconditioner(_Timed):
    def setup(self, backend, model):
        self.w = w = Work(backend, model)
        w.run(lambda: w.problem.precondition(w.x, w.batch))

    def time_precondition(self, backend, model):
        w = self.w
        w.block(w.problem.precondition(w.x, w.batch))


class CGSolve(_Timed):
    def setup(self, backend, model):
        self.w = w = Work(backend, model)
        _, g = w.run(lambda: w.problem.value_and_grad(w.x, w.batch))
        self.op = w.run(lambda: w.problem.curvature(w.x, w.batch, "ggn"))
        self.b = w.be.ops.scale(-1.0, g)
        self.cfg = CGConfig(stop="fixed", iters=CG_ITERS, max_iters=CG_ITERS)
        w.run(lambda: cg_solve(w.be, self.cfg, self.op, self.b, 1.0).x)  # compiles

    def time_cg_fixed(self, backend, model):
        self.w.block(cg_solve(self.w.be, self.cfg, self.op, self.b, 1.0).x)
