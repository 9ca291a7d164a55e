// The demo's routing view and pose lab (issue 14) end to end, in headless Chromium driven by playwright-core:
//   node tests/e2e/pose_routing_e2e.mjs [--site build/wasm/site] [--data data/mnist] [--digit 4] [--out build/e2e]
//                                       [--verbose]
// A real MNIST test digit (--digit: its index in the test set), traced into pen strokes and drawn with the
// mouse, then through the hooks of window.capsnetDemo (web/demo.js):
// a) the Routing panel: couplings, lengths and the attribution per iteration, the Play button over time,
//    another class's attribution;
// b) the Pose lab: rotation and scale change the input (and only it), the identity restores it exactly,
//    the refit undoes a scale, the rotation and scale sweeps agree with the live view;
// c) a share link with a transform restores the view exactly in a new browser context; links made by the
//    version-1 page still open, with the version-2 settings at their defaults;
// d) the phone-sized layout shows the Routing and Pose lab tabs without error.
// Screenshots of each into --out. Exit 0: pass, 1: fail, 77: skipped (no chromium, no playwright-core or
// no MNIST).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startServer } from '../../web/serve.mjs';
import { browser_test_preflight, default_mnist_dir, forward_page_console, launch_chromium, parse_options,
         repo_root, wait_demo_ready, wait_frames } from './chromium.mjs';
import { trace_digit } from './trace_digits.mjs';

const usage = 'usage: node tests/e2e/pose_routing_e2e.mjs [--site DIR] [--data DIR] [--digit 4] [--out DIR] [--verbose]';

const viewport = { width: 1280, height: 800 };
const phone = { viewport: { width: 400, height: 800 }, hasTouch: true, isMobile: true, deviceScaleFactor: 3 };
const min_move_ms = 20;   // drags need 20-30 ms between moves (toolchain.md, pitfall 10)
const max_step = 4 / 28;  // points of a long segment every 4 MNIST pixels (as demo_e2e.mjs)
const routing_play_step_ms = 700;  // wasm/demo_app.cpp's routing_play_step_ms

// Tolerances, and why:
// - Iteration 1's couplings are softmax(0) = 1/10 for every capsule: the largest is 0.1 in float (0.1 +
//   1.5e-9), within 1e-6. Their mean is a float sum of 1152 values near 115, where a float's spacing is
//   7.6e-6, divided by 1152: measured 1.0e-6 off 0.1, so 1e-5 for the mean.
const uniform_tolerance = 1e-6;
const uniform_mean_tolerance = 1e-5;
// - Routing raises the predicted class's couplings: for a clearly classified digit the largest c_i,k at
//   iteration R is well above 1/10 (measured 0.36 for test digit #4, 0.17 after iteration 2); a routing view that shows the same
//   trace at every iteration, or the wrong iteration, stays at 0.1.
const min_coupling_rise = 0.05;
// - Anything the view shows for one iteration must differ from another by more than float noise: the
//   attribution sums are O(1), so a relative 1e-3 separates "changed" from "recomputed the same".
const min_relative_change = 1e-3;
// - The same computation read two ways (the routing trace's |v_j| at R against the class scores; a pose
//   sweep's column at the current pose against the live classification): the pose sweep runs the forward
//   pass on a batch, which may sum in another order, hence 1e-6 rather than exact.
const same_computation_tolerance = 1e-6;
// - Ink bounding boxes (pixels >= box_threshold, of 255): the drawing's preprocessing fits the digit's
//   larger side to MNIST's 20-pixel box (the antialiased rim makes it 20-22); scale 0.6 without refit
//   shrinks it to about 12 (the bilinear warp adds a pixel of rim at most); with refit the fit to 28x28
//   brings it back to ~20 (demo_engine.hpp: the upscale's blur makes a refitted digit ~5% smaller).
const box_threshold = 64;
const fitted_box = [17, 23];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ok = (flag) => (flag ? 'OK' : 'FAILED');
const state = (page) => page.evaluate(() => window.capsnetDemo.state());
const demo = (page, call, ...args) => page.evaluate(([name, values]) => window.capsnetDemo[name](...values), [call, args]);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const max_abs_diff = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
const is_identity = (pose) => pose.rotation === 0 && pose.scale === 1 && pose.shear === 0 && pose.translateX === 0 &&
                              pose.translateY === 0 && pose.refit === false;
