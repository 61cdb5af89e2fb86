"""Print this machine's asv name, so results from different hardware never mix.

    asv machine --machine "$(python benchmarks/hfbench_bench/machine_name.py)" --yes
    asv run --machine "$(python benchmarks/hfbench_bench/machine_name.py)" ...

`gpu-<model>` where a GPU is visible (`nvidia-smi`; e.g. gpu-nvidia-h200), else
`cpu-<model>-<n>c` with the usable core count (e.g. cpu-intel-xeon-platinum-8488c-2c):
the benchmarks run on the GPU where there is one (device "auto"). With
HFBENCH_BENCH_DEVICE=cpu the benchmarks stay on the CPU, and so does the name.
Standard library only; imports nothing at import time beyond it.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path


def slug(text: str) -> str:
    text = re.sub(r"\((r|tm|c)\)|\b(cpu|processor)\b|@.*$", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def gpu_model() -> str | None:
    if os.environ.get("HFBENCH_BENCH_DEVICE", "auto") == "cpu":
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:  # macOS
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_name() -> str:
    gpu = gpu_model()
    return f"gpu-{slug(gpu)}" if gpu else f"cpu-{slug(cpu_model())}-{cores()}c"


if __name__ == "__main__":
    print(machine_name())
