#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (only those missing), so the README's
# commands work on a fresh machine. Needs root (or sudo) for apt-get; does nothing when all are present.
#   scripts/install_deps.sh [--with-pytorch]   (PyTorch: the load test and the CPU benchmark against it)
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  xtensor-dev libxsimd-dev xtl-dev        # the core's tensor library and its SIMD layer
  catch2                                  # tests (v2, single header)
  nlohmann-json3-dev                      # safetensors headers
  libstb-dev                              # image writing
  libopenblas-dev                         # native GEMM
  libopenmpi-dev openmpi-bin              # training over processes (mpirun -np N capsnet train; test_mpi_train)
  emscripten binaryen wabt                # the wasm build and its inspection tools
  dpkg-dev                                # dpkg-source: unpacks Dear ImGui's Debian source (fetch_imgui_source.sh)
  clang-14 libclang-rt-14-dev             # libFuzzer and the sanitizer runtimes (tests/fuzz/fuzz.sh)
)
if [[ ${1:-} == --with-pytorch ]]; then
  packages+=(python3-torch python3-numpy) # tests/test_pytorch_load.sh, bench/cpu_vs_pytorch.sh
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all Debian packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
