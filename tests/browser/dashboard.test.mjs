// The organizer's dashboard in a real browser (Debian's Chromium, driven by
// playwright-core), against a local stack with the Twilio simulator.
//
// Run through `cargo run -p e2e --bin browser-tests` (infra/scripts/test.sh
// step `browser`), which starts the stack and sets:
//   RSVP_API_URL   the stack (API, and the dashboard at /)
//   RSVP_SIM_URL   the Twilio simulator (its /_sim/* controls)
//   RSVP_ARTIFACTS where screenshots go
//   RSVP_LIMITED_API_URL, RSVP_LIMITED_SIM_URL  a second stack (and its
//                  simulator) whose sender may reach 3 guests in a 30-second
//                  "day": the daily limit's test
// RSVP_CHROMIUM overrides the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const { chromium } = await import(new URL('../../infra/node/node_modules/playwright-core/index.mjs', import.meta.url));

const API = process.env.RSVP_API_URL;
const SIM = process.env.RSVP_SIM_URL;
const LIMITED_API = process.env.RSVP_LIMITED_API_URL;
const LIMITED_SIM = process.env.RSVP_LIMITED_SIM_URL;
const ARTIFACTS = process.env.RSVP_ARTIFACTS ?? path.resolve('test-artifacts/dashboard');
fs.mkdirSync(ARTIFACTS, { recursive: true });
const CHROMIUM = process.env.RSVP_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = !API || !SIM ? 'needs RSVP_API_URL and RSVP_SIM_URL: run `cargo run -p e2e --bin browser-tests`' : false;
const skipLimited = skip || (!LIMITED_API || !LIMITED_SIM
  ? 'needs RSVP_LIMITED_API_URL and RSVP_LIMITED_SIM_URL: run `cargo run -p e2e --bin browser-tests`' : false);

/** A fresh browser profile with one page at this viewport; closed by `close()`. */
async function openBrowser(viewport) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsvp-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport,
    isMobile: viewport.width < 500, hasTouch: viewport.width < 500, deviceScaleFactor: 1,
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // API errors must show on the page (checked through #errors); a failed
  // load of anything else (the page's own files) is a problem here.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith('/api/')) problems.push(`${r.status()} for ${r.url()}`);
  });
  const close = async () => {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { page, problems, close };
}

