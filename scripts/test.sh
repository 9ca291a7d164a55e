#!/usr/bin/env bash
# The README's test command: installs what is missing, fetches MNIST, builds the native (CPU) and the
# WebAssembly targets and runs every test on both (the wasm tests under node). With --native-only or
# --wasm-only, one target. Build trees: build/cpu and build/wasm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

targets=(cpu wasm)
case "${1:-}" in
  --native-only) targets=(cpu) ;;
  --wasm-only) targets=(wasm) ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--native-only|--wasm-only]" >&2; exit 2 ;;
esac

scripts/install_deps.sh
scripts/fetch_mnist.sh
export CAPSNET_REQUIRE_DATA=1          # a missing data set fails the MNIST tests instead of skipping them
export NODE_PATH=/usr/share/nodejs     # Emscripten's own scripts need acorn from Debian's node modules
jobs="$(nproc)"

for preset in "${targets[@]}"; do
  echo "=== $preset: configure and build ==="
  start=$(date +%s)
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: built in $(( $(date +%s) - start )) s; running tests ==="
  ctest --preset "$preset" -j 1
done

if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "=== cuda: configure and build (tests skip without a GPU) ==="
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$jobs" --target capsnet_cuda test_cuda_device
  ctest --preset cuda -L cuda
fi
