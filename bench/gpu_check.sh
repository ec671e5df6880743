#!/usr/bin/env bash
# Everything a session with a GPU has to run, as one prepared command (see docs/gpu.md):
#
#   bash bench/gpu_check.sh            # writes its logs and results under $OUT (default ./gpu_out)
#
# 1. env: the device and the versions of numpy, cupy, numba and torch;
# 2. tests: the GPU cases of tests/test_cuda_kernels.py (kernels, bit for bit against the numpy
#    reference), tests/test_gpu.py (whole models on cupy against numpy, on the device and on the
#    simulated device of tests/fakecupy) and tests/test_devices.py (the devices API, the demo's and
#    the benchmark's GPU paths, on the simulated device);
# 3. kernels: the max-abs kernels against cuBLAS on the same shapes (python -m semirad.kernels.cuda);
# 4. bench: the quick benchmark suite with its cupy and PyTorch CUDA columns (results_quick.md/json);
# 5. demo: the LSTM demo with --device cuda.
#
# Each step has its own time limit (the whole fits in about 9 minutes on an H200 machine) and a
# failing step does not stop the next; the exit status is the number of steps that failed. It
# needs no install and no network: the package runs from this checkout (PYTHONPATH), with the
# python that holds cupy (PYTHON, default python3). At most 8 files land in $OUT.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
failed=0

step() {  # step NAME SECONDS COMMAND...: the command's output in $OUT/NAME.txt, its last line echoed
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
    echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s): $(tail -n 1 "$OUT/$name.txt")"
}

step env 60 bash -c "nvidia-smi -L; $PY -c 'import sys, numpy, cupy; print(sys.version); print(\"numpy\", numpy.__version__, \"cupy\", cupy.__version__, \"devices\", cupy.cuda.runtime.getDeviceCount())'; $PY -c 'import numba, torch; print(\"numba\", numba.__version__, \"torch\", torch.__version__, \"cuda\", torch.cuda.is_available())'"
step tests 220 "$PY" -m pytest -q -rs -p no:cacheprovider -o addopts= tests/test_cuda_kernels.py tests/test_gpu.py tests/test_devices.py
step kernels 120 "$PY" -m semirad.kernels.cuda
rm -rf /tmp/semirad_bench && mkdir -p /tmp/semirad_bench
step bench 220 "$PY" -m bench --quick --out /tmp/semirad_bench
cp /tmp/semirad_bench/results_quick.md /tmp/semirad_bench/results_quick.json "$OUT"/ 2>/dev/null
step demo 120 "$PY" -m semirad demo --device cuda --out /tmp/semirad_demo
echo "== $failed step(s) failed; logs in $OUT"
exit "$failed"
