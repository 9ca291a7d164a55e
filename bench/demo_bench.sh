#!/usr/bin/env bash
# The browser demo's speed on every target, in one table: classify one digit, the mask grid, and the
# interpolation grid (11 offsets x 16 dimensions), natively (OpenBLAS on 1 thread, the core's xsimd GEMM),
# in node (wasm with SIMD128, wasm without SIMD) and in headless Chromium (the demo site of both wasm
# builds, timed inside the page by capsnetDemo.benchmark). Every timing is a median of --repeats rounds.
# A second table has the routing view and the pose lab (issue 14): the routing view (natively engine.routing()
# only; in Chromium with the overlay and heatmap pictures), one posed input and the 25-angle rotation sweep;
# a third the app's work per frame in Chromium with each panel shown, the input changing every frame or
# not (bench/browser_bench.mjs; --frames per panel and case).
# A fourth has one fine-tuning step of 16 images (the Teach panel): the head alone and every layer.
# Checks the goals (classify + mask grid under 30 ms; the routing view and overlay add at most 5 ms to a
# frame; a 25-angle sweep in at most 600 ms; a fine-tuning step of the head in at most 150 ms and of every
# layer in at most 1 s; all in headless Chromium with SIMD) and that every target
# computes the same capsules (checksums over the first --digits MNIST test digits).
#   bench/demo_bench.sh [--repeats N] [--digits K] [--frames N] [--jobs N] [--no-build] [--no-browser] [--simd-only]
# --simd-only leaves out the wasm-without-SIMD rows (and their build, the longest part on a fresh machine).
# Builds only what it runs: demo_timing in build/cpu, demo_timing and capsnet_demo in build/wasm and
# build/wasm-nosimd (configured with their presets when they are not configured yet).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs  # Emscripten's acorn (shared/docs/toolchain.md, pitfall 1)

repeats=20 digits=20 frames=90 jobs=$(nproc) build=1 browser=1 nosimd=1
usage="usage: $0 [--repeats N] [--digits K] [--frames N] [--jobs N] [--no-build] [--no-browser] [--simd-only]"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --repeats) repeats=$2; shift 2 ;;
    --digits) digits=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-browser) browser=0; shift ;;
    --simd-only) nosimd=0; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

if ((build)); then
  [[ -f data/mnist/t10k-images-idx3-ubyte ]] || bash scripts/fetch_mnist.sh
  bash scripts/fetch_imgui_source.sh >/dev/null  # the demo site's ImGui (a no-op once fetched)
  ((browser)) && bash scripts/install_web_test_deps.sh >/dev/null
  presets=(cpu wasm)
  ((nosimd)) && presets+=(wasm-nosimd)
  for preset in "${presets[@]}"; do
    [[ -f build/$preset/build.ninja ]] || cmake --preset "$preset" >/dev/null
  done
  echo "demo_bench: building (${presets[*]/#/build/}; -j$jobs)" >&2
  cmake --build build/cpu --target demo_timing -j "$jobs" >/dev/null
  cmake --build build/wasm --target demo_timing capsnet_demo -j "$jobs" >/dev/null
  if ((nosimd)); then cmake --build build/wasm-nosimd --target demo_timing capsnet_demo -j "$jobs" >/dev/null; fi
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
# The page's GEMMs run on min(cores, 4) threads (wasm/demo_main.cpp): the same here, natively and in node.
threads=$(( $(nproc) < 4 ? $(nproc) : 4 ))
((threads > 1)) && run build/cpu/bench/demo_timing --gemm xsimd --threads "$threads" "${args[@]}"
run node build/wasm/bench/demo_timing.js "${args[@]}"
((threads > 1)) && run node build/wasm/bench/demo_timing.js --threads "$threads" "${args[@]}"
((nosimd)) && run node build/wasm-nosimd/bench/demo_timing.js "${args[@]}"
sites=(--site build/wasm/site)
((nosimd)) && sites+=(--site build/wasm-nosimd/site)
if ((browser)); then
  # Exit 77: no chromium or playwright-core (the table then says so).
  run node bench/browser_bench.mjs "${sites[@]}" --repeats "$repeats" \
      --frames "$frames" --frame-rounds 6 || true
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
const label = { 'native-openblas': 'native, OpenBLAS', 'native-xsimd': 'native, xsimd GEMM',
                'wasm-simd128': 'node, wasm SIMD128', 'wasm-nosimd': 'node, wasm without SIMD' };
