"""Packaging: the suites ship inside the package, so a wheel install (asv's, a user's
`pip install hfbench`) runs `hfbench run quickstart` outside a checkout.

The top-level suites/ folder is the only copy; pyproject.toml maps it to the package
`hfbench.suites`. The wheel test builds the project, installs the wheel into a fresh
venv and runs the CLI from a folder that is not a checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from hfbench.suite import expand, load, summary

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"
SHIPPED = sorted(p.name for p in SUITES.glob("*.yaml"))
# What a wheel is built from. The build runs in a copy of these, because an in-tree
# build writes build/ and *.egg-info into the checkout and reuses build/lib, where a
# file deleted from the tree survives into the next wheel (asv, too, builds from a
# clean clone).
SOURCES = ("pyproject.toml", "README.md", "hfbench", "backends", "suites")
BIN = "Scripts" if os.name == "nt" else "bin"


def _packages(folder: Path, base: Path) -> set[str]:
    """Dotted names of the package folders in `folder`, counted from `base`."""
    return {".".join(p.parent.relative_to(base).parts) for p in folder.rglob("__init__.py")}


def test_the_package_list_names_every_package_folder():
    # pyproject lists its packages by hand (hfbench.suites is no subfolder of hfbench/),
    # so a new subpackage must be added there, or wheels silently lack it.
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = _packages(ROOT / "hfbench", ROOT) | _packages(ROOT / "backends", ROOT / "backends")
    folders |= {"hfbench.suites"}
    assert set(conf["packages"]) == folders
    assert conf["package-dir"]["hfbench.suites"] == "suites"
    assert "*.yaml" in conf["package-data"]["hfbench.suites"]


def test_the_installed_package_sees_the_checkouts_suites():
    # the editable install (CI's) maps suites/ into the package: one copy, not two
    found = sorted(p.name for p in resources.files("hfbench.suites").iterdir()
                   if p.name.endswith(".yaml"))
    assert found == SHIPPED


def _venv_python(venv: Path) -> Path:
    return venv / BIN / ("python.exe" if os.name == "nt" else "python")


def _env() -> dict[str, str]:
    # PYTHONPATH could put the checkout ahead of the venv's own copy
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _check(cmd: list, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """(wheel, venv, an empty folder): the project's wheel installed into a fresh venv."""
    pytest.importorskip("setuptools", reason="building without build isolation (offline) "
                        "needs setuptools, the build backend, in this environment")
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "-w", dist, "."], cwd=src)
    (wheel,) = dist.glob("hfbench-*.whl")
    # --system-site-packages: numpy, pydantic, typer, ... come from this environment.
    # No pip of its own: this environment's pip, run by the venv's python, installs
    # into the venv. --ignore-installed: the editable hfbench outside is not replaced.
    venv = tmp / "venv"
    _check([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp)
    _check([_venv_python(venv), "-m", "pip", "install", "--no-deps", "--no-index",
            "--ignore-installed", wheel], cwd=tmp)
    outside = tmp / "elsewhere"
    outside.mkdir()
    return wheel, venv, outside


def test_the_wheel_carries_the_suites(wheel_venv):
    wheel, _, _ = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"hfbench/suites/{n}" for n in SHIPPED} <= names
    assert "hfbench/suites/README.md" in names


def test_the_venv_runs_its_own_installed_copy(wheel_venv):
    # The outer editable install's finder sits after the path finder on sys.meta_path,
    # and the venv's site-packages come before the system's: the venv's copy wins.
    _, venv, outside = wheel_venv
    code = ("import importlib.metadata as m, hfbench, hfbench.suites as s\n"
            "d = m.distribution('hfbench')\n"
            "print(hfbench.__file__); print(s.__file__); print(d.locate_file(''))\n"
            "print(*sorted(str(f) for f in d.files if str(f).startswith('hfbench/suites/')))")
    lines = _check([_venv_python(venv), "-c", code], cwd=outside).stdout.splitlines()
    venv = venv.resolve()
    for path in lines[:3]:
        assert Path(path).resolve().is_relative_to(venv), lines
    assert {f"hfbench/suites/{n}" for n in SHIPPED} <= set(lines[3].split())


@pytest.mark.parametrize("name", ["smoke", "quickstart"])
def test_the_installed_cli_runs_a_shipped_suite_outside_a_checkout(wheel_venv, name):
    _, venv, outside = wheel_venv
    assert not (outside / "suites").exists()
    proc = _check([venv / BIN / "hfbench", "run", name, "--dry-run"], cwd=outside)
    trials = expand(load(SUITES / f"{name}.yaml"))
    assert summary(trials) in proc.stdout
    assert all(t.id in proc.stdout for t in trials)
