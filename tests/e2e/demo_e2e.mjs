// The browser demo end to end, in headless Chromium driven by playwright-core:
//   node tests/e2e/demo_e2e.mjs [--site build/wasm/site] [--data data/mnist] [--digits 30] [--out build/e2e]
//                               [--tracer skeleton|rows] [--verbose]
// a) the page loads the model; b) real MNIST test digits, traced into pen strokes, drawn with the mouse,
// are classified; c) a share link restores the exact state in a new browser context; d) damaged or
// hostile links show an error and an empty view, and the page keeps running; e) touch drawing on a
// phone-sized page; f) screenshots into --out.
// Exit 0: pass, 1: fail, 77: skipped (no chromium, no playwright-core or no MNIST).
import fs from 'node:fs';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startServer } from '../../web/serve.mjs';
import { first_indices_per_class } from '../../web/tools/make_gallery.mjs';
import { browser_test_preflight, default_mnist_dir, forward_page_console, launch_chromium, parse_options,
         repo_root, wait_demo_ready, wait_frames } from './chromium.mjs';
import { trace_digit, trace_methods } from './trace_digits.mjs';

const usage = 'usage: node tests/e2e/demo_e2e.mjs [--site DIR] [--data DIR] [--digits 30] [--out DIR] ' +
              '[--tracer skeleton|rows] [--verbose]';

// The shipped model scores 99.07% on the MNIST test set. Tracing keeps the shape but loses the stroke's
// varying width and fine detail, and the demo's drawing-to-MNIST preprocessing (crop, 20-pixel box,
// centre of mass) adds its own error. Measured in this test (skeleton tracer, Chromium 156, SwiftShader):
// 30/30 of the default digits, 97/100 over the first 10 of each class; offline (strokes rasterised and
// scored with `capsnet eval`) 96% over the first 100 of each class. At a true 96%, 30 digits have a
// standard error of 3.6 points: 80% (24 of 30) is 4.5 standard errors below, so it does not flake when
// the model or the preprocessing is tuned, while a broken pipeline (wrong orientation, scale, offset or
// pen width, near chance) fails it by far. The drawn digits are fixed, so a run is nearly deterministic.
const min_accuracy = 0.8;

const viewport = { width: 1280, height: 800 };
const min_move_ms = 20;   // drags need 20-30 ms between moves (toolchain.md, pitfall 10)
// The drawing canvas takes every pointer event as it arrives (GLFW callbacks), but ImGui's widgets read
// the mouse once per frame; pacing each move by a frame keeps the test valid either way. Long segments
// get points every 4 MNIST pixels (a drag, not a jump) but no more: on SwiftShader every move costs one
// to three frames.
const max_step = 4 / 28;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ok = (flag) => (flag ? 'OK' : 'FAILED');

// Resolves once the app has rendered one more frame, so an input event sent before it has been seen by
// the app's per-frame input polling (ImGui reads the mouse once per frame). 2 s at most.
function next_frame(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const start = window.capsnetDemo.frameCount();
    const deadline = performance.now() + 2000;
    const tick = () => {
      if (window.capsnetDemo.frameCount() > start || performance.now() > deadline) resolve();
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }));
}

// One input event, then at least one app frame and min_move_ms before the next.
async function paced(page, send) {
  const start = Date.now();
  await send();
  await next_frame(page);
  const left = min_move_ms - (Date.now() - start);
  if (left > 0) await sleep(left);
}

// Adds points so consecutive ones are at most max_step apart (normalised canvas units).
function densify(stroke) {
  const out = [stroke[0]];
  for (let k = 1; k < stroke.length; k++) {
    const [a, b] = [stroke[k - 1], stroke[k]];
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / max_step));
    for (let s = 1; s <= steps; s++) out.push([a[0] + (b[0] - a[0]) * s / steps, a[1] + (b[1] - a[1]) * s / steps]);
  }
  return out;
}

function to_page(rect, [x, y]) {
  return [rect.x + x * rect.width, rect.y + y * rect.height];
}

async function draw_with_mouse(page, rect, strokes) {
  for (const stroke of strokes) {
    const points = densify(stroke).map((p) => to_page(rect, p));
    await paced(page, () => page.mouse.move(...points[0]));
    await paced(page, () => page.mouse.down());
    // A one-point stroke (a dot) still needs a move for most drawing code to lay ink.
    const path = points.length > 1 ? points.slice(1) : [[points[0][0] + 0.5, points[0][1]]];
    for (const point of path) await paced(page, () => page.mouse.move(...point));
    await paced(page, () => page.mouse.up());
  }
}

