// The demo's own timings in headless Chromium: classify, the mask grid and the interpolation grid,
// each the median of --repeats runs measured inside the wasm (capsnetDemo.benchmark).
//   node bench/browser_bench.mjs --site <site folder> [--site <another build> ...] [--repeats 20]
// One line per site, for scripts to collect:
//   browser_bench: {"site":"build/wasm/site","name":"wasm","classify_ms":...,"mask_grid_ms":...,...}
// Exit 77 when chromium or playwright-core is missing (scripts/install_web_test_deps.sh installs them).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startServer } from '../web/serve.mjs';
import { browser_missing_reason, forward_page_console, launch_chromium, parse_options, skip_code,
         wait_demo_ready } from '../tests/e2e/chromium.mjs';

const usage = 'usage: node bench/browser_bench.mjs --site <site folder> [--site ...] [--repeats 20] [--verbose]';

// A short name for the build: the folder's name, or its parent's when the folder is just "site"
// (build/wasm/site and build/wasm-nosimd/site).
function site_name(site) {
  const resolved = path.resolve(site);
  const base = path.basename(resolved);
  return base === 'site' ? path.basename(path.dirname(resolved)) : base;
}

async function bench_site(browser, site, repeats, verbose) {
  const server = await startServer({ root: site, port: 0 });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await context.newPage();
    forward_page_console(page, `  [${site_name(site)}]`, { verbose });
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await wait_demo_ready(page);
    const timings = await page.evaluate((n) => window.capsnetDemo.benchmark(n), repeats);
    // performance.now() is coarsened in the browser anyway: microseconds are all the digits there are.
    for (const [key, value] of Object.entries(timings)) {
      if (key.endsWith('_ms')) timings[key] = Math.round(value * 1000) / 1000;
    }
    return { site, name: site_name(site), repeats, ...timings };
  } finally {
    await context.close();
    await server.close();
  }
}

async function main() {
  let options;
  try {
    options = parse_options(process.argv.slice(2), { repeats: '20' }, { multi: ['site'], flags: ['verbose', 'help'] });
    if (options.help) {
      console.log(usage);
      return 0;
    }
    if (options.site.length === 0) throw new Error('at least one --site is needed');
    if (!/^\d+$/.test(options.repeats) || Number(options.repeats) < 1)
      throw new Error(`--repeats needs a positive integer, got '${options.repeats}'`);
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
    console.error(`browser_bench: Chromium ${browser.version()}, ${options.repeats} repeats per timing`);
    for (const site of options.site) {
      try {
        const timings = await bench_site(browser, site, Number(options.repeats), options.verbose);
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
