#!/usr/bin/env bash
# One command for a CUDA machine, from the repository root:  bash cpp_ext/gpu_check.sh
# Builds deid_sdk._C with the CUDA kernels into a temporary folder (CMake when present, else nvcc directly), runs
# the CUDA (and CPU) parity tests against the NumPy reference and the benchmark, and writes everything to
# ${OUT:-./out}/cpp_ext_gpu.txt. Exits nonzero when the build fails, no GPU is usable, or a test fails.
# Needs python3 with numpy, opencv, pybind11, torch and/or CuPy, and nvcc; pytest is optional (plain runner).
# GPU_CHECK_BUILD=nvcc skips CMake. GPU_CHECK_ALLOW_NO_GPU=1 lets the script pass on a machine without a GPU (to test the build path only).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT:-$ROOT/out}
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/cpp_ext_gpu.txt"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
step() { echo; echo "=== $* ($(date +%T))"; }

main() {
failures=0
step "machine"
uname -srm
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1 || echo "(no nvidia-smi)"
nvcc --version 2>&1 | tail -1
"$PYTHON" -c "import sys, numpy; print('python', sys.version.split()[0], 'numpy', numpy.__version__)"

# Only the GPU's own architecture: a third of the build time of the default 72;87;90.
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
ARCH=${ARCH:-90}
SUFFIX=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
PACKAGE="$WORK/site/deid_sdk"
mkdir -p "$WORK/site"
cp -r "$ROOT/sdk/deid_sdk" "$PACKAGE"
rm -f "$PACKAGE"/_C*.so

step "build deid_sdk._C (sm_$ARCH)"
build_ok=0
if command -v cmake >/dev/null 2>&1 && [ "${GPU_CHECK_BUILD:-cmake}" != nvcc ]; then
  PYBIND11_DIR=$("$PYTHON" -m pybind11 --cmakedir)
  if timeout 300 cmake -S "$ROOT" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$PYBIND11_DIR" \
      -DPython_EXECUTABLE="$(command -v "$PYTHON")" -DCMAKE_CUDA_ARCHITECTURES="$ARCH" >"$WORK/cmake.log" 2>&1 \
    && timeout 300 cmake --build "$WORK/build" -j "$(nproc)" >>"$WORK/cmake.log" 2>&1; then
    cp "$WORK"/build/cpp_ext/_C*.so "$PACKAGE/" && build_ok=1
  fi
  grep -E "deid_sdk: CUDA|error" "$WORK/cmake.log" | head -20
fi
if [ "$build_ok" = 0 ]; then
  echo "CMake build unavailable or failed; building with nvcc directly"
  # shellcheck disable=SC2046
  if timeout 300 nvcc -O3 -std=c++17 -shared -Xcompiler -fPIC,-fvisibility=hidden -DDEID_WITH_CUDA=1 \
      -gencode "arch=compute_$ARCH,code=sm_$ARCH" -cudart static $("$PYTHON" -m pybind11 --includes) \
      "$ROOT"/cpp_ext/src/*.cpp "$ROOT"/cpp_ext/src/*.cu -o "$PACKAGE/_C$SUFFIX" -lpthread; then
    build_ok=1
  fi
fi
if [ "$build_ok" = 0 ]; then
  echo "FAIL: could not build deid_sdk._C"
  return 1
fi
export PYTHONPATH="$WORK/site:$ROOT"  # the built package first; the repo root for the tests package

step "CUDA device seen by deid_sdk._C"
if ! "$PYTHON" -c "
from deid_sdk import _C
print('module', _C.__file__, '' if _C.__file__.startswith('$WORK') else '(WARNING: not the module just built)')
count, reason = _C.cuda_device_count()
print('built_with_cuda', _C.built_with_cuda(), 'devices', count, reason)
raise SystemExit(0 if _C.built_with_cuda() and count > 0 else 1)"; then
  if [ "${GPU_CHECK_ALLOW_NO_GPU:-0}" = 1 ]; then
    echo "no usable GPU: the CUDA tests will skip (GPU_CHECK_ALLOW_NO_GPU=1)"
  else
    echo "FAIL: no usable CUDA device"
    return 1
  fi
fi

step "parity tests: CUDA and CPU kernels vs the NumPy reference"
if "$PYTHON" -c "import pytest" 2>/dev/null; then
  timeout 240 "$PYTHON" -m pytest tests/test_ops_cuda.py tests/test_ops_cpu.py -q -rs -s -p no:cacheprovider \
    || failures=$((failures + 1))
else
  echo "(pytest missing: plain runner of the same CUDA checks)"
  if [ "${GPU_CHECK_ALLOW_NO_GPU:-0}" = 1 ]; then
    echo "skipped without a GPU"
  else
    timeout 240 "$PYTHON" -m tests.test_ops_cuda || failures=$((failures + 1))
  fi
fi

step "benchmark"
timeout 240 "$PYTHON" cpp_ext/bench.py --repeats 20 || failures=$((failures + 1))

echo
if [ "$failures" = 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL ($failures step(s))"; fi
echo "report: $REPORT"
return $((failures > 0))
}

SECONDS=0
main 2>&1 | tee "$REPORT"
status=${PIPESTATUS[0]}
echo "total ${SECONDS} s" | tee -a "$REPORT"
exit "$status"
