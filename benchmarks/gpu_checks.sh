#!/usr/bin/env bash
# The GPU checks, as one short script: what reports/gpu/ holds comes from here.
#
#   OUT=reports/gpu bash benchmarks/gpu_checks.sh        # on any machine with a CUDA GPU
#
# 1. harness_overhead.py --device cuda: hfbench's runner against the hand-written loops
#    on the GPU, one backend per invocation (each under its own time limit, so a slow
#    cell cannot take the other backend's table with it);
# 2. newton_step.py --device cuda: the dense Newton step on the device;
# 3. the default suite (quickstart) on the GPU at half its budget, both backends, its
#    console summary.
# Each step writes its own file under $OUT; a step that fails leaves its log there and
# the next still runs. JAX is told not to take 75% of the GPU up front, so the torch
# cells in the same process are not starved and memory figures mean what they say.
set -u
OUT=${OUT:-reports/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}
STEPS=${STEPS:-100}
ROUNDS=${ROUNDS:-3}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c "import torch, jax, jaxlib; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version()); print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
  grep -m1 "model name" /proc/cpuinfo
} > "$OUT/machine.txt" 2>&1

for be in torch jax; do
  timeout "${HARNESS_S:-120}" $PY benchmarks/harness_overhead.py --device cuda --backends "$be" \
    --steps "$STEPS" --rounds "$ROUNDS" --out "$OUT/harness_overhead_$be.txt" \
    > "$OUT/harness_overhead_$be.log" 2>&1 || echo "harness_overhead $be: exit $?" >> "$OUT/machine.txt"
done

timeout "${NEWTON_S:-50}" $PY benchmarks/newton_step.py --device cuda --rounds 3 --out "$OUT/newton_step.txt" \
  > "$OUT/newton_step.log" 2>&1 || echo "newton_step: exit $?" >> "$OUT/machine.txt"

timeout "${QUICKSTART_S:-110}" $PY -m hfbench.cli run suites/quickstart.yaml --device cuda --budget-scale 0.5 \
  --results /tmp/hfbench-gpu-quickstart > "$OUT/quickstart.txt" 2>&1 \
  || echo "quickstart: exit $?" >> "$OUT/machine.txt"
exit 0