const fmt = (values, digits = 3) => `[${values.map((v) => v.toFixed(digits)).join(' ')}]`;

// One test's verdicts: check(name, condition, detail) prints and remembers.
class Checks {
  constructor(section) { this.section = section; this.failed = []; }
  check(name, pass, detail = '') {
    console.log(`${this.section}: ${name}: ${ok(pass)}${detail ? `: ${detail}` : ''}`);
    if (!pass) this.failed.push(name);
    return pass;
  }
  get passed() { return this.failed.length === 0; }
}

// ---- drawing with the mouse (as demo_e2e.mjs) -------------------------------------------------------

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

async function paced(page, send) {
  const start = Date.now();
  await send();
  await next_frame(page);
  const left = min_move_ms - (Date.now() - start);
  if (left > 0) await sleep(left);
}

function densify(stroke) {
  const out = [stroke[0]];
  for (let k = 1; k < stroke.length; k++) {
    const [a, b] = [stroke[k - 1], stroke[k]];
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / max_step));
    for (let s = 1; s <= steps; s++) out.push([a[0] + (b[0] - a[0]) * s / steps, a[1] + (b[1] - a[1]) * s / steps]);
  }
  return out;
}

async function draw_with_mouse(page, rect, strokes) {
  for (const stroke of strokes) {
    const points = densify(stroke).map(([x, y]) => [rect.x + x * rect.width, rect.y + y * rect.height]);
    await paced(page, () => page.mouse.move(...points[0]));
    await paced(page, () => page.mouse.down());
    const rest = points.length > 1 ? points.slice(1) : [[points[0][0] + 0.5, points[0][1]]];
    for (const point of rest) await paced(page, () => page.mouse.move(...point));
    await paced(page, () => page.mouse.up());
  }
  // Off the canvas, so no widget is hovered or held while the sweeps wait for "nothing held".
  await paced(page, () => page.mouse.move(2, 2));
}

// ---- waiting for the lazy recomputation ---------------------------------------------------------------

// After a hook call: one frame (the call only marks things stale), then until nothing is stale. The
// state JSON is ~10 KB, so it is polled every 50 ms rather than every frame.
async function settle(page, timeout_ms = 60_000) {
  await wait_frames(page, 1, { timeout_ms });
  await page.waitForFunction(() => !window.capsnetDemo.state().stale, null, { timeout: timeout_ms, polling: 50 });
  return state(page);
}

// setViewTab reaches ImGui's tab bar at the next frames (SetSelected): a few frames, then settled.
async function show_tab(page, tab) {
  await demo(page, 'setViewTab', tab);
  await wait_frames(page, 3);
  return settle(page);
}

async function open_demo(browser, url, context_options, label, verbose) {
  const context = await browser.newContext(context_options);
  const page = await context.newPage();
  forward_page_console(page, `  [${label}]`, { verbose });
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  await wait_demo_ready(page);
  await wait_frames(page, 3);
  return { context, page };
}

// [width, height] of the pixels >= box_threshold (0 x 0 for a blank image).
function ink_box(pixels) {
  let [top, bottom, left, right] = [28, -1, 28, -1];
  for (let r = 0; r < 28; r++)
    for (let c = 0; c < 28; c++)
      if (pixels[r * 28 + c] >= box_threshold) {
        top = Math.min(top, r), bottom = Math.max(bottom, r), left = Math.min(left, c), right = Math.max(right, c);
      }
  return bottom < 0 ? [0, 0] : [right - left + 1, bottom - top + 1];
}

async function screenshot(page, out_dir, name) {
  const file = path.join(out_dir, name);
  await page.screenshot({ path: file });
  console.log(`screenshot: ${file}`);
}

// ---- a) the Routing panel ---------------------------------------------------------------------------

