// Clara's stored tool runs on the web page: chips under her message (name,
// ok/failed, who approved), and a click shows the arguments and the result as
// plain text — a hostile result never becomes markup.
//
// Usage: node tool_history.mjs <base url> <screenshot dir>
// The Rust test (http_browser.rs) stores the conversation first: one answer
// that used `web__fetch` (approved by the owner, its result trying to be an
// <img> with an onerror) and `shell__exec` (refused).
import assert from 'node:assert/strict';
import { newPage, run, shot, until } from './lib.mjs';

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node tool_history.mjs <base url> <screenshot dir>');
  process.exit(2);
}

await run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(url);
  await page.waitForSelector('#app:not([hidden])');
  await until(page, 'the stored answer', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('I read it.')));

  // The chips: one per run, in order, with how it went and who let it run.
  const fetch = await page.waitForSelector('.msg.assistant .chip.stored.ok[data-tool="web__fetch"]');
  const refused = await page.waitForSelector('.msg.assistant .chip.stored.failed.refused[data-tool="shell__exec"]');
  const chips = await page.$$eval('.msg.assistant .chip.stored', (nodes) => nodes.map((n) => n.dataset.tool));
  assert.deepEqual(chips, ['web__fetch', 'shell__exec']);
  assert.match(await fetch.textContent(), /web · fetch.*approved by web:owner/);
  assert.match(await refused.textContent(), /refused/);

  // A click shows the arguments and the result, as text.
  await fetch.click();
  const detail = await page.waitForSelector('.tool-detail[data-tool="web__fetch"]');
  assert.equal(await page.$eval('.tool-detail[data-tool="web__fetch"] .tool-arguments', (n) => n.textContent), '{"url":"https://example.org/<b>"}');
  const result = await page.$eval('.tool-detail[data-tool="web__fetch"] .tool-result', (n) => n.textContent);
  assert.ok(result.startsWith('<img src=x onerror='), `result shown as text: ${result}`);
  assert.equal(await page.$$eval('.msg.assistant img', (imgs) => imgs.filter((i) => !i.closest('.avatar')).length), 0, 'the result made no <img>');
  assert.equal(await page.$$eval('.tool-detail b', (nodes) => nodes.length), 0, 'the arguments made no <b>');
  assert.equal(await page.evaluate(() => document.body.dataset.pwned), undefined, 'no script of the result ran');
  assert.equal(await fetch.getAttribute('aria-expanded'), 'true');
  await shot(page, shots, 'tool-history');

  // The refused one says why; a second click hides the detail again.
  await refused.click();
  await page.waitForSelector('.tool-detail[data-tool="shell__exec"] .tool-reason >> text=the owner said no');
  await fetch.click();
  await until(page, 'the detail to close', () => !document.querySelector('.tool-detail[data-tool="web__fetch"]'));
  assert.ok(await detail.isHidden());

  // The sessions list shows the same chips in the transcript.
  await page.goto(`${url}/#sessions`);
  await page.click('.session-card');
  await page.waitForSelector('.transcript .chip.stored[data-tool="web__fetch"]');
  await page.click('.transcript .chip.stored[data-tool="web__fetch"]');
  const again = await page.$eval('.transcript .tool-detail .tool-result', (n) => n.textContent);
  assert.equal(again, result);
  assert.ok(await page.$('.transcript'), 'clicking a chip did not close the transcript');
});
