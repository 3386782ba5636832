// The web page as a person uses it, on a loopback Clara (no login):
// a streamed answer, a tool chip, stopping a reply, history after a reload,
// editing and forgetting memories, the sessions list, a new session.
//
// Usage: node chat.mjs <base url> <screenshot dir>
// The Rust test (http_browser.rs) starts Clara, seeds the memories and scripts
// the fake model's answers in the order this script asks.
import assert from 'node:assert/strict';
import { newPage, run, shot, until } from './lib.mjs';

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node chat.mjs <base url> <screenshot dir>');
  process.exit(2);
}

const FIRST_ANSWER = "I'm Clara";

async function send(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

const assistantTexts = (page) => page.$$eval('.msg.assistant:not(.typing) .md', (nodes) => nodes.map((n) => n.textContent));

await run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(url);
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#welcome:not([hidden])');
  await until(page, 'the event stream to connect', () => document.querySelector('#chat-status').classList.contains('online'));

  // 1. A streamed answer: it shows while it grows, then ends with the whole text.
  await send(page, 'Hello Clara! What can you do?');
  await page.waitForSelector('.msg.user .bubble >> text=Hello Clara! What can you do?');
  await page.waitForSelector('.msg.assistant.streaming');
  const partial = (await assistantTexts(page)).at(-1);
  await until(page, 'the first answer to end', () => !document.querySelector('.msg.assistant.streaming'));
  const whole = (await assistantTexts(page)).at(-1);
  assert.ok(whole.includes(FIRST_ANSWER), `first answer: ${whole}`);
  assert.ok(whole.length > partial.length, `the answer streamed (${partial.length} then ${whole.length} characters)`);
  assert.equal(await page.$$eval('.msg.assistant .md ul li', (items) => items.length), 3, 'markdown list rendered');
  assert.equal(await page.$eval('.msg.assistant .md strong', (n) => n.textContent), 'Clara');

  // 2. A tool: its chip shows, then a check; the high tier was asked for.
  await page.selectOption('#tier', 'high');
  await send(page, 'What time is it?');
  await page.waitForSelector('.chip[data-tool="clara__current_time"]');
  await page.waitForSelector('.chip.ok[data-tool="clara__current_time"]');
  await until(page, 'the time answer', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('past noon')));
  await page.selectOption('#tier', 'auto');

  // 3. Stopping a reply: the stop button cuts it; no more text arrives.
  await send(page, 'Tell me a very long story.');
  await until(page, 'the story to start', () => {
    const last = [...document.querySelectorAll('.msg.assistant .md')].at(-1);
    return last && last.textContent.includes('(3)') && document.querySelector('.msg.assistant.streaming');
  });
  await page.waitForSelector('#stop:not([hidden])');
  await shot(page, shots, 'chat-streaming');
  await page.click('#stop');
  await page.waitForSelector('.msg.assistant .note >> text=Stopped');
  await page.waitForSelector('#send:not([hidden])');
  const stopped = (await assistantTexts(page)).at(-1);
  await page.waitForTimeout(1200);
  assert.equal((await assistantTexts(page)).at(-1), stopped, 'nothing more arrived after the stop');
  assert.ok(!stopped.includes('The end.'), 'the story was cut short');
  await shot(page, shots, 'chat-light');

  // 4. Reload: the conversation is still there, the stopped reply too.
  await page.reload();
  await page.waitForSelector('#app:not([hidden])');
  await until(page, 'history after the reload', () => document.querySelectorAll('.msg.user').length >= 3);
  const users = await page.$$eval('.msg.user .bubble', (nodes) => nodes.map((n) => n.textContent));
  assert.deepEqual(users, ['Hello Clara! What can you do?', 'What time is it?', 'Tell me a very long story.']);
  const after = await assistantTexts(page);
  assert.ok(after.some((t) => t.includes(FIRST_ANSWER)), `answers after reload: ${after}`);
  assert.ok(after.some((t) => t.includes('past noon')));
  assert.ok(await page.$('.msg.assistant .note >> text=Stopped'), 'the stopped reply is shown as stopped');

  // Dark theme, same conversation.
  await page.click('#theme-toggle');
  await page.waitForTimeout(250);
  await shot(page, shots, 'chat-dark');
  await page.click('#theme-toggle');

  // 5. Memories: listed, edited, shared, forgotten, with history.
  await page.click('.nav-item[data-view="memories"]');
  await until(page, 'the memories', () => document.querySelectorAll('.card.memory').length === 4);
  await shot(page, shots, 'memories');
  const card = (text) => page.locator('.card.memory', { hasText: text });

  await card('Works as a nurse in Lyon').locator('[data-action="edit"]').click();
  await page.fill('.card.memory .edit-area', 'Works as a nurse in Marseille');
  await page.click('.card.memory .editing >> text=Save');
  await page.waitForSelector('.card.memory .memory-text >> text=Works as a nurse in Marseille');
  assert.equal(await card('Lyon').count(), 0, 'the old text is gone');

  await card('Marseille').locator('[data-action="history"]').click();
  await page.waitForSelector('.timeline .what >> text=Corrected');
  await page.waitForSelector('.timeline .what >> text=Learned');
  await page.waitForSelector('.timeline .diff >> text=Works as a nurse in Lyon');

  await card('cello').locator('[data-action="share"]').click();
  await page.waitForSelector('.card.memory:has-text("cello") .badge >> text=Shareable');

  await card('Prefers tea').locator('[data-action="forget"]').click();
  await card('Prefers tea').locator('[data-action="confirm-forget"]').click();
  await until(page, 'the forgotten memory to leave the list', () => ![...document.querySelectorAll('.card.memory')].some((c) => c.textContent.includes('Prefers tea')));
  await card('Marseille').locator('[data-action="history"]').click();
  await page.waitForSelector('.card.memory:has-text("Marseille") .timeline .what >> text=Corrected');
  await page.waitForSelector('#toast', { state: 'hidden' }); // no toast over the screenshot
  await shot(page, shots, 'memories-history');

  // The server agrees: what the page shows is what Clara knows.
  const known = await page.evaluate(async () => (await (await fetch('/v1/memories')).json()).data.map((m) => m.text));
  assert.ok(known.includes('Works as a nurse in Marseille'), `${known}`);
  assert.ok(!known.includes('Prefers tea over coffee'), `${known}`);
  const all = await page.evaluate(async () => (await (await fetch('/v1/memories?include_forgotten=true')).json()).data.map((m) => m.text));
  assert.ok(all.includes('Prefers tea over coffee'), 'a forgotten memory keeps its history');

  // Search.
  await page.fill('#memory-search', 'Marseille');
  await until(page, 'search results', () => document.querySelectorAll('.card.memory').length === 1);

  // 6. Sessions.
  await page.click('.nav-item[data-view="sessions"]');
  await page.waitForSelector('.session-card .badge.current');
  await page.click('.session-card');
  await page.waitForSelector('.transcript .line >> text=What time is it?');
  await shot(page, shots, 'sessions');

  // 7. A new session: the chat starts empty; the memories stay.
  await page.click('.nav-item[data-view="chat"]');
  await page.click('#new-session');
  await page.waitForSelector('#welcome:not([hidden])');
  assert.equal(await page.$$eval('.msg', (nodes) => nodes.length), 0);
  await shot(page, shots, 'chat-new-session');

  // 8. On a phone.
  const phone = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await phone.goto(url);
  await phone.waitForSelector('#app:not([hidden])');
  await send(phone, 'Hi from my phone');
  await until(phone, 'the echo answer', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('Hi from my phone')));
  await until(phone, 'the answer to end', () => !document.querySelector('.msg.assistant.streaming'));
  assert.ok(await phone.$('.msg.user .bubble >> text=Hi from my phone'), 'the phone shows what was sent');
  await phone.waitForTimeout(400); // the new message's fade-in
  await shot(phone, shots, 'chat-phone');

  // 9. Text from the model is Markdown, never markup: links built from hostile
  // text keep to href/target/rel, and nothing else becomes an element.
  const hostile = '[a](https://x.example/(https://y.example/onmouseover=alert(1) <img src=x onerror=alert(2)> [b](https://x.example/*)* **c**';
  await send(phone, hostile);
  await until(phone, 'the hostile echo', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('onerror')));
  await until(phone, 'the hostile answer to end', () => !document.querySelector('.msg.assistant.streaming'));
  const rendered = await phone.$$eval('.msg.assistant .md *', (nodes) => nodes.map((n) => ({
    tag: n.tagName.toLowerCase(),
    attrs: [...n.attributes].map((a) => a.name),
  })));
  for (const { tag, attrs } of rendered) {
    assert.ok(['p', 'a', 'strong', 'em', 'code', 'pre', 'ul', 'ol', 'li', 'h4', 'blockquote', 'br'].includes(tag), `unexpected <${tag}>`);
    assert.ok(attrs.every((a) => ['href', 'target', 'rel'].includes(a)), `<${tag}> got attributes ${attrs}`);
  }
  const hrefs = await phone.$$eval('.msg.assistant .md a', (nodes) => nodes.map((n) => n.getAttribute('href')));
  assert.ok(hrefs.includes('https://x.example/(https://y.example/onmouseover=alert(1'), `${hrefs}`);
  assert.ok(hrefs.includes('https://x.example/*'), `${hrefs}`);
  assert.ok(await phone.$('.msg.assistant .md strong >> text=c'), 'emphasis still renders');
});
