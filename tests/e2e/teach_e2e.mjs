// The Teach panel end to end in headless Chromium (issue 15):
//   node tests/e2e/teach_e2e.mjs [--site build/wasm/site] [--data data/mnist] [--out build/e2e] [--verbose]
// a) a person's distinctive style of one digit (MNIST test sevens turned a quarter, exact pixel moves, a
//    shape MNIST never shows) is taught: 8 examples added to the personal set, which survives a reload;
// b) "Fine-tune" with the defaults (digit capsules + decoder, 40 steps of 16 images) runs spread over
//    frames: the page keeps drawing;
// c) the personal examples become correct, 20 unseen sevens of the same style are recognised more often
//    than before, and accuracy on the 500 MNIST test digits drops by at most 1 pp;
// d) a share link made now says the model was fine-tuned, and a page opening it says so;
// e) "Download model" saves safetensors recording the trained layers; "Reset" returns to the shipped model.
// Exit 0: pass, 1: fail, 77: skipped (no chromium, no playwright-core or no MNIST).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startServer } from '../../web/serve.mjs';
import { browser_test_preflight, default_mnist_dir, forward_page_console, launch_chromium, parse_options,
         repo_root, wait_demo_ready, wait_frames } from './chromium.mjs';

const usage = 'usage: node tests/e2e/teach_e2e.mjs [--site DIR] [--data DIR] [--out DIR] [--steps 40] ' +
              '[--learning-rate R (default: the panel\'s, 1e-4 or 5e-5 with --all-layers)] [--all-layers] [--verbose]';
const viewport = { width: 1280, height: 800 };
const style_digit = 7, taught = 8, unseen = 20;
// The page's check set is the first 500 test digits: the styled sevens come from after it.
const first_styled_index = 500;
// Issue 15's bound on forgetting: MNIST accuracy (500 test digits) drops by at most 1 pp.
const max_accuracy_drop = 0.01;
// "Responsive": the frames keep coming while it trains. Unspread, 40 steps would block one frame for
// several seconds (a step of the head is ~0.1-0.3 s); spread, a frame runs one micro-batch of 4 images.
// 1 s is a generous bound for SwiftShader on a loaded 2-core machine, and far below one blocked run.
const max_frame_interval_ms = 1000;
const ok = (flag) => (flag ? 'OK' : 'FAILED');

// A quarter turn (exact pixel moves): the pixel at (row y, column x) comes from (row x, column 27 - y).
function quarter_turn(image) {
  const out = new Uint8Array(784);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[y * 28 + x] = image[x * 28 + (27 - y)];
  return out;
}

function styled_sevens(mnist, count, skip) {
  const images = [];
  for (let i = first_styled_index; i < mnist.labels.length && images.length < count; i++) {
    if (mnist.labels[i] !== style_digit) continue;
    if (skip > 0) { skip--; continue; }
    images.push(quarter_turn(mnist.images.subarray(i * 784, (i + 1) * 784)));
  }
  return images;
}

const state = (page) => page.evaluate(() => window.capsnetDemo.state());

async function open_demo(context, url, label, verbose) {
  const page = await context.newPage();
  forward_page_console(page, `  [${label}]`, { verbose });
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  await wait_demo_ready(page);
  await wait_frames(page, 2);
  return page;
}

// The image on the canvas, classified: waits until the page has analysed exactly these pixels.
async function show(page, image) {
  await page.evaluate((pixels) => window.capsnetDemo.setInputImage(pixels), Array.from(image));
  await page.waitForFunction((pixels) => {
    const s = window.capsnetDemo.state();
    return !s.stale && s.input.every((v, i) => v === pixels[i]);
  }, Array.from(image), { timeout: 30_000, polling: 20 });
  return state(page);
}

async function count_recognised(page, images) {
  let correct = 0;
  for (const image of images) correct += (await show(page, image)).prediction === style_digit;
  return correct;
}

