// The demo's own timings in headless Chromium:
// - capsnetDemo.benchmark, measured inside the wasm, each the median of --repeats runs: classify, the mask
//   grid, the interpolation grid, the routing view with its overlay and heatmap pictures (routing_ms), one
//   posed input (pose_input_ms), the pose lab's 25-angle rotation sweep (rotation_sweep_ms) and one
//   fine-tuning step of 16 images with the Teach panel's micro-batches (finetune_head_cold_ms, the first
//   step computing the cached features; finetune_head_step_ms; finetune_all_step_ms); with the page's
//   GEMM threads (`threads`: one per core, at most 4) and again on one thread (`one_thread`: {...});
// - the app's work per frame with each right-hand panel shown (Interpolate, Routing, Pose lab), side by
//   side in one run, while the input changes every frame (setPose alternating rotation +-1 degree, so the
//   whole analysis is recomputed each frame) and while nothing changes (drawing only). "Work" is the time
//   inside Emscripten's main-loop iteration (Module.preMainLoop to postMainLoop: events, ImGui, the lazy
//   recomputation, the WebGL calls); the frame interval (requestAnimationFrame to the next) is reported
//   beside it. --frames frames per panel and case, in --frame-rounds interleaved rounds so a busy moment of
//   a shared machine hits every panel alike.
//   node bench/browser_bench.mjs --site <site folder> [--site <another build> ...] [--repeats 20]
//                                [--frames 60] [--frame-rounds 3] [--verbose]
// One line per site, for scripts to collect:
//   browser_bench: {"site":"build/wasm/site","name":"wasm","classify_ms":...,"mask_grid_ms":...,...,
//                   "frames":{"interpolate":{"changing_work_ms":...,"changing_interval_ms":...,
//                   "idle_work_ms":...,"idle_interval_ms":...},"routing":{...},"pose_lab":{...}}}
// Exit 77 when chromium or playwright-core is missing (scripts/install_web_test_deps.sh installs them).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startServer } from '../web/serve.mjs';
import { browser_missing_reason, forward_page_console, launch_chromium, parse_options, skip_code,
         wait_demo_ready } from '../tests/e2e/chromium.mjs';

const usage = 'usage: node bench/browser_bench.mjs --site <site folder> [--site ...] [--repeats 20] [--frames 60] ' +
              '[--frame-rounds 3] [--verbose]';

// The frames show a 28x28 ring (tests/test_share_link.cpp's golden version-1 link, opened through the
// URL): a real input, so the prediction, the overlay and every picture are drawn. The work per frame does
// not depend on what the input shows (every pass is dense), only on it not being blank.
const ring_link = 'v1.D2NhcHNuZXQtc2VlZC1pOAAG__oAMgAAAiV7My4hpD4sAERpWOcaeHm0mStaWrArEY2aKhCCJ3uX' +
                  'kiDTEa5WKslh69qcNXAkRytbdSdRDqhIfEz2CdKYcudCmZwXCbU7xeYmivbD0OXzmstP9vvEFA8a9de-vxCuuIWx-coBl2Y' +
                  '4_daWxclh9D7OWNzcipcwae-FN3hG3gJ4Jyfd7egY4YAAAPeM';
const panels = [['interpolate', 0], ['routing', 1], ['pose_lab', 2]];

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
};
const round3 = (x) => Math.round(x * 1000) / 1000;

// A short name for the build: the folder's name, or its parent's when the folder is just "site"
// (build/wasm/site and build/wasm-nosimd/site).
function site_name(site) {
  const resolved = path.resolve(site);
  const base = path.basename(resolved);
  return base === 'site' ? path.basename(path.dirname(resolved)) : base;
}

// `count` frames of one panel: per frame the main-loop iteration's duration and the interval since the
// previous frame began. changing: each frame first sets the pose to the other of rotation +1 / -1 degree
// (a new input: classify, mask grid, routing view and pictures, interpolation grid, slider picture), as a
// pen or a pose slider does. The pose sweep stays hidden (it would add 46 forward passes per change).
async function measure_frames(page, tab, changing, count) {
  await page.evaluate((t) => window.capsnetDemo.setViewTab(t), tab);
  // The tab bar takes the choice at its next frames; then let the last recomputation finish.
  await page.evaluate(() => new Promise((resolve) => {
    const start = window.capsnetDemo.frameCount();
    const poll = () => (window.capsnetDemo.frameCount() >= start + 4 && !window.capsnetDemo.state().stale
                        ? resolve() : requestAnimationFrame(poll));
    poll();
  }));
  return page.evaluate(([changing_input, frames]) => new Promise((resolve, reject) => {
    const demo = window.capsnetDemo;
    const work = [], intervals = [];
    let began = 0, flip = false, seen = 0;
    const warm_up = 2;
    const timer = setTimeout(() => {
      Module.preMainLoop = Module.postMainLoop = undefined;
      reject(new Error(`only ${seen} frames in 120 s`));
    }, 120_000);
    Module.preMainLoop = () => {
      if (changing_input) {
        flip = !flip;
        demo.setPose({ rotation: flip ? 1 : -1 });
      }
      const now = performance.now();
      if (began && seen > warm_up) intervals.push(now - began);
      began = now;
    };
    Module.postMainLoop = () => {
      if (++seen > warm_up) work.push(performance.now() - began);
      if (work.length < frames) return;
      Module.preMainLoop = Module.postMainLoop = undefined;
      clearTimeout(timer);
      resolve({ work, intervals });
    };
  }), [changing, count]);
}

