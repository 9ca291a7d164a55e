#!/usr/bin/env bash
# The README's main command: sets up the machine (Debian packages, MNIST for the gallery, Dear ImGui's
# source), builds the browser demo (C++ core + Dear ImGui app -> WebAssembly with SIMD) with the shipped
# model, and serves it on http://127.0.0.1:PORT/ (loopback only) until Ctrl-C.
#   scripts/run.sh [--port N]      (default 8080; or set PORT)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

port="${PORT:-8080}"
case "${1:-}" in
  --port) port="${2:?--port needs a number}" ;;
  "") ;;
  *) echo "usage: scripts/run.sh [--port N]" >&2; exit 2 ;;
esac

scripts/install_deps.sh
scripts/fetch_mnist.sh              # the gallery of MNIST test digits is made from it at build time
scripts/fetch_imgui_source.sh       # Debian ships ImGui's headers but not the .cpp the wasm build needs
export NODE_PATH=/usr/share/nodejs  # Emscripten's own scripts need acorn from Debian's node modules
cmake --preset wasm >/dev/null
cmake --build --preset wasm -j "$(nproc)" --target capsnet_demo
echo "run: open the printed address in a browser (Ctrl-C stops the server)"
exec node web/serve.mjs --root build/wasm/site --port "$port" --host 127.0.0.1
