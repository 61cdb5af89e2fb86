"""`check_backend`: the conformance suite any backend, built-in or third-party, must pass.

It runs in float64 on tiny dense and conv nets and compares against `DenseReference`,
a NumPy oracle with no autodiff framework, so a backend is judged by definitions, not
by another backend. Checks: vector algebra; loss and gradient; Gv, Fisher v and the
preconditioner against dense matrices; Hv against central differences of the
gradient; symmetry and PSD-ness; operator semantics (matvec is pure, reruns no
forward pass, and an operator survives the next `curvature()`); no host reads inside
the products, counted at the arrays' conversion points (`transfers`), since a
framework's own guard lets every read through on the CPU. A check that cannot be
made here (no way to see a read on this device and array type) is reported as NOT
CHECKED with the reason, never as PASS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import HFBenchError, unknown
from ..models import Conv2d, Dense, Flatten, MaxPool2d, ModelSpec, init_params, mlp
from ..registry import get_backend
from .reference import DenseReference
from .transfers import HostReads, summary

RTOL = 1e-9  # float64 products of tiny nets agree to ~1e-13; this leaves headroom
FD_RTOL = 1e-6  # central differences in float64, step 1e-5


PASS, FAIL, NOT_CHECKED = "PASS", "FAIL", "NOT CHECKED"


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    # False: the check could not be made here (detail says why); neither a pass nor a
    # failure, and never shown as PASS
    checked: bool = True

    @property
    def verdict(self) -> str:
        if not self.checked:
            return NOT_CHECKED
        return PASS if self.passed else FAIL


@dataclass
class ConformanceReport:
    backend: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No check failed (checks not made here do not count either way)."""
        return not self.failures()

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.verdict == FAIL]

    def not_checked(self) -> list[CheckResult]:
        return [r for r in self.results if r.verdict == NOT_CHECKED]

    def __str__(self) -> str:
        lines = [f"{r.verdict}  {r.name}: {r.detail}" for r in self.results]
        return f"conformance of backend {self.backend!r}\n" + "\n".join(lines)


class ConformanceError(AssertionError):
    pass


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _specs():
    """Tiny nets covering the three losses, the four activations and every layer type."""
    return [
        mlp([4, 3, 3], "sigmoid", "softmax_cross_entropy", l2=1e-2, name="sigmoid-softmax"),
        mlp([4, 3, 2, 3], ["tanh", "relu"], "sigmoid_cross_entropy", name="tanh-relu-bce"),
        mlp([4, 2], [], "squared_error", l2=1e-1, name="linear-squared"),
        *_conv_specs(),
    ]


def _conv_specs():
    """Conv nets: the per-example conv gradients (and so the conv-bias preconditioner,
    the square of a sum over positions) have closed forms of their own."""
    return [
        # (1,6,6) -conv3 relu-> (2,4,4) -pool2-> (2,2,2) -> 8 -> 3: 47 parameters
        ModelSpec(input_shape=(1, 6, 6), loss="softmax_cross_entropy", l2=1e-2,
                  name="conv-relu-pool-softmax", layers=(
                      Conv2d(in_channels=1, out_channels=2, kernel_size=3, activation="relu"),
                      MaxPool2d(size=2), Flatten(), Dense(in_features=8, out_features=3))),
        # (2,4,4) -conv3 stride 2 pad 1 tanh-> (2,2,2) -> 8 -> 2: 56 parameters
        ModelSpec(input_shape=(2, 4, 4), loss="sigmoid_cross_entropy",
                  name="conv-stride-pad-tanh-bce", layers=(
                      Conv2d(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1,
                             activation="tanh"),
                      Flatten(), Dense(in_features=8, out_features=2))),
    ]


def _data(spec, rng, batch=5):
    X = rng.normal(size=(batch, spec.input_size))
    K = spec.output_size
    if spec.loss == "softmax_cross_entropy":
        return X, rng.integers(0, K, batch)
    if spec.loss == "sigmoid_cross_entropy":
        return X, rng.uniform(size=(batch, K))
    return X, rng.normal(size=(batch, K))