async function draw_with_touch(page, cdp, rect, stroke) {
  const points = densify(stroke).map((p) => to_page(rect, p));
  const touch = ([x, y]) => [{ x, y, radiusX: 4, radiusY: 4, force: 1, id: 0 }];
  const send = (type, touch_points) => paced(page, () => cdp.send('Input.dispatchTouchEvent',
                                                                  { type, touchPoints: touch_points }));
  await send('touchStart', touch(points[0]));
  for (const point of points.slice(1)) await send('touchMove', touch(point));
  await send('touchEnd', []);
}

const state = (page) => page.evaluate(() => window.capsnetDemo.state());

async function open_demo(browser, url, context_options = { viewport }, label = 'page', verbose = false) {
  const context = await browser.newContext(context_options);
  const page = await context.newPage();
  forward_page_console(page, `  [${label}]`, { verbose });
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  await wait_demo_ready(page);
  await wait_frames(page, 2);
  return { context, page };
}

// The digits to draw: the first ones of each class, interleaved (0, 1, ..., 9, 0, 1, ...).
function pick_digits(mnist, count) {
  const per_class = Math.ceil(count / 10);
  const by_class = first_indices_per_class(mnist.labels, per_class);
  const order = [];
  for (let k = 0; k < per_class; k++) {
    for (let digit = 0; digit < 10; digit++) order.push(by_class[digit * per_class + k]);
  }
  return order.slice(0, count);
}

async function check_traced_digits(page, mnist, indices, tracer) {
  let correct = 0;
  for (const [n, index] of indices.entries()) {
    const label = mnist.labels[index];
    const { strokes, pen_width } = trace_digit(mnist.images.subarray(index * 784, (index + 1) * 784), tracer);
    await page.evaluate((width) => { window.capsnetDemo.clear(); window.capsnetDemo.setPenWidth(width); }, pen_width);
    await wait_frames(page, 1);
    const rect = await page.evaluate(() => window.capsnetDemo.canvasRect());
    await draw_with_mouse(page, rect, strokes);
    await wait_frames(page, 2);
    const s = await state(page);
    const right = s.prediction === label;
    if (right) correct++;
    const note = s.strokes === 0 ? '  (no stroke registered)' : '';
    console.log(`digit ${String(n).padStart(2)}: test #${String(index).padStart(4)} label ${label} ` +
                `prediction ${String(s.prediction).padStart(2)} ${right ? 'OK   ' : 'WRONG'} ` +
                `lengths [${s.lengths.map((v) => v.toFixed(2)).join(' ')}]${note}`);
  }
  return correct;
}

// c) The share link: a new context at <url>#<fragment> must show the same state, bit for bit.
async function check_share_link(browser, url, page, verbose) {
  await page.evaluate(() => window.capsnetDemo.selectCapsule(3));
  await wait_frames(page, 2);
  const original = await state(page);
  if (!original.fragment) {
    console.log('share link: FAILED: state().fragment is empty');
    return false;
  }
  const { context, page: restored_page } =
    await open_demo(browser, `${url}#${original.fragment}`, { viewport }, 'share', verbose);
  const restored = await state(restored_page);
  await context.close();
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const fields = ['input', 'selectedCapsule', 'sweep', 'capsuleEdited', 'capsule', 'prediction', 'lengths'];
  const differ = fields.filter((field) => !same(original[field], restored[field]));
  if (restored.error) differ.push(`error '${restored.error}'`);
  const verdict = differ.length ? `FAILED: differs in ${differ.join(', ')}` : 'OK';
  console.log(`share link (${original.fragment.length} characters): ${verdict}`);
  const show = (value) => JSON.stringify(value).slice(0, 200);
  for (const field of differ.filter((f) => fields.includes(f)))
    console.log(`  ${field}: original ${show(original[field])} restored ${show(restored[field])}`);
  return differ.length === 0;
}

