// The demo's threads on any host, in headless Chromium driven by playwright-core:
//   node tests/e2e/isolation_e2e.mjs [--site build/wasm/site] [--data data/mnist] [--verbose]
// The module shares its memory with the worker threads its GEMMs run on, which needs a cross-origin
// isolated page.
// a) Served with the isolation headers (web/serve.mjs): the page is isolated on its first load, installs
//    no service worker, and runs its GEMMs on one thread per core (at most 4, wasm/demo_app.hpp).
// b) Served without them, as a static host does: the page installs web/isolation_worker.js, reloads once,
//    is isolated from then on, and a share link made in a) opens in it with the same prediction and
//    capsule lengths, exactly (the same wasm on the same input and the same number of threads, whose
//    split never changes a product's sums: shared/capsnet/gemm_parallel.hpp).
// Exit 0: pass, 1: fail, 77: skipped (no chromium, no playwright-core or no MNIST).
import path from 'node:path';
import { startServer } from '../../web/serve.mjs';
import { browser_test_preflight, default_mnist_dir, forward_page_console, launch_chromium, parse_options,
         repo_root, wait_demo_ready } from './chromium.mjs';

const usage = 'usage: node tests/e2e/isolation_e2e.mjs [--site DIR] [--data DIR] [--verbose]';
const max_gemm_threads = 4;  // wasm/demo_app.hpp, demo_max_gemm_threads
const digit_index = 0;       // the MNIST test digit the share link carries

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Checks {
  constructor() { this.failed = 0; }
  check(what, passed, detail = '') {
    console.log(`  ${passed ? 'OK' : 'FAILED'}: ${what}${detail ? ` (${detail})` : ''}`);
    if (!passed) this.failed++;
    return passed;
  }
}

// Opens url in a fresh context, counting the documents it loads until the demo is ready.
async function open_counting_loads(browser, url, label, verbose) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  forward_page_console(page, `  [${label}]`, { verbose });
  let loads = 0;
  page.on('load', () => loads++);  // documents loaded (framenavigated also counts the fragment's updates)
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  // Without the headers the first load installs the worker and reloads: wait for that page to settle.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const isolated = await page.evaluate(() => window.crossOriginIsolated).catch(() => false);
    if (isolated) break;
    await sleep(100);
  }
  await page.waitForLoadState('domcontentloaded');
  await wait_demo_ready(page);
  await page.waitForFunction(() => !window.capsnetDemo.state().stale, null, { timeout: 30_000, polling: 50 });
  return { context, page, loads: () => loads };
}

const page_facts = (page) => page.evaluate(async () => ({
  isolated: window.crossOriginIsolated,
  workers: (await navigator.serviceWorker.getRegistrations()).length,
  controlled: Boolean(navigator.serviceWorker.controller),
  threads: window.capsnetDemo.gemmThreads(),
  cores: navigator.hardwareConcurrency,
  hash: location.hash,
  state: window.capsnetDemo.state(),
}));

async function run(browser, site, digit, verbose) {
  const t = new Checks();
  const isolating = await startServer({ root: site, port: 0 });
  const plain = await startServer({ root: site, port: 0, isolation: false });
  try {
    console.log(`a) ${isolating.url} with the isolation headers`);
    const a = await open_counting_loads(browser, isolating.url, 'headers', verbose);
    await a.page.evaluate((pixels) => window.capsnetDemo.setInputImage(pixels), Array.from(digit));
    await a.page.waitForFunction(() => !window.capsnetDemo.state().stale, null, { timeout: 30_000, polling: 50 });
    const first = await page_facts(a.page);
    t.check('isolated on the first load, no reload', first.isolated && a.loads() === 1, `${a.loads()} load(s)`);
    t.check('no service worker installed', first.workers === 0, `${first.workers} registration(s)`);
    const expected_threads = Math.min(Math.max(first.cores, 1), max_gemm_threads);
    t.check('GEMMs on one thread per core, at most 4', first.threads === expected_threads,
            `${first.threads} thread(s), ${first.cores} core(s)`);
    t.check('the view is in the fragment', first.hash.length > 1, `${first.hash.length} characters`);
    await a.context.close();

    console.log(`b) ${plain.url} without them, opening the share link made in a)`);
    const b = await open_counting_loads(browser, plain.url + first.hash, 'no headers', verbose);
    const second = await page_facts(b.page);
    t.check('isolated after one reload', second.isolated && b.loads() === 2, `${b.loads()} load(s)`);
    t.check('through the service worker', second.workers === 1 && second.controlled,
            `${second.workers} registration(s), controlled ${second.controlled}`);
    t.check('GEMMs on as many threads', second.threads === first.threads, `${second.threads} thread(s)`);
    t.check('the share link survived the reload', second.hash === first.hash);
    t.check('same prediction and lengths, exactly',
            second.state.prediction === first.state.prediction &&
            JSON.stringify(second.state.lengths) === JSON.stringify(first.state.lengths),
            `prediction ${second.state.prediction}, lengths ${second.state.lengths.map((x) => x.toFixed(4)).join(' ')}`);
    // A second visit needs no reload: the worker already controls the site.
    const again = await b.page.context().newPage();
    let again_loads = 0;
    again.on('load', () => again_loads++);
    await again.goto(plain.url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await wait_demo_ready(again);
    const third = await again.evaluate(() => window.crossOriginIsolated);
    t.check('a later visit is isolated without a reload', third && again_loads === 1, `${again_loads} load(s)`);
    await b.context.close();
  } finally {
    await isolating.close();
    await plain.close();
  }
  return t.failed;
}

async function main() {
  let options;
  try {
    options = parse_options(process.argv.slice(2), {
      site: path.join(repo_root, 'build', 'wasm', 'site'), data: default_mnist_dir(),
    }, { flags: ['verbose', 'help'] });
    if (options.help) {
      console.log(usage);
      return 0;
    }
  } catch (error) {
    console.error(`isolation_e2e: error: ${error.message}\n${usage}`);
    return 1;
  }
  const preflight = await browser_test_preflight('isolation_e2e', options);
  if (preflight.exit_code !== undefined) return preflight.exit_code;
  const { mnist } = preflight;
  let browser;
  try {
    browser = await launch_chromium();
    console.log(`isolation_e2e: Chromium ${browser.version()}`);
    const digit = mnist.images.subarray(digit_index * 784, (digit_index + 1) * 784);
    const failed = await run(browser, options.site, digit, options.verbose);
    console.log(failed === 0 ? 'isolation_e2e: PASSED' : `isolation_e2e: FAILED (${failed} check(s))`);
    return failed === 0 ? 0 : 1;
  } catch (error) {
    console.log(`isolation_e2e: FAILED: ${error.stack || error.message}`);
    return 1;
  } finally {
    if (browser) await browser.close();
  }
}

process.exit(await main());
