"""Torch against JAX: the same numbers from the same weights and batch.

Both backends start from one NumPy theta and one NumPy batch; float64 must agree
to rounding, float32 to its precision. Skipped, saying why, unless both load.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracles import relerr

KINDS = ("ggn", "hessian", "fisher")


def assert_agree(t, j, bound: float, what: str) -> None:
    err = relerr(t, j)
    assert err <= bound, f"{what}: torch vs jax relative difference {err:.3e} > {bound:.0e}"


def test_loss_and_grad(pair, tol):
    t, j = pair
    tv, tg = t.problem.value_and_grad(t.x, t.batch)
    jv, jg = j.problem.value_and_grad(j.x, j.batch)
    assert_agree(t.numpy(tv), j.numpy(jv), tol["value"], "value_and_grad value")
    assert_agree(t.numpy(tg), j.numpy(jg), tol["value"], "gradient")
    tl, jl = t.problem.loss(t.x, t.batch), j.problem.loss(j.x, j.batch)
    assert_agree(t.numpy(tl), j.numpy(jl), tol["value"], "loss()")


@pytest.mark.parametrize("kind", KINDS)
def test_matvec(pair, tol, kind):
    t, j = pair
    top = t.problem.curvature(t.x, t.batch, kind=kind)
    jop = j.problem.curvature(j.x, j.batch, kind=kind)
    assert top.size == jop.size and top.kind == jop.kind == kind
    for n, ((tv, _), (jv, _)) in enumerate(zip(t.vectors(3), j.vectors(3))):
        assert_agree(t.numpy(top.matvec(tv)), j.numpy(jop.matvec(jv)), tol["product"],
                     f"{kind} v[{n}]")


def test_precondition(pair, tol):
    t, j = pair
    td = t.problem.precondition(t.x, t.batch)
    jd = j.problem.precondition(j.x, j.batch)
    assert_agree(t.numpy(td), j.numpy(jd), tol["product"], "precondition")


def test_evaluate(pair, tol):
    t, j = pair
    tm = t.problem.evaluate(t.x, t.batch)
    jm = j.problem.evaluate(j.x, j.batch)
    assert sorted(tm) == sorted(jm), f"evaluate keys differ: torch {sorted(tm)}, jax {sorted(jm)}"
    for key in tm:
        assert isinstance(tm[key], float) and isinstance(jm[key], float), key
        assert_agree(tm[key], jm[key], tol["value"], f"evaluate()[{key!r}]")


def test_same_inputs(pair):
    """Both backends really hold the same theta (guards the comparisons above)."""
    t, j = pair
    np.testing.assert_array_equal(t.numpy(t.x), j.numpy(j.x))
