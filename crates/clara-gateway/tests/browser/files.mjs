// Files on the web page, both ways: "plot this" runs the (fake) sandbox tool,
// whose live output shows in its chip while it runs and folds away when it
// ends; the chart it draws arrives as a picture in the reply, a CSV as a
// download link with its size. Then the person attaches a CSV and a picture
// through the attach control (the picture previewed), sends them, and sees
// them in their message; a file over the limit is refused with a sentence.
//
// Usage: node files.mjs <base url> <screenshot dir> <max file bytes>
// The Rust test (http_browser.rs) registers the fake `sandbox__run_python`,
// scripts the model, and serves POST /test/release, which lets the tool finish.
import assert from 'node:assert/strict';
import { newPage, run, shot, until } from './lib.mjs';

const [url, shots, maxFileBytes] = process.argv.slice(2);
if (!url || !shots || !maxFileBytes) {
  console.error('usage: node files.mjs <base url> <screenshot dir> <max file bytes>');
  process.exit(2);
}

/** A 1×1 PNG. */
const DOT = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const TOOL = 'sandbox__run_python';

await run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(url);
  await page.waitForSelector('#app:not([hidden])');
  await until(page, 'the event stream to connect', () => document.querySelector('#chat-status').classList.contains('online'));

  // 1. "Plot this": the tool's output shows live in its chip while it runs.
  await page.fill('#input', 'Plot this');
  await page.press('#input', 'Enter');
  const box = `.chip.running.has-output[data-tool="${TOOL}"] .tool-output`;
  await page.waitForSelector(box);
  await until(page, 'the third epoch in the live output', (sel) => {
    const node = document.querySelector(sel);
    return node && node.textContent.includes('epoch 3/3');
  }, box);
  const live = await page.$eval(box, (n) => n.textContent);
  assert.ok(live.startsWith('epoch 1/3\nepoch 2/3\n'), `live output: ${JSON.stringify(live)}`);
  assert.equal(await page.$$eval(`${box} *`, (nodes) => nodes.length), 0, 'the output is text, not markup');
  assert.ok(await page.isVisible(box));
  await shot(page, shots, 'files-live-output');

  // 2. The tool may finish: the chart arrives as a picture, the CSV as a link.
  const released = await page.request.post(`${url}/test/release`);
  assert.equal(released.status(), 204);
  const picture = '.msg.assistant .files figure.file.picture img.file-image';
  await page.waitForSelector(picture);
  await until(page, 'the chart to load', (sel) => {
    const img = document.querySelector(sel);
    return img && img.complete && img.naturalWidth === 360 && img.naturalHeight === 220;
  }, picture);
  const src = await page.$eval(picture, (img) => img.getAttribute('src'));
  assert.match(src, /^\/api\/chat\/files\/[0-9a-f]{32}$/);
  assert.equal(await page.$eval('.msg.assistant .file.picture figcaption', (n) => n.textContent), 'Sales by month');
  const link = await page.waitForSelector('.msg.assistant .file.document a.file-link');
  assert.equal(await link.getAttribute('download'), 'data.csv');
  assert.match(await link.textContent(), /data\.csv.*50 bytes/);
  await until(page, 'the answer', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('Here is your chart.')));
  await until(page, 'the reply to end', () => !document.querySelector('.msg.assistant.streaming'));
  // The picture sits in the reply's bubble, after the text.
  assert.ok(await page.$('.msg.assistant .bubble > .md + .files img.file-image'));

  // 3. The finished tool's output folds away, and opens again on a click.
  const chip = `.chip.ok.has-output[data-tool="${TOOL}"]`;
  await page.waitForSelector(`${chip}.collapsed`);
  assert.ok(await page.isHidden(`${chip} .tool-output`));
  assert.equal(await page.getAttribute(`${chip} .chip-head`, 'aria-expanded'), 'false');
  await page.click(`${chip} .chip-head`);
  await page.waitForSelector(`${chip}:not(.collapsed) .tool-output`, { state: 'visible' });
  assert.equal(await page.getAttribute(`${chip} .chip-head`, 'aria-expanded'), 'true');
  assert.ok((await page.$eval(`${chip} .tool-output`, (n) => n.textContent)).includes('loss 0.12'));
  await shot(page, shots, 'files-chart');

  // 4. Attaching files: the picture is previewed, the CSV named with its size.
  await page.setInputFiles('#attach-input', [
    { name: 'notes.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') },
    { name: 'dot.png', mimeType: 'image/png', buffer: DOT },
  ]);
  await page.waitForSelector('#attachments:not([hidden]) .attachment[data-name="notes.csv"]');
  await page.waitForSelector('.attachment[data-name="dot.png"] img.attachment-thumb');
  assert.match(await page.textContent('.attachment[data-name="notes.csv"]'), /notes\.csv.*8 bytes/);
  // Removing one and adding it again.
  await page.click('.attachment[data-name="notes.csv"] .attachment-remove');
  await until(page, 'the CSV to go', () => !document.querySelector('.attachment[data-name="notes.csv"]'));
  await page.setInputFiles('#attach-input', [{ name: 'notes.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') }]);
  await page.waitForSelector('.attachment[data-name="notes.csv"]');
  await shot(page, shots, 'files-attached');

  await page.fill('#input', 'What is in these?');
  await page.press('#input', 'Enter');
  const mine = page.locator('.msg.user').last();
  await mine.locator('.sent-files img.sent-thumb[alt="dot.png"]').waitFor();
  assert.match(await mine.locator('.sent-files .sent-file').textContent(), /notes\.csv.*8 bytes/);
  assert.equal(await mine.locator('.bubble').textContent(), 'What is in these?');
  assert.ok(await page.isHidden('#attachments'), 'the tray empties once sent');
  await until(page, 'the answer about the files', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('two columns')));
  assert.equal(await page.$$eval('.msg.user.failed', (n) => n.length), 0, 'nothing failed to send');

  // Dropping a file on the chat, and pasting one, attach them too.
  await page.evaluate(() => {
    const view = document.querySelector('#view-chat');
    const dropped = new DataTransfer();
    dropped.items.add(new File(['dropped'], 'dropped.txt', { type: 'text/plain' }));
    view.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dropped, bubbles: true, cancelable: true }));
    if (document.querySelector('#drop-overlay').hidden) throw new Error('no drop overlay while dragging');
    view.dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
    const pasted = new DataTransfer();
    pasted.items.add(new File(['pasted'], 'pasted.txt', { type: 'text/plain' }));
    document.querySelector('#input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true, cancelable: true }));
  });
  await page.waitForSelector('.attachment[data-name="dropped.txt"]');
  await page.waitForSelector('.attachment[data-name="pasted.txt"]');
  assert.ok(await page.isHidden('#drop-overlay'), 'the overlay goes once dropped');
  await page.click('.attachment[data-name="dropped.txt"] .attachment-remove');
  await page.click('.attachment[data-name="pasted.txt"] .attachment-remove');
  await page.waitForSelector('#attachments', { state: 'hidden' });

  // 5. A file over the limit is refused with one sentence; nothing is attached.
  const big = Buffer.alloc(Number(maxFileBytes) * 2, 7);
  await page.setInputFiles('#attach-input', [{ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: big }]);
  await page.waitForSelector('#attach-error:not([hidden])');
  const refusal = await page.textContent('#attach-error');
  assert.match(refusal, /^\u201chuge\.bin\u201d is \d+ KiB, and a file may be at most \d+ KiB\.$/);
  assert.ok(await page.isHidden('#attachments'));
  await shot(page, shots, 'files-too-large');

  // 6. After a reload the chart is still in its reply.
  await page.reload();
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector(picture);
  await until(page, 'the chart to load again', (sel) => {
    const img = document.querySelector(sel);
    return img && img.complete && img.naturalWidth === 360;
  }, picture);
});