async function sim(method, pathname, body, base = SIM) {
  const res = await fetch(base + pathname, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(res.ok, `simulator ${method} ${pathname}: ${res.status}`);
  return res.json();
}

async function apiCall(method, pathname, body, base = API) {
  const res = await fetch(base + pathname, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function createTemplate(id, name, text) {
  const template_id = `${id}-${Date.now().toString(36)}`;
  const res = await apiCall('POST', '/api/whatsapp/templates', { template_id, name, text });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function createEvent(eventId, name, base = API) {
  const res = await apiCall('PUT', `/api/whatsapp/events/${eventId}`, {
    name, starts_at: '2027-06-01T20:00:00+00:00', venue: 'Hall', host: 'Ana', rsvp_base_url: 'https://rsvp.example.com/r/',
  }, base);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

function shooter(page, name) {
  const dir = path.join(ARTIFACTS, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  return (label) => page.screenshot({ path: path.join(dir, `${String(++n).padStart(2, '0')}-${label}.png`), fullPage: true });
}

/**
 * 50 CSV rows after a header: two invalid (no `+`; no name), one the
 * simulator refuses (63024), names with commas and quotes, some rows
 * without an id (the dashboard derives one from the phone).
 */
function guestCsv(prefix) {
  const phone = (i) => `+55119${prefix}${String(i).padStart(5, '0')}`;
  const rows = ['name,phone,id'];
  const invalid = { 13: `"Invalid Phone",${phone(13).slice(1)},g13`, 29: `,${phone(29)},g29` };
  for (let i = 1; i <= 50; i++) {
    if (invalid[i]) rows.push(invalid[i]);
    else if (i === 2) rows.push(`"Souza, Ana",${phone(i)},g${i}`);
    else if (i === 3) rows.push(`"Bo ""Junior"" Lima",${phone(i)},g${i}`);
    else if (i % 10 === 5) rows.push(`Guest ${i},${phone(i)},`);
    else rows.push(`Guest ${i},${phone(i)},g${i}`);
  }
  return { csv: rows.join('\n'), phone, failing: phone(7), failingId: 'g7', invalidLines: [14, 30] };
}

/** Every visible control has an accessible name (label, aria-label(ledby) or text). */
async function unlabelledControls(page) {
  return page.evaluate(() => {
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const name = (el) => {
      if (el.getAttribute('aria-label')?.trim()) return el.getAttribute('aria-label');
      const by = el.getAttribute('aria-labelledby');
      if (by) return by.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
      if (el.labels?.length) return [...el.labels].map((l) => l.textContent).join(' ').trim();
      if (el.tagName === 'BUTTON') return el.textContent.trim();
      return '';
    };
    return [...document.querySelectorAll('input, select, textarea, button, progress')]
      .filter(visible).filter((el) => !name(el)).map((el) => el.outerHTML.slice(0, 120));
  });
}

async function noHorizontalScroll(page, width) {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= width, `page is ${scrollWidth}px wide at a ${width}px viewport`);
}

async function flow(t, { name, viewport, prefix, keyboard, useTemplate }) {
  const { page, problems, close } = await openBrowser(viewport);
  t.after(close);
  const shot = shooter(page, name);
  const eventId = `gala-${name}-${Date.now().toString(36)}`;
  const { csv, failing, failingId, invalidLines, phone } = guestCsv(prefix);
  // The desktop run sends with a template of its own; the phone run with the event's default.
  const template = useTemplate ? await createTemplate(`short-${name}`, 'Short note',
    'Hello {guest_first_name}, see you at {event_name}: {rsvp_link}') : null;

  await page.goto(`${API}/`);
  await page.locator('#event-select option', { hasNotText: 'Loading' }).first().waitFor({ state: 'attached' });

  // 1. An event.
  if (await page.locator('#event-form').isHidden()) await page.getByRole('button', { name: 'New event' }).click();
  await page.getByLabel('Name', { exact: true }).fill(`Spring Gala (${name})`);
  await page.getByLabel('Event id').fill(eventId);
  await page.getByLabel('Date and time').fill('2027-05-01T17:00');
  await page.getByLabel('Venue').fill('Casa Rosa, Rua Augusta 100');
  await page.getByLabel('Host').fill('Marina');
  await page.getByLabel('RSVP base URL').fill('https://rsvp.example.com/r/');
  if (keyboard) await page.getByLabel('RSVP base URL').press('Enter');
  else await page.getByRole('button', { name: 'Save event' }).click();
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.locator('#status', { hasText: 'Created event' }).waitFor();
  await shot('event-created');

  // 2. Guests: 50 rows, two bad ones shown and explained, not added.
  await page.getByLabel('Paste CSV').fill(csv);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.locator('#import-summary', { hasText: '48 guests added; 2 rows not added' }).waitFor();
  const problemRows = page.locator('#import-problems tr.problem-row');
  assert.equal(await problemRows.count(), 2);
  assert.deepEqual(await problemRows.evaluateAll((rows) => rows.map((r) => Number(r.dataset.line))), invalidLines);
  assert.match(await problemRows.nth(0).innerText(), /not in international form/);
  assert.match(await problemRows.nth(1).innerText(), /name is missing/);
  const rows = page.locator('#guest-rows tr');
  assert.equal(await rows.count(), 48);
  assert.equal(await page.locator('#guest-rows tr[data-guest-id="g13"], #guest-rows tr[data-guest-id="g29"]').count(), 0);
  assert.equal(await page.locator('#guest-rows tr[data-guest-id="g2"] .name').innerText(), 'Souza, Ana');
  assert.equal(await page.locator('#guest-rows tr[data-guest-id="g3"] .name').innerText(), 'Bo "Junior" Lima');
  assert.equal(await page.locator(`#guest-rows tr[data-guest-id="p${phone(5).slice(1)}"]`).count(), 1);
  assert.ok(await page.locator('#guest-rows tr[data-status="none"]').count() === 48, 'nobody invited yet');
  if (viewport.width <= 400) await noHorizontalScroll(page, viewport.width);
  await shot('guests-checked');

  // 3. The message: the event's default template, previewed for a guest;
  // then (desktop) another template, previewed for another guest.
  const preview = page.locator('#preview');
  await assertEventually(async () => assert.match(await preview.innerText(),
    new RegExp(`^Hi Guest 1! Marina invites you to Spring Gala \\(${name}\\) on .*Casa Rosa.*\\n.*https://rsvp\\.example\\.com/r/\\S+$`, 's')));
  if (template) {
    await page.getByLabel('Template', { exact: true }).selectOption({ label: 'Short note (version 1)' });
    await page.getByLabel('Preview for guest').selectOption('g3');
    await assertEventually(async () => assert.match(await preview.innerText(),
      new RegExp(`^Hello Bo, see you at Spring Gala \\(${name}\\): https://rsvp\\.example\\.com/r/\\S+$`)));
    assert.match(await page.locator('#preview-meta').innerText(), /What Bo "Junior" Lima would get with Short note \(version 1\); \d+ of 1600 characters/);
  }
  await shot('message-preview');

  // 4. Selection.
  const count = page.locator('#guest-count');
  await page.getByRole('button', { name: 'Select all' }).click();
  await count.filter({ hasText: '48 selected' }).waitFor();
  await page.getByRole('button', { name: 'Select none' }).click();
  await count.filter({ hasText: '0 selected' }).waitFor();
  assert.ok(await page.getByRole('button', { name: /Send WhatsApp invitations/ }).isDisabled());
  // One box by hand, then every guest not yet invited.
  const box = page.getByRole('checkbox', { name: 'Select Guest 1' , exact: true });
  if (keyboard) {
    await box.focus();
    await page.keyboard.press('Space');
  } else {
    await box.check();
  }
  await count.filter({ hasText: '1 selected' }).waitFor();
  await page.getByRole('button', { name: 'Select not yet invited' }).click();
  await count.filter({ hasText: '48 selected' }).waitFor();

  // 5. Send, after a confirmation naming how many.
  await sim('POST', '/_sim/config', { fail_numbers: { [failing]: 63024 } });
  const sendButton = page.getByRole('button', { name: /Send WhatsApp invitations/ });
  assert.match(await sendButton.innerText(), /\(48\)/);
  await sendButton.click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Send 48 WhatsApp invitations\?/);
  assert.match(await dialog.innerText(), /48 guests of Spring Gala/);
  // The check (a dry run) answers before Send can be pressed: all 48 would
  // go (the refusal comes only from Twilio), at an estimated cost.
  const check = page.locator('#dry-run[data-state="ready"]');
  await check.waitFor();
  assert.equal(await check.locator('.dry-queued').getAttribute('data-count'), '48');
  assert.equal(await check.locator('.dry-skipped').getAttribute('data-count'), '0');
  assert.equal(await check.locator('.dry-rejected').getAttribute('data-count'), '0');
  assert.match(await check.locator('.dry-cost').innerText(), /^Estimated cost: \S/);
  assert.ok(await dialog.getByRole('button', { name: 'Send 48' }).isEnabled());
  await shot('confirm-send');
  if (keyboard) {
    // Cancel has the focus; Shift+Tab reaches Send.
    await page.keyboard.press('Shift+Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'confirm-send');
    await page.keyboard.press('Enter');
  } else {
    await dialog.getByRole('button', { name: 'Send 48' }).click();
  }
  await page.locator('#progress .job[data-total="48"]').waitFor();

  // 6. Progress to 100%, badges to read, the failure in words.
  const job = page.locator('#progress .job').first();
  await page.locator('#progress .job[data-done="true"][data-percent="100"]').waitFor({ timeout: 60_000 });
  assert.match(await job.innerText(), /48 of 48 invitations finished \(100%\)/);
  await waitForCount(page.locator('#guest-rows tr[data-status="read"]'), 47);
  const failedRow = page.locator(`#guest-rows tr[data-guest-id="${failingId}"]`);
  assert.equal(await failedRow.getAttribute('data-status'), 'failed');
  assert.match(await failedRow.locator('.reason').innerText(), /not a valid WhatsApp recipient \(error 63024\)/);
  // And what to do about it, from the API's one table.
  assert.equal(await failedRow.locator('.todo').getAttribute('data-action'), 'not_on_whatsapp');
  assert.match(await failedRow.locator('.todo').innerText(), /invite them another way/);
  assert.match(await failedRow.locator('.c-time time').innerText(), /\d/);
  // The bar's counts come from the job (polled), the badges from the invitations: both get there.
  await assertEventually(async () => {
    assert.equal(await job.locator('li[data-status="read"] .n').innerText(), '47');
    assert.equal(await job.locator('li[data-status="failed"] .n').innerText(), '1');
  });
  assert.match(await count.innerText(), /1 failed/);
  if (viewport.width <= 400) await noHorizontalScroll(page, viewport.width);
  await shot('sent-one-failed');

  // The simulator got one message per valid guest but the refused one, none to the bad rows.
  const ours = (await sim('GET', '/_sim/messages')).filter((m) => m.params.To?.startsWith(`whatsapp:+55119${prefix}`));
  assert.equal(ours.length, 47);
  const sentTo = new Set(ours.map((m) => m.params.To));
  for (const n of [13, 29, 7]) assert.ok(!sentTo.has(`whatsapp:${phone(n)}`), `nothing sent to ${phone(n)}`);
  const greeting = template ? /^Hello \S+, see you at Spring Gala/ : /^Hi .+! Marina invites you to Spring Gala/;
  for (const m of ours) assert.match(m.params.Body ?? '', greeting, `the chosen template was used: ${m.params.Body}`);

  // 7. Retry once the simulator accepts the number.
  await sim('POST', '/_sim/config', { fail_numbers: {} });
  if (keyboard) {
    await page.getByRole('button', { name: 'Select failed' }).click();
    await count.filter({ hasText: '1 selected' }).waitFor();
    await page.getByRole('button', { name: 'Retry all failed' }).focus();
    await page.keyboard.press('Enter');
  } else {
    await failedRow.getByRole('button', { name: 'Retry invitation to Guest 7' }).click();
  }
  await page.locator(`#guest-rows tr[data-guest-id="${failingId}"][data-status="read"]`).waitFor({ timeout: 30_000 });
  assert.match(await failedRow.innerText(), /attempt 2/);
  assert.equal(await failedRow.locator('.reason').count(), 0);
  await page.locator('#progress .job[data-done="true"][data-percent="100"] li[data-status="read"] .n', { hasText: '48' }).waitFor();
  await waitForCount(page.locator('#guest-rows tr[data-status="read"]'), 48);
  assert.ok(await page.getByRole('button', { name: 'Retry all failed' }).isDisabled());
  if (viewport.width <= 400) await noHorizontalScroll(page, viewport.width);
  await shot('retried-all-read');

  // Every control labelled; nothing went wrong on the page.
  assert.deepEqual(await unlabelledControls(page), []);
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(problems, []);
}

async function waitForCount(locator, n, timeout = 30_000) {
  const start = Date.now();
  for (;;) {
    const c = await locator.count();
    if (c === n) return;
    if (Date.now() - start > timeout) assert.fail(`expected ${n} of ${locator}, found ${c}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function assertEventually(check, timeout = 10_000) {
  const start = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() - start > timeout) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('desktop: create an event, add 50 guests, send, follow, retry the failure', { skip, timeout: 180_000 }, (t) =>
  flow(t, { name: 'desktop', viewport: { width: 1280, height: 900 }, prefix: '0', keyboard: false, useTemplate: true }));

test('phone-sized (390px), by keyboard: the same flow', { skip, timeout: 180_000 }, (t) =>
  flow(t, { name: 'phone-390', viewport: { width: 390, height: 844 }, prefix: '1', keyboard: true, useTemplate: false }));

test('API errors are shown, not swallowed', { skip, timeout: 60_000 }, async (t) => {
  const { page, close } = await openBrowser({ width: 1024, height: 768 });
  t.after(close);
  const eventId = `errors-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Error Night');
  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));

  // The API refuses the send (here: a 500 in the API's error shape).
  await page.route('**/api/whatsapp/send-bulk', (route) => route.fulfill({
    status: 500, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'internal_error', message: 'something failed on the server' } }),
  }));
  // The opt-out lookup fails too: said so, and Send is not held back for
  // good (the API still skips an opted-out guest when sending).
  await page.route('**/api/whatsapp/opt-outs/lookup', (route) => route.fulfill({
    status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'opt-outs are unavailable' } }),
  }));
  await page.getByLabel('Paste CSV').fill('Ana,+5511988880001');
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.getByRole('alert').locator('.error', { hasText: 'Could not check which guests opted out' }).waitFor();
  assert.match(await page.getByRole('alert').innerText(), /opt-outs are unavailable \[503 unavailable; POST \/api\/whatsapp\/opt-outs\/lookup\]/);
  await page.getByRole('button', { name: 'Select all' }).click();
  assert.ok(await page.getByRole('button', { name: /Send WhatsApp invitations/ }).isEnabled());
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  // The check before sending (a dry run) fails too: said so in the
  // confirmation, and sending is still allowed (the check is advice).
  const failedCheck = page.locator('#dry-run[data-state="failed"]');
  await failedCheck.waitFor();
  assert.match(await failedCheck.locator('#dry-run-status').innerText(),
    /^Could not check this send: something failed on the server \[500 internal_error; POST \/api\/whatsapp\/send-bulk\]/);
  assert.match(await failedCheck.locator('.dry-advice').innerText(), /only advice, not a condition: you can still send/);
  const anyway = page.getByRole('dialog').getByRole('button', { name: 'Send 1 anyway', exact: true });
  assert.ok(await anyway.isEnabled());
  await anyway.click();
  const alert = page.getByRole('alert');
  await alert.locator('.error', { hasText: 'Could not send the invitations' }).waitFor();
  assert.match(await alert.innerText(), /something failed on the server/);
  assert.match(await alert.innerText(), /500 internal_error/);

  // A field error from the API lands on the field (the id is checked here
  // in the browser too, so the request is changed on its way).
  await page.getByRole('button', { name: 'New event' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Bad link');
  await page.getByLabel('Date and time').fill('2027-05-01T17:00');
  await page.getByLabel('Venue').fill('Hall');
  await page.getByLabel('Host').fill('Ana');
  await page.getByLabel('RSVP base URL').fill('https://rsvp.example.com/r/');
  await page.route('**/api/whatsapp/events/bad-link', (route) => route.continue({
    postData: JSON.stringify({ ...JSON.parse(route.request().postData()), rsvp_base_url: 'ftp://nope' }),
  }));
  await page.getByRole('button', { name: 'Save event' }).click();
  await alert.locator('.error', { hasText: 'Could not save the event' }).waitFor();
  assert.equal(await page.getByLabel('RSVP base URL').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#ev-rsvp-error').innerText(), /http\(s\) URL/);

  // A deployed API's token goes in Authorization; API Gateway's own 401 body is shown too.
  await page.getByText('Connection').click();
  await page.getByLabel(/Access token/).fill('Bearer test-token-123');
  await page.route('**/api/whatsapp/events', (route) => route.fulfill({
    status: 401, contentType: 'application/json', body: JSON.stringify({ message: 'Unauthorized' }),
  }));
  const [listing] = await Promise.all([
    page.waitForRequest((r) => new URL(r.url()).pathname === '/api/whatsapp/events'),
    page.getByRole('button', { name: 'Save token' }).click(),
  ]);
  assert.equal(listing.headers().authorization, 'Bearer test-token-123');
  await alert.locator('.error', { hasText: 'Could not load the events' }).waitFor();
  assert.match(await alert.innerText(), /Unauthorized \(the access token was refused/);
  await page.getByRole('button', { name: 'Forget token' }).click();

  // Dismissing an error removes it.
  const before = await alert.locator('.error').count();
  await alert.getByRole('button', { name: /Dismiss error: Could not send/ }).click();
  assert.equal(await alert.locator('.error').count(), before - 1);
  await page.screenshot({ path: path.join(ARTIFACTS, 'errors.png'), fullPage: true });
});

test('a send whose answer was lost is sent again with the same key: nobody gets two messages', { skip, timeout: 90_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 800 });
  t.after(close);
  const eventId = `lost-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Lost Answer Night');
  const phones = ['+5511940000001', '+5511940000002'];
  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.getByLabel('Paste CSV').fill(`Ana,${phones[0]}\nBia,${phones[1]}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.getByRole('button', { name: 'Select all' }).click();

  // The API does the work, and the answer never reaches the browser.
  const keys = [];
  const checkKeys = [];
  let lose = true;
  await page.route('**/api/whatsapp/send-bulk', async (route) => {
    // The check before each send (a dry run) goes through, without a key.
    if (JSON.parse(route.request().postData() ?? '{}').dry_run === true) {
      checkKeys.push(route.request().headers()['idempotency-key'] ?? null);
      return route.continue();
    }
    keys.push(route.request().headers()['idempotency-key']);
    if (!lose) return route.continue();
    await route.fetch();
    return route.abort('connectionreset');
  });
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Send 2' }).click();
  const alert = page.getByRole('alert');
  await alert.locator('.error', { hasText: 'Could not send the invitations' }).waitFor();

  // The organizer tries again.
  lose = false;
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: /^Send / }).click();
  await page.locator('#progress .job[data-total="2"][data-done="true"]').waitFor({ timeout: 30_000 });
  assert.ok(keys.length >= 2, `requests: ${keys.length}`);
  assert.equal(new Set(keys).size, 1, `one key for the one send: ${keys}`);
  assert.deepEqual(checkKeys, [null, null], 'each confirmation checked the send once, with no key');
  const sent = (await sim('GET', '/_sim/messages')).map((m) => m.params.To).filter((to) => phones.some((p) => to.endsWith(p)));
  assert.deepEqual(sent.sort(), phones.map((p) => `whatsapp:${p}`), 'each guest messaged once');
  // The lost answer is shown as an error (and logged); nothing else went wrong.
  assert.deepEqual(problems.filter((p) => !p.includes('Could not send the invitations')), []);
});