async function check_routing(page, label, out_dir) {
  const t = new Checks('routing');
  let s = await show_tab(page, 1);
  t.check('the Routing tab is shown', s.viewTab === 1, `viewTab ${s.viewTab}`);
  const iterations = s.routing ? s.routing.iterations : 0;
  if (!t.check('state().routing is there', iterations >= 2, `${iterations} iterations`)) return t;
  const predicted = s.prediction;
  t.check('the drawn digit is classified right', predicted === label, `prediction ${predicted}, label ${label}`);
  t.check('the chosen class follows the prediction', s.selectedCapsule === predicted, `selectedCapsule ${s.selectedCapsule}`);

  const per_iteration = [];
  for (let r = 1; r <= iterations; r++) {
    await demo(page, 'setRouting', r, false);
    s = await settle(page);
    const v = s.routing;
    per_iteration.push(v);
    console.log(`routing: iteration ${v.iteration}/${v.iterations}: c to class ${s.selectedCapsule} mean ` +
                `${v.couplingMean.toFixed(6)} max ${v.couplingMax.toFixed(6)}, attribution sum ` +
                `${v.attributionSum.toFixed(4)}, |v_j| ${fmt(v.lengths)}`);
    t.check(`setRouting(${r}) shows iteration ${r}`, v.iteration === r && v.logits === false && v.playing === false);
  }
  const [first, second, last] = [per_iteration[0], per_iteration[1], per_iteration[iterations - 1]];
  t.check('iteration 1: uniform couplings (mean and max 0.1)',
          Math.abs(first.couplingMax - 0.1) <= uniform_tolerance && Math.abs(first.couplingMean - 0.1) <= uniform_mean_tolerance,
          `max ${first.couplingMax}, mean ${first.couplingMean}, tolerances ${uniform_tolerance}, ${uniform_mean_tolerance}`);
  t.check('iteration 2 differs from iteration 1', Math.abs(second.couplingMax - first.couplingMax) > min_coupling_rise / 10 &&
          max_abs_diff(second.lengths, first.lengths) > 1e-4,
          `c max ${first.couplingMax.toFixed(4)} -> ${second.couplingMax.toFixed(4)}, ` +
          `|v| max change ${max_abs_diff(second.lengths, first.lengths).toExponential(2)}`);
  t.check(`the predicted class's largest coupling rises by iteration ${iterations}`,
          last.couplingMax >= first.couplingMax + min_coupling_rise,
          `${first.couplingMax.toFixed(4)} -> ${last.couplingMax.toFixed(4)}, need a rise of ${min_coupling_rise}`);
  const attribution_change = Math.abs(last.attributionSum - first.attributionSum) / Math.abs(first.attributionSum);
  t.check(`the overlay changes between iteration 1 and ${iterations}`, attribution_change > min_relative_change,
          `attribution sum ${first.attributionSum.toFixed(4)} -> ${last.attributionSum.toFixed(4)} ` +
          `(${(100 * attribution_change).toFixed(1)}%)`);
  const length_diff = max_abs_diff(last.lengths, s.lengths);
  t.check(`|v_j| after iteration ${iterations} are the class scores`, length_diff <= same_computation_tolerance,
          `max difference ${length_diff.toExponential(2)}`);
  const argmax = last.lengths.indexOf(Math.max(...last.lengths));
  t.check(`the longest |v_j| at iteration ${iterations} is the prediction`, argmax === predicted, `${argmax}`);

  // The couplings/logits choice: the logits heatmap at iteration 2 must not change the per-class numbers.
  await demo(page, 'setRouting', 2, true);
  s = await settle(page);
  t.check('setRouting(2, logits) shows the logits at iteration 2',
          s.routing.iteration === 2 && s.routing.logits === true && same(s.routing.lengths, second.lengths),
          `iteration ${s.routing.iteration}, logits ${s.routing.logits}`);

  // Play: iteration 1 at once, then one step every 700 ms up to R, then it stops.
  await demo(page, 'setRouting', 1, false);
  await settle(page);
  const seen = [];
  const started = Date.now();
  await demo(page, 'playRouting');
  const deadline = started + routing_play_step_ms * iterations + 10_000;
  for (;;) {
    const v = (await state(page)).routing;
    const at = Date.now() - started;
    if (!seen.length || seen[seen.length - 1].iteration !== v.iteration || seen[seen.length - 1].playing !== v.playing)
      seen.push({ iteration: v.iteration, playing: v.playing, ms: at });
    if (!v.playing || Date.now() > deadline) break;
    await sleep(40);
  }
  const order = seen.map((e) => e.iteration);
  const reached = seen.find((e) => e.iteration === iterations);
  const steps_ok = order.every((it, k) => k === 0 || it >= order[k - 1]) &&
                   Array.from({ length: iterations }, (_, k) => k + 1).every((it) => order.includes(it));
  t.check('Play steps through every iteration in order, then stops',
          steps_ok && seen[0].playing && !seen[seen.length - 1].playing && seen[seen.length - 1].iteration === iterations,
          seen.map((e) => `${e.iteration}${e.playing ? '' : ' (stopped)'} at ${e.ms} ms`).join(', '));
  // Reaching R takes R-1 steps of 700 ms: well under that means it skipped the wait (15% slack for the
  // polling and the frame it lands in).
  const min_play_ms = 0.85 * routing_play_step_ms * (iterations - 1);
  t.check('Play waits between steps', Boolean(reached) && reached.ms >= min_play_ms,
          `iteration ${iterations} after ${reached ? reached.ms : '-'} ms, need >= ${min_play_ms} ms`);

  await screenshot(page, out_dir, 'routing.png');  // the predicted class at iteration R, couplings

  // Another class: its own attribution (and its couplings, lower than the winner's).
  const ranked = [...s.lengths.keys()].sort((a, b) => s.lengths[b] - s.lengths[a]);
  const other = ranked[1];
  await demo(page, 'selectCapsule', other);
  s = await settle(page);
  const v = s.routing;
  t.check(`selectCapsule(${other}) changes the attribution`, s.selectedCapsule === other &&
          Math.abs(v.attributionSum - last.attributionSum) / Math.abs(last.attributionSum) > min_relative_change,
          `class ${predicted}: ${last.attributionSum.toFixed(4)}, class ${other}: ${v.attributionSum.toFixed(4)}; ` +
          `its c max ${v.couplingMax.toFixed(4)}, mean ${v.couplingMean.toFixed(4)} ` +
          `(class ${predicted}: mean ${last.couplingMean.toFixed(4)})`);
  t.check(`class ${other} gets a smaller mean coupling than the winner at iteration ${iterations}`,
          v.iteration === iterations && v.couplingMean < last.couplingMean);
  await screenshot(page, out_dir, 'routing_other_class.png');
  await demo(page, 'selectCapsule', predicted);
  await settle(page);
  return t;
}

