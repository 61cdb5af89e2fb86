"""The README's Python examples run as written, in order, in one namespace."""

import pathlib
import re

import pytest

import hfbench

README = pathlib.Path(__file__).parents[1] / "README.md"


@pytest.mark.skipif(
    hfbench.installed_backends().get("torch") is not None,
    reason="the README examples use the torch backend: pip install 'hfbench[torch]'",
)
def test_readme_python_examples_run(tmp_path, monkeypatch):
    from hfbench import suite
    from hfbench.runner import run_trial

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the results example reads results/: make one trial's worth
    trial = suite.expand(suite.load("smoke"), workload="boston_mlp", optimizer="sgd", backend="torch")[0]
    run_trial(trial, tmp_path / "results")
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["info"]["cg_iters"] >= 1
    assert namespace["Gv"].shape == namespace["g"].shape
    assert set(namespace["df"]["trial_id"]) == {trial.id}