test('opted-out guests are marked and cannot be selected', { skip, timeout: 90_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const eventId = `optout-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Quiet Evening');
  const n = (i) => `+5511930000${String(i).padStart(3, '0')}`;
  // n(1): opted out, and an invitation was already skipped for it; n(2): opted
  // out (the API says so, no invitation); n(5): opted out, known only from an
  // invitation sent outside this browser (no phone here).
  for (const i of [1, 2, 5]) {
    const res = await apiCall('PUT', `/api/whatsapp/opt-outs/${encodeURIComponent(n(i))}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.opted_out, true);
  }
  for (const [id, name, i] of [['o1', 'Olga', 1], ['z5', 'Zeno', 5]]) {
    const res = await apiCall('POST', '/api/whatsapp/send-invitation', { event_id: eventId, guest: { guest_id: id, name, phone: n(i) } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
  }
  await assertEventually(async () => {
    const { body } = await apiCall('GET', `/api/whatsapp/invitations/${eventId}`);
    assert.deepEqual(body.items.map((i) => i.status), ['skipped', 'skipped']);
  }, 20_000);

  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.getByLabel('Paste CSV').fill(`id,name,phone\no1,Olga,${n(1)}\np2,Pia,${n(2)}\nr3,Rui,${n(3)}\ns4,Sol,${n(4)}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  const row = (id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
  for (const id of ['o1', 'p2', 'z5']) {
    await row(id).locator('.tag.opted-out').waitFor();
    assert.ok(await row(id).getByRole('checkbox').isDisabled(), `${id} cannot be selected`);
  }
  assert.equal(await row('o1').getAttribute('data-status'), 'skipped');
  // This organizer's own opt-out, in its words, with what to do about it.
  assert.match(await row('o1').locator('.reason').innerText(), /You opted this number out/);
  assert.equal(await row('o1').locator('.todo').getAttribute('data-action'), 'lift_your_opt_out');
  assert.equal(await row('z5').getAttribute('data-status'), 'skipped');
  assert.equal(await row('p2').getAttribute('data-status'), 'none');
  for (const id of ['r3', 's4']) assert.ok(await row(id).getByRole('checkbox').isEnabled());

  await page.getByRole('button', { name: 'Select all' }).click();
  await page.locator('#guest-count', { hasText: '5 guests · 2 selected · 3 opted out' }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'opted-out.png'), fullPage: true });
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Send 2' }).click();
  await page.locator('#progress .job[data-total="2"][data-done="true"][data-percent="100"]').waitFor({ timeout: 30_000 });
  await page.locator('#status', { hasText: 'Sending finished for 2 invitations' }).waitFor();
  for (const id of ['r3', 's4']) await row(id).and(page.locator('[data-status="read"]')).waitFor();
  const sent = (await sim('GET', '/_sim/messages')).map((m) => m.params.To).filter((to) => to.startsWith('whatsapp:+5511930000'));
  assert.deepEqual(sent.sort(), [`whatsapp:${n(3)}`, `whatsapp:${n(4)}`]);
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(problems, []);
});

test('an event of 1,500 guests looks opt-outs up in 2 requests of at most 1,000 numbers, not one per guest; Send waits for them', { skip, timeout: 120_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const eventId = `crowd-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Big Wedding');
  const total = 1500;
  const n = (i) => `+5511950${String(i).padStart(5, '0')}`;
  const phones = Array.from({ length: total }, (_, i) => n(i + 1));
  // Opted out by this organizer (always visible to it): one in each request's share.
  const optedOut = [7, 1234];
  for (const i of optedOut) {
    const res = await apiCall('PUT', `/api/whatsapp/opt-outs/${encodeURIComponent(n(i))}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.opted_out, true);
  }
  // Every request to the opt-out routes, as sent; the lookups' answers can be held.
  let requests = [];
  page.on('request', (r) => {
    const { pathname } = new URL(r.url());
    if (!pathname.startsWith('/api/whatsapp/opt-outs/')) return;
    requests.push({ method: r.method(), pathname, phones: r.method() === 'POST' ? JSON.parse(r.postData() ?? '{}').phones : null });
  });
  let hold = null;
  await page.route('**/api/whatsapp/opt-outs/lookup', async (route) => {
    await hold?.promise;
    await route.continue();
  });
  const checkRequests = (when) => {
    assert.deepEqual(requests.map((r) => `${r.method} ${r.pathname}`),
      ['POST /api/whatsapp/opt-outs/lookup', 'POST /api/whatsapp/opt-outs/lookup'], when);
    for (const r of requests) assert.ok(r.phones.length >= 1 && r.phones.length <= 1000, `${when}: ${r.phones.length} numbers in one lookup`);
    assert.deepEqual(requests.flatMap((r) => r.phones).sort(), [...phones].sort(), `${when}: each number once`);
  };
  const count = page.locator('#guest-count');
  const row = (id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
  const sendButton = page.getByRole('button', { name: /Send WhatsApp invitations/ });

  // Guests added: their numbers are looked up in 2 requests.
  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.getByLabel('Paste CSV').fill(`id,name,phone\n${phones.map((p, i) => `g${i + 1},Guest ${i + 1},${p}`).join('\n')}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.locator('#import-summary', { hasText: `${total} guests added.` }).waitFor();
  await count.filter({ hasText: /^1500 guests · 0 selected · 2 opted out$/ }).waitFor({ timeout: 30_000 });
  checkRequests('adding the guests');

  // The event opened again (guests kept in this browser): 2 lookups again, and
  // Send stays disabled until they answer, even with everyone selected.
  requests = [];
  hold = {};
  hold.promise = new Promise((resolve) => { hold.resolve = resolve; });
  await page.reload();
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await waitForCount(page.locator('#guest-rows tr'), total);
  await assertEventually(async () => assert.ok(requests.length >= 1, 'a lookup was sent'));
  await page.getByRole('button', { name: 'Select all' }).click();
  await count.filter({ hasText: /^1500 guests · 1500 selected · checking opt-outs…$/ }).waitFor();
  assert.ok(await sendButton.isDisabled(), 'Send waits for the opt-out lookup');
  hold.resolve();
  await count.filter({ hasText: /^1500 guests · 1498 selected · 2 opted out$/ }).waitFor({ timeout: 30_000 });
  assert.ok(await sendButton.isEnabled(), 'Send is enabled once the lookup answered');
  for (const i of optedOut) {
    await row(`g${i}`).locator('.tag.opted-out').waitFor();
    assert.ok(await row(`g${i}`).getByRole('checkbox').isDisabled(), `g${i} cannot be selected`);
    assert.ok(!(await row(`g${i}`).getByRole('checkbox').isChecked()), `g${i} is not selected`);
  }
  assert.ok(await row('g8').getByRole('checkbox').isChecked());
  assert.equal(await page.locator('#guest-rows tr.opted-out').count(), optedOut.length);
  checkRequests('opening the event');
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(problems, []);
});

test('a Marketing template: the confirmation says US guests will be skipped, and they are', { skip, timeout: 90_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const eventId = `marketing-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Garden Party');
  const templateId = `promo-${Date.now().toString(36)}`;
  const created = await apiCall('POST', '/api/whatsapp/templates', {
    template_id: templateId, name: 'Promo', content_sid: 'HX00000000000000000000000000000001',
    category: 'marketing', content_variables: { 1: '{guest_first_name}' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.getByLabel('Paste CSV').fill('id,name,phone\nus1,Uma,+14155550123\nbr1,Bia,+5511930001001');
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  const row = (id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
  await row('us1').waitFor();
  await assertEventually(async () => assert.ok((await page.locator('#template-select option').allTextContents()).some((o) => o.includes('Promo'))));
  await page.locator('#template-select').selectOption(templateId);
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  const dialog = page.getByRole('dialog');
  // The page's guess shows at once; the check (a dry run) then counts it.
  assert.match(await dialog.innerText(), /1 guest with a US \(\+1\) number( will be skipped|: WhatsApp does not deliver Marketing)/);
  const us = page.locator('#dry-run[data-state="ready"] .dry-reasons li[data-code="marketing_to_us"]');
  await us.waitFor();
  assert.equal(await us.getAttribute('data-count'), '1');
  assert.match(await us.innerText(), /^1 guest with a US \(\+1\) number: WhatsApp does not deliver Marketing templates to US numbers \(Uma\)$/);
  assert.doesNotMatch(await dialog.innerText(), /will be skipped/, 'the guess gave way to the count');
  await dialog.getByRole('button', { name: 'Send 2' }).click();
  await row('us1').and(page.locator('[data-status="skipped"]')).waitFor({ timeout: 30_000 });
  assert.match(await row('us1').locator('.reason').innerText(), /does not deliver Marketing templates to US/);
  assert.equal(await row('us1').locator('.todo').getAttribute('data-action'), 'marketing_not_delivered');
  await row('br1').and(page.locator('[data-status="read"]')).waitFor({ timeout: 30_000 });
  const sent = (await sim('GET', '/_sim/messages')).map((m) => m.params.To);
  assert.ok(!sent.includes('whatsapp:+14155550123'), 'nothing went to the US guest');
  assert.deepEqual(problems, []);
});

test('over the daily limit: the progress says how many wait and when the send should finish; the sender profile shows', { skip: skipLimited, timeout: 180_000 }, async (t) => {
  // The second stack: its sender may reach 3 new guests in a 30-second
  // "day", and its reconciliation (every second) queues those waiting again
  // as places free. Five guests: three go at once, two wait about 30 s.
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const shot = shooter(page, 'daily-limit');
  const eventId = `limit-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Big Wedding', LIMITED_API);
  const localClock = (iso) => page.evaluate((x) => new Date(x).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), iso);
  const escapeRe = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const limitWords = '3 new guests per 30 seconds';
  const n = (i) => `+5511950000${String(i).padStart(3, '0')}`;
  const ours = async () => (await sim('GET', '/_sim/messages', undefined, LIMITED_SIM))
    .filter((m) => m.params.To?.startsWith('whatsapp:+5511950000'));
  // Nobody else uses this stack: all three places are free.
  const before = await apiCall('GET', '/api/whatsapp/sender', undefined, LIMITED_API);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  assert.equal(before.body.daily_unique_recipients, 3);
  assert.equal(before.body.window_seconds, 30);
  assert.equal(before.body.free_now, 3, JSON.stringify(before.body));

  // The stack's own sender profile, read on load.
  await page.goto(`${LIMITED_API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  const profile = page.locator('#sender-profile');
  await profile.waitFor();
  assert.equal(await profile.innerText(), `WhatsApp sender: 50 messages/s, ${limitWords} (0 used now).`);
  assert.equal(await profile.getAttribute('data-daily-limit'), '3');

  const guests = [['w1', 'Wanda'], ['w2', 'Walt'], ['w3', 'Dora'], ['w4', 'Ezra'], ['w5', 'Fay']];
  await page.getByLabel('Paste CSV').fill(`id,name,phone\n${guests.map(([id, name], i) => `${id},${name},${n(i + 1)}`).join('\n')}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await waitForCount(page.locator('#guest-rows tr[data-status="none"]'), 5);
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.locator('#guest-count', { hasText: '5 guests · 5 selected' }).waitFor();

  // The confirmation's check (a dry run): 5 would go, 2 of them wait.
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const check = page.locator('#dry-run[data-state="ready"]');
  await check.waitFor();
  assert.equal(await check.locator('.dry-queued').getAttribute('data-count'), '5');
  assert.equal(await check.locator('.dry-skipped').getAttribute('data-count'), '0');
  assert.equal(await check.locator('.dry-rejected').getAttribute('data-count'), '0');
  const dryWait = check.locator('.dry-wait[data-count]');
  assert.equal(await dryWait.getAttribute('data-count'), '2');
  const dryFinish = await dryWait.locator('time').getAttribute('datetime');
  const dryFinishMs = Date.parse(dryFinish);
  // The two wait for the window (30 s, plus a second's margin) to free places.
  assert.ok(dryFinishMs >= Date.now() + 20_000 && dryFinishMs <= Date.now() + 120_000, `dry-run finish ${dryFinish}`);
  assert.equal(await dryWait.innerText(), `2 of 5 would wait for WhatsApp's daily limit (${limitWords}) `
    + `and go out by themselves as places free; expected to finish by ${await localClock(dryFinish)}.`);
  assert.deepEqual(await ours(), [], 'the check sent nothing');
  await shot('checked');

  // Sent: three go, two wait, and the page says why and until when.
  await dialog.getByRole('button', { name: 'Send 5', exact: true }).click();
  const job = page.locator('#progress .job[data-total="5"]');
  await job.waitFor();
  const waiting = job.locator('p.waiting');
  await waiting.waitFor({ timeout: 20_000 });
  const waitingSeenAt = Date.now();
  assert.equal(await waiting.getAttribute('data-count'), '2');
  assert.equal(await waiting.getAttribute('data-reason'), 'wait_for_daily_limit');
  assert.match(await waiting.getAttribute('title'), /daily limit/);
  assert.match(await waiting.innerText(), new RegExp(`^2 waiting for WhatsApp's daily limit \\(${escapeRe(limitWords)}\\) `
    + '— they go out by themselves, oldest first'));
  assert.equal(await job.getAttribute('data-done'), 'false');
  const eta = job.locator('p.eta');
  const etaAt = await eta.locator('time').getAttribute('datetime');
  assert.ok(Date.parse(etaAt) > Date.now() && Date.parse(etaAt) <= Date.now() + 120_000, `expected finish ${etaAt}`);
  assert.equal(await eta.innerText(), `Expected to finish by ${await localClock(etaAt)}`);
  // The legend counts them under their own label.
  await assertEventually(async () =>
    assert.equal(await job.locator('li[data-status="waiting"] .badge').innerText(), 'Waiting for daily limit'));
  assert.equal(await job.locator('li[data-status="waiting"] .n').innerText(), '2');
  // Two guests' rows wait, with nothing to retry; the other three go.
  const waitingRows = page.locator('#guest-rows tr[data-status="waiting"]');
  await waitForCount(waitingRows, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(await waitingRows.nth(i).locator('.c-status .badge').innerText(), 'Waiting for daily limit');
    assert.equal(await waitingRows.nth(i).locator('button.retry').count(), 0);
  }
  const goneRows = page.locator('#guest-rows tr[data-status="delivered"], #guest-rows tr[data-status="read"]');
  await waitForCount(goneRows, 3);
  // Only the three have been messaged.
  assert.equal((await ours()).length, 3);
  // A colour of its own.
  const colour = (locator) => locator.evaluate((el) => getComputedStyle(el).backgroundColor);
  const waitingColour = await colour(waitingRows.first().locator('.badge'));
  assert.notEqual(waitingColour, 'rgba(0, 0, 0, 0)');
  assert.notEqual(waitingColour, await colour(goneRows.first().locator('.badge')));
  assert.equal(await colour(job.locator('li[data-status="waiting"] .badge')), waitingColour);
  // Refreshed, the sender line shows the limit used up, and when a place frees.
  await page.getByRole('button', { name: 'Refresh' }).click();
  await assertEventually(async () => assert.match(await profile.innerText(), new RegExp(
    `^WhatsApp sender: 50 messages/s, ${escapeRe(limitWords)} \\(3 used now\\); the limit is reached, the next place frees at \\S`)));
  assert.equal(await profile.getAttribute('data-daily-limit'), '3');
  // Labelled, and no sideways scroll on a phone, with the waiting line shown.
  assert.deepEqual(await unlabelledControls(page), []);
  await shot('waiting');
  await page.setViewportSize({ width: 390, height: 844 });
  await noHorizontalScroll(page, 390);
  await shot('waiting-phone');
  await page.setViewportSize({ width: 1024, height: 900 });
  t.diagnostic(`waiting checks took ${Date.now() - waitingSeenAt} ms`);

  // The window frees: reconciliation sends the two, and the job finishes.
  await page.locator('#progress .job[data-total="5"][data-done="true"][data-percent="100"]').waitFor({ timeout: 90_000 });
  await waitForCount(goneRows, 5, 30_000);
  assert.equal(await job.locator('p.waiting').count(), 0);
  assert.equal(await job.locator('p.eta').count(), 0);
  assert.equal(await page.locator('#guest-rows tr[data-status="waiting"]').count(), 0);
  const sent = await ours();
  assert.deepEqual(sent.map((m) => m.params.To).sort(), guests.map((_, i) => `whatsapp:${n(i + 1)}`), 'each guest messaged once');
  // The last two no sooner than the window allowed.
  const at = sent.map((m) => m.received_at_ms).sort((a, b) => a - b);
  assert.ok(at[3] - at[0] >= 25_000, `the fourth went ${at[3] - at[0]} ms after the first`);
  t.diagnostic(`the waiting two went ${at[3] - at[0]} and ${at[4] - at[0]} ms after the first`);
  await shot('all-sent');

  // Without the sender profile the page works, quietly.
  await page.route('**/api/whatsapp/sender', (route) => route.fulfill({
    status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal_error', message: 'no profile' } }),
  }));
  await page.reload();
  await page.locator('#progress .job[data-total="5"][data-done="true"]').waitFor();
  await waitForCount(goneRows, 5);
  await assertEventually(async () => assert.ok(await profile.isHidden()));
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(await unlabelledControls(page), []);
  await page.setViewportSize({ width: 390, height: 844 });
  await noHorizontalScroll(page, 390);
  await shot('done-phone');
  assert.deepEqual(problems, []);
});

test('the confirmation checks the send first (a dry run): sent, skipped by reason, rejected, the wait, the cost; nothing is written before Send', { skip, timeout: 90_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const shot = shooter(page, 'dry-run');
  const eventId = `dryrun-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Harbour Dinner');
  const templateId = `promo-dry-${Date.now().toString(36)}`;
  const created = await apiCall('POST', '/api/whatsapp/templates', {
    template_id: templateId, name: 'Harbour promo', content_sid: 'HX00000000000000000000000000000002',
    category: 'marketing', content_variables: { 1: '{guest_first_name}' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const n = (i) => `+5511920000${String(i).padStart(3, '0')}`;
  const usPhone = '+14155550188';
  const localNumber = (x) => page.evaluate((v) => v.toLocaleString(), x);
  const localClock = (iso) => page.evaluate((x) => new Date(x).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), iso);
  const localMoney = (amount) => page.evaluate((a) => new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', maximumFractionDigits: 4 }).format(a), amount);
  // Every send-bulk request, as sent (watched, not changed).
  const bulk = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/whatsapp/send-bulk') {
      bulk.push({ body: JSON.parse(r.postData() ?? '{}'), key: r.headers()['idempotency-key'] ?? null });
    }
  });

  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  // Four Brazilians and a US guest; the page looks their numbers up.
  const lookedUp = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/whatsapp/opt-outs/lookup'
    && (JSON.parse(r.request().postData() ?? '{}').phones ?? []).includes(n(4)));
  await page.getByLabel('Paste CSV').fill(`id,name,phone\nb1,Bruna,${n(1)}\nb2,Caio,${n(2)}\nb3,Davi,${n(3)}\nb4,Elis,${n(4)}\nus1,Uma,${usPhone}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  assert.equal((await (await lookedUp).json()).items.find((i) => i.phone === n(4))?.opted_out, false);
  await assertEventually(async () => assert.ok((await page.locator('#template-select option').allTextContents()).some((o) => o.includes('Harbour promo'))));
  await page.locator('#template-select').selectOption(templateId);
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.locator('#guest-count', { hasText: '5 guests · 5 selected' }).waitFor();
  // The organizer opts Elis out elsewhere after the page looked: the page
  // still lets her be picked; only the check can tell.
  const optOut = await apiCall('PUT', `/api/whatsapp/opt-outs/${encodeURIComponent(n(4))}`);
  assert.equal(optOut.status, 200, JSON.stringify(optOut.body));

  // Each state the confirmation goes through, from the moment it opens.
  await page.evaluate(() => {
    window.seenChecks = [];
    const seen = () => {
      const state = document.getElementById('dry-run').dataset.state;
      const button = document.getElementById('confirm-send');
      const last = window.seenChecks.at(-1);
      if (last?.state !== state) window.seenChecks.push({ state, disabled: button.disabled, button: button.textContent });
    };
    new MutationObserver(seen).observe(document.getElementById('confirm'), { attributes: true, childList: true, subtree: true, characterData: true });
  });
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const check = page.locator('#dry-run[data-state="ready"]');
  await check.waitFor();
  const seen = await page.evaluate(() => window.seenChecks);
  assert.deepEqual(seen[0], { state: 'checking', disabled: true, button: 'Checking…' }, JSON.stringify(seen));
  assert.deepEqual(seen.at(-1), { state: 'ready', disabled: false, button: 'Send 5' }, JSON.stringify(seen));

  // How many would be sent, skipped (by reason, in words) and rejected.
  assert.equal(await check.locator('#dry-run-status').innerText(), 'Checked with the API; nothing has been sent yet.');
  const counted = async (cls) => [await check.locator(cls).getAttribute('data-count'), await check.locator(`${cls} .n`).innerText()];
  assert.deepEqual(await counted('.dry-queued'), ['3', '3']);
  assert.deepEqual(await counted('.dry-skipped'), ['2', '2']);
  assert.deepEqual(await counted('.dry-rejected'), ['0', '0']);
  assert.match(await check.locator('.dry-counts').innerText(), /3 will be sent\s+2 skipped\s+0 rejected/);
  const reasons = check.locator('.dry-reasons li');
  assert.deepEqual(await reasons.evaluateAll((li) => li.map((x) => [x.dataset.code, x.dataset.count])),
    [['opted_out_by_you', '1'], ['marketing_to_us', '1']]);
  assert.equal(await reasons.nth(0).innerText(), '1 guest you opted out (Elis)');
  assert.equal(await reasons.nth(1).innerText(), '1 guest with a US (+1) number: WhatsApp does not deliver Marketing templates to US numbers (Uma)');
  assert.equal(await check.locator('.dry-rejections').count(), 0);
  // The API's count replaced the page's own guess about US numbers.
  assert.equal(await page.locator('#confirm-extra').innerText(), '');
  // None waits (the stack's limit is 100,000 new guests a day); when it should finish, in local time.
  const wait = check.locator('.dry-wait');
  assert.equal(await wait.getAttribute('data-count'), '0');
  const finish = await wait.locator('time').getAttribute('datetime');
  const finishMs = Date.parse(finish);
  assert.ok(finishMs > Date.now() - 60_000 && finishMs < Date.now() + 10 * 60_000, `finish ${finish}`);
  assert.equal(await wait.innerText(),
    `None would wait for WhatsApp's daily limit (${await localNumber(100_000)} new guests a day); expected to finish by ${await localClock(finish)}.`);
  // The cost: 3 Marketing messages to Brazil at Twilio's 0.005 plus WhatsApp's 0.0625, as an estimate.
  const cost = check.locator('.dry-cost');
  assert.equal(await cost.getAttribute('data-currency'), 'USD');
  assert.ok(Math.abs(Number(await cost.getAttribute('data-total')) - 3 * 0.0675) < 1e-9, await cost.getAttribute('data-total'));
  assert.equal(await cost.locator('.total').innerText(), await localMoney(0.2025));
  assert.match(await cost.innerText(), /^Estimated cost: \S+ An estimate \(Twilio's fee plus WhatsApp's Marketing rate by country, from this stack's rate table\); the invoice may differ\./);
  const countries = cost.locator('.dry-countries tbody tr');
  assert.deepEqual(await countries.evaluateAll((rows) => rows.map((r) => r.dataset.callingCode)), ['55']);
  assert.deepEqual(await countries.first().locator('td').allInnerTexts(), ['+55', '3', await localMoney(0.2025)]);
  assert.deepEqual(await cost.locator('.dry-countries thead th').allInnerTexts(), ['Country code', 'Messages', 'Subtotal']);
  await shot('checked');

  // The check wrote nothing: no invitation, nobody messaged, every row still not invited.
  assert.deepEqual((await apiCall('GET', `/api/whatsapp/invitations/${eventId}`)).body.items, []);
  const ours = async () => (await sim('GET', '/_sim/messages')).map((m) => m.params.To)
    .filter((to) => to.startsWith('whatsapp:+5511920000') || to === `whatsapp:${usPhone}`);
  assert.deepEqual(await ours(), []);
  await waitForCount(page.locator('#guest-rows tr[data-status="none"]'), 5);
  // Exactly the guests and template about to be sent, marked as a dry run, with no key.
  assert.equal(bulk.length, 1);
  assert.equal(bulk[0].body.dry_run, true);
  assert.equal(bulk[0].key, null);
  assert.equal(bulk[0].body.template_id, templateId);
  assert.deepEqual(bulk[0].body.guests.map((g) => g.guest_id), ['b1', 'b2', 'b3', 'b4', 'us1']);
  assert.deepEqual(await unlabelledControls(page), []);
  await page.setViewportSize({ width: 390, height: 844 });
  await noHorizontalScroll(page, 390);
  await shot('checked-phone');
  await page.setViewportSize({ width: 1024, height: 900 });

  // Confirmed: the same request (with a key) sends as the check said.
  await dialog.getByRole('button', { name: 'Send 5', exact: true }).click();
  await page.locator('#progress .job[data-total="5"][data-done="true"]').waitFor({ timeout: 30_000 });
  assert.equal(bulk.length, 2);
  const { dry_run: _, ...checked } = bulk[0].body;
  assert.deepEqual(bulk[1].body, checked);
  assert.match(bulk[1].key ?? '', /^.+-0$/);
  const row = (id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
  for (const id of ['b1', 'b2', 'b3']) await row(id).and(page.locator('[data-status="read"]')).waitFor({ timeout: 30_000 });
  await row('b4').and(page.locator('[data-status="skipped"]')).waitFor();
  assert.equal(await row('b4').locator('.todo').getAttribute('data-action'), 'lift_your_opt_out');
  await row('us1').and(page.locator('[data-status="skipped"]')).waitFor();
  assert.equal(await row('us1').locator('.todo').getAttribute('data-action'), 'marketing_not_delivered');
  assert.deepEqual((await ours()).sort(), [1, 2, 3].map((i) => `whatsapp:${n(i)}`));
  assert.equal(await page.locator('#dry-run').getAttribute('data-state'), 'idle');
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  await shot('sent');
  assert.deepEqual(problems, []);
});

test('the local stack serves the dashboard files, with their types, and nothing else', { skip }, async () => {
  for (const [p, type] of [['/', 'text/html'], ['/dashboard/', 'text/html'], ['/index.html', 'text/html'],
    ['/config.js', 'text/javascript'], ['/dashboard/js/app.js', 'text/javascript'], ['/styles.css', 'text/css'],
    ['/favicon.svg', 'image/svg+xml']]) {
    const res = await fetch(API + p);
    assert.equal(res.status, 200, p);
    assert.ok(res.headers.get('content-type').startsWith(type), `${p}: ${res.headers.get('content-type')}`);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  }
  for (const p of ['/..%2fCargo.toml', '/%2e%2e/Cargo.toml', '/dashboard/..%2f..%2fCargo.toml', '/js/%2e%2e/%2e%2e/Cargo.toml',
    '/.gitignore', '/nope.html', '/js/', '/README.md']) {
    const res = await fetch(API + p);
    assert.equal(res.status, 404, p);
  }
  const post = await fetch(`${API}/index.html`, { method: 'POST' });
  assert.equal(post.status, 405);
  const api404 = await fetch(`${API}/api/whatsapp/nope`);
  assert.equal((await api404.json()).error.code, 'not_found');
});
