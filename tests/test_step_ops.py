"""The cheaper per-step vector algebra (issue 8) against independent references.

- `fused.lerp`: the backend's one-pass lerp and the axpy fallback a backend without
  it takes both equal a + w (b - a) computed in float64 NumPy.
- `HostScalarOps.vdot` (torch's eager CPU CG dots): a float32 dot agrees with the
  float64 dot of the same float32 values to float32 precision, and where float32
  underflows (a.b ~ 1e-43) it is redone in float64 and returns the float64 value,
  not 0 (which would end CG an iteration early).
- torch `to_host`: the grouped copy returns what a copy of each value returns, in
  order, for mixed 0-d dtypes, arrays, plain numbers and None.
- adam's folded form: with an ops that lacks `lerp` and `norm` (the protocol's
  minimum), the update equals Kingma and Ba's Alg. 1 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from hfbench.algorithms.first_order import AdamConfig, AdamState, adam_update
from hfbench.algorithms.fused import lerp

torch = pytest.importorskip("torch", reason="the torch backend's ops need torch (pip install '.[torch]')")

from hfbench_torch.ops import FLOAT32_REDO, HostScalarOps, TorchOps  # noqa: E402


class MinimalOps:
    """The checked protocol's vector algebra only (no lerp, no norm), on float64 NumPy."""

    def axpy(self, alpha, x, y):
        return alpha * x + y

    def scale(self, alpha, x):
        return alpha * x

    def vdot(self, a, b):
        return float(np.dot(a, b))

    def asarray(self, value, dtype):
        return np.asarray(value, dtype=np.float64)


def _rand(n, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(n).astype(dtype)


def test_lerp_backend_and_fallback_equal_numpy():
    a, b, w = _rand(1000, 0, np.float64), _rand(1000, 1, np.float64), 0.1
    want = a + w * (b - a)
    got_torch = lerp(TorchOps("cpu"), torch.from_numpy(a), torch.from_numpy(b), w).numpy()
    got_fallback = lerp(MinimalOps(), a, b, w)
    np.testing.assert_allclose(got_torch, want, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got_fallback, want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("n", [7960, 203530])
def test_host_vdot_float32_matches_float64_dot(n):
    a, b = _rand(n, 2), _rand(n, 3)
    want = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
    got = HostScalarOps("cpu").vdot(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(got, float)
    # float32 accumulation: relative to sum |a_i b_i| (the dot itself may cancel)
    scale = float(np.abs(a.astype(np.float64) * b).sum())
    assert abs(got - want) <= 1e-6 * scale


def test_host_vdot_redoes_an_underflowing_dot_in_float64():
    r = np.full(1000, 1e-23, dtype=np.float32)  # CG's residual near float32 precision
    rt = torch.from_numpy(r)
    assert float(torch.dot(rt, rt)) == 0.0  # the premise: float32 products underflow
    want = float(np.dot(r.astype(np.float64), r.astype(np.float64)))  # 1e-43
    assert want < FLOAT32_REDO
    assert HostScalarOps("cpu").vdot(rt, rt) == pytest.approx(want, rel=1e-12)


def test_torch_to_host_grouped_copy_equals_per_value_copy():
    from hfbench.registry import get_backend

    be = get_backend("torch")
    values = [torch.tensor(1.5), 3, None, torch.tensor(2, dtype=torch.int64),
              torch.tensor([1.0, 2.0]), torch.tensor(0.25, requires_grad=True) * 2,
              torch.tensor(True), torch.tensor(7, dtype=torch.int64), torch.tensor(False),
              torch.tensor(0.5, dtype=torch.float64)]
    got = be.to_host(values)
    assert len(got) == len(values)
    for v, h in zip(values, got):
        if isinstance(v, torch.Tensor):
            want = v.detach().numpy()
            assert np.asarray(h).dtype == want.dtype
            np.testing.assert_array_equal(np.asarray(h), want)
        else:
            assert h is v


@pytest.mark.parametrize("t", [1.0, 2.0, 50.0])
def test_adam_folded_form_equals_algorithm_1(t):
    c = AdamConfig(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    x, g = _rand(500, 4, np.float64), _rand(500, 5, np.float64) * 1e-3
    m0, v0 = _rand(500, 6, np.float64) * 1e-3, np.abs(_rand(500, 7, np.float64)) * 1e-7
    x1, state, info = adam_update(MinimalOps(), c, x, AdamState(t, m0, v0), 0.0, g)
    m = c.beta1 * m0 + (1 - c.beta1) * g
    v = c.beta2 * v0 + (1 - c.beta2) * g * g
    step = c.lr * (m / (1 - c.beta1**t)) / (np.sqrt(v / (1 - c.beta2**t)) + c.eps)
    np.testing.assert_allclose(x1, x - step, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(state.m, m, rtol=1e-12)  # lerp rounds apart
    np.testing.assert_allclose(state.v, v, rtol=1e-12)
    assert state.t == t + 1
    assert info["step_norm"] == pytest.approx(float(np.linalg.norm(step)), rel=1e-12)
