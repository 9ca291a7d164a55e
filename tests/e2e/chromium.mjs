// What the browser tests and the browser benchmark share: finding playwright-core (installed into
// build/npm by scripts/install_web_test_deps.sh, never a browser download of its own), launching Debian's
// headless Chromium with WebGL2 on SwiftShader (flags from shared/docs/toolchain.md, pitfall 10), and
// reading the MNIST test set.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { read_mnist_test } from '../../web/tools/make_gallery.mjs';

export { read_mnist_test };

export const repo_root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const chromium_path = '/usr/bin/chromium';
export const skip_code = 77;  // ctest's SKIP_RETURN_CODE

// The same default as the C++ tests (tests/mnist_fixture.hpp): $CAPSNET_DATA_DIR, else <repo>/data/mnist.
export function default_mnist_dir() {
  return process.env.CAPSNET_DATA_DIR || path.join(repo_root, 'data', 'mnist');
}

// What every browser test checks before it starts: Chromium and playwright-core, the MNIST test set (like
// the C++ tests: missing data fails with CAPSNET_REQUIRE_DATA=1, as in CI, and skips otherwise) and the
// site's index.html. Resolves to {mnist}, or to {exit_code} once it has said why, prefixed with `name`.
export async function browser_test_preflight(name, { data, site }) {
  const missing = browser_missing_reason();
  if (missing) {
    console.log(`${name}: SKIPPED: ${missing}`);
    return { exit_code: skip_code };
  }
  let mnist;
  try {
    mnist = await read_mnist_test(data);
  } catch (error) {
    if (process.env.CAPSNET_REQUIRE_DATA === '1') {
      console.log(`${name}: FAILED: ${error.message}`);
      return { exit_code: 1 };
    }
    console.log(`${name}: SKIPPED: MNIST test set not available: ${error.message}`);
    return { exit_code: skip_code };
  }
  if (!existsSync(path.join(site, 'index.html'))) {
    console.log(`${name}: FAILED: ${site} has no index.html (build the wasm demo site first)`);
    return { exit_code: 1 };
  }
  return { mnist };
}

// Chromium's own flags; playwright adds --headless, --no-sandbox and a fresh temporary --user-data-dir
// per launch (deleted on close), which is why --user-data-dir is not passed here.
const chromium_flags = [
  '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
  // WebGL2 in software: the demo's ImGui renders through WebGL2 and there is no GPU here.
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--use-gl=angle',
];

// playwright-core's `chromium` from <repo>/build/npm, or {missing: reason} when it is not installed.
export function load_playwright() {
  const require = createRequire(path.join(repo_root, 'build', 'npm', 'package.json'));
  try {
    return { chromium: require('playwright-core').chromium };
  } catch (error) {
    const why = error.message.split('\n')[0];
    return { missing: `playwright-core is not installed in build/npm (run scripts/install_web_test_deps.sh): ${why}` };
  }
}

// Why the browser tests cannot run here, or '' when they can.
export function browser_missing_reason() {
  if (!existsSync(chromium_path)) return `${chromium_path} is missing (run scripts/install_web_test_deps.sh)`;
  const playwright = load_playwright();
  return playwright.missing || '';
}

export async function launch_chromium() {
  const playwright = load_playwright();
  if (playwright.missing) throw new Error(playwright.missing);
  return playwright.chromium.launch({ executablePath: chromium_path, headless: true, args: chromium_flags,
                                     timeout: 60_000 });
}

// Forwards the page's console errors and uncaught exceptions to ours, prefixed, so a failure in the
// browser shows up in the test log (everything else the page logs is dropped unless verbose).
export function forward_page_console(page, prefix, { verbose = false } = {}) {
  page.on('console', (message) => {
    // The browser asks for /favicon.ico on its own; its 404 is not the page's error.
    if (message.location().url.endsWith('/favicon.ico')) return;
    if (verbose || message.type() === 'error') console.log(`${prefix} console.${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => console.log(`${prefix} page error: ${error.message}`));
}

// Waits for window.capsnetDemo.ready; throws an Error with the page's own message when it rejects.
export async function wait_demo_ready(page, timeout_ms = 120_000) {
  // (A boolean, not the promise itself: waitForFunction would await a returned promise.)
  await page.waitForFunction(() => Boolean(window.capsnetDemo && window.capsnetDemo.ready), null,
                             { timeout: timeout_ms });
  const outcome = await Promise.race([
    page.evaluate(() => window.capsnetDemo.ready.then(
      () => ({ ok: true }), (error) => ({ ok: false, message: String((error && error.message) || error) }))),
    new Promise((resolve) => setTimeout(
      () => resolve({ ok: false, message: `not ready after ${timeout_ms / 1000} s` }), timeout_ms)),
  ]);
  if (!outcome.ok) throw new Error(`capsnetDemo.ready rejected: ${outcome.message}`);
}

// Waits until the page has rendered at least `frames` more frames than `since` (polling frameCount()).
export async function wait_frames(page, frames, { since = null, timeout_ms = 10_000 } = {}) {
  const start = since ?? await page.evaluate(() => window.capsnetDemo.frameCount());
  await page.waitForFunction(([start_frame, count]) => window.capsnetDemo.frameCount() >= start_frame + count,
                             [start, frames], { timeout: timeout_ms, polling: 16 });
}

// Parses `--name value` options (and bare `--flag`s listed in flags); repeated names collect into arrays
// when listed in multi. Throws on anything unknown.
export function parse_options(argv, defaults, { multi = [], flags = [] } = {}) {
  const options = { ...defaults };
  for (const name of multi) options[name] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}'`);
    const name = arg.slice(2);
    if (flags.includes(name)) {
      options[name] = true;
      continue;
    }
    if (!(name in defaults) && !multi.includes(name)) throw new Error(`unknown option '${arg}'`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (multi.includes(name)) options[name].push(value);
    else options[name] = value;
  }
  return options;
}
