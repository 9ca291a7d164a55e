#!/usr/bin/env bash
# The README's main command. Until the browser demo exists (it will build the demo and serve it on
# 127.0.0.1), it sets up the machine, fetches MNIST, builds the native core and reports the core's
# forward and forward+backward time per image for both presets.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/install_deps.sh
scripts/fetch_mnist.sh
cmake --preset cpu >/dev/null
cmake --build --preset cpu -j "$(nproc)" --target core_timing
build/cpu/bench/core_timing "$@"
