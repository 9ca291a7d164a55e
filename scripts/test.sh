#!/usr/bin/env bash
# The README's test command: installs what is missing, fetches MNIST, compiles the CUDA target when nvcc
# is present (its tests report SKIPPED without a GPU), builds the native (CPU) and WebAssembly targets
# and runs every test on both (the wasm tests under node, with Emscripten's assertions). Natively it
# also runs the unit tests for hostile input under ASan + UBSan and each libFuzzer harness for 10 s
# (the `fuzz` preset, tests/fuzz/fuzz.sh). With --native-only or --wasm-only, one target. Build trees:
# build/cuda, build/cpu, build/fuzz and build/wasm.
# Ends with a "summary: N passed, N failed" line.
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

scripts/install_deps.sh --with-pytorch
scripts/fetch_mnist.sh
scripts/fetch_imgui_source.sh        # the browser demo's Dear ImGui source (wasm target)
scripts/install_web_test_deps.sh     # chromium + playwright-core: the demo's end-to-end test
export CAPSNET_REQUIRE_DATA=1          # a missing data set fails the MNIST tests instead of skipping them
export NODE_PATH=/usr/share/nodejs     # Emscripten's own scripts need acorn from Debian's node modules
jobs="$(nproc)"

# Every ctest run is also appended to a log, for the one-line summary at the end.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run_ctest() { ctest "$@" 2>&1 | tee -a "$log"; }  # pipefail keeps ctest's status

# The CUDA target first: it proves the CUDA code compiles here for every architecture of the `cuda`
# preset (Turing to Blackwell, checked in the fat binaries); its GPU tests skip without a GPU.
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "=== cuda: configure and build for every architecture (tests skip without a GPU) ==="
  start=$(date +%s)
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$jobs" --target capsnet capsnet_cuda test_cuda_device test_cuda_layers test_cuda_capsules test_cuda_backend train_speed
  echo "=== cuda: built in $(( $(date +%s) - start )) s ==="
  tests/check_cuda_architectures.sh build/cuda
  run_ctest --preset cuda -L cuda
fi

# The hostile-input side (issue 16), natively, in one clang build tree (the `fuzz` preset: ASan, UBSan and
# libFuzzer's coverage): the unit tests that read files, links and drawings, the model and the parts
# of the CLI that run in seconds, under the sanitizers, then every fuzzer for a short fixed time. The
# whole native suite passes there too (`ctest --preset fuzz` after building everything: 24 tests in
# 18 minutes on the 2-core VM, most of it the training tests), too long for CI's 40 minutes.
if [[ " ${targets[*]} " == *" cpu "* ]]; then
  sanitized_tests=(test_safetensors test_idx test_weights test_checkpoint test_share_link test_drawing
                   test_layers test_capsules test_routing_view test_visualize test_model test_trainable_layers
                   test_affine test_gemm_openblas test_demo_engine test_robustness)
  echo "=== fuzz: configure and build the fuzzers and ${#sanitized_tests[@]} unit tests with clang, ASan + UBSan ==="
  start=$(date +%s)
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$jobs" --target fuzzers "${sanitized_tests[@]}"
  echo "=== fuzz: built in $(( $(date +%s) - start )) s; the unit tests under the sanitizers ==="
  run_ctest --preset fuzz -j "$jobs" -R "^($(IFS='|'; echo "${sanitized_tests[*]}"))\$"
  echo "=== fuzz: every harness for 10 s (tests/fuzz/fuzz.sh) ==="
  start=$(date +%s)
  fuzz_status=0
  tests/fuzz/fuzz.sh --no-build --seconds 10 --seed 1 || fuzz_status=$?
  echo "=== fuzz: $(( $(date +%s) - start )) s ==="
  # Counted like a test executable in the summary.
  if ((fuzz_status == 0)); then echo "100% tests passed, 0 tests failed out of 1" >>"$log";
  else echo "0% tests passed, 1 tests failed out of 1" >>"$log"; fi
fi

for preset in "${targets[@]}"; do
  echo "=== $preset: configure and build ==="
  start=$(date +%s)
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: built in $(( $(date +%s) - start )) s; running tests ==="
  run_ctest --preset "$preset" -j 1
done

total=$(grep -oE "tests failed out of [0-9]+" "$log" | awk '{sum += $5} END {print sum + 0}')
failed=$(grep -oE "[0-9]+ tests failed out of" "$log" | awk '{sum += $1} END {print sum + 0}')
skipped=$(grep -c '\*\*\*Skipped' "$log" || true)
echo "test executables over all targets:"
echo "summary: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
((failed == 0))  # a fuzzer finding (the only failure that does not stop the script at once) fails it too
