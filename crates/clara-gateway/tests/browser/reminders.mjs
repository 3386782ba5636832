// The Reminders panel as a person uses it, on a loopback Clara (no login), in
// a browser set to Berlin time: the time zone offered from the browser, a
// wrong time answered with Clara's sentence, a reminder and a task added
// through the form and listed, the alert settings saved, items removed — and
// a reminder that fires showing up in the open chat, and after a reload.
//
// Usage: node reminders.mjs <base url> <screenshot dir>
// The Rust test (http_schedules.rs) starts Clara with a `POST /test/fire`
// route that fires what is due next and delivers it, as the scheduler would
// when its time comes.
import assert from 'node:assert/strict';
import { newPage, run, shot, until } from './lib.mjs';

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node reminders.mjs <base url> <screenshot dir>');
  process.exit(2);
}

const cardTexts = (page) => page.$$eval('#schedule-list .schedule-card .schedule-text', (nodes) => nodes.map((n) => n.textContent));

async function add(page, kind, text, when) {
  await page.selectOption('#schedule-kind', kind);
  await page.fill('#schedule-text', text);
  await page.fill('#schedule-when', when);
  await page.click('#schedule-add');
}

await run(async (browser) => {
  const page = await newPage(browser, { timezoneId: 'Europe/Berlin' });
  await page.goto(`${url}/#reminders`);
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#view-reminders:not([hidden])');
  await page.waitForSelector('#schedule-list .empty >> text=Nothing scheduled');
  assert.equal(await page.title(), 'Reminders · Clara');
  // A person with no time zone is offered the browser's.
  assert.equal(await page.inputValue('#schedule-zone'), 'Europe/Berlin');
  assert.equal(await page.inputValue('#settings-zone'), 'Europe/Berlin');
  assert.equal(await page.getAttribute('#schedule-when', 'placeholder'), 'tomorrow at 9 / every weekday at 7 / in 20 minutes');

  // A time Clara cannot read: her sentence, and nothing is added.
  await add(page, 'reminder', 'Water the plants', 'whenever');
  await page.waitForSelector('#schedule-error:not([hidden])');
  const error = await page.textContent('#schedule-error');
  assert.match(error, /^Could not read "whenever" as a time/);
  assert.equal(await page.inputValue('#schedule-text'), 'Water the plants', 'the text stays to fix the time');

  // A reminder, then a task and another reminder: each listed with when it comes.
  await page.fill('#schedule-when', 'tomorrow at 9');
  await page.click('#schedule-add');
  await page.waitForSelector('.schedule-card .schedule-text >> text=Water the plants');
  assert.ok(await page.isHidden('#schedule-error'), 'the error went away');
  assert.equal(await page.inputValue('#schedule-text'), '', 'the form is cleared');
  const plants = page.locator('.schedule-card', { hasText: 'Water the plants' });
  assert.match(await plants.locator('.schedule-next').textContent(), /^Next: .* at 09:00$/);
  assert.match(await plants.locator('.badge.reminder').textContent(), /Reminder/);
  await add(page, 'task', 'Tell me the weather', 'every weekday at 7');
  await page.waitForSelector('.schedule-card .schedule-text >> text=Tell me the weather');
  const weather = page.locator('.schedule-card', { hasText: 'Tell me the weather' });
  assert.equal(await weather.locator('.schedule-when').textContent(), 'every weekday at 07:00');
  assert.ok(await weather.locator('.badge.task').isVisible());
  await add(page, 'reminder', 'Stretch your legs', 'in 1 minute');
  await page.waitForSelector('.schedule-card .schedule-text >> text=Stretch your legs');
  assert.deepEqual(await cardTexts(page), ['Water the plants', 'Tell me the weather', 'Stretch your legs']);

  // Settings: a wrong range is refused with the sentence; then saved.
  await page.fill('#settings-quiet', 'after dinner');
  await page.click('#settings-save');
  await page.waitForSelector('#settings-error:not([hidden])');
  assert.match(await page.textContent('#settings-error'), /"after dinner" is not a quiet-hours range/);
  await page.fill('#settings-quiet', '22:00-07:00');
  await page.check('#settings-here');
  await page.click('#settings-save');
  await until(page, 'the settings to be saved', () => document.querySelector('#settings-error').hidden
    && document.querySelector('#alerts-to').textContent.includes('this page'));
  await shot(page, shots, 'reminders');

  // A reload shows what was saved.
  await page.reload();
  await page.waitForSelector('.schedule-card .schedule-text >> text=Stretch your legs');
  await until(page, 'the settings', () => document.querySelector('#settings-quiet').value !== '');
  assert.equal(await page.inputValue('#settings-quiet'), '22:00–07:00');
  assert.ok(await page.isChecked('#settings-here'));
  assert.equal(await page.inputValue('#settings-zone'), 'Europe/Berlin');

  // Removing: each goes from the list.
  await plants.locator('[data-action="remove"]').click();
  await until(page, 'the reminder to go', () => ![...document.querySelectorAll('.schedule-card')].some((c) => c.textContent.includes('Water the plants')));
  await weather.locator('[data-action="remove"]').click();
  await until(page, 'the task to go', () => document.querySelectorAll('.schedule-card').length === 1);
  assert.deepEqual(await cardTexts(page), ['Stretch your legs']);

  // The last one fires while the chat is open: Clara speaks first.
  await page.click('.nav-item[data-view="chat"]');
  await until(page, 'the event stream to connect', () => document.querySelector('#chat-status').classList.contains('online'));
  const fired = await page.request.post(`${url}/test/fire`);
  assert.equal(fired.status(), 200);
  assert.deepEqual(await fired.json(), { fired: 1, delivered: 1 });
  await until(page, 'the reminder in the chat', () => [...document.querySelectorAll('.msg.assistant:not(.streaming) .md')]
    .some((n) => n.textContent.includes('⏰ Reminder: Stretch your legs')));
  assert.equal(await page.$$eval('.msg.user', (rows) => rows.length), 0, 'nobody wrote');
  await page.evaluate(() => Promise.all(document.getAnimations().map((a) => a.finished)));
  await shot(page, shots, 'reminder-in-chat');
  await page.reload();
  await until(page, 'the reminder after a reload', () => [...document.querySelectorAll('.msg.assistant .md')]
    .filter((n) => n.textContent.includes('⏰ Reminder: Stretch your legs')).length === 1);

  // Fired once, it is no longer scheduled.
  await page.click('.nav-item[data-view="reminders"]');
  await page.waitForSelector('#schedule-list .empty >> text=Nothing scheduled');

  // On a phone the panel fits the width.
  const phone = await newPage(browser, { viewport: { width: 390, height: 800 }, timezoneId: 'Europe/Berlin' });
  await phone.goto(`${url}/#reminders`);
  await phone.waitForSelector('#schedule-list .empty');
  const overflow = await phone.evaluate(() => document.querySelector('#view-reminders').scrollWidth - document.querySelector('#view-reminders').clientWidth);
  assert.ok(overflow <= 0, `the panel is ${overflow}px too wide`);
  await shot(phone, shots, 'reminders-phone');
});
