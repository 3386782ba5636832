// Shared helpers for the browser tests: launching Debian's Chromium through
// playwright-core, and small waits that fail with a clear message.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Chromium's path: CHROMIUM_PATH, else Debian's package. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Launches headless Chromium with flags that suit a CI machine. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A new page that fails the test on any script error in the page. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 820 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    ...options,
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    console.error(`page error: ${error.message}`);
    process.exitCode = 1;
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) {
      console.error(`console error: ${message.text()}`);
    }
  });
  page.setDefaultTimeout(15000);
  return page;
}

/** Saves a screenshot as `<dir>/<name>.png` and says where. */
export async function shot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  console.log(`screenshot: ${path}`);
  return path;
}

/** Waits until `fn` (run in the page) returns something truthy. */
export async function until(page, what, fn, arg) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: 15000, polling: 50 });
  } catch (error) {
    throw new Error(`timed out waiting for ${what}: ${error.message.split('\n')[0]}`);
  }
}

/** Runs `body`, closing the browser whatever happens; exits 1 on failure. */
export async function run(body) {
  const browser = await launch();
  try {
    await body(browser);
    if (process.exitCode) throw new Error('the page reported script errors (see above)');
    console.log('ok');
  } catch (error) {
    console.error(`FAILED: ${error.stack || error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
