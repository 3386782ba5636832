// Tool approvals on the web page: Clara's question shows as a card (its fields
// as plain text), stays there across a reload, and "Approve once" lets the
// tool run and closes the card with the outcome. Then the owner's Tools panel:
// the MCP servers and the rules, and turning a server on.
//
// Usage: node approvals.mjs <base url> <screenshot dir>
// The Rust test (http_approvals.rs) gives the engine `mail__send_note` (a tool
// that sends, so the owner is asked), scripts the model to call it with
// arguments that try to be markup, and shows two fake MCP servers.
import assert from 'node:assert/strict';
import { newPage, run, shot, until } from './lib.mjs';

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node approvals.mjs <base url> <screenshot dir>');
  process.exit(2);
}

const ARGUMENTS = '{"text":"<img src=x onerror=\\"document.body.dataset.pwned=1\\">hi","to":"ann@example.com"}';

await run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(url);
  await page.waitForSelector('#app:not([hidden])');
  await page.fill('#input', 'Send Ann a note');
  await page.press('#input', 'Enter');

  // The question: tool, reason, arguments, three buttons; nothing as markup.
  const card = await page.waitForSelector('.msg.ask[data-ask]');
  const id = await card.getAttribute('data-ask');
  assert.match(id, /^[0-9a-f]{8}$/);
  assert.match(await page.$eval('.msg.ask .ask-title', (n) => n.textContent), /^Clara wants to run mail__send_note for .+/);
  assert.equal(await page.$eval('.msg.ask .ask-arguments', (n) => n.textContent), ARGUMENTS);
  assert.ok((await page.$eval('.msg.ask .ask-reason', (n) => n.textContent)).length > 0, 'the reason is shown');
  assert.deepEqual(
    await page.$$eval('.msg.ask .ask-actions button', (nodes) => nodes.map((n) => n.textContent)),
    ['Approve once', 'Always (these arguments)', 'Deny'],
  );
  assert.equal(await page.$$eval('.msg.ask img', (imgs) => imgs.filter((i) => !i.closest('.avatar')).length), 0, 'the arguments made no <img>');
  assert.equal(await page.evaluate(() => document.body.dataset.pwned), undefined, 'no script of the arguments ran');
  await shot(page, shots, 'approval-card');

  // A reload (a tab that connects late) shows the same open question.
  await page.reload();
  await page.waitForSelector(`.msg.ask[data-ask="${id}"] .ask-actions button[data-verdict="once"]`);
  assert.equal(await page.$$eval('.msg.ask', (nodes) => nodes.length), 1);

  // Approve once: the card says so and loses its buttons; the tool runs and
  // Clara answers.
  await page.click(`.msg.ask[data-ask="${id}"] button[data-verdict="once"]`);
  await until(page, 'the card to show the outcome', (ask) => {
    const outcome = document.querySelector(`.msg.ask.closed.approved[data-ask="${ask}"] .ask-outcome`);
    return outcome && !outcome.hidden && outcome.textContent === 'Approved once.';
  }, id);
  assert.equal(await page.$$eval(`.msg.ask[data-ask="${id}"] button`, (nodes) => nodes.length), 0, 'the buttons are gone');
  await until(page, 'the answer after the tool ran', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('Sent it.')));
  await page.waitForSelector('.msg.assistant .chip.ok[data-tool="mail__send_note"]');
  await shot(page, shots, 'approval-approved');

  // The Tools panel (the page's person is the owner).
  await page.waitForSelector('#nav-tools:not([hidden])');
  await page.click('#nav-tools');
  const everything = await page.waitForSelector('.server-card[data-server="everything"]');
  assert.match(await everything.textContent(), /ready, 2 tools/);
  assert.match(await everything.textContent(), /1 restart/);
  assert.deepEqual(
    await page.$$eval('.server-card[data-server="everything"] .chip', (nodes) => nodes.map((n) => n.dataset.tool)),
    ['everything__echo', 'everything__get_sum'],
  );
  assert.match(await page.$eval('#tool-approvals', (n) => n.textContent), /web:owner/);
  assert.match(await page.$eval('#tool-rules', (n) => n.textContent), /No rules of your own/);
  // Server text is shown as text.
  assert.equal(await page.$eval('.server-card[data-server="notes"] .server-detail', (n) => n.textContent), '<b>disabled</b>');
  assert.equal(await page.$$eval('.server-card b', (nodes) => nodes.length), 0);
  assert.doesNotMatch(await page.$eval('.server-card[data-server="notes"]', (n) => n.textContent), /null|undefined/);
  await shot(page, shots, 'tools-panel');

  await page.click('.server-card[data-server="notes"] button[data-action="enable"]');
  await page.waitForSelector('.server-card[data-server="notes"] .badge.state.starting');
  await page.waitForSelector('.server-card[data-server="notes"] button[data-action="disable"]');
});