async function check_download(page) {
  const state_now = await state(page);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }),
                                        page.evaluate(() => window.capsnetDemo.downloadPng())]);
  const bytes = fs.readFileSync(await download.path());
  const signature = bytes.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]));
  const width = bytes.readUInt32BE(16), height = bytes.readUInt32BE(20);  // the IHDR chunk
  const name = download.suggestedFilename();
  const good = signature && width === 11 * 30 - 2 && height === 16 * 30 - 2 &&
               name === `capsnet-capsule${state_now.selectedCapsule}-interpolation.png`;
  console.log(`PNG download: ${name}, ${bytes.length} bytes, ${width}x${height}: ${ok(good)}`);
  return good;
}

// d) Damaged and hostile links: the model still loads, the view is empty with an error, frames go on.
function hostile_fragments(valid) {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const random_text = (n) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  // Flip one payload character to another of the same kind, so the link still looks well formed.
  const at = Math.floor(valid.length / 2);
  const c = valid[at];
  const next_of = (set) => set[(set.indexOf(c) + 1) % set.length];
  const flipped_char = /[0-9]/.test(c) ? next_of('0123456789') : /[a-z]/.test(c) ? next_of('abcdefghijklmnopqrstuvwxyz')
                     : /[A-Z]/.test(c) ? next_of('ABCDEFGHIJKLMNOPQRSTUVWXYZ') : c === 'A' ? 'B' : 'A';
  return [
    ['garbage', `${random_text(40)}!$'()*+,;=:@/?`],
    ['truncated by half', valid.slice(0, Math.floor(valid.length / 2))],
    [`character ${at} flipped`, valid.slice(0, at) + flipped_char + valid.slice(at + 1)],
    ['100,000 characters', random_text(100_000)],
    ['%ZZ', '%ZZ'],
    ['non-ASCII', 'ümlaut-数字-🙂-\u202e'],
  ];
}

async function check_hostile_links(browser, url, valid, verbose) {
  let all = true;
  for (const [name, fragment] of hostile_fragments(valid)) {
    let problems = [];
    let context;
    try {
      const opened = await open_demo(browser, `${url}#${fragment}`, { viewport }, `hostile: ${name}`, verbose);
      context = opened.context;
      const s = await state(opened.page);
      if (typeof s.error !== 'string' || !s.error) problems.push('no error message');
      if (s.strokes !== 0) problems.push(`strokes = ${s.strokes}`);
      if (s.input.some((v) => v !== 0)) problems.push('input not blank');
      const before = await opened.page.evaluate(() => window.capsnetDemo.frameCount());
      await wait_frames(opened.page, 1, { since: before, timeout_ms: 2000 })
        .catch(() => problems.push('no frame within 2 s'));
      const verdict = problems.length ? `FAILED: ${problems.join(', ')}` : 'OK';
      console.log(`hostile link (${name}): ${verdict}; error: '${s.error}'`);
    } catch (error) {
      problems.push(error.message.split('\n')[0]);
      console.log(`hostile link (${name}): FAILED: ${problems.join(', ')}`);
    } finally {
      if (context) await context.close();
    }
    all &&= problems.length === 0;
  }
  return all;
}

// e) Touch: a phone-sized page, one stroke through CDP touch events.
async function check_touch(browser, url, out_dir, verbose) {
  const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 3 };
  const { context, page } = await open_demo(browser, url, phone, 'phone', verbose);
  try {
    const rect = await page.evaluate(() => window.capsnetDemo.canvasRect());
    const cdp = await context.newCDPSession(page);
    // A 2-like hook: over the top, then down to the bottom left, then along the bottom.
    const stroke = [[0.3, 0.3], [0.45, 0.2], [0.65, 0.25], [0.68, 0.4], [0.5, 0.6], [0.3, 0.78], [0.5, 0.78],
                    [0.72, 0.78]];
    await draw_with_touch(page, cdp, rect, stroke);
    await wait_frames(page, 2);
    const s = await state(page);
    const inked = s.input.some((v) => v !== 0);
    const file = path.join(out_dir, 'demo-phone.png');
    await page.screenshot({ path: file });
    const pass = s.strokes === 1 && inked;
    const [x, y, width, height] = [rect.x, rect.y, rect.width, rect.height].map(Math.round);
    console.log(`touch: ${pass ? 'OK' : 'FAILED'}: strokes ${s.strokes}, input ${inked ? 'inked' : 'blank'}, ` +
                `prediction ${s.prediction}, canvas ${width}x${height} at (${x}, ${y}); screenshot ${file}`);
    return pass;
  } finally {
    await context.close();
  }
}