// ---- b) the Pose lab ----------------------------------------------------------------------------------

async function wait_pose_sweep(page, timeout_ms = 120_000) {
  await wait_frames(page, 1);
  await page.waitForFunction(() => {
    const s = window.capsnetDemo.state();
    return s.poseSweep && !s.stale;
  }, null, { timeout: timeout_ms, polling: 100 });
  return state(page);
}

// The sweep's column at the live pose against the live view: lengths, the chosen capsule, the prediction.
function sweep_matches_live(t, s, axis, current) {
  const sweep = s.poseSweep[axis];
  const at = sweep.values.findIndex((x) => Math.abs(x - current) < 1e-6);
  if (!t.check(`the ${axis} sweep has the current ${axis} ${current}`, at >= 0)) return;
  const lengths = sweep.lengths.map((per_value) => per_value[at]);
  const capsule = sweep.capsule.map((per_value) => per_value[at]);
  const length_diff = max_abs_diff(lengths, s.lengths), capsule_diff = max_abs_diff(capsule, s.capsule);
  t.check(`the ${axis} sweep at ${current} is the live view`,
          length_diff <= same_computation_tolerance && capsule_diff <= same_computation_tolerance &&
          sweep.predictions[at] === s.prediction,
          `lengths differ by ${length_diff.toExponential(2)}, capsule ${s.selectedCapsule} by ` +
          `${capsule_diff.toExponential(2)}, prediction ${sweep.predictions[at]} vs ${s.prediction}`);
}

