// The list is the truth: a number edited after an invitation shows the
// invitation went elsewhere ("Not invited at this number"), and a retry
// goes out as things are now (the fixed template, the number as listed)
// and says so; a Content template previews with its text and buttons.
// Run through `cargo run -p e2e --bin browser-tests`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API, skip, openBrowser, sim, apiCall, createEvent, createTemplate, shooter, assertEventually } from './helpers.mjs';

for (const [label, viewport, prefix] of [['desktop', { width: 1280, height: 900 }, '61'], ['phone-sized (390px)', { width: 390, height: 844 }, '62']]) {
  test(`${label}: an edited number reads "Not invited at this number"; a retry goes as things are now and says so; a Content template previews with its buttons`, { skip, timeout: 120_000 }, async (t) => {
    const eventId = `list-${viewport.width}-${Date.now().toString(36)}`;
    await createEvent(eventId, 'List party');
    const template = await createTemplate('plain', 'Plain', 'Hi {guest_name}!');
    const buttons = `buttons-${viewport.width}-${Date.now().toString(36)}`;
    const made = await apiCall('POST', '/api/whatsapp/templates', {
      template_id: buttons, name: 'With buttons', content_sid: 'HX00000000000000000000000000000003',
      content_variables: { 1: '{guest_first_name}', 2: '{event_date}', 3: '{rsvp_yes}', 4: '{rsvp_no}', 5: '{rsvp_maybe}' },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const phone = (i) => `+55119${prefix}00${i}00`;
    // Both numbers are not on WhatsApp: both invitations fail.
    await sim('POST', '/_sim/config', { fail_numbers: { [phone(1)]: 63024, [phone(2)]: 63024 } });
    t.after(() => sim('POST', '/_sim/config', { fail_numbers: {} }));
    const guests = [{ guest_id: 'ana', name: 'Ana Reis', phone: phone(1) }, { guest_id: 'bia', name: 'Bia Melo', phone: phone(2) }];
    const sent = await apiCall('POST', '/api/whatsapp/send-bulk', { event_id: eventId, guests, template_id: template.template_id });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    await assertEventually(async () => {
      const job = (await apiCall('GET', `/api/whatsapp/status/${sent.body.job_id}`)).body;
      assert.equal(job.counts.failed, 2, JSON.stringify(job));
    }, 30_000);

    const { page, problems, close } = await openBrowser(viewport);
    t.after(close);
    const shot = shooter(page, `list-${viewport.width}`);
    await page.goto(`${API}/#event=${eventId}`);
    await page.locator('#guests-card[data-loaded="true"]').waitFor();
    const row = (id) => page.locator(`#guest-rows tr[data-guest-id="${id}"]`);
    await row('ana').locator('[data-status="failed"]').waitFor();

    // Ana's number corrected in the dialog: her row says the invitation went to the old one.
    await page.getByRole('button', { name: 'Edit Ana Reis' }).click();
    await page.getByRole('dialog', { name: 'Edit Ana Reis' }).waitFor();
    await page.getByLabel(/^Guest phone/).fill(phone(3));
    await page.getByRole('button', { name: 'Save guest' }).click();
    const other = row('ana').locator('[data-status="other-number"]');
    await other.waitFor();
    assert.equal(await other.innerText(), 'Not invited at this number');
    assert.match(await row('ana').locator('.c-details').innerText(), new RegExp(`Invited at \\${phone(1)} \\(Failed\\) before the number was changed`));
    assert.equal(await row('ana').getAttribute('data-status'), 'none');
    assert.equal(await row('ana').locator('button.retry').count(), 0, 'nothing to retry at the new number: send instead');
    // "Select not yet invited" takes her: a send invites her at the new number.
    await page.getByRole('button', { name: 'Select not yet invited' }).click();
    assert.equal(await row('ana').locator('input.pick').isChecked(), true);
    assert.equal(await row('bia').locator('input.pick').isChecked(), false);
    await page.getByRole('button', { name: 'Select none' }).click();
    await shot('other-number');

    // The template fixed and Bia now on WhatsApp: her Retry goes out as
    // things are now, and the page says so.
    const fixed = await apiCall('PUT', `/api/whatsapp/templates/${template.template_id}`, { name: 'Plain', text: 'Hi {guest_name}, fixed!' });
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
    await sim('POST', '/_sim/config', { fail_numbers: {} });
    await page.getByRole('button', { name: 'Retry invitation to Bia Melo' }).click();
    await page.locator('#status', { hasText: 'Retrying the invitation to Bia Melo (attempt 2). Sent again as things are now' }).waitFor();
    assert.match(await page.locator('#status').innerText(), /version 2.*changed since the failed attempt: template/);
    await assertEventually(async () => {
      const to = (await sim('GET', '/_sim/messages')).filter((m) => m.params.To.endsWith(phone(2)) && !m.error_code);
      assert.deepEqual(to.map((m) => m.params.Body), ['Hi Bia Melo, fixed!']);
    }, 30_000);
    await row('bia').locator('[data-status="read"], [data-status="delivered"]').waitFor({ timeout: 30_000 });
    // A Content template with buttons previews as Twilio has it: its text filled in, and its buttons.
    await page.locator(`#template-select option[value="${buttons}"]`).waitFor({ state: 'attached' });
    await page.selectOption('#template-select', buttons);
    await page.selectOption('#preview-guest', 'bia');
    await page.locator('#preview', { hasText: 'Hi Bia! You are invited on' }).waitFor();
    assert.match(await page.locator('#preview').innerText(), /^Hi Bia! You are invited on .+\. Will you come\?$/);
    assert.deepEqual(await page.locator('#preview-buttons li').allInnerTexts(), ['Yes', 'No', 'Maybe']);
    assert.match(await page.locator('#preview-meta').innerText(), /Twilio's Content template HX0+3/);
    await shot('content-preview');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width, `no sideways scroll at ${viewport.width}px (${width})`);
    await shot('retried');
    assert.equal(await page.locator('#errors .error').count(), 0, await page.locator('#errors').innerText());
    assert.deepEqual(problems, []);
  });
}
