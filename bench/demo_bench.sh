#!/usr/bin/env bash
# The browser demo's speed on every target, in one table: classify one digit, the mask grid, and the
# interpolation grid (11 offsets x 16 dimensions), natively (OpenBLAS on 1 thread, the core's xsimd GEMM),
# in node (wasm with SIMD128, wasm without SIMD) and in headless Chromium (the demo site of both wasm
# builds, timed inside the page by capsnetDemo.benchmark). Every timing is a median of --repeats rounds.
# Also checks the goal (classify + mask grid under 30 ms in headless Chromium with SIMD) and that every
# target computes the same capsules (checksums over the first --digits MNIST test digits).
#   bench/demo_bench.sh [--repeats N] [--digits K] [--jobs N] [--no-build] [--no-browser]
# Builds only what it runs: demo_timing in build/cpu, demo_timing and capsnet_demo in build/wasm and
# build/wasm-nosimd (configured with their presets when they are not configured yet).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs  # Emscripten's acorn (shared/docs/toolchain.md, pitfall 1)

repeats=20 digits=20 jobs=$(nproc) build=1 browser=1
usage="usage: $0 [--repeats N] [--digits K] [--jobs N] [--no-build] [--no-browser]"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --repeats) repeats=$2; shift 2 ;;
    --digits) digits=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-browser) browser=0; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

if ((build)); then
  [[ -f data/mnist/t10k-images-idx3-ubyte ]] || bash scripts/fetch_mnist.sh
  bash scripts/fetch_imgui_source.sh >/dev/null  # the demo site's ImGui (a no-op once fetched)
  ((browser)) && bash scripts/install_web_test_deps.sh >/dev/null
  for preset in cpu wasm wasm-nosimd; do
    [[ -f build/$preset/build.ninja ]] || cmake --preset "$preset" >/dev/null
  done
  echo "demo_bench: building (build/cpu, build/wasm, build/wasm-nosimd; -j$jobs)" >&2
  cmake --build build/cpu --target demo_timing -j "$jobs" >/dev/null
  cmake --build build/wasm --target demo_timing capsnet_demo -j "$jobs" >/dev/null
  cmake --build build/wasm-nosimd --target demo_timing capsnet_demo -j "$jobs" >/dev/null
fi

results=$(mktemp /tmp/capsnet-demo-bench.XXXXXX)
trap 'rm -f "$results"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run() {
  echo "demo_bench: $*" >&2
  "$@" | tee -a "$results" | { grep -vE '^(demo_timing|browser_bench): \{' >&2 || true; }
}
args=(--repeats "$repeats" --digits "$digits")
OPENBLAS_NUM_THREADS=1 run build/cpu/bench/demo_timing --gemm openblas --threads 1 "${args[@]}"
run build/cpu/bench/demo_timing --gemm xsimd "${args[@]}"
run node build/wasm/bench/demo_timing.js "${args[@]}"
run node build/wasm-nosimd/bench/demo_timing.js "${args[@]}"
if ((browser)); then
  # Exit 77: no chromium or playwright-core (the table then says so).
  run node bench/browser_bench.mjs --site build/wasm/site --site build/wasm-nosimd/site --repeats "$repeats" || true
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

chromium=$( (/usr/bin/chromium --version 2>/dev/null || true) | grep -oE '[0-9]+(\.[0-9]+)+' | head -1)
emscripten=$(emcc --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)
echo
echo "$(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores;" \
     "Chromium ${chromium:-missing}, Emscripten ${emscripten:-?}, node $(node --version)"
echo "load average before / after: $load_before / $load_after; median of $repeats rounds"
echo

# The table, from the `demo_timing: {json}` and `browser_bench: {json}` lines.
node - "$results" "$browser" <<'EOF'
const fs = require('fs');
const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
const parsed = (prefix) => lines.filter((l) => l.startsWith(`${prefix}{`)).map((l) => JSON.parse(l.slice(prefix.length)));
const native = parsed('demo_timing: ');
const browser = parsed('browser_bench: ');
const label = { 'native-openblas': 'native, OpenBLAS (1 thread)', 'native-xsimd': 'native, xsimd GEMM (1 thread)',
                'wasm-simd128': 'node, wasm SIMD128', 'wasm-nosimd': 'node, wasm without SIMD' };
