#!/usr/bin/env bash
# Everything for a GPU machine in one run: build the `cuda` preset, run the CUDA tests (every kernel and
# the whole training step against the CPU core), then training images/s of our CUDA backend beside the
# same CapsNet in PyTorch on the same GPU (both float32 without TF32, batch 128 by default, best of a few
# alternating runs), and the floor that the GPU's measured float32 matrix throughput puts under a step.
#   bench/gpu.sh [--batch-size N] [--steps N] [--repeats N] [--skip-tests]
#
# The GPU image has nvcc, CMake, ninja and a CUDA build of PyTorch (its python3) but none of the
# project's Debian packages, and no network. Fetch those once on a dev machine, ignore and carry them:
#   echo /.deps/ >> .git/info/exclude; mkdir -p .deps && (cd .deps && apt-get download xtensor-dev xtl-dev \
#     libxsimd-dev catch2 nlohmann-json3-dev libstb-dev libstb0 libopenblas-dev libopenblas0 \
#     libopenblas-pthread-dev libopenblas0-pthread libgfortran5)
# This script installs the ones whose package is missing there. Logs: build/cuda/gpu_*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

batch=128 steps=20 repeats=3 run_tests=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --batch-size) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --skip-tests) run_tests=0; shift ;;
    *) echo "usage: $0 [--batch-size N] [--steps N] [--repeats N] [--skip-tests]" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-python3}  # the GPU image's python3 is the one with a CUDA PyTorch
logs=build/cuda
mkdir -p "$logs"

# --- Dependencies -----------------------------------------------------------------------------------
if [[ ! -f /usr/include/xtensor/xtensor.hpp || ! -f /usr/include/catch2/catch.hpp ]]; then
  debs=()
  for deb in .deps/*.deb; do
    [[ -f $deb ]] || continue
    package=$(dpkg-deb -f "$deb" Package)
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || debs+=("$deb")
  done
  if [[ ${#debs[@]} -eq 0 ]]; then
    echo "gpu.sh: the project's Debian packages are missing and .deps/ has none to install (see the top of $0)" >&2
    exit 1
  fi
  echo "gpu.sh: installing ${#debs[@]} packages from .deps/"
  # --force-depends: their dependencies on the base system (libc...) are met whatever its package names.
  dpkg -i --force-depends "${debs[@]}" >"$logs/gpu_deps.log" 2>&1 || { tail -20 "$logs/gpu_deps.log"; exit 1; }
fi

# --- Build ------------------------------------------------------------------------------------------
nvcc=/usr/local/cuda/bin/nvcc  # the preset's; elsewhere on PATH on some images
[[ -x $nvcc ]] || nvcc=$(command -v nvcc || true)
[[ -n $nvcc ]] || { echo "gpu.sh: no nvcc found" >&2; exit 1; }
echo "gpu.sh: building the cuda preset (log: $logs/gpu_build.log)"
if ! { cmake --preset cuda -DCMAKE_CUDA_COMPILER="$nvcc" && cmake --build build/cuda; } >"$logs/gpu_build.log" 2>&1; then
  tail -40 "$logs/gpu_build.log"
  echo "gpu.sh: the build failed" >&2
  exit 1
fi
grep -i "warning" "$logs/gpu_build.log" | head -20 || true

# --- Tests ------------------------------------------------------------------------------------------
tests_ok=1
if [[ $run_tests -eq 1 ]]; then
  echo "gpu.sh: ctest -L cuda (log: $logs/gpu_tests.log)"
  set +e
  ctest --test-dir build/cuda -L cuda --output-on-failure >"$logs/gpu_tests.log" 2>&1
  status=$?
  set -e
  if [[ $status -ne 0 ]]; then
    tests_ok=0
    tail -80 "$logs/gpu_tests.log"
    echo "gpu.sh: CUDA TESTS FAILED (the timings below are of a backend that is not correct)"
  else
    grep -E "tests passed|Total Test time" "$logs/gpu_tests.log" || true
  fi
fi

# --- Speed ------------------------------------------------------------------------------------------
field() { "$python" -c $'import json, sys\nd = json.load(sys.stdin)\nfor k in sys.argv[1:]: d = d[k]\nprint(d)' "$@"; }
best() { sort -g | tail -1; }

echo
echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo unknown);" \
     "torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "batch $batch, $steps timed steps after 3 warm-up steps, best of $repeats alternating runs; float32, TF32 off"
echo
echo "| preset | ours img/s | PyTorch img/s | ratio |"
echo "|---|---:|---:|---:|"
for preset in seed paper; do
  ours=() theirs=()
  for ((r = 0; r < repeats; r++)); do
    line=$(build/cuda/bench/train_speed --device cuda --preset "$preset" --batch-size "$batch" --steps "$steps" --warmup 3)
    ours+=("$(field images_per_second <<<"$line")")
    line=$("$python" bench/pytorch_capsnet.py train-speed --device cuda --preset "$preset" --batch-size "$batch" \
             --steps "$steps" --warmup 3)
    theirs+=("$(field images_per_second <<<"$line")")
  done
  a=$(printf '%s\n' "${ours[@]}" | best) b=$(printf '%s\n' "${theirs[@]}" | best)
  printf '| %s | %.0f | %.0f | %.2fx |\n' "$preset" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
done

# The floor: FLOPs of one training image (forward x 3, from the layer shapes) at the GPU's measured
# float32 matrix-product rate; no float32 implementation of this model can train faster.
floor=$("$python" bench/pytorch_capsnet.py gpu-floor)
echo
echo "float32 matmul ($(field matmul <<<"$floor"), TF32 off): $(field tflops <<<"$floor") TFLOP/s"
for preset in seed paper; do
  printf 'floor (%s, %.3f GFLOP/image): %s us/image = %.0f img/s max\n' "$preset" \
    "$(awk -v f="$(field "$preset" flops_per_image <<<"$floor")" 'BEGIN { print f / 1e9 }')" \
    "$(field "$preset" us_per_image <<<"$floor")" "$(field "$preset" images_per_second_max <<<"$floor")"
done

[[ $tests_ok -eq 1 ]]
