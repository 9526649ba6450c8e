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
import path from 'node:path';
import {
  API, LIMITED_API, LIMITED_SIM, ARTIFACTS, skip, skipLimited, openBrowser, sim, apiCall, createTemplate,
  createEvent, shooter, waitForCount, assertEventually,
} from './helpers.mjs';

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
  // then (desktop) another template, previewed for another guest. (The list
  // is by name, so the first guest shown is Bo; Guest 1 is picked.)
  const preview = page.locator('#preview');
  await page.getByLabel('Preview for guest').selectOption('g1');
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

test('desktop: create an event, add 50 guests, send, follow, retry the failure', { skip, timeout: 180_000 }, (t) =>
  flow(t, { name: 'desktop', viewport: { width: 1280, height: 900 }, prefix: '0', keyboard: false, useTemplate: true }));

test('phone-sized (390px), by keyboard: the same flow', { skip, timeout: 180_000 }, (t) =>
  flow(t, { name: 'phone-390', viewport: { width: 390, height: 844 }, prefix: '1', keyboard: true, useTemplate: false }));

test('API errors are shown, not swallowed', { skip, timeout: 60_000 }, async (t) => {
  const { page, close } = await openBrowser({ width: 1024, height: 768 });
  t.after(close);
  const eventId = `errors-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Error Night');
  // The guest list cannot be read at first: said so, and nothing that sends
  // (or adds guests) works until it is read.
  let listFailures = 1;
  await page.route((url) => url.pathname === `/api/whatsapp/guests/${eventId}`, (route) => {
    if (route.request().method() !== 'GET' || listFailures <= 0) return route.continue();
    listFailures--;
    return route.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'the guest list is unavailable' } }),
    });
  });
  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.getByRole('alert').locator('.error', { hasText: 'Could not load the guests' }).waitFor();
  assert.match(await page.getByRole('alert').innerText(),
    new RegExp(`the guest list is unavailable \\[503 unavailable; GET /api/whatsapp/guests/${eventId}\\?`));
  assert.equal(await page.locator('#guests-card').getAttribute('data-loaded'), 'false');
  for (const name of ['Select all', 'Select not yet invited', 'Check and add guests']) {
    assert.ok(await page.getByRole('button', { name }).isDisabled(), `${name} waits for the list`);
  }
  // Refresh reads it again.
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.locator('#guests-card[data-loaded="true"]').waitFor();

  // The API refuses the send (here: a 500 in the API's error shape).
  await page.route('**/api/whatsapp/send-bulk', (route) => route.fulfill({
    status: 500, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'internal_error', message: 'something failed on the server' } }),
  }));
  await page.getByLabel('Paste CSV').fill('Ana,+5511988880001');
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.locator('#import-summary', { hasText: '1 guest added.' }).waitFor();
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
  await page.locator('#guest-count', { hasText: '2 guests' }).waitFor();
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

test('an event of 1,500 guests is read in at most 2 listing requests, with no opt-out lookup and no request per guest; nothing sends before it is read; 100 a page', { skip, timeout: 120_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const eventId = `crowd-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Big Wedding');
  const total = 1500;
  const n = (i) => `+5511950${String(i).padStart(5, '0')}`;
  const phones = Array.from({ length: total }, (_, i) => n(i + 1));
  // Opted out by this organizer (always visible to it): one on the first page, one far down.
  const optedOut = [7, 1234];
  for (const i of optedOut) {
    const res = await apiCall('PUT', `/api/whatsapp/opt-outs/${encodeURIComponent(n(i))}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.opted_out, true);
  }
  // Every API request but the page's own setup (events, templates, sender,
  // facts) and its one read of the event's replies every 15 s, as sent.
  const listPath = `/api/whatsapp/guests/${eventId}`;
  let requests = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith('/api/') || /^\/api\/whatsapp\/(events|templates|sender|facts|replies)/.test(url.pathname)) return;
    requests.push({ method: r.method(), pathname: url.pathname, since: url.searchParams.get('since'), cursor: url.searchParams.get('cursor') });
  });
  // The list's later pages can be held.
  let hold = null;
  await page.route((url) => url.pathname === listPath, async (route) => {
    const url = new URL(route.request().url());
    if (route.request().method() === 'GET' && url.searchParams.get('cursor') && !url.searchParams.get('since')) await hold?.promise;
    await route.continue();
  });
  const fmt = (x) => page.evaluate((v) => v.toLocaleString(), x);
  const checkRequests = (when) => {
    const other = requests.filter((r) => r.pathname !== listPath || !['GET', 'POST'].includes(r.method));
    assert.deepEqual(other, [], `${when}: no opt-out lookup, no request per guest`);
    const full = requests.filter((r) => r.method === 'GET' && !r.since);
    assert.ok(full.length >= 1 && full.length <= 2, `${when}: the list read in ${full.length} requests`);
  };
  const count = page.locator('#guest-count');
  const row = (id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
  const sendButton = page.getByRole('button', { name: /Send WhatsApp invitations/ });
  const info = page.locator('#page-info');

  // Guests added from a CSV: saved in one request, then the changes read back.
  await page.goto(`${API}/#event=${eventId}`);
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await page.getByLabel('Paste CSV').fill(`id,name,phone\n${phones.map((p, i) => `g${i + 1},Guest ${i + 1},${p}`).join('\n')}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.locator('#import-summary', { hasText: `${await fmt(total)} guests added.` }).waitFor({ timeout: 30_000 });
  await count.filter({ hasText: `${await fmt(total)} guests · 0 selected · 2 opted out` }).waitFor({ timeout: 30_000 });
  assert.equal(requests.filter((r) => r.method === 'POST').length, 1, 'one import request');
  checkRequests('adding the guests');

  // 100 a page, by name; Next and Previous.
  await waitForCount(page.locator('#guest-rows tr'), 100);
  assert.equal(await info.innerText(), `Showing 1–100 of ${await fmt(total)}`);
  assert.equal(await page.locator('#guest-rows tr').first().getAttribute('data-guest-id'), 'g1');
  await page.getByRole('button', { name: 'Next' }).click();
  assert.equal(await info.innerText(), `Showing 101–200 of ${await fmt(total)}`);
  assert.equal(await page.locator('#guest-rows tr').first().getAttribute('data-guest-id'), 'g101');
  await page.getByRole('button', { name: 'Previous' }).click();
  assert.equal(await info.innerText(), `Showing 1–100 of ${await fmt(total)}`);

  // The event opened again: its second page held, the rows read so far say
  // "Loading…" where no invitation is known yet, and nothing that sends works.
  requests = [];
  hold = {};
  hold.promise = new Promise((resolve) => { hold.resolve = resolve; });
  await page.reload();
  await assertEventually(async () => assert.equal(await page.locator('#event-select').inputValue(), eventId));
  await count.filter({ hasText: `Loading guests… ${await fmt(1000)} read so far` }).waitFor();
  assert.equal(await page.locator('#guests-card').getAttribute('data-loaded'), 'false');
  assert.ok(await page.locator('#guest-rows tr[data-status="loading"]').count() > 0);
  assert.equal(await page.locator('#guest-rows tr[data-status="none"]').count(), 0, 'nobody reads "Not invited" yet');
  assert.equal(await page.locator('#guest-rows input.pick:not([disabled])').count(), 0, 'no box can be ticked yet');
  for (const name of ['Select all', 'Select not yet invited', 'Select failed']) {
    assert.ok(await page.getByRole('button', { name }).isDisabled(), `${name} waits for the list`);
  }
  assert.ok(await sendButton.isDisabled(), 'Send waits for the list');
  hold.resolve();
  await page.locator('#guests-card[data-loaded="true"]').waitFor({ timeout: 30_000 });
  await count.filter({ hasText: `${await fmt(total)} guests · 0 selected · 2 opted out` }).waitFor();
  await page.getByRole('button', { name: 'Select all' }).click();
  await count.filter({ hasText: `${await fmt(total)} guests · ${await fmt(total - 2)} selected · 2 opted out` }).waitFor();
  assert.ok(await sendButton.isEnabled(), 'Send works once the list is read');
  assert.match(await sendButton.innerText(), new RegExp(`\\(${await fmt(total - 2)}\\)`));
  await row('g7').locator('.tag.opted-out').waitFor();
  assert.ok(await row('g7').getByRole('checkbox').isDisabled(), 'g7 cannot be selected');
  assert.ok(await row('g8').getByRole('checkbox').isChecked());
  // The other opted-out guest, found by search, then both by the filter.
  await page.getByLabel('Search by name or phone').fill('Guest 1234');
  await waitForCount(page.locator('#guest-rows tr'), 1);
  await row('g1234').locator('.tag.opted-out').waitFor();
  assert.ok(await row('g1234').getByRole('checkbox').isDisabled());
  assert.ok(!(await row('g1234').getByRole('checkbox').isChecked()));
  await page.getByLabel('Search by name or phone').fill(n(1234).slice(0, 6) + ' ' + n(1234).slice(6));
  await waitForCount(page.locator('#guest-rows tr'), 1);
  await page.getByLabel('Search by name or phone').fill('');
  await page.getByLabel('Show', { exact: true }).selectOption('opted_out');
  await waitForCount(page.locator('#guest-rows tr.opted-out'), optedOut.length);
  assert.equal(await info.innerText(), `Showing 1–2 of 2 (of ${await fmt(total)} guests)`);
  checkRequests('opening the event');
  assert.equal(requests.filter((r) => r.method === 'POST').length, 0);
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(await unlabelledControls(page), []);
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
  assert.match(await dialog.innerText(), /1 guest with a (\+1 number: those in the US will be skipped|US number: WhatsApp does not deliver Marketing)/);
  const us = page.locator('#dry-run[data-state="ready"] .dry-reasons li[data-code="marketing_to_us"]');
  await us.waitFor();
  assert.equal(await us.getAttribute('data-count'), '1');
  assert.match(await us.innerText(), /^1 guest with a US number: WhatsApp does not deliver Marketing templates to US numbers \(Uma\)$/);
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
  // Four Brazilians and a US guest, none opted out as the list says.
  await page.getByLabel('Paste CSV').fill(`id,name,phone\nb1,Bruna,${n(1)}\nb2,Caio,${n(2)}\nb3,Davi,${n(3)}\nb4,Elis,${n(4)}\nus1,Uma,${usPhone}`);
  await page.getByRole('button', { name: 'Check and add guests' }).click();
  await page.locator('#import-summary', { hasText: '5 guests added.' }).waitFor();
  assert.equal(await page.locator('#guest-rows tr.opted-out').count(), 0);
  await assertEventually(async () => assert.ok((await page.locator('#template-select option').allTextContents()).some((o) => o.includes('Harbour promo'))));
  await page.locator('#template-select').selectOption(templateId);
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.locator('#guest-count', { hasText: '5 guests · 5 selected' }).waitFor();
  // The organizer opts Elis out elsewhere after the page read the list: the
  // page still lets her be picked; only the check can tell.
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
  assert.equal(await reasons.nth(1).innerText(), '1 guest with a US number: WhatsApp does not deliver Marketing templates to US numbers (Uma)');
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

test('reloaded mid-send of 300 guests: the progress shows at once, pinned; no invited guest ever reads "Not invited"; nothing sends before the list is read', { skip, timeout: 150_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 800 });
  t.after(close);
  const shot = shooter(page, 'reload-mid-send');
  const eventId = `reload-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Long Table');
  const total = 300;
  const n = (i) => `+5511960${String(i).padStart(5, '0')}`;
  const guests = Array.from({ length: total }, (_, i) => ({ guest_id: `r${i + 1}`, name: `Reload ${i + 1}`, phone: n(i + 1) }));
  const saved = await apiCall('POST', `/api/whatsapp/guests/${eventId}`, { guests });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  assert.equal(saved.body.created, total);
  // Slow status callbacks keep the send in flight for a while after the reload.
  const knobs = await sim('GET', '/_sim/config');
  await sim('POST', '/_sim/config', { callback_delay_ms: 2500 });
  t.after(() => sim('POST', '/_sim/config', { callback_delay_ms: knobs.callback_delay_ms ?? 0 }));
  // On every page load, from the first change to the document: what the
  // rows said, what could be used before the list was read, when the
  // pinned progress showed.
  await page.addInitScript((ids) => {
    const invited = new Set(ids);
    const start = performance.now();
    const seen = { samples: 0, notInvited: [], usableEarly: [], rowsBeforeLoaded: 0, liveAt: null, loadedAt: null };
    window.seenDuringLoad = seen;
    const check = () => {
      const card = document.getElementById('guests-card');
      if (!card) return;
      seen.samples++;
      const loaded = card.dataset.loaded === 'true';
      const rows = document.querySelectorAll('#guest-rows tr[data-guest-id]');
      for (const tr of rows) {
        if (invited.has(tr.dataset.guestId) && (tr.dataset.status === 'none' || tr.textContent.includes('Not invited'))) {
          seen.notInvited.push(`${tr.dataset.guestId} (${loaded ? 'after' : 'before'} the list was read)`);
        }
      }
      if (document.querySelector('#live:not([hidden]) .live-job') && seen.liveAt === null) seen.liveAt = performance.now() - start;
      if (loaded) {
        seen.loadedAt ??= performance.now() - start;
        return;
      }
      if (rows.length) seen.rowsBeforeLoaded++;
      const usable = ['send', 'select-all', 'select-new', 'select-failed', 'retry-all']
        .filter((id) => document.getElementById(id) && !document.getElementById(id).disabled);
      const boxes = document.querySelectorAll('#guest-rows input.pick:not(:disabled), #guest-rows button.retry:not(:disabled)').length;
      if (usable.length || boxes) seen.usableEarly.push(`${usable.join(', ')}${boxes ? ` and ${boxes} row controls` : ''}`);
    };
    new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  }, guests.map((g) => g.guest_id));

  await page.goto(`${API}/#event=${eventId}`);
  await page.locator('#guests-card[data-loaded="true"]').waitFor();
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.locator('#guest-count', { hasText: '300 guests · 300 selected' }).waitFor();
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  const dialog = page.getByRole('dialog');
  await page.locator('#dry-run[data-state="ready"]').waitFor();
  await dialog.getByRole('button', { name: 'Send 300', exact: true }).click();
  // Over 250 guests: answered at once, the guests added to the send behind the answer.
  await page.locator('#status', { hasText: 'Sending to 300 guests for Long Table: adding them to the send now' }).waitFor();
  const job = page.locator('#progress .job[data-total="300"]');
  await job.waitFor({ timeout: 60_000 });
  assert.equal(await job.locator('.admission').count(), 0, 'every guest added, none left out');
  const jobId = await job.getAttribute('data-job-id');
  assert.equal(await job.getAttribute('data-done'), 'false', 'still sending');
  assert.equal(await page.evaluate((id) => localStorage.getItem(`rsvp:lastJob:${id}`), eventId), jobId);
  assert.equal(await page.evaluate((id) => localStorage.getItem(`rsvp:guests:${id}`), eventId), null, 'no guest list in this browser');

  // Reloaded mid-send: this browser's last send shows its progress, pinned to
  // the top, even scrolled to the bottom of the page.
  await page.reload();
  const live = page.locator(`#live .live-job[data-job-id="${jobId}"]`);
  await live.waitFor({ timeout: 10_000 });
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  assert.equal(Math.round(await page.locator('#live').evaluate((el) => el.getBoundingClientRect().top)), 0, 'pinned to the top');
  assert.ok(await live.isVisible());
  assert.match(await live.innerText(), /^Sending: \d+ of 300 finished \(\d+%\)/);
  await shot('reloaded-pinned');
  await page.locator('#guests-card[data-loaded="true"]').waitFor({ timeout: 30_000 });
  // The rate, from successive status answers, while it still runs.
  await assertEventually(async () => assert.match(await live.innerText(), /· [\d.,]+ messages\/s/), 15_000);
  // Once there is a measured rate, the time left comes from it, not the configured one.
  await assertEventually(async () => assert.equal(await live.getAttribute('data-left-from'), 'measured'), 15_000);
  const seen = await page.evaluate(() => window.seenDuringLoad);
  t.diagnostic(`pinned progress after ${Math.round(seen.liveAt)} ms, list read after ${Math.round(seen.loadedAt)} ms, ${seen.samples} samples`);
  assert.ok(seen.samples > 0);
  assert.deepEqual(seen.usableEarly, [], 'nothing that sends was usable before the list was read');
  assert.ok(seen.liveAt !== null, 'the pinned progress showed');

  // Every guest reaches read; the pinned bar goes once the send is done.
  await page.locator(`#progress .job[data-job-id="${jobId}"][data-done="true"]`).waitFor({ timeout: 90_000 });
  await assertEventually(async () => assert.equal(await page.locator('#status-filter option[value="read"]').textContent(), 'Read (300)'), 60_000);
  await assertEventually(async () => assert.ok(await page.locator('#live').isHidden()));
  const after = await page.evaluate(() => window.seenDuringLoad);
  assert.deepEqual(after.notInvited, [], 'no invited guest ever read "Not invited"');
  const sent = (await sim('GET', '/_sim/messages')).map((m) => m.params.To).filter((to) => to.startsWith('whatsapp:+5511960'));
  assert.equal(sent.length, total);
  assert.equal(new Set(sent).size, total, 'each guest messaged once');
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(problems, []);
});

test('a second browser opens the same event: the same guests and statuses; it sends to one not yet invited, and the first sees it', { skip, timeout: 120_000 }, async (t) => {
  const first = await openBrowser({ width: 1024, height: 800 });
  t.after(first.close);
  const second = await openBrowser({ width: 1024, height: 800 });
  t.after(second.close);
  const eventId = `shared-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Shared Supper');
  const n = (i) => `+5511970000${String(i).padStart(3, '0')}`;
  const ids = ['m1', 'm2', 'm3', 'm4', 'm5'];
  const names = ['Mara', 'Nico', 'Otto', 'Pia', 'Quin'];
  const row = (page, id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
  const statuses = (page) => page.locator('#guest-rows tr').evaluateAll((rows) => rows.map((r) => `${r.dataset.guestId}:${r.dataset.status}`));

  // The first browser adds five guests and sends to three.
  const a = first.page;
  await a.goto(`${API}/#event=${eventId}`);
  await a.locator('#guests-card[data-loaded="true"]').waitFor();
  await a.getByLabel('Paste CSV').fill(`id,name,phone\n${ids.map((id, i) => `${id},${names[i]},${n(i + 1)}`).join('\n')}`);
  await a.getByRole('button', { name: 'Check and add guests' }).click();
  await a.locator('#import-summary', { hasText: '5 guests added.' }).waitFor();
  for (const name of names.slice(0, 3)) await a.getByRole('checkbox', { name: `Select ${name}`, exact: true }).check();
  await a.locator('#guest-count', { hasText: '5 guests · 3 selected' }).waitFor();
  await a.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  await a.locator('#dry-run[data-state="ready"]').waitFor();
  await a.getByRole('dialog').getByRole('button', { name: 'Send 3', exact: true }).click();
  await a.locator('#progress .job[data-total="3"][data-done="true"]').waitFor({ timeout: 30_000 });
  await waitForCount(a.locator('#guest-rows tr[data-status="read"]'), 3);

  // The second browser (nothing in its storage) sees the same list.
  const b = second.page;
  await b.goto(`${API}/#event=${eventId}`);
  await b.locator('#guests-card[data-loaded="true"]').waitFor();
  assert.deepEqual(await statuses(b), await statuses(a));
  assert.deepEqual(await statuses(b), ['m1:read', 'm2:read', 'm3:read', 'm4:none', 'm5:none']);
  assert.equal(await b.locator('#guest-count').innerText(), '5 guests · 0 selected');
  // The event's latest send shows there too.
  await b.locator('#progress .job[data-total="3"][data-done="true"]').waitFor();

  // It picks a guest not yet invited and sends.
  await b.getByRole('button', { name: 'Select not yet invited' }).click();
  await b.locator('#guest-count', { hasText: '5 guests · 2 selected' }).waitFor();
  await row(b, 'm5').getByRole('checkbox').uncheck();
  await b.locator('#guest-count', { hasText: '5 guests · 1 selected' }).waitFor();
  await b.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  const check = b.locator('#dry-run[data-state="ready"]');
  await check.waitFor();
  assert.equal(await check.locator('.dry-queued').getAttribute('data-count'), '1');
  assert.equal(await check.locator('.dry-left-out').count(), 0);
  await b.getByRole('dialog').getByRole('button', { name: 'Send 1', exact: true }).click();
  await b.locator('#progress .job[data-total="1"][data-done="true"]').waitFor({ timeout: 30_000 });
  await row(b, 'm4').and(b.locator('[data-status="read"]')).waitFor({ timeout: 30_000 });

  // The first browser, back in front, reads the change at once.
  await a.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await row(a, 'm4').and(a.locator('[data-status="read"]')).waitFor({ timeout: 20_000 });
  await assertEventually(async () => assert.deepEqual(await statuses(a), await statuses(b)), 20_000);
  const sent = (await sim('GET', '/_sim/messages')).map((m) => m.params.To).filter((to) => to.startsWith('whatsapp:+5511970000'));
  assert.deepEqual(sent.sort(), [1, 2, 3, 4].map((i) => `whatsapp:${n(i)}`), 'each sent guest messaged once; m5 never');
  for (const { page, problems } of [first, second]) {
    assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
    assert.deepEqual(problems, []);
  }
});

test('the confirmation leaves out guests already invited, says so after sending, and "Send again" sends them once more', { skip, timeout: 120_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 900 });
  t.after(close);
  const shot = shooter(page, 'left-out');
  const eventId = `again-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Second Call');
  const n = (i) => `+5511980000${String(i).padStart(3, '0')}`;
  const guests = [{ guest_id: 'k1', name: 'Kira', phone: n(1) }, { guest_id: 'k2', name: 'Lev', phone: n(2) }, { guest_id: 'k3', name: 'Mei', phone: n(3) }];
  assert.equal((await apiCall('POST', `/api/whatsapp/guests/${eventId}`, { guests })).status, 200);
  // Kira and Lev are invited from elsewhere, and read it.
  for (const guest of guests.slice(0, 2)) {
    const res = await apiCall('POST', '/api/whatsapp/send-invitation', { event_id: eventId, guest });
    assert.equal(res.status, 202, JSON.stringify(res.body));
  }
  await assertEventually(async () => {
    const { body } = await apiCall('GET', `/api/whatsapp/invitations/${eventId}`);
    assert.deepEqual(body.items.map((i) => i.status), ['read', 'read']);
  }, 20_000);
  const ours = async () => (await sim('GET', '/_sim/messages')).map((m) => m.params.To).filter((to) => to.startsWith('whatsapp:+5511980000')).sort();
  assert.deepEqual(await ours(), [`whatsapp:${n(1)}`, `whatsapp:${n(2)}`]);
  // Every send-bulk request, as sent; the job of each real send.
  const bulk = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/whatsapp/send-bulk') bulk.push(JSON.parse(r.postData() ?? '{}'));
  });
  const sentJob = () => page.waitForResponse((r) => new URL(r.url()).pathname === '/api/whatsapp/send-bulk'
    && !JSON.parse(r.request().postData() ?? '{}').dry_run).then((r) => r.json());
  const dialog = page.getByRole('dialog');
  const check = page.locator('#dry-run[data-state="ready"]');
  const resend = page.getByRole('checkbox', { name: /^Send again to/ });

  await page.goto(`${API}/#event=${eventId}`);
  await page.locator('#guests-card[data-loaded="true"]').waitFor();
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.locator('#guest-count', { hasText: '3 guests · 3 selected' }).waitFor();

  // The check says two are left out, by name, and offers to send again.
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  await check.waitFor();
  assert.equal(await check.locator('.dry-queued').getAttribute('data-count'), '1');
  assert.equal(await check.locator('.dry-left-out').getAttribute('data-count'), '2');
  assert.equal(await check.locator('.dry-left').innerText(), '2 guests already have an invitation on its way or delivered, so are left out (Kira: Read, Lev: Read).');
  assert.equal(await page.locator('#resend-text').innerText(), 'Send again to these 2 guests');
  assert.ok(await resend.isVisible());
  assert.ok(!(await resend.isChecked()));
  assert.equal(bulk.at(-1).resend, undefined);
  await shot('left-out');

  // Sent as checked: Mei only; the page then says who was left out.
  let answer = sentJob();
  await dialog.getByRole('button', { name: 'Send 3', exact: true }).click();
  const firstJob = await answer;
  assert.equal(firstJob.left_out.length, 2, JSON.stringify(firstJob));
  await page.locator(`#progress .job[data-job-id="${firstJob.job_id}"][data-total="1"][data-done="true"]`).waitFor({ timeout: 30_000 });
  const report = page.locator('#send-report');
  assert.equal(await report.getAttribute('data-left-out'), '2');
  assert.match(await report.innerText(), /^Left out 2 guests already invited: Kira \(Read\), Lev \(Read\)\./);
  await page.locator('#guest-rows tr[data-guest-id="k3"][data-status="read"]').waitFor({ timeout: 30_000 });
  assert.deepEqual(await ours(), [1, 2, 3].map((i) => `whatsapp:${n(i)}`));

  // Kira again, on purpose: ticked, the check runs again and counts a second invitation.
  await page.getByRole('checkbox', { name: 'Select Kira', exact: true }).check();
  await page.locator('#guest-count', { hasText: '3 guests · 1 selected' }).waitFor();
  await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
  await check.waitFor();
  assert.equal(await check.locator('.dry-left-out').getAttribute('data-count'), '1');
  assert.equal(await page.locator('#resend-text').innerText(), 'Send again to this guest');
  const checks = bulk.length;
  await resend.check();
  await assertEventually(async () => assert.equal(bulk.length, checks + 1, 'checked again'));
  assert.equal(bulk.at(-1).resend, true);
  assert.equal(bulk.at(-1).dry_run, true);
  await page.locator('#dry-run[data-state="ready"] .dry-resends[data-count="1"]').waitFor();
  assert.equal(await check.locator('.dry-queued').getAttribute('data-count'), '1');
  assert.equal(await check.locator('.dry-left-out').count(), 0);
  await shot('send-again');
  answer = sentJob();
  await dialog.getByRole('button', { name: 'Send 1', exact: true }).click();
  const secondJob = await answer;
  assert.equal(bulk.at(-1).resend, true);
  assert.equal(bulk.at(-1).dry_run, undefined);
  assert.deepEqual(secondJob.left_out ?? [], []);
  await page.locator(`#progress .job[data-job-id="${secondJob.job_id}"][data-done="true"]`).waitFor({ timeout: 30_000 });
  assert.ok(await report.isHidden(), 'nobody left out this time');
  await assertEventually(async () => assert.deepEqual(await ours(), [1, 1, 2, 3].map((i) => `whatsapp:${n(i)}`)), 20_000);
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(problems, []);
});

test('guests an older version kept in this browser are offered to the server once, then forgotten here', { skip, timeout: 60_000 }, async (t) => {
  const { page, problems, close } = await openBrowser({ width: 1024, height: 800 });
  t.after(close);
  const eventId = `legacy-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Old Friends');
  const key = `rsvp:guests:${eventId}`;
  const kept = [{ guest_id: 'o1', name: 'Olga', phone: '+5511990000001' }, { guest_id: 'o2', name: 'Pavel', phone: '+5511990000002', rsvp_token: 'tok-2' }];
  // Put there before the page's first load only.
  await page.addInitScript(([k, list]) => {
    if (sessionStorage.getItem('seeded')) return;
    localStorage.setItem(k, JSON.stringify(list));
    sessionStorage.setItem('seeded', '1');
  }, [key, kept]);
  await page.goto(`${API}/#event=${eventId}`);
  await page.locator('#guests-card[data-loaded="true"]').waitFor();
  const legacy = page.locator('#legacy');
  await legacy.waitFor();
  assert.match(await legacy.innerText(), /This browser still holds 2 guests for this event/);
  await page.getByRole('button', { name: 'Save 2 guests to the server' }).click();
  await page.locator('#import-summary', { hasText: 'From this browser: 2 guests added.' }).waitFor();
  await waitForCount(page.locator('#guest-rows tr[data-status="none"]'), 2);
  assert.ok(await legacy.isHidden());
  assert.equal(await page.evaluate((k) => localStorage.getItem(k), key), null);
  const listed = await apiCall('GET', `/api/whatsapp/guests/${eventId}?limit=1000`);
  assert.deepEqual(listed.body.items.map((g) => [g.guest_id, g.name, g.phone]).sort(), kept.map((g) => [g.guest_id, g.name, g.phone]));
  assert.equal(listed.body.items.find((g) => g.guest_id === 'o2').rsvp_token, 'tok-2');
  await page.reload();
  await page.locator('#guests-card[data-loaded="true"]').waitFor();
  assert.ok(await legacy.isHidden(), 'offered once');

  // A guest edited and another removed, through the dialog, by keyboard.
  await page.getByRole('button', { name: 'Edit Olga' }).focus();
  await page.keyboard.press('Enter');
  const edit = page.getByRole('dialog', { name: 'Edit Olga' });
  await edit.waitFor();
  await page.getByLabel('Guest name').fill('Olga Lima');
  await page.getByLabel(/^Guest phone/).fill('+55 11 99000-0009');
  await page.keyboard.press('Enter');
  await page.locator('#guest-rows tr[data-guest-id="o1"] .phone', { hasText: '+5511990000009' }).waitFor();
  assert.equal(await page.locator('#guest-rows tr[data-guest-id="o1"] .name').innerText(), 'Olga Lima');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Edit Olga Lima');
  await page.getByRole('button', { name: 'Remove Pavel' }).click();
  await page.getByRole('dialog', { name: 'Remove Pavel?' }).getByRole('button', { name: 'Remove guest' }).click();
  await waitForCount(page.locator('#guest-rows tr'), 1);
  const after = await apiCall('GET', `/api/whatsapp/guests/${eventId}?limit=1000`);
  assert.deepEqual(after.body.items.map((g) => [g.guest_id, g.name, g.phone]), [['o1', 'Olga Lima', '+5511990000009']]);
  assert.deepEqual(await unlabelledControls(page), []);
  assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
  assert.deepEqual(problems, []);
});
