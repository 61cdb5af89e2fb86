"""The front's one-buffer host read on JAX (hfbench/algorithms/front.py, issue 8).

A Hessian-free step that decides on the host (backtracking, a line search, a
host-side damping rule) reads ten values of its front half: f, CG's counters, the
phi / alpha / beta histories, g.x and x.x, f at the step. On JAX `front_for_host`
packs them into one float64 buffer inside the fused call and leaves the rest of
the CG state on the device. Checked here:
- `JaxOps.pack` and `front._unpack` return every value exactly (float32, int64,
  bool, float64 arrays, a one-value array kept an array), against the values NumPy holds;
- a dtype float64 cannot hold is refused with a message, not packed lossily;
- `host_solution` on the packed, trimmed front reads the same numbers as on the
  full front read value by value (the unpacked path, which the torch backend takes),
  for a fixed-iteration solve with f at the step, a residual-stopped one, and a
  one-iteration solve (whose CG histories hold one value each);
- the fused call hands back the few arrays the host path uses, not the whole state.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import missing_backends

why = missing_backends("jax")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

if why is None:
    import jax
    import jax.numpy as jnp

    from hfbench import models
    from hfbench.algorithms.cg import CGConfig
    from hfbench.algorithms.front import FrontConfig, _unpack, front, front_for_host, host_solution
    from hfbench.algorithms.fused import fused
    from hfbench.registry import get_backend


def test_pack_and_unpack_return_every_value_exactly():
    be = get_backend("jax", device="cpu", dtype="float32")
    rng = np.random.default_rng(0)
    values = [
        np.float32(rng.standard_normal()),  # a loss in float32
        np.int64(37),  # a counter
        np.bool_(True),
        rng.standard_normal(11),  # a float64 history
        None,
        np.float32(1e-38) * np.float32(3),  # a float32 near its underflow
        rng.integers(-2**31, 2**31, 4).astype(np.int64),
        np.array([2.5]),  # a history of one value
    ]
    device = [None if v is None else jnp.asarray(v) for v in values]
    buf = np.asarray(jax.device_get(be.ops.pack(device)))
    assert buf.dtype == np.float64
    got = _unpack(buf, [None if v is None else np.shape(v) for v in values])
    for want, have in zip(values, got):
        if want is None:
            assert have is None
        else:
            assert np.shape(have) == np.shape(want)
            np.testing.assert_array_equal(np.asarray(have, dtype=np.float64),
                                          np.asarray(want).astype(np.float64))


def test_pack_refuses_a_dtype_float64_cannot_hold():
    be = get_backend("jax", device="cpu", dtype="float32")
    with pytest.raises(TypeError, match="complex64 does not fit a float64"):
        be.ops.pack([jnp.ones(2, jnp.complex64)])


def test_unpack_refuses_a_buffer_of_another_layout():
    with pytest.raises(ValueError, match="holds 3 values, the layout 2"):
        _unpack(np.zeros(3), [(), (1,)])


def _problem(dtype="float32"):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((40, 5)), rng.standard_normal((40, 2))
    spec = models.mlp([5, 6, 2], activation="tanh", loss="squared_error")
    be = get_backend("jax", device="cpu", dtype=dtype)
    problem = be.problem(spec)
    x = be.asarray(models.init_params(spec, seed=2, dtype=dtype))
    return be, problem, x, be.batch(X, Y)


@pytest.mark.parametrize("fc", [
    FrontConfig(cg=CGConfig(stop="fixed", iters=7, max_iters=7), f_at_step=1.0),
    FrontConfig(cg=CGConfig(stop="residual", tol=1e-6, max_iters=30)),
    # one iteration: histories of one value, which must stay arrays
    FrontConfig(cg=CGConfig(stop="fixed", iters=1, max_iters=1), f_at_step=1.0),
], ids=["fixed+f_step", "residual", "one-iteration"])
def test_packed_host_read_equals_the_value_by_value_read(fc):
    be, problem, x, batch = _problem()
    lam = 0.1
    full = front(problem, fc, x, lam, None, batch, None)  # unfused: every array kept
    assert full.host is None
    packed = fused(problem, front_for_host, fc)(x, lam, None, batch, None)
    assert packed.host is not None
    want = host_solution(be, fc, full)
    got = host_solution(be, fc, packed)
    for w, g in zip((want[0], want[2], want[3], want[4]), (got[0], got[2], got[3], got[4])):
        assert w == g or (w is None and g is None)
    ws, gs = want[1], got[1]
    assert (gs.num_steps, gs.num_gv, gs.status) == (ws.num_steps, ws.num_gv, ws.status)
    assert gs.num_steps > 0
    np.testing.assert_array_equal(gs.phi, ws.phi)
    np.testing.assert_array_equal(gs.lanczos[0], ws.lanczos[0])
    np.testing.assert_array_equal(gs.lanczos[1], ws.lanczos[1])
    np.testing.assert_array_equal(np.asarray(gs.x), np.asarray(ws.x))
    assert (gs.ritz.min, gs.ritz.max) == (ws.ritz.min, ws.ritz.max)


def test_the_fused_host_front_returns_only_what_the_host_path_uses():
    be, problem, x, batch = _problem()
    fc = FrontConfig(cg=CGConfig(stop="fixed", iters=5, max_iters=5), f_at_step=1.0)
    out = fused(problem, front_for_host, fc)(x, 0.1, None, batch, None)
    kept = [leaf for leaf in jax.tree.leaves(out)]
    # g, x_cg, the saved-iterates buffer and the packed host values
    assert len(kept) == 4, [getattr(k, "shape", k) for k in kept]
    assert out.loss is None and out.cg.phi is None and out.cg.i is None