const rows = native.map((r) => ({ ...r, label: `${label[r.target] || r.target} (${r.threads} thread${r.threads > 1 ? 's' : ''})`,
                                   target: r.threads > 1 ? `${r.target}-threads` : r.target }));
for (const b of browser) {
  const simd = b.name !== 'wasm-nosimd';
  if (b.one_thread) rows.push({ ...b, ...b.one_thread, frames: undefined, target: `chromium-${b.name}-1thread`,
                                label: `Chromium, ${simd ? 'wasm SIMD128' : 'wasm without SIMD'} (1 thread)` });
  const threads = `${b.threads || 1} thread${b.threads > 1 ? 's' : ''}`;
  rows.push({ ...b, target: `chromium-${b.name}`,
              label: `Chromium, ${simd ? 'wasm SIMD128' : 'wasm without SIMD'} (${threads}, the page's default)` });
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
const verdict = (value, goal) => (value <= goal ? `met (${ms(goal - value)} ms to spare)` :
                                  `missed by ${ms(value - goal)} ms (${((value / goal - 1) * 100).toFixed(0)}% over)`);
if (chromium_simd) {
  const both = chromium_simd.classify_ms + chromium_simd.mask_grid_ms;
  console.log(`\nGoal, classify + mask grid < ${goal_ms} ms in headless Chromium with SIMD128: ${ms(both)} ms, ` +
              verdict(both, goal_ms));
} else {
  console.log(`\nGoal, classify + mask grid < ${goal_ms} ms in headless Chromium with SIMD128: not measured (no Chromium run)`);
}

// The routing view and the pose lab (issue 14). Natively (and in node) the routing view is engine.routing()
// alone; the page's overlay and heatmap pictures are demo_app.cpp's, timed only in Chromium.
console.log('\n| target | routing view | posed input (rotation 30) | rotation sweep (25 angles) | per angle | sweep vs native |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows.filter((row) => row.rotation_sweep_ms !== undefined)) {
  const routing = `${ms(r.routing_ms)} ms${r.target.startsWith('chromium') ? '' : ' *'}`;
  console.log(`| ${r.label} | ${routing} | ${ms(r.pose_input_ms)} ms | ${ms(r.rotation_sweep_ms)} ms | ` +
              `${ms(r.rotation_sweep_ms / r.rotation_angles)} ms | ` +
              `${times(r.rotation_sweep_ms, reference && reference.rotation_sweep_ms)} |`);
}
console.log('(* engine.routing() only: couplings, logits, |v_j| per iteration and the attribution maps; ' +
            'Chromium rows add the overlay and heatmap pictures.)');

// The Teach panel (issue 15): one fine-tuning step of 16 images. demo_timing runs the defaults (the head's
// step in one pass, every layer's in passes of 2); the page's rows its own micro-batches (2 and 1 images,
// about one per frame). "first step" computes the primary capsules the head caches; later steps reuse them.
const tuned = rows.filter((row) => row.finetune_head_step_ms);
if (tuned.length) {
  console.log('\n| target | head, first step | head, later steps | every layer | head vs native | every layer vs native |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of tuned) {
    console.log(`| ${r.label} | ${ms(r.finetune_head_cold_ms)} ms | ${ms(r.finetune_head_step_ms)} ms | ` +
                `${ms(r.finetune_all_step_ms)} ms | ${times(r.finetune_head_step_ms, reference && reference.finetune_head_step_ms)} | ` +
                `${times(r.finetune_all_step_ms, reference && reference.finetune_all_step_ms)} |`);
  }
  const head_goal_ms = 150, all_goal_ms = 1000;
  if (chromium_simd && chromium_simd.finetune_head_step_ms) {
    console.log(`Goal, a 16-image step of the head in at most ${head_goal_ms} ms (Chromium, SIMD128): ` +
                `${ms(chromium_simd.finetune_head_step_ms)} ms cached, ${ms(chromium_simd.finetune_head_cold_ms)} ms first, ` +
                `${verdict(chromium_simd.finetune_head_step_ms, head_goal_ms)}`);
    console.log(`Goal, a 16-image step of every layer in at most ${all_goal_ms} ms (Chromium, SIMD128): ` +
                `${ms(chromium_simd.finetune_all_step_ms)} ms, ${verdict(chromium_simd.finetune_all_step_ms, all_goal_ms)}`);
  }
}

// The app's work per frame (Emscripten's main-loop iteration) with each panel shown, side by side.
const framed = browser.filter((b) => b.frames);
if (framed.length) {
  const n = framed[0].frames.frames_per_case;
  console.log(`\nWork per frame in headless Chromium (median of ${n} frames per cell, interleaved rounds), and the ` +
              'frame interval (requestAnimationFrame to the next):');
  console.log('| target | panel | work, input changing | interval, changing | work, idle | interval, idle |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  const names = { interpolate: 'Interpolate', routing: 'Routing', pose_lab: 'Pose lab' };
  for (const b of framed) {
    for (const [key, name] of Object.entries(names)) {
      const f = b.frames[key];
      console.log(`| ${b.name === 'wasm-nosimd' ? 'wasm without SIMD' : 'wasm SIMD128'} | ${name} | ` +
                  `${ms(f.changing_work_ms)} ms | ${ms(f.changing_interval_ms)} ms | ${ms(f.idle_work_ms)} ms | ` +
                  `${ms(f.idle_interval_ms)} ms |`);
    }
  }
}
// What the routing view adds to a frame: its computation (routing_ms: the view and both pictures, redone
// on every input change whichever panel is shown) plus what showing the Routing panel costs over the
// Interpolate panel while the input changes (the frames' difference; negative when it draws faster).
const frame_goal_ms = 5, sweep_goal_ms = 600;
if (chromium_simd && chromium_simd.frames) {
  const f = chromium_simd.frames;
  const panel = f.routing.changing_work_ms - f.interpolate.changing_work_ms;
  const added = chromium_simd.routing_ms + Math.max(0, panel);
  console.log(`\nGoal, the routing view and overlay add at most ${frame_goal_ms} ms to a frame (Chromium, SIMD128): ` +
              `${ms(chromium_simd.routing_ms)} ms of routing view + pictures per input change, Routing panel ` +
              `${panel >= 0 ? '+' : ''}${ms(panel)} ms over Interpolate (${ms(f.routing.changing_work_ms)} against ` +
              `${ms(f.interpolate.changing_work_ms)} ms, ratio ${(f.routing.changing_work_ms / f.interpolate.changing_work_ms).toFixed(3)}): ` +
              `${ms(added)} ms added, ${verdict(added, frame_goal_ms)}`);
} else {
  console.log(`\nGoal, the routing view and overlay add at most ${frame_goal_ms} ms to a frame: not measured (no Chromium frame run)`);
}
if (chromium_simd && chromium_simd.rotation_sweep_ms !== undefined) {
  console.log(`Goal, a ${chromium_simd.rotation_angles}-angle rotation sweep in at most ${sweep_goal_ms} ms (Chromium, SIMD128): ` +
              `${ms(chromium_simd.rotation_sweep_ms)} ms, ${verdict(chromium_simd.rotation_sweep_ms, sweep_goal_ms)}`);
} else {
  console.log(`Goal, a 25-angle rotation sweep in at most ${sweep_goal_ms} ms: not measured (no Chromium run)`);
}

// Wasm float arithmetic is deterministic, so the Chromium rows run exactly the node rows' computation
// (the same core objects, linked into the site); the targets differ only in summation order and FMA.
// The threaded GEMM splits C, never K, so its rows equal the one-thread rows of the same target.
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
  const name = `${label[r.target] || r.target} (${r.threads} thread${r.threads > 1 ? 's' : ''})`;
  console.log(`| ${name} | ${r.correct}/${r.digits} | ${r.lengths_sum.toFixed(6)} | ${max_diff.toExponential(1)} | ` +
              `${r.mask_sum.toFixed(3)} | ${r.sweep_sum.toFixed(3)} | ${agrees ? 'yes' : 'NO'} |`);
}
if (browser.length) console.log('(Chromium rows: the node rows\' wasm code, so the same checksums.)');
if (browser.length === 0 && process.argv[3] === '1')
  console.log('\nbrowser_bench: no results (see its messages above; scripts/install_web_test_deps.sh installs Chromium and playwright-core)');
process.exit(all_agree ? 0 : 1);
EOF
