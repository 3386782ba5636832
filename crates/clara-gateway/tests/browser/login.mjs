// Logging in to a Clara that listens off loopback: the page asks for the
// password, refuses a wrong one, lets the right one in (the cookie survives a
// reload), talks, and logs out.
//
// Usage: node login.mjs <base url> <password> <screenshot dir>
import assert from 'node:assert/strict';
import { newPage, run, shot, until } from './lib.mjs';

const [url, password, shots] = process.argv.slice(2);
if (!url || !password || !shots) {
  console.error('usage: node login.mjs <base url> <password> <screenshot dir>');
  process.exit(2);
}

await run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(url);
  await page.waitForSelector('#login:not([hidden])');
  assert.ok(await page.$('#app[hidden]'), 'nothing of the app shows before the login');
  await shot(page, shots, 'login');

  // Nothing is reachable without the login.
  const status = await page.evaluate(async () => (await fetch('/v1/memories')).status);
  assert.equal(status, 401);

  await page.fill('#password', 'not the password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.match(await page.textContent('#login-error'), /not right/);

  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#app:not([hidden])');
  await until(page, 'the event stream to connect', () => document.querySelector('#chat-status').classList.contains('online'));

  // A state-changing call without the CSRF token is refused, even logged in.
  const forged = await page.evaluate(async () => (await fetch('/api/chat/stop', { method: 'POST' })).status);
  assert.equal(forged, 403);

  await page.fill('#input', 'Hello after logging in');
  await page.press('#input', 'Enter');
  await until(page, 'an answer', () => [...document.querySelectorAll('.msg.assistant .md')].some((n) => n.textContent.includes('Hello after logging in')));

  await page.reload();
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('.msg.user .bubble >> text=Hello after logging in');

  await page.click('#logout');
  await page.waitForSelector('#login:not([hidden])');
  const after = await page.evaluate(async () => (await fetch('/api/me')).json());
  assert.equal(after.logged_in, false);
});
