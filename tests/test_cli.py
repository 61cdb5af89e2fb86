"""The command line: exit codes and messages, never a traceback on bad input."""

import subprocess
import sys

import hfbench


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "hfbench.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_backends_lists_and_checks_every_installed_backend():
    proc = _run("backends")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, why in hfbench.installed_backends().items():
        assert name in proc.stdout
        if why is None:
            assert "checks passed" in proc.stdout


def test_unknown_command_is_a_usage_error_without_traceback():
    proc = _run("frobnicate")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "frobnicate" in proc.stderr