async function check_pose_lab(page, out_dir) {
  const t = new Checks('pose lab');
  const base = await show_tab(page, 2);
  t.check('the Pose lab tab is shown, identity pose', base.viewTab === 2 && is_identity(base.pose),
          `viewTab ${base.viewTab}, pose ${JSON.stringify(base.pose)}`);
  t.check('identity: the input is the drawing', same(base.input, base.baseInput));
  const base_box = ink_box(base.baseInput);

  await demo(page, 'setPose', { rotation: 45 });
  let s = await settle(page);
  const changed_pixels = s.input.filter((x, i) => x !== base.input[i]).length;
  const length_change = max_abs_diff(s.lengths, base.lengths);
  t.check('rotation 45: the input changes, the drawing does not', s.pose.rotation === 45 && changed_pixels > 50 &&
          same(s.baseInput, base.baseInput), `${changed_pixels} of 784 pixels changed`);
  t.check('rotation 45: the lengths change', length_change > 1e-3,
          `${fmt(base.lengths)} -> ${fmt(s.lengths)} (prediction ${base.prediction} -> ${s.prediction})`);
  const rotated = s;

  await demo(page, 'setPose', { rotation: 0 });
  s = await settle(page);
  t.check('rotation back to 0: input == baseInput exactly, the lengths as before',
          same(s.input, s.baseInput) && same(s.baseInput, base.baseInput) && same(s.lengths, base.lengths),
          `${s.input.filter((x, i) => x !== s.baseInput[i]).length} pixels differ`);

  await demo(page, 'setPose', { scale: 0.6 });
  s = await settle(page);
  const small_box = ink_box(s.input);
  const expected = base_box.map((x) => 0.6 * x);
  t.check('the drawing fills MNIST\'s 20-pixel box', Math.max(...base_box) >= fitted_box[0] &&
          Math.max(...base_box) <= fitted_box[1], `ink box ${base_box.join('x')}`);
  t.check('scale 0.6, no refit: the ink box shrinks to 0.6x',
          small_box.every((x, i) => Math.abs(x - expected[i]) <= 2), `${small_box.join('x')}, expected ` +
          `${expected.map((x) => x.toFixed(1)).join('x')} +- 2`);
  await demo(page, 'setPose', { scale: 0.6, refit: true });
  s = await settle(page);
  const refit_box = ink_box(s.input);
  t.check('scale 0.6 with refit: the ink box is ~20 pixels again', s.pose.refit === true &&
          Math.max(...refit_box) >= fitted_box[0] && Math.max(...refit_box) <= fitted_box[1],
          `${refit_box.join('x')}, need the larger side in ${fitted_box.join('..')}`);

  // The sweeps, around rotation 45 (a value of the rotation sweep, not the middle one).
  await demo(page, 'setPose', { rotation: 45 });
  await settle(page);
  await demo(page, 'showPoseSweep', true);
  s = await wait_pose_sweep(page);
  const rotation = s.poseSweep.rotation, scale = s.poseSweep.scale;
  const expected_rotation = Array.from({ length: 25 }, (_, k) => -60 + 5 * k);
  const expected_scale = Array.from({ length: 21 }, (_, k) => 0.5 + 0.05 * k);
  t.check('Sweep: 25 rotations -60..60 and 21 scales 0.5..1.5', s.poseSweepShown &&
          rotation.values.length === 25 && max_abs_diff(rotation.values, expected_rotation) < 1e-4 &&
          scale.values.length === 21 && max_abs_diff(scale.values, expected_scale) < 1e-4 &&
          rotation.lengths.length === 10 && rotation.lengths.every((row) => row.length === 25) &&
          rotation.capsule.length === 16 && scale.capsule.every((row) => row.length === 21),
          `${rotation.values.length} rotations, ${scale.values.length} scales, ${s.poseSweep.ms.toFixed(0)} ms`);
  t.check('the sweep is at the live pose', same(s.lengths, rotated.lengths), 'the lengths of rotation 45 above');
  sweep_matches_live(t, s, 'rotation', 45);
  sweep_matches_live(t, s, 'scale', 1);
  const k = s.selectedCapsule;
  const spread = Math.max(...rotation.lengths[k]) - Math.min(...rotation.lengths[k]);
  t.check(`class ${k}'s length varies over the rotations`, spread > 0.05,
          `${fmt(rotation.lengths[k], 2)} (spread ${spread.toFixed(3)})`);
  console.log(`pose lab: predictions over rotation: ${rotation.predictions.join('')}, over scale: ${scale.predictions.join('')}`);
  await screenshot(page, out_dir, 'pose_lab.png');

  // A stale sweep is recomputed: a new pose moves it.
  await demo(page, 'setPose', { rotation: -20 });
  s = await wait_pose_sweep(page);
  sweep_matches_live(t, s, 'rotation', -20);
  return t;
}