// Polls until the Teach panel is idle again with `done(teach)` true; logs the progress now and then and
// returns the longest gap between two frames seen while it ran.
async function wait_teach(page, done, what, timeout_ms = 600_000) {
  const started = Date.now();
  let last_log = 0;
  await page.evaluate(() => {
    window.__frameGaps = [];
    let last = performance.now();
    const tick = () => {
      const now = performance.now();
      if (window.__frameGaps === null) return;
      window.__frameGaps.push(now - last);
      last = now;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  for (;;) {
    const teach = (await state(page)).teach;
    if (teach.phase === 'idle' && done(teach)) break;
    if (Date.now() - started > timeout_ms) throw new Error(`${what}: not done after ${timeout_ms / 1000} s (${teach.phase})`);
    if (Date.now() - last_log > 5000) {
      last_log = Date.now();
      const step = teach.stepsDone !== undefined ? `, step ${teach.stepsDone}, loss ${teach.loss.toFixed(4)}` : '';
      console.log(`  ${what}: ${teach.phase}${step} after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const frame_gaps = await page.evaluate(() => { const g = window.__frameGaps; window.__frameGaps = null; return g; });
  const sorted = [...frame_gaps].sort((a, b) => a - b);
  return { seconds: (Date.now() - started) / 1000, frames: frame_gaps.length,
           median_gap_ms: sorted[Math.floor(sorted.length / 2)] || 0, max_gap_ms: sorted[sorted.length - 1] || 0 };
}

function safetensors_metadata(bytes) {
  const header_size = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + header_size)));
  return { metadata: header.__metadata__ || {}, tensors: Object.keys(header).filter((k) => k !== '__metadata__').length };
}

async function main() {
  let options;
  try {
    options = parse_options(process.argv.slice(2), {
      site: path.join(repo_root, 'build', 'wasm', 'site'), data: default_mnist_dir(),
      out: path.join(repo_root, 'build', 'e2e'), steps: '40', 'learning-rate': '0',
    }, { flags: ['verbose', 'all-layers'] });
  } catch (error) {
    console.log(`teach_e2e: ${error.message}\n${usage}`);
    return 2;
  }
  const preflight = await browser_test_preflight('teach_e2e', options);
  if (preflight.exit_code !== undefined) return preflight.exit_code;
  const { mnist } = preflight;
  if (!existsSync(path.join(options.site, 'gallery', 'mnist-train-mix.bin'))) {
    console.log(`teach_e2e: FAILED: ${options.site} has no gallery/mnist-train-mix.bin (build the wasm demo site with MNIST)`);
    return 1;
  }
  mkdirSync(options.out, { recursive: true });

  const started = Date.now();
  const server = await startServer({ root: options.site, port: 0 });
  let browser;
  const checks = {};
  try {
    browser = await launch_chromium();
    console.log(`teach_e2e: ${server.url} in Chromium ${browser.version()}`);
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    let page = await open_demo(context, server.url, 'main', options.verbose);
    const loaded = (await state(page)).teach;
    checks.data = loaded.mixDigits === 1000 && loaded.checkDigits === 500 && loaded.labels.length === 0;
    console.log(`teach data: ${loaded.mixDigits} training digits to mix in, ${loaded.checkDigits} to check, ` +
                `${loaded.labels.length} stored examples: ${ok(checks.data)}`);
    await page.evaluate(() => window.capsnetDemo.setViewTab(3));

    // a) The style, taught; the personal set survives a reload.
    const personal = styled_sevens(mnist, taught, 0);
    const others = styled_sevens(mnist, unseen, taught);
    const unseen_before = await count_recognised(page, others);
    for (const image of personal) {
      await show(page, image);
      const refused = await page.evaluate((label) => window.capsnetDemo.teachAdd(label), style_digit);
      if (refused) throw new Error(`teachAdd refused: ${refused}`);
    }
    const blank_refused = await page.evaluate(() => { window.capsnetDemo.clear(); return window.capsnetDemo.teachAdd(3); });
    await page.reload({ waitUntil: 'domcontentloaded' });
    await wait_demo_ready(page);
    await wait_frames(page, 2);
    const reloaded = (await state(page)).teach;
    checks.stored = reloaded.labels.length === taught && reloaded.labels.every((l) => l === style_digit) &&
                    blank_refused !== '';
    console.log(`personal set: ${taught} added, ${reloaded.labels.length} after a reload; a blank canvas refused ` +
                `('${blank_refused}'): ${ok(checks.stored)}`);
    await page.evaluate(() => window.capsnetDemo.setViewTab(3));

    // b) Fine-tune with the defaults, spread over frames.
    const settings = { allLayers: Boolean(options['all-layers']), steps: Number(options.steps),
                       learningRate: Number(options['learning-rate']) };
    console.log(`fine-tuning ${settings.allLayers ? 'every layer' : 'the digit capsules and decoder'}, ` +
                `${settings.steps} steps, learning rate ${settings.learningRate || "the panel's default"}`);
    const refused = await page.evaluate((chosen) => window.capsnetDemo.fineTune(chosen), settings);
    if (refused) throw new Error(`fineTune refused: ${refused}`);
    const run = await wait_teach(page, (teach) => teach.result && teach.result.personalAfter.length === taught,
                                 'fine-tune');
    const result = (await state(page)).teach.result;
    checks.responsive = run.max_gap_ms <= max_frame_interval_ms && run.frames > 10;
    console.log(`fine-tuning: ${result.steps} steps in ${result.seconds.toFixed(1)} s (${(1000 * result.seconds / result.steps).toFixed(0)} ms a step), ` +
                `whole run with the checks ${run.seconds.toFixed(1)} s; ${run.frames} frames, median gap ` +
                `${run.median_gap_ms.toFixed(0)} ms, longest ${run.max_gap_ms.toFixed(0)} ms (at most ${max_frame_interval_ms}): ` +
                `${ok(checks.responsive)}`);
    await page.screenshot({ path: path.join(options.out, 'teach.png') });

    // c) Learnt, and little forgotten.
    const right = (predictions) => predictions.filter((p) => p === style_digit).length;
    const before = right(result.personalBefore), after = right(result.personalAfter);
    const unseen_after = await count_recognised(page, others);
    checks.learnt = before <= taught / 2 && after === taught && unseen_after > unseen_before;
    checks.forgot_little = result.mnistAfter >= result.mnistBefore - max_accuracy_drop - 1e-9;
    console.log(`personal examples right: ${before} -> ${after} of ${taught}; unseen styled sevens ${unseen_before} -> ` +
                `${unseen_after} of ${unseen}: ${ok(checks.learnt)}`);
    console.log(`MNIST test (500 digits): ${(100 * result.mnistBefore).toFixed(1)}% -> ${(100 * result.mnistAfter).toFixed(1)}% ` +
                `(may drop ${100 * max_accuracy_drop} pp): ${ok(checks.forgot_little)}`);

    // d) The share link says so.
    const fragment = (await state(page)).fragment;
    const other = await browser.newContext({ viewport });
    const opened = await open_demo(other, `${server.url}#${fragment}`, 'link', options.verbose);
    const note = (await state(opened)).linkNote;
    await other.close();
    checks.link = note.includes('fine-tuned') && note.includes('the shipped model');
    console.log(`share link of a fine-tuned view: the opening page says '${note.slice(0, 80)}...': ${ok(checks.link)}`);

    // e) Download, then Reset.
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }),
                                          page.evaluate(() => window.capsnetDemo.downloadModel())]);
    const saved = path.join(options.out, download.suggestedFilename());
    await download.saveAs(saved);
    const bytes = new Uint8Array(fs.readFileSync(saved));
    const { metadata, tensors } = safetensors_metadata(bytes);
    checks.download = download.suggestedFilename().endsWith('-fine-tuned.safetensors') &&
                      metadata.train_only === (settings.allLayers ? undefined : 'digit,decoder') && tensors > 10;
    console.log(`download: ${saved}, ${bytes.length} bytes, ${tensors} tensors, train_only '${metadata.train_only}': ` +
                `${ok(checks.download)}`);
    // `capsnet eval` loads it and scores the page's 500 check digits as the page did (when the native
    // build is here; within 1 digit: the native and wasm builds sum in different orders).
    const native = path.join(repo_root, 'build', 'cpu', 'capsnet');
    if (existsSync(native)) {
      const report = execFileSync(native, ['eval', '--model', saved, '--limit', '500', '--data', options.data],
                                  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const found = /accuracy\s+([\d.]+)%/.exec(report);
      const accuracy = found ? Number(found[1]) / 100 : NaN;
      const agrees = Math.abs(accuracy - result.mnistAfter) <= 1 / 500 + 1e-9;
      checks.download = checks.download && agrees;
      console.log(`capsnet eval --limit 500 on it: ${(100 * accuracy).toFixed(1)}% (the page: ` +
                  `${(100 * result.mnistAfter).toFixed(1)}%): ${ok(agrees)}`);
    } else {
      console.log(`(no ${native}: the download is not scored by capsnet eval)`);
    }
    const reset_refused = await page.evaluate(() => window.capsnetDemo.resetModel());
    await wait_teach(page, (teach) => teach.predictions.length === taught, 'reset');
    const reset = (await state(page)).teach;
    checks.reset = reset_refused === '' && !reset.fineTuned && right(reset.predictions) === before &&
                   Math.abs(reset.checkAccuracy - result.mnistBefore) < 1e-12;
    console.log(`reset: fine-tuned ${reset.fineTuned}, personal right ${right(reset.predictions)} (before: ${before}), ` +
                `MNIST ${(100 * reset.checkAccuracy).toFixed(1)}%: ${ok(checks.reset)}`);
    await context.close();
  } finally {
    if (browser) await browser.close().catch(() => {});
    await server.close();
  }
  const passed = Object.values(checks).length === 8 && Object.values(checks).every(Boolean);
  console.log(`teach_e2e: ${passed ? 'passed' : 'FAILED'} (${Object.entries(checks).map(([k, v]) => `${k} ${ok(v)}`).join(', ')}; ` +
              `${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return passed ? 0 : 1;
}

const watchdog = setTimeout(() => {
  console.log('teach_e2e: FAILED: still running after 14 minutes');
  process.exit(1);
}, 14 * 60 * 1000);
watchdog.unref();

main().then((code) => process.exit(code), (error) => {
  console.log(`teach_e2e: FAILED: ${error.stack || error.message}`);
  process.exit(1);
});