const rows = native.map((r) => ({ ...r, label: label[r.target] || r.target }));
for (const b of browser) {
  const simd = b.name !== 'wasm-nosimd';
  rows.push({ ...b, target: `chromium-${b.name}`, label: simd ? 'Chromium, wasm SIMD128' : 'Chromium, wasm without SIMD' });
}
const reference = rows.find((r) => r.target === 'native-openblas');
const ms = (x) => x.toFixed(2);
const times = (x, ref) => (ref ? `${(x / ref).toFixed(1)}x` : '-');
console.log('| target | classify | mask grid | classify + mask grid | interpolation grid (11 x 16) | classify + mask vs native | interpolation vs native |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  const both = r.classify_ms + r.mask_grid_ms;
  const ref_both = reference && reference.classify_ms + reference.mask_grid_ms;
  console.log(`| ${r.label} | ${ms(r.classify_ms)} ms | ${ms(r.mask_grid_ms)} ms | ${ms(both)} ms | ` +
              `${ms(r.interpolation_grid_ms)} ms | ${times(both, ref_both)} | ` +
              `${times(r.interpolation_grid_ms, reference && reference.interpolation_grid_ms)} |`);
}
console.log('("vs native": time / the native OpenBLAS 1-thread row.)');

const goal_ms = 30;
const chromium_simd = rows.find((r) => r.target === 'chromium-wasm');
if (chromium_simd) {
  const both = chromium_simd.classify_ms + chromium_simd.mask_grid_ms;
  console.log(`\nGoal, classify + mask grid < ${goal_ms} ms in headless Chromium with SIMD128: ${ms(both)} ms, ` +
              (both < goal_ms ? `met (${ms(goal_ms - both)} ms to spare)` :
                                `missed by ${ms(both - goal_ms)} ms (${((both / goal_ms - 1) * 100).toFixed(0)}% over)`));
} else {
  console.log(`\nGoal, classify + mask grid < ${goal_ms} ms in headless Chromium with SIMD128: not measured (no Chromium run)`);
}

// Wasm float arithmetic is deterministic, so the Chromium rows run exactly the node rows' computation
// (the same core objects, linked into the site); the targets differ only in summation order and FMA.
const length_tolerance = 1e-5, sum_tolerance = 1e-5;
console.log(`\nChecksums over the first ${native[0] ? native[0].digits : '?'} MNIST test digits (tolerance: every capsule length within ` +
            `${length_tolerance} of the native OpenBLAS row's, grid sums within ${sum_tolerance} relative):`);
console.log('| target | correct | capsule lengths sum | max abs length difference | mask grids sum | sweep grids sum | agrees |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
let all_agree = true;
for (const r of native) {
  const max_diff = reference ? Math.max(...r.lengths.map((x, i) => Math.abs(x - reference.lengths[i]))) : NaN;
  const relative = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
  const agrees = reference && r.lengths.length === reference.lengths.length && max_diff <= length_tolerance &&
                 relative(r.mask_sum, reference.mask_sum) <= sum_tolerance && relative(r.sweep_sum, reference.sweep_sum) <= sum_tolerance;
  all_agree = all_agree && agrees;
  console.log(`| ${label[r.target] || r.target} | ${r.correct}/${r.digits} | ${r.lengths_sum.toFixed(6)} | ${max_diff.toExponential(1)} | ` +
              `${r.mask_sum.toFixed(3)} | ${r.sweep_sum.toFixed(3)} | ${agrees ? 'yes' : 'NO'} |`);
}
if (browser.length) console.log('(Chromium rows: the node rows\' wasm code, so the same checksums.)');
if (browser.length === 0 && process.argv[3] === '1')
  console.log('\nbrowser_bench: no results (see its messages above; scripts/install_web_test_deps.sh installs Chromium and playwright-core)');
process.exit(all_agree ? 0 : 1);
EOF
