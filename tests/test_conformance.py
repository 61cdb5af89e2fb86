"""The built-in backends pass the conformance suite a third-party backend must pass,
and the suite fails a backend that is wrong: a planted host read in a product, a
planted wrong conv-bias preconditioner. Its NumPy oracle is itself checked against
the torch oracle of tests/oracles.py on every model of the conftest table."""

import numpy as np
import pytest

import hfbench
from hfbench import HFBenchError
from hfbench.testing import ConformanceError, check_backend, conformance, transfers
from hfbench.testing.reference import DenseReference

from conftest import CASES, backend_params

STATUS = hfbench.installed_backends()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.skipif(
            why is not None, reason=f"backend {n!r} not importable ({why}): pip install 'hfbench[{n}]'"))
        for n, why in STATUS.items()
    ],
)
def test_builtin_backend_conforms(name):
    report = check_backend(name)
    assert report.passed, str(report)
    assert not report.not_checked(), str(report)  # on the CPU, reads are counted
    assert len(report.results) >= 50
    convs = {s.name for s in conformance._conv_specs()}
    checked = {r.name.split(":")[0] for r in report.results}
    assert convs <= checked, "the conv nets are part of the suite"


# ----------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_numpy_oracle_matches_the_torch_oracle(case):
    """DenseReference (hand backprop in NumPy, conv and pooling included) against
    tests/oracles.py (torch autograd, per-example gradients by a loop)."""
    oracles = pytest.importorskip("oracles")
    if oracles.torch is None:
        pytest.skip("the torch oracle needs torch: pip install 'hfbench[torch]'")
    theta, (X, Y) = case.theta(), case.data()
    got, want = DenseReference(case.spec, theta, X, Y), oracles.reference(case.spec, theta, X, Y)
    for label, a, b in (("objective", got.objective, want.loss), ("grad", got.grad, want.grad),
                        ("J", got.J, want.jac), ("ggn", got.ggn, want.ggn),
                        ("fisher", got.fisher, want.fisher),
                        ("precondition", got.precondition, want.diag)):
        assert oracles.relerr(a, b) <= 1e-12, label


# ----------------------------------------------------------------------------- host reads


READS = {
    "float": lambda be, d: float(d[0]),
    "item": lambda be, d: d[0].item(),
    "numpy.asarray": lambda be, d: np.asarray(d),
    "to_numpy": lambda be, d: be.to_numpy(d),
}


def problem_class(name):
    spec = conformance._specs()[0]
    return type(hfbench.get_backend(name, device="cpu", dtype="float64").problem(spec))


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("name", backend_params())
def test_a_host_read_in_a_product_fails_the_check(name, read, monkeypatch):
    """A preconditioner that reads a value on the host fails on the CPU too, where
    neither framework's guard fires, and the detail names the read and its line."""
    cls = problem_class(name)
    original = cls.precondition

    def reading(self, x, batch):
        d = original(self, x, batch)
        READS[read](self.backend, d)  # the planted read
        return d

    monkeypatch.setattr(cls, "precondition", reading)
    report = check_backend(name, raise_on_failure=False, only=["transfers"])
    failed = report.failures()
    assert len(failed) == 2 and all("no implicit host transfers" in r.name for r in failed), str(report)
    assert all("1 host read: " in r.detail and "test_conformance.py" in r.detail
               for r in failed), str(report)
    assert "PASS" not in str(report)


def test_the_counter_restores_what_it_wrapped():
    """After the check, the array type, numpy and the backend are as they were."""
    ok = [n for n, why in STATUS.items() if why is None]
    if not ok:
        pytest.skip("no backend imports here: pip install -e '.[all]'")
    be = hfbench.get_backend(ok[0], device="cpu", dtype="float64")
    t = type(be.asarray(np.zeros(2)))
    before = (dict(vars(t)), dict(vars(np)), dict(vars(be)), dict(vars(be.ops)))
    with transfers.HostReads(be, t) as counter:
        float(be.asarray(np.ones(1))[0])
        np.asarray([1.0])  # not a backend array: not a read
    assert [r.point for r in counter.reads] == [f"{t.__name__}.__float__"]
    assert (dict(vars(t)), dict(vars(np)), dict(vars(be)), dict(vars(be.ops))) == before