// Every panel, changing and idle, in interleaved rounds; medians over all rounds.
async function bench_frames(page, frames, rounds) {
  const samples = {};
  for (let round = 0; round < rounds; round++) {
    for (const changing of [true, false]) {
      for (const [name, tab] of panels) {
        const key = `${name}.${changing ? 'changing' : 'idle'}`;
        const { work, intervals } = await measure_frames(page, tab, changing, Math.ceil(frames / rounds));
        samples[key] ??= { work: [], intervals: [] };
        samples[key].work.push(...work);
        samples[key].intervals.push(...intervals);
      }
    }
  }
  const result = {};
  for (const [name] of panels) {
    result[name] = {};
    for (const kind of ['changing', 'idle']) {
      const { work, intervals } = samples[`${name}.${kind}`];
      result[name][`${kind}_work_ms`] = round3(median(work));
      result[name][`${kind}_interval_ms`] = round3(median(intervals));
    }
  }
  result.frames_per_case = samples['interpolate.changing'].work.length;
  await page.evaluate(() => { window.capsnetDemo.setPose({}); window.capsnetDemo.setViewTab(0); });
  return result;
}

async function bench_site(browser, site, repeats, frames, rounds, verbose) {
  const server = await startServer({ root: site, port: 0 });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await context.newPage();
    forward_page_console(page, `  [${site_name(site)}]`, { verbose });
    await page.goto(`${server.url}#${ring_link}`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await wait_demo_ready(page);
    const opened = await page.evaluate(() => window.capsnetDemo.state());
    if (opened.error) throw new Error(`the ring link did not open: ${opened.error}`);
    // The page's own thread count first (one per core, at most 4), then the same work on one thread.
    const timed = async (threads) => {
      const used = await page.evaluate((t) => window.capsnetDemo.setGemmThreads(t), threads);
      const timings = await page.evaluate((n) => window.capsnetDemo.benchmark(n), repeats);
      // performance.now() is coarsened in the browser anyway: microseconds are all the digits there are.
      for (const [key, value] of Object.entries(timings)) {
        if (key.endsWith('_ms')) timings[key] = round3(value);
      }
      return { threads: used, ...timings };
    };
    const page_threads = await page.evaluate(() => window.capsnetDemo.gemmThreads());
    const timings = await timed(page_threads);
    const one_thread = page_threads > 1 ? await timed(1) : null;
    await page.evaluate((t) => window.capsnetDemo.setGemmThreads(t), page_threads);
    const frame_times = frames > 0 ? await bench_frames(page, frames, rounds) : null;
    return { site, name: site_name(site), repeats, ...timings, ...(one_thread ? { one_thread } : {}),
             ...(frame_times ? { frames: frame_times } : {}) };
  } finally {
    await context.close();
    await server.close();
  }
}

async function main() {
  let options;
  try {
    options = parse_options(process.argv.slice(2), { repeats: '20', frames: '60', 'frame-rounds': '3' },
                            { multi: ['site'], flags: ['verbose', 'help'] });
    if (options.help) {
      console.log(usage);
      return 0;
    }
    if (options.site.length === 0) throw new Error('at least one --site is needed');
    if (!/^\d+$/.test(options.repeats) || Number(options.repeats) < 1)
      throw new Error(`--repeats needs a positive integer, got '${options.repeats}'`);
    if (!/^\d+$/.test(options.frames)) throw new Error(`--frames needs a count (0: no frame timing), got '${options.frames}'`);
    if (!/^\d+$/.test(options['frame-rounds']) || Number(options['frame-rounds']) < 1)
      throw new Error(`--frame-rounds needs a positive integer, got '${options['frame-rounds']}'`);
    for (const site of options.site) {
      if (!existsSync(path.join(site, 'index.html'))) throw new Error(`${site} has no index.html (build it first)`);
    }
  } catch (error) {
    console.error(`browser_bench: error: ${error.message}\n${usage}`);
    return 1;
  }
  const missing = browser_missing_reason();
  if (missing) {
    console.log(`browser_bench: SKIPPED: ${missing}`);
    return skip_code;
  }
  const browser = await launch_chromium();
  let failed = false;
  try {
    console.error(`browser_bench: Chromium ${browser.version()}, ${options.repeats} repeats per timing, ` +
                  `${options.frames} frames per panel and case in ${options['frame-rounds']} rounds`);
    for (const site of options.site) {
      try {
        const timings = await bench_site(browser, site, Number(options.repeats), Number(options.frames),
                                         Number(options['frame-rounds']), options.verbose);
        console.log(`browser_bench: ${JSON.stringify(timings)}`);
      } catch (error) {
        console.error(`browser_bench: ${site}: error: ${error.message.split('\n')[0]}`);
        failed = true;
      }
    }
  } finally {
    await browser.close();
  }
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (error) => {
  console.error(`browser_bench: error: ${error.stack || error.message}`);
  process.exit(1);
});