class _Checker:
    def __init__(self, be, report):
        self.be, self.report = be, report

    def record(self, name, err, tol):
        ok = bool(np.isfinite(err) and err <= tol)
        self.report.results.append(CheckResult(name, ok, f"rel err {err:.2e} (tol {tol:.0e})"))

    def attempt(self, name, fn):
        try:
            fn()
        except Exception as exc:  # a conformance report must list every failure
            self.report.results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))

    def np(self, a):
        return np.asarray(self.be.to_numpy(a), dtype=np.float64)

    def dense(self, op, n):
        return np.stack([self.np(op.matvec(self.be.asarray(e))) for e in np.eye(n)], axis=1)

    def vector_ops(self, rng):
        ops, a, b = self.be.ops, rng.normal(size=7), rng.normal(size=7)
        A, B = self.be.asarray(a), self.be.asarray(b)
        errs = [
            rel_err(ops.to_float(ops.vdot(A, B)), a @ b),
            rel_err(self.np(ops.axpy(0.3, A, B)), 0.3 * a + b),
            rel_err(self.np(ops.scale(-2.0, A)), -2.0 * a),
            rel_err(self.np(ops.where(True, A, B)), a),
            rel_err(self.np(ops.where(False, A, B)), b),
            float(np.abs(self.np(ops.zeros_like(A))).max()),
        ]
        self.record("vector ops", max(errs), RTOL)

    def products(self, spec, rng):
        theta = init_params(spec, seed=1, dtype="float64")
        X, Y = _data(spec, rng)
        ref, be = DenseReference(spec, theta, X, Y), self.be
        problem, x, batch = be.problem(spec), be.asarray(theta), be.batch(X, Y)
        loss, g = problem.value_and_grad(x, batch)
        self.record(f"{spec.name}: loss", rel_err(self.np(loss), ref.objective), RTOL)
        self.record(f"{spec.name}: gradient", rel_err(self.np(g), ref.grad), RTOL)
        self.record(f"{spec.name}: precondition",
                    rel_err(self.np(problem.precondition(x, batch)), ref.precondition), RTOL)
        for kind, want in (("ggn", ref.ggn), ("fisher", ref.fisher)):
            C = self.dense(problem.curvature(x, batch, kind), ref.n)
            self.record(f"{spec.name}: {kind} vs dense", rel_err(C, want), RTOL)
            self.record(f"{spec.name}: {kind} symmetric", rel_err(C, C.T), RTOL)
            lo = np.linalg.eigvalsh((C + C.T) / 2).min() / np.abs(want).max()
            self.record(f"{spec.name}: {kind} PSD", max(-lo, 0.0), RTOL)
        self.hessian(spec, problem, theta, batch, ref.n)

    def hessian(self, spec, problem, theta, batch, n, h=1e-5):
        be = self.be
        H = self.dense(problem.curvature(be.asarray(theta), batch, "hessian"), n)

        def grad(t):
            return self.np(problem.value_and_grad(be.asarray(t), batch)[1])

        fd = np.stack([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in np.eye(n)], 1)
        self.record(f"{spec.name}: hessian vs differences of the gradient", rel_err(H, fd), FD_RTOL)
        self.record(f"{spec.name}: hessian symmetric", rel_err(H, H.T), RTOL)

    def semantics(self, spec, rng):
        be, theta = self.be, init_params(spec, seed=2, dtype="float64")
        X, Y = _data(spec, rng)
        problem, batch = be.problem(spec), be.batch(X, Y)
        v = be.asarray(rng.normal(size=theta.size))
        op = problem.curvature(be.asarray(theta), batch, "ggn")
        first = self.np(op.matvec(v))
        before = problem.n_forward
        again = [self.np(op.matvec(v)) for _ in range(3)]
        self.record("matvec is pure", max(rel_err(a, first) for a in again), 0.0)
        self.record("matvec reruns no forward pass", float(problem.n_forward - before), 0.0)
        problem.curvature(be.asarray(theta * 1.5), batch, "ggn").matvec(v)
        self.record("operator survives the next curvature()", rel_err(self.np(op.matvec(v)), first), 0.0)

    def transfers(self, spec, rng):
        """The products make no host read: counted (`HostReads`) on every device, under
        the backend's guard where a probe shows that it fires, and, on a backend that
        fuses (JAX), traced whole, where reading any value is an error."""
        be, theta = self.be, init_params(spec, seed=3, dtype="float64")
        X, Y = _data(spec, rng)
        problem, batch, x = be.problem(spec), be.batch(X, Y), be.asarray(theta)
        _products(problem, (), x, batch)  # warm up (compilation may read shapes)
        guarded = _guard_fires(be, x)
        with HostReads(be, type(x)) as counter:
            with be.guard_transfers():
                _products(problem, (), x, batch)
        be.sync()
        fuse = getattr(problem, "fuse", None)
        if fuse is not None and not counter.reads:
            be.sync(*fuse(_products, ())(x, batch))  # raises on a read inside the trace
        self.report.results.append(_transfer_verdict(
            f"{spec.name}: no implicit host transfers", counter, guarded, fuse is not None, be))


