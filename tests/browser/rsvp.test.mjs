// Guests answer, and the dashboard shows who is coming: taps and typed
// replies through the Twilio simulator (posted to the webhook signed, as
// Twilio does), the headcount and each guest's answer in the dashboard.
// Run through `cargo run -p e2e --bin browser-tests` (see dashboard.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API, skip, openBrowser, sim, apiCall, createEvent, shooter, assertEventually } from './helpers.mjs';

/** The simulator's quick-reply Content template (Yes / No / Maybe), its buttons' ids the stack's payloads. */
async function buttonsTemplate() {
  const template_id = `buttons-${Date.now().toString(36)}`;
  const res = await apiCall('POST', '/api/whatsapp/templates', {
    template_id, name: 'Invitation with buttons', content_sid: 'HX00000000000000000000000000000003',
    content_variables: { 1: '{guest_first_name}', 2: '{event_date}', 3: '{rsvp_yes}', 4: '{rsvp_no}', 5: '{rsvp_maybe}' },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return template_id;
}

/** Invites `n` guests with the buttons template and waits until each got it; answers phone -> message SID. */
async function invite(eventId, n, prefix) {
  const template_id = await buttonsTemplate();
  const phone = (i) => `+55119${prefix}${String(i).padStart(5, '0')}`;
  const guests = Array.from({ length: n }, (_, i) => ({ guest_id: `g${String(i).padStart(2, '0')}`, name: `Guest${i} Lima`, phone: phone(i) }));
  const sent = await apiCall('POST', '/api/whatsapp/send-bulk', { event_id: eventId, guests, template_id });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  await assertEventually(async () => {
    const job = (await apiCall('GET', `/api/whatsapp/status/${sent.body.job_id}`)).body;
    assert.equal((job.counts.delivered ?? 0) + (job.counts.read ?? 0), n, JSON.stringify(job));
  }, 60_000);
  const sids = new Map();
  for (const m of await sim('GET', '/_sim/messages')) sids.set(m.params.To.replace('whatsapp:', ''), m.sid);
  return { phone, sids };
}

async function fromGuest(message) {
  const answer = await sim('POST', '/_sim/inbound', { ...message, url: `${API}/api/whatsapp/webhook` });
  assert.equal(answer.http_status, 200, JSON.stringify(answer));
  return answer;
}

test('20 guests answer in WhatsApp: the dashboard shows 10 coming, 5 not, 1 maybe, 4 without an answer; each answering guest got one confirmation; "remind now" reaches the 4 once', { skip, timeout: 150_000 }, async (t) => {
  const eventId = `answers-${Date.now().toString(36)}`;
  await createEvent(eventId, 'Answers party');
  const { phone, sids } = await invite(eventId, 20, '71');
  const tap = (i, button) => fromGuest({ from: phone(i), reply_to: sids.get(phone(i)), button });

  const { page, problems, close } = await openBrowser({ width: 1280, height: 900 });
  t.after(close);
  const shot = shooter(page, 'answers');
  await page.goto(`${API}/#event=${eventId}`);
  await page.locator('#headcount').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#hc-none').textContent(), '20');

  for (let i = 0; i < 10; i++) await tap(i, 'Yes');
  await tap(9, 'Yes'); // a double tap
  for (let i = 10; i < 15; i++) await tap(i, 'No');
  await fromGuest({ from: phone(15), body: 'talvez' });

  // The page follows the list's changes: the headcount comes without a reload.
  await assertEventually(async () => {
    const count = async (id) => page.locator(`#${id}`).textContent();
    assert.deepEqual(
      [await count('hc-yes'), await count('hc-no'), await count('hc-maybe'), await count('hc-none')],
      ['10', '5', '1', '4'],
    );
  }, 30_000);
  await shot('headcount');
  const row = page.locator('tr[data-guest-id="g15"]');
  assert.equal(await row.locator('.c-answer [data-answer]').getAttribute('data-answer'), 'maybe');
  assert.match(await row.locator('.c-answer').textContent(), /WhatsApp reply/);

  // "No answer yet": the four silent guests.
  await page.selectOption('#status-filter', 'answer:none');
  await assertEventually(async () => {
    const ids = await page.locator('#guest-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.guestId));
    assert.deepEqual(ids, ['g16', 'g17', 'g18', 'g19']);
  });
  await shot('no-answer-filter');

  // One confirmation per answering guest, the double tap included.
  const ours = new Set(Array.from({ length: 20 }, (_, i) => `whatsapp:${phone(i)}`));
  const replies = (await sim('GET', '/_sim/replies')).filter((r) => ours.has(r.to));
  const perGuest = new Map();
  for (const r of replies) perGuest.set(r.to, (perGuest.get(r.to) ?? 0) + 1);
  assert.equal(perGuest.size, 16, JSON.stringify(replies));
  assert.ok([...perGuest.values()].every((n) => n === 1), JSON.stringify([...perGuest]));

  // Remind now: the four silent guests, once; pressing it again sends nothing.
  await page.selectOption('#status-filter', '');
  const sentTo = async (i) => (await sim('GET', '/_sim/messages')).filter((m) => m.params.To === `whatsapp:${phone(i)}`).length;
  const remind = page.locator('#remind-now');
  await assertEventually(async () => assert.equal(await remind.textContent(), 'Remind 4 who have not answered'));
  page.once('dialog', (d) => d.accept());
  const [first] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/api/whatsapp/remind/')),
    remind.click(),
  ]);
  assert.equal((await first.json()).reminded, 4);
  await assertEventually(async () => {
    for (let i = 0; i < 20; i++) assert.equal(await sentTo(i), i >= 16 ? 2 : 1, `guest ${i}`);
  }, 30_000);
  // Reminders show as reminders: in the rows, and the button tells today's state.
  await assertEventually(async () => {
    assert.match(await remind.textContent(), /^Reminded 4 today at [^·]+$/);
    assert.ok(await remind.isDisabled(), 'nobody left to remind today');
    assert.equal(await page.locator('#guest-rows tr [data-reminder]').count(), 4);
  }, 30_000);
  // Pressed again anyway (another tab): today's reminder was sent, nothing more is.
  const again = await apiCall('POST', `/api/whatsapp/remind/${eventId}`);
  assert.deepEqual(again.body, { job_id: again.body.job_id, reminded: 0, already: true, wrote: 0 });
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 16; i < 20; i++) assert.equal(await sentTo(i), 2, `guest ${i} was reminded once`);
  await shot('reminded');
  // One of them then taps Maybe: the headcount follows.
  await tap(16, 'Maybe');
  await assertEventually(async () => {
    assert.deepEqual([await page.locator('#hc-maybe').textContent(), await page.locator('#hc-none').textContent()], ['2', '3']);
  }, 30_000);
  assert.deepEqual(problems, []);
});