class _NumpyBackend:
    """Just enough of a backend for the counter: NumPy arrays, which refuse new methods."""

    device = "cpu"

    class ops:
        pass

    def to_numpy(self, a):
        return a


def test_unseeable_reads_are_not_checked_never_passed():
    """An array type that cannot be instrumented, a guard that lets reads through and
    no fuse: the verdict is NOT CHECKED, with the reason, and is no failure."""
    be = _NumpyBackend()
    with transfers.HostReads(be, np.ndarray) as counter:
        pass
    assert not counter.array_points and "ndarray.__float__" in counter.refused
    result = conformance._transfer_verdict("x: no implicit host transfers", counter,
                                           guarded=False, traced=False, be=be)
    assert result.verdict == "NOT CHECKED" and not result.passed
    assert "no way to see a host read here" in result.detail
    report = conformance.ConformanceReport("numpy", [result])
    assert report.passed and report.not_checked() == [result]
    assert str(report).splitlines()[1].startswith("NOT CHECKED  x: no implicit host transfers")


def test_no_instrumentation_on_an_eager_cpu_backend_is_not_checked(monkeypatch):
    """End to end: torch on the CPU with nothing counted (no fuse, a guard that does
    not fire) reports NOT CHECKED, not PASS."""
    if STATUS.get("torch") is not None:
        pytest.skip(f"needs the torch backend ({STATUS.get('torch')}): pip install 'hfbench[torch]'")
    monkeypatch.setattr(transfers, "CONVERSIONS", ())
    report = check_backend("torch", raise_on_failure=False, only=["transfers"])
    assert [r.verdict for r in report.results] == ["NOT CHECKED"] * 2, str(report)


def test_only_names_unknown_groups():
    with pytest.raises(HFBenchError, match=r"unknown conformance group 'transfer'.*'transfers'"):
        check_backend("torch", only=["transfer"])


# ----------------------------------------------------------------------------- conv bias


def plant_wrong_conv_bias(name, monkeypatch):
    """The conv-bias diagonal as sum_i sum_p delta_ip^2 (squares summed over positions)
    instead of sum_i (sum_p delta_ip)^2: right for a dense bias, wrong for a conv one."""
    if name == "torch":
        from hfbench_torch import precondition as mod

        original = mod._conv_squared_grads

        def wrong(layer, a, delta):
            return original(layer, a, delta)[0], delta.flatten(2).square().sum(dim=(0, 2))

        monkeypatch.setattr(mod, "_conv_squared_grads", wrong)
    else:
        import jax.numpy as jnp
        from hfbench_jax import precondition as mod

        original = mod._conv_squared

        def wrong(layer, a, delta, precision):
            return [original(layer, a, delta, precision)[0], jnp.sum(jnp.square(delta), axis=(0, 2, 3))]

        monkeypatch.setattr(mod, "_conv_squared", wrong)


@pytest.mark.parametrize("name", backend_params())
def test_a_wrong_conv_bias_preconditioner_fails_the_check(name, monkeypatch):
    """Exactly the conv nets' preconditioner checks fail, and check_backend raises."""
    plant_wrong_conv_bias(name, monkeypatch)
    with pytest.raises(ConformanceError) as raised:
        check_backend(name, only=["products"])
    failed = {line.split("  ", 1)[1].split(": rel err")[0]
              for line in str(raised.value).splitlines() if line.startswith("FAIL")}
    assert failed == {f"{s.name}: precondition" for s in conformance._conv_specs()}, str(raised.value)
