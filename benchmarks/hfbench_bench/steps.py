"""Time of one whole optimizer step, `hfbench.algorithms.get(name).step`, per backend
and model.

- `HFStep.time_hf_step`: Martens' hf at its defaults (GGN, Martens CG stop up to 250
  iterations, backtracking, (diag F + lambda)^0.75 preconditioner, lambda 45);
- `SGNStep.time_sgn_step`: sgn at its defaults (10 CG iterations from zero, rho 1e-4);
- `SGDStep.time_sgd_step`: sgd with lr 0.1 (one fused call).

Every call starts from the same point: the seed-0 parameters and the algorithm's
initial state (no warm start yet), so each timed call does the same work (hf: as many
CG iterations as `counts.HFStepCounts` reports). Setup takes the step once first
(JAX compiles it; torch compiles CG's vector updates on 100k+ weights).
"""

from __future__ import annotations

from hfbench import algorithms

from ._common import BACKENDS, MODEL_NAMES, Work


class _Step:
    params = (BACKENDS, MODEL_NAMES)
    param_names = ("backend", "model")
    timeout = 300
    algorithm, options = "", {}

    def setup(self, backend, model):
        self.w = w = Work(backend, model)
        self.alg = algorithms.get(self.algorithm, **self.options)
        self.state = self.alg.init(w.x)
        w.run(lambda: self._step()[0])

    def _step(self):
        return self.alg.step(self.w.problem, self.w.x, self.state, self.w.batch)


class HFStep(_Step):
    algorithm = "hf"

    def time_hf_step(self, backend, model):
        self.w.block(self._step()[0])


class SGNStep(_Step):
    algorithm = "sgn"

    def time_sgn_step(self, backend, model):
        self.w.block(self._step()[0])


class SGDStep(_Step):
    algorithm, options = "sgd", {"lr": 0.1}

    def time_sgd_step(self, backend, model):
        self.w.block(self._step()[0])
