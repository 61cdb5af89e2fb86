"""CI cannot pass by skipping: HFBENCH_REQUIRE_BACKENDS fails a run whose promised
backend does not import (tests/conftest.py), and CI runs the README's test command,
which sets it for the backends `.[all]` installs."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import BUILTIN, REQUIRE_VAR

ROOT = pathlib.Path(__file__).parents[1]


def run_tiny(tmp_path, require: str | None, broken_jax: bool = False):
    """pytest on a one-test file with tests/conftest.py as its plugin, in a subprocess."""
    (tmp_path / "test_tiny.py").write_text("def test_ok():\n    pass\n")
    paths = [str(ROOT / "tests")]
    if broken_jax:  # a jax that fails to import, as a broken install would
        fake = tmp_path / "fake" / "jax"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text('raise ImportError("planted: this jax is broken")\n')
        paths.insert(0, str(tmp_path / "fake"))
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_VAR}
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    if require is not None:
        env[REQUIRE_VAR] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         "test_tiny.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


def test_an_unknown_required_backend_fails_the_session(tmp_path):
    proc = run_tiny(tmp_path, "torch,nosuch")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert f"ERROR: {REQUIRE_VAR}=torch,nosuch" in proc.stderr
    assert "backend 'nosuch' is not registered" in proc.stderr
    assert "1 passed" not in proc.stdout  # nothing ran


def test_a_required_backend_that_does_not_import_fails_the_session(tmp_path):
    """The failure CI must not skip past: jax installed but broken (without the variable
    every jax test would be skipped). The run fails, naming the backend and its error."""
    if any(n not in __import__("hfbench").registry.registered() for n in BUILTIN):
        pytest.skip("needs both built-in backends registered: pip install -e '.[all]'")
    proc = run_tiny(tmp_path, "torch,jax", broken_jax=True)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert ("backend 'jax' does not import (ImportError: planted: this jax is broken); "
            "pip install 'hfbench[jax]'") in proc.stderr
    assert "torch" not in proc.stderr.split("promised, but", 1)[1]  # torch imports fine


def test_installed_required_backends_pass(tmp_path):
    status = __import__("hfbench").installed_backends()
    ok = [n for n, why in status.items() if why is None]
    if not ok:
        pytest.skip("no backend imports here: pip install -e '.[all]'")
    # one backend is enough (CI's own run requires both); spaces and empty entries are fine
    proc = run_tiny(tmp_path, f" {sorted(ok)[-1]} , ,")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    lines = [line for line in readme.splitlines() if "# install, run the tests" in line]
    assert len(lines) == 1, "the README has one 'install, run the tests' command"
    return lines[0].split("#", 1)[0].strip()


def test_ci_runs_the_readme_test_command():
    """.ci/run runs the README's test command verbatim, and that command requires the
    backends `.[all]` promises, so a backend that stops importing fails CI."""
    command = readme_test_command()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci], f".ci/run does not run {command!r}"
    assert '".[all,test]"' in command
    required = re.search(rf"{REQUIRE_VAR}=(\S+) python -m pytest", command)
    assert required and set(required.group(1).split(",")) == set(BUILTIN), command