def _products(problem, static, x, batch):
    """Everything the check watches, as a function a tracing backend can fuse."""
    ops = problem.backend.ops
    op = problem.curvature(x, batch, "ggn")
    Gv = op.matvec(x)
    loss, g = problem.value_and_grad(x, batch)
    return Gv, ops.vdot(Gv, x), loss, g, problem.precondition(x, batch)


def _guard_fires(be, x) -> bool:
    """Whether `guard_transfers` stops a deliberate read here (not on a CPU)."""
    v = be.ops.vdot(x, x)
    be.sync()
    try:
        with be.guard_transfers():
            float(v)
    except Exception:  # the framework's own error type: any refusal is the answer
        return True
    return False


def _transfer_verdict(name: str, counter: HostReads, guarded: bool, traced: bool,
                      be) -> CheckResult:
    if counter.reads:
        return CheckResult(name, False, f"{summary(counter.reads)} (the products must leave "
                                        "every value on the device)")
    how = []
    if counter.array_points:
        how.append(f"0 reads at {len(counter.points)} conversion points")
    if guarded:
        how.append("guard_transfers fired on a probe read and not on the products")
    if traced:
        how.append("traced whole by problem.fuse")
    refused = f"; not instrumentable: {', '.join(counter.refused)}" if counter.refused else ""
    if not how:
        return CheckResult(name, False, checked=False, detail=(
            f"no way to see a host read here: guard_transfers lets one through on device "
            f"{be.device!r}, {counter.array_type.__name__} lets none of its conversions be "
            f"counted, and the problem has no fuse to trace the products{refused}"))
    return CheckResult(name, True, "; ".join(how) + refused)


GROUPS = ("vector ops", "products", "semantics", "transfers")


def check_backend(name: str, *, raise_on_failure: bool = True, only=None,
                  **options) -> ConformanceReport:
    """Run the conformance suite on backend `name` (float64, CPU unless `options` say).

    only: a subset of GROUPS to run (default: all). Returns the report; raises
    ConformanceError listing the failures when any check fails and
    `raise_on_failure` is true.
    """
    groups = _groups(only)
    options = {"device": "cpu", **options, "dtype": "float64"}
    be = get_backend(name, **options)
    report, rng = ConformanceReport(name), np.random.default_rng(0)
    check = _Checker(be, report)
    specs = _specs()
    if "vector ops" in groups:
        check.attempt("vector ops", lambda: check.vector_ops(rng))
    if "products" in groups:
        for spec in specs:
            check.attempt(spec.name, lambda spec=spec: check.products(spec, rng))
    if "semantics" in groups:
        check.attempt("semantics", lambda: check.semantics(specs[0], rng))
    if "transfers" in groups:
        for spec in (specs[1], _conv_specs()[0]):  # a dense and a conv net
            check.attempt(f"{spec.name}: no implicit host transfers",
                          lambda spec=spec: check.transfers(spec, rng))
    if raise_on_failure and not report.passed:
        raise ConformanceError(str(report))
    return report


def _groups(only) -> tuple[str, ...]:
    if only is None:
        return GROUPS
    only = (only,) if isinstance(only, str) else tuple(only)
    for group in only:
        if group not in GROUPS:
            raise HFBenchError(unknown("conformance group", group, GROUPS, "check_backend(only=...)"))
    return only
