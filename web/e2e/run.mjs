// Opens the demo page in headless Chromium with WebGPU on its SwiftShader adapter, waits
// for #status to leave RUNNING, prints what the page shows, saves a full-page screenshot,
// and exits 0 only when #status reads `ALL CHECKS PASSED`.
//
// usage: node run.mjs <url> <screenshot.png> [timeout seconds]
// env: CHROMIUM (default /usr/bin/chromium)

import { chromium } from 'playwright-core';

const [url, screenshot, timeoutSeconds = '600'] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node run.mjs <url> <screenshot.png> [timeout seconds]');
  process.exit(2);
}

// Playwright adds --headless, --enable-unsafe-swiftshader, --no-first-run,
// --disable-background-networking, --disable-sync and a fresh --user-data-dir itself;
// they are repeated here so the list is the one documented for this machine.
const args = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args,
});
let status = '(page did not load)';
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('console', (m) => console.log(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto(url);
  const started = Date.now();
  try {
    await page.waitForFunction(() => document.getElementById('status')?.textContent !== 'RUNNING', null, {
      timeout: Number(timeoutSeconds) * 1000,
      polling: 500,
    });
  } catch (e) {
    console.log(`timed out after ${timeoutSeconds} s waiting for #status to leave RUNNING`);
  }
  status = await page.locator('#status').innerText();
  for (const id of ['adapter', 'checks', 'errors', 'training', 'evaluation']) {
    console.log(`--- #${id}\n${await page.locator(`#${id}`).innerText()}`);
  }
  console.log(`--- page finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await browser.close();
}
console.log(`#status: ${status}`);
process.exit(status === 'ALL CHECKS PASSED' ? 0 : 1);
