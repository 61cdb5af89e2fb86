"""The built-in backends pass the conformance suite a third-party backend must pass."""

import pytest

import hfbench
from hfbench.testing import check_backend

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
    assert len(report.results) >= 30