// ---- c) share links ------------------------------------------------------------------------------------

// The images of tests/test_share_link.cpp's golden version-1 links.
function golden_ring() {
  const image = new Array(784);
  for (let row = 0; row < 28; row++)
    for (let col = 0; col < 28; col++) {
      const d2 = (row - 14) ** 2 + (col - 13) ** 2;
      image[row * 28 + col] = Math.max(0, 255 - 12 * Math.abs(d2 - 49));
    }
  return image;
}
function golden_bar() {
  const image = new Array(784).fill(0);
  for (let row = 4; row < 24; row++) for (let col = 12; col < 16; col++) image[row * 28 + col] = row * 10 + col;
  return image;
}
// Made by the version-1 page's encoder (tests/test_share_link.cpp, golden_v1_links, model capsnet-seed-i8).
const golden_v1_links = [
  { what: 'default view, a ring', input: golden_ring(), selectedCapsule: 0, capsuleEdited: false,
    sweep: { low: -0.25, high: 0.25, step: 0.05 },
    link: 'v1.D2NhcHNuZXQtc2VlZC1pOAAG__oAMgAAAiV7My4hpD4sAERpWOcaeHm0mStaWrArEY2aKhCCJ3uX' +
          'kiDTEa5WKslh69qcNXAkRytbdSdRDqhIfEz2CdKYcudCmZwXCbU7xeYmivbD0OXzmstP9vvEFA8a9de-vxCuuIWx-coBl2Y' +
          '4_daWxclh9D7OWNzcipcwae-FN3hG3gJ4Jyfd7egY4YAAAPeM' },
  { what: 'edited capsule 3, a bar', input: golden_bar(), selectedCapsule: 3, capsuleEdited: true,
    capsule: Array.from({ length: 16 }, (_, d) => (d - 8) * 0.125), sweep: { low: -0.5, high: 0.75, step: 0.125 },
    link: 'v1.D2NhcHNuZXQtc2VlZC1pOBMM_u4CfQAY_JX8Ev2P_Qz-if4G_4P_AAB9APoAdwH0AXEC7gJrAwAD' +
          'OOwPLjlbSwVAXOgb9YZYcs-p4_Bxxup-adcIy00ajtLVk1S8dDA6l8hazs-lJ8Y7laL0RjwQfKLdSSqP_vp-IsHTvUJMfxOJ' +
          'O42E47QjU_iw8bH-N5QWAABpvw' },
];

const close = (a, b) => Math.abs(a - b) <= 1e-6;

