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
    # a check that could not be made here is counted apart and named with its reason
    assert ("not checked here" in proc.stdout) == ("NOT CHECKED" in proc.stdout), proc.stdout


def test_unknown_command_is_a_usage_error_without_traceback():
    proc = _run("frobnicate")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "frobnicate" in proc.stderr


def test_error_keeps_brackets_and_stays_on_one_line_when_piped(tmp_path):
    """A message quoting the user's YAML keeps "[...]" (rich would read it as markup), and
    a long `file:line key: why` line is not wrapped at 80 columns for grep and editors."""
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nbackends: [torch]\nseeds: [0]\n"
        "workloads:\n  w:\n    dataset: boston\n"
        "    model: {type: mlp, sizes: [13, 8, 1], activation: sigmoid}\n"
        "    batch_size: 32\n"
        "    backend_options: {torch: {compiel_with_a_long_misspelt_name_to_pass_eighty: 1}}\n"
        "optimizers:\n  sgd: {algorithm: sgd, params: {lr: 0.1}}\n"
        "budget: {iterations: 1}\n"
    )
    proc = _run("run", str(suite), "--results", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and len(lines[0]) > 80, proc.stderr
    assert lines[0].startswith(f"error: {suite}:9 workloads.w.backend_options.torch."), lines[0]
    assert not (tmp_path / "r").exists()  # nothing was started


def test_error_message_with_brackets_is_printed_verbatim():
    """main() prints an HFBenchError's text as it is: "[torch, jax]" is not rich markup."""
    code = ("import hfbench.cli as c\n"
            "from hfbench.errors import HFBenchError\n"
            "def boom():\n"
            "    raise HFBenchError('backend: use one of [torch, jax] or [cpu]')\n"
            "c.app = boom\n"
            "c.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: backend: use one of [torch, jax] or [cpu]", proc.stderr