test('the RSVP page records an answer from a phone-sized browser; a wrong link says it is not valid', { skip, timeout: 90_000 }, async (t) => {
  const eventId = `page-${Date.now().toString(36)}`;
  // No RSVP app of the organizer's: links open the stack's page.
  const res = await apiCall('PUT', `/api/whatsapp/events/${eventId}`, {
    name: 'Page party', starts_at: '2027-06-01T20:00:00+00:00', venue: 'Hall', host: 'Ana',
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const phone = `+5511972${String(Date.now() % 100000).padStart(5, '0')}`;
  const sent = await apiCall('POST', '/api/whatsapp/send-invitation', {
    event_id: eventId, guest: { guest_id: 'lia', name: 'Lia Costa', phone },
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  const link = await assertEventually(async () => {
    const message = (await sim('GET', '/_sim/messages')).find((m) => m.params.To === `whatsapp:${phone}`);
    assert.ok(message, 'the invitation was sent');
    const found = message.params.Body.split(/\s+/).find((w) => w.startsWith(`${API}/r/`));
    assert.ok(found, message.params.Body);
    return found;
  }, 30_000);

  const { page, problems, close } = await openBrowser({ width: 390, height: 800 });
  t.after(close);
  const shot = shooter(page, 'rsvp-page');
  await page.goto(link);
  assert.match(await page.locator('h1').innerText(), /Page party/);
  assert.match(await page.locator('#current').innerText(), /not answered yet/);
  await shot('opened');
  await page.getByLabel('Yes, I will come').check();
  await page.getByLabel('how many people come with you').fill('1');
  await page.getByRole('button', { name: 'Send my answer' }).click();
  await page.getByRole('status').waitFor();
  assert.match(await page.getByRole('status').innerText(), /Your answer is saved/);
  assert.match(await page.locator('#current').innerText(), /Yes, I will come.*with 1 companion/);
  await shot('answered');
  const recorded = (await apiCall('GET', `/api/whatsapp/rsvps/${eventId}/lia`)).body;
  assert.equal(recorded.rsvp.answer, 'yes', JSON.stringify(recorded));
  assert.equal(recorded.rsvp.via, 'link');
  assert.equal(recorded.rsvp.companions, 1);

  // An altered link: the same "not valid" page as an expired one.
  const response = await page.goto(`${link.slice(0, -1)}${link.endsWith('0') ? '1' : '0'}`);
  assert.equal(response.status(), 404);
  assert.match(await page.locator('h1').innerText(), /not valid/);
  await shot('not-valid');
  // The page's 404 is the answer under test, not a problem of the page.
  assert.deepEqual(problems.filter((p) => !p.startsWith('404 for ')), []);
});

for (const [label, viewport] of [['desktop', { width: 1280, height: 900 }], ['phone-sized (390px)', { width: 390, height: 844 }]]) {
  test(`${label}: replies in the guests' own words are read, or listed in "Replies to read" and recorded in one click; who wrote is not reminded`, { skip, timeout: 150_000 }, async (t) => {
    const eventId = `words-${label.length}-${Date.now().toString(36)}`;
    await createEvent(eventId, 'Words party');
    const { phone, sids } = await invite(eventId, 4, label.length > 10 ? '73' : '72');
    const say = (i, body) => fromGuest({ from: phone(i), reply_to: sids.get(phone(i)), body });
    await say(0, 'Sim! Estarei lá');
    await say(1, 'Não, infelizmente');
    await say(2, 'Não sei ainda, posso levar meu filho?');

    const { page, problems, close } = await openBrowser(viewport);
    t.after(close);
    const shot = shooter(page, `replies-${viewport.width}`);
    await page.goto(`${API}/#event=${eventId}`);
    await page.locator('#headcount').waitFor({ state: 'visible' });
    await assertEventually(async () => {
      const count = async (id) => page.locator(`#${id}`).textContent();
      assert.deepEqual([await count('hc-yes'), await count('hc-no'), await count('hc-none')], ['1', '1', '2']);
    }, 30_000);
    // Guest 2's question is not an answer: in their row and in the list to read.
    const box = page.locator('#replies');
    await box.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await page.locator('#replies-count').textContent(), '1');
    const item = box.locator('li[data-guest-id="g02"]');
    assert.match(await item.innerText(), /Guest2 Lima wrote .*Não sei ainda, posso levar meu filho\?/s);
    assert.match(await page.locator('tr[data-guest-id="g02"] .c-answer').innerText(), /Wrote: “Não sei ainda/);
    // Names and what guests wrote keep their own direction (a Hebrew or Arabic name among Latin ones).
    for (const el of [page.locator('tr[data-guest-id="g02"] .name'), item.locator('bdi').first()]) {
      assert.equal(await el.evaluate((e) => `${e.tagName} ${e.dir}`), 'BDI auto');
    }
    await shot('to-read');

    // "Remind now" leaves guest 2 (who wrote) to the organizer: only guest 3.
    const reminded = await apiCall('POST', `/api/whatsapp/remind/${eventId}`);
    assert.equal(reminded.status, 202, JSON.stringify(reminded.body));
    assert.equal(reminded.body.reminded, 1, JSON.stringify(reminded.body));
    assert.equal(reminded.body.wrote, 1, JSON.stringify(reminded.body));

    // One click records what they meant; the reply leaves the list.
    await item.getByRole('button', { name: 'Record Maybe for Guest2 Lima' }).click();
    await page.locator('#status', { hasText: 'Recorded Maybe for Guest2 Lima' }).waitFor();
    await box.waitFor({ state: 'hidden' });
    await assertEventually(async () => assert.equal(await page.locator('#hc-maybe').textContent(), '1'));
    assert.equal(await page.locator('tr[data-guest-id="g02"] .c-answer [data-answer]').getAttribute('data-answer'), 'maybe');
    await shot('recorded');
    // Today's reminder shows on the button and in guest 3's row.
    await assertEventually(async () => {
      assert.match(await page.locator('#remind-now').textContent(), /^Reminded 1 today at \d{1,2}:\d{2}/);
      assert.equal(await page.locator('tr[data-guest-id="g03"] [data-reminder]').count(), 1);
    }, 40_000);
    // A reminder time set for the event: the button says when it comes next.
    const event = (await apiCall('GET', `/api/whatsapp/events/${eventId}`)).body;
    const { event_id: _id, updated_at: _at, next_reminder_at: _next, ...fields } = event;
    const planned = await apiCall('PUT', `/api/whatsapp/events/${eventId}`, { ...fields, reminders: [{ days_before: 1, at: '10:00' }] });
    assert.equal(planned.status, 200, JSON.stringify(planned.body));
    assert.equal(planned.body.next_reminder_at, '2027-05-31T10:00:00Z');
    await page.reload();
    // In the browser's locale, with the year when it is not this one.
    const expected = await page.evaluate(() => {
      const d = new Date('2027-05-31T10:00:00Z');
      const year = d.getFullYear() !== new Date().getFullYear() ? { year: 'numeric' } : {};
      return d.toLocaleString([], { weekday: 'short', day: 'numeric', month: 'short', ...year, hour: '2-digit', minute: '2-digit' });
    });
    await assertEventually(async () => assert.match(await page.locator('#remind-now').textContent(),
      new RegExp(`^Reminded 1 today at [^·]+ · next at ${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)), 30_000);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width, `no sideways scroll at ${viewport.width}px (${width})`);
    assert.deepEqual(problems, []);
  });
}