async function check_share_links(browser, url, page, out_dir, verbose) {
  const t = new Checks('share link');
  await demo(page, 'showPoseSweep', false);
  await demo(page, 'setPose', { rotation: -30, shear: 0.2, refit: false });
  await demo(page, 'setViewTab', 1);
  await demo(page, 'setRouting', 2, true);
  await demo(page, 'showPoseSweep', true);
  await wait_frames(page, 3);
  const original = await wait_pose_sweep(page);
  t.check('the original view', original.viewTab === 1 && original.routing.iteration === 2 && original.routing.logits &&
          original.poseSweepShown && original.pose.rotation === -30 && close(original.pose.shear, 0.2),
          `pose ${JSON.stringify(original.pose)}`);
  if (!t.check('the link is version 2', original.fragment.startsWith('v2.'),
               `${original.fragment.length} characters: ${original.fragment.slice(0, 24)}...`)) return { t };

  const { context, page: restored_page } = await open_demo(browser, `${url}#${original.fragment}`, { viewport },
                                                           'share', verbose);
  let restored;
  try {
    restored = await wait_pose_sweep(restored_page);
    const fields = ['pose', 'viewTab', 'poseSweepShown', 'baseInput', 'input', 'lengths', 'prediction',
                    'selectedCapsule', 'capsule', 'fragment'];
    const differ = fields.filter((field) => !same(original[field], restored[field]));
    for (const field of ['iteration', 'logits', 'couplingMax', 'attributionSum', 'lengths'])
      if (!same(original.routing[field], restored.routing[field])) differ.push(`routing.${field}`);
    const sweeps = (s) => JSON.stringify([s.poseSweep.rotation, s.poseSweep.scale]);
    if (sweeps(original) !== sweeps(restored)) differ.push('poseSweep');
    t.check('a new context restores the view exactly', differ.length === 0 && restored.error === '',
            differ.length ? `differs in ${differ.join(', ')}` :
            `pose ${JSON.stringify(restored.pose)}, tab ${restored.viewTab}, iteration ${restored.routing.iteration} ` +
            `(logits), sweep shown, prediction ${restored.prediction}; error '${restored.error}'`);
    const show = (value) => JSON.stringify(value).slice(0, 160);
    for (const field of differ.filter((f) => fields.includes(f)))
      console.log(`  ${field}: original ${show(original[field])} restored ${show(restored[field])}`);
    await screenshot(restored_page, out_dir, 'share_restored.png');
  } finally {
    await context.close();
  }

  for (const [n, golden] of golden_v1_links.entries()) {
    const opened = await open_demo(browser, `${url}#${golden.link}`, { viewport }, `v1 link ${n}`, verbose);
    try {
      const s = await settle(opened.page);
      const problems = [];
      if (s.error !== '') problems.push(`error '${s.error}'`);
      if (s.viewTab !== 0) problems.push(`viewTab ${s.viewTab}`);
      if (!is_identity(s.pose)) problems.push(`pose ${JSON.stringify(s.pose)}`);
      if (!s.routing || s.routing.iteration !== s.routing.iterations || s.routing.logits) problems.push('routing not at R, couplings');
      if (s.poseSweepShown) problems.push('sweep shown');
      if (!same(s.baseInput, golden.input)) problems.push('baseInput is not the golden image');
      if (!same(s.input, s.baseInput)) problems.push('input != baseInput');
      if (s.selectedCapsule !== golden.selectedCapsule) problems.push(`selectedCapsule ${s.selectedCapsule}`);
      if (s.capsuleEdited !== golden.capsuleEdited) problems.push(`capsuleEdited ${s.capsuleEdited}`);
      if (golden.capsule && max_abs_diff(s.capsule, golden.capsule) > 1e-6) problems.push(`capsule ${fmt(s.capsule)}`);
      if (!close(s.sweep.low, golden.sweep.low) || !close(s.sweep.high, golden.sweep.high) ||
          !close(s.sweep.step, golden.sweep.step)) problems.push(`sweep ${JSON.stringify(s.sweep)}`);
      // The page republishes the view in the current format.
      if (!s.fragment.startsWith('v2.')) problems.push(`fragment '${s.fragment.slice(0, 12)}'`);
      t.check(`golden v1 link (${golden.what}) opens with the version-2 defaults`, problems.length === 0,
              problems.length ? problems.join(', ') : `prediction ${s.prediction}, republished as ${s.fragment.slice(0, 12)}...`);
      if (n === golden_v1_links.length - 1) await screenshot(opened.page, out_dir, 'share_v1.png');
    } finally {
      await opened.context.close();
    }
  }
  return { t, fragment: original.fragment, original };
}

// ---- d) the phone-sized layout -----------------------------------------------------------------------