async function main() {
  let options;
  try {
    options = parse_options(process.argv.slice(2), {
      site: path.join(repo_root, 'build', 'wasm', 'site'), data: default_mnist_dir(), digits: '30',
      out: path.join(repo_root, 'build', 'e2e'), tracer: 'skeleton',
    }, { flags: ['verbose', 'help'] });
    if (options.help) {
      console.log(usage);
      return 0;
    }
    if (!/^\d+$/.test(options.digits) || Number(options.digits) < 1)
      throw new Error(`--digits needs a positive integer, got '${options.digits}'`);
    if (!trace_methods.includes(options.tracer)) throw new Error(`--tracer must be one of ${trace_methods.join(', ')}`);
  } catch (error) {
    console.error(`demo_e2e: error: ${error.message}\n${usage}`);
    return 1;
  }

  const preflight = await browser_test_preflight('demo_e2e', options);
  if (preflight.exit_code !== undefined) return preflight.exit_code;
  const { mnist } = preflight;
  mkdirSync(options.out, { recursive: true });

  const started = Date.now();
  const server = await startServer({ root: options.site, port: 0 });
  let browser;
  const result = { correct: 0, total: 0, share: false, hostile: false, touch: false, download: false };
  try {
    browser = await launch_chromium();
    console.log(`demo_e2e: ${server.url} in Chromium ${browser.version()}, ${options.tracer} tracer, ` +
                `${options.digits} digits`);

    // a) The page loads.
    let main_page;
    try {
      main_page = await open_demo(browser, server.url, { viewport }, 'main', options.verbose);
    } catch (error) {
      console.log(`demo_e2e: FAILED: the demo did not start: ${error.message.split('\n')[0]}`);
      return 1;
    }
    const { page } = main_page;
    const loaded = await state(page);
    const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
    console.log(`page ready after ${seconds()} s (loaded ${loaded.loaded}, error '${loaded.error}')`);

    // b) Traced digits.
    const indices = pick_digits(mnist, Number(options.digits));
    result.total = indices.length;
    result.correct = await check_traced_digits(page, mnist, indices, options.tracer);
    const accuracy = result.correct / result.total;
    console.log(`traced digits: ${result.correct}/${result.total} correct (${(100 * accuracy).toFixed(1)}%, ` +
                `need ${100 * min_accuracy}%) after ${seconds()} s`);

    // f) The desktop screenshot (the last digit drawn, capsule 3 selected).
    result.share = await check_share_link(browser, server.url, page, options.verbose);
    const screenshot = path.join(options.out, 'demo.png');
    await page.screenshot({ path: screenshot });
    console.log(`screenshot: ${screenshot}`);

    // "Download PNG": the interpolation grid as a PNG of 16 rows (dimensions) x 11 columns (offsets) of
    // 28-pixel tiles with 2-pixel gaps.
    result.download = await check_download(page);

    // d) and e).
    const valid = (await state(page)).fragment || 'v1';
    result.hostile = await check_hostile_links(browser, server.url, valid, options.verbose);
    result.touch = await check_touch(browser, server.url, options.out, options.verbose).catch((error) => {
      console.log(`touch: FAILED: ${error.message.split('\n')[0]}`);
      return false;
    });
    await main_page.context.close();
  } finally {
    if (browser) await browser.close().catch(() => {});
    await server.close();
  }

  const accuracy = result.total ? result.correct / result.total : 0;
  console.log(`e2e: traced digits ${result.correct}/${result.total} correct (${(100 * accuracy).toFixed(1)}%), ` +
              `share link ${ok(result.share)}, hostile links ${ok(result.hostile)}, touch ${ok(result.touch)}, ` +
              `PNG download ${ok(result.download)} ` +
              `(${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return accuracy >= min_accuracy && result.share && result.hostile && result.touch && result.download ? 0 : 1;
}

// A hung browser must fail the test rather than hold ctest until its own timeout.
const watchdog = setTimeout(() => {
  console.log('demo_e2e: FAILED: still running after 12 minutes');
  process.exit(1);
}, 12 * 60 * 1000);
watchdog.unref();

main().then((code) => process.exit(code), (error) => {
  console.log(`demo_e2e: FAILED: ${error.stack || error.message}`);
  process.exit(1);
});