async function check_phone(browser, url, fragment, original, out_dir, verbose) {
  const t = new Checks('phone');
  // The link of c): routing tab, a pose, the sweep shown.
  const { context, page } = await open_demo(browser, `${url}#${fragment}`, phone, 'phone', verbose);
  try {
    let s = await wait_pose_sweep(page);
    t.check('the Routing tab from the link', s.error === '' && s.viewTab === 1 && same(s.input, original.input) &&
            same(s.lengths, original.lengths), `viewTab ${s.viewTab}, error '${s.error}'`);
    await screenshot(page, out_dir, 'phone_routing.png');
    s = await show_tab(page, 2);
    const before = await page.evaluate(() => window.capsnetDemo.frameCount());
    await wait_frames(page, 2, { since: before });
    t.check('the Pose lab tab', s.error === '' && s.viewTab === 2 && Boolean(s.poseSweep),
            `viewTab ${s.viewTab}, error '${s.error}'`);
    await screenshot(page, out_dir, 'phone_pose_lab.png');
  } finally {
    await context.close();
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  let options;
  try {
    options = parse_options(process.argv.slice(2), {
      site: path.join(repo_root, 'build', 'wasm', 'site'), data: default_mnist_dir(), digit: '4',
      out: path.join(repo_root, 'build', 'e2e'),
    }, { flags: ['verbose', 'help'] });
    if (options.help) {
      console.log(usage);
      return 0;
    }
    if (!/^\d+$/.test(options.digit)) throw new Error(`--digit needs a test-set index, got '${options.digit}'`);
  } catch (error) {
    console.error(`pose_routing_e2e: error: ${error.message}\n${usage}`);
    return 1;
  }

  const preflight = await browser_test_preflight('pose_routing_e2e', options);
  if (preflight.exit_code !== undefined) return preflight.exit_code;
  const { mnist } = preflight;
  const index = Number(options.digit);
  if (index >= mnist.labels.length) {
    console.error(`pose_routing_e2e: error: --digit ${index}: the test set has ${mnist.labels.length} digits`);
    return 1;
  }
  mkdirSync(options.out, { recursive: true });

  const started = Date.now();
  const server = await startServer({ root: options.site, port: 0 });
  let browser;
  const sections = [];
  try {
    browser = await launch_chromium();
    console.log(`pose_routing_e2e: ${server.url} in Chromium ${browser.version()}, test digit #${index}`);
    const { context, page } = await open_demo(browser, server.url, { viewport }, 'main', options.verbose);
    const label = mnist.labels[index];
    const { strokes, pen_width } = trace_digit(mnist.images.subarray(index * 784, (index + 1) * 784), 'skeleton');
    await page.evaluate((width) => { window.capsnetDemo.clear(); window.capsnetDemo.setPenWidth(width); }, pen_width);
    await wait_frames(page, 1);
    await draw_with_mouse(page, await page.evaluate(() => window.capsnetDemo.canvasRect()), strokes);
    const drawn = await settle(page);
    console.log(`drawn: test #${index} (label ${label}) in ${strokes.length} strokes: prediction ${drawn.prediction}, ` +
                `lengths ${fmt(drawn.lengths)} after ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const run = async (name, body) => {
      try {
        return await body();
      } catch (error) {
        const t = new Checks(name);
        t.check('ran to the end', false, error.message.split('\n')[0]);
        return t;
      }
    };
    sections.push(await run('routing', () => check_routing(page, label, options.out)));
    sections.push(await run('pose lab', () => check_pose_lab(page, options.out)));
    let share = null;
    sections.push(await run('share link', async () => {
      share = await check_share_links(browser, server.url, page, options.out, options.verbose);
      return share.t;
    }));
    await context.close();
    if (share && share.fragment) {
      sections.push(await run('phone', () => check_phone(browser, server.url, share.fragment, share.original,
                                                         options.out, options.verbose)));
    } else {
      const t = new Checks('phone');
      t.check('a link to open', false, 'the share-link check made none');
      sections.push(t);
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
    await server.close();
  }
  const summary = sections.map((t) => `${t.section} ${t.passed ? 'OK' : `FAILED (${t.failed.join('; ')})`}`);
  console.log(`pose_routing_e2e: ${summary.join(', ')} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return sections.length === 4 && sections.every((t) => t.passed) ? 0 : 1;
}

// A hung browser must fail the test rather than hold ctest until its own timeout.
const watchdog = setTimeout(() => {
  console.log('pose_routing_e2e: FAILED: still running after 12 minutes');
  process.exit(1);
}, 12 * 60 * 1000);
watchdog.unref();

main().then((code) => process.exit(code), (error) => {
  console.log(`pose_routing_e2e: FAILED: ${error.stack || error.message}`);
  process.exit(1);
});
