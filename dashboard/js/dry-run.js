// The confirmation's check of a send (a dry run): what the API says it
// would do, merged over the send's parts and drawn in the dialog: who would
// be sent, left out, skipped (by reason) and rejected, the wait for the
// daily limit, and the estimated cost.

import { reasonWords, statusLabel } from './facts.js';
import {
  escapeHtml as esc, plural, num, dailyLimitWords, money, SKIP_WORDS, categoryWords,
} from './format.js';
import { state } from './state.js';
import { $, errorDetail, timeHtml } from './ui.js';

/**
 * One answer for a send of several parts (over the API's bulk_guests), each
 * entry with its guest. Every part is checked against the daily limit's
 * places free now, so those free are the fewest any waiting part saw.
 */
export function mergeDryRuns(parts) {
  const first = parts[0]?.res ?? {};
  const out = {
    accepted: 0, queued: 0, skipped: [], rejected: [], duplicates: [], left_out: [], resends: 0, would_wait: 0,
    template_id: first.template_id, template_version: first.template_version, category: first.category ?? null,
    daily_unique_recipients: first.daily_unique_recipients, expected_finish: null, cost: null,
  };
  let free = Infinity;
  for (const { chunk, res } of parts) {
    out.accepted += res.accepted ?? 0;
    out.queued += res.queued ?? 0;
    const withGuest = (list) => (list ?? []).map((x) => ({ ...x, guest: chunk[x.index] ?? null }));
    out.skipped.push(...withGuest(res.skipped));
    out.rejected.push(...withGuest(res.rejected));
    out.duplicates.push(...withGuest(res.duplicates));
    out.left_out.push(...withGuest(res.left_out));
    out.resends += res.resends ?? 0;
    if (res.would_wait > 0) free = Math.min(free, (res.queued ?? 0) - res.would_wait);
    if (res.expected_finish && !(Date.parse(out.expected_finish) >= Date.parse(res.expected_finish))) out.expected_finish = res.expected_finish;
    if (res.cost) {
      const c = out.cost ??= { currency: res.cost.currency, messages: 0, provider_fee: 0, whatsapp_fee: 0, total: 0, by_country: [] };
      for (const k of ['messages', 'provider_fee', 'whatsapp_fee', 'total']) c[k] += res.cost[k] ?? 0;
      for (const line of res.cost.by_country ?? []) {
        const have = c.by_country.find((x) => x.calling_code === line.calling_code);
        if (have) {
          have.messages += line.messages;
          have.subtotal += line.subtotal;
        } else {
          c.by_country.push({ ...line });
        }
      }
    }
  }
  out.would_wait = Number.isFinite(free) ? Math.max(0, out.queued - free) : 0;
  return out;
}

/** The confirmation as the check stands: `checking`, `ready` (with its result) or `failed` (with its error). */
export function renderCheck(send, view) {
  const n = send.guests.length;
  const section = $('dry-run');
  section.dataset.state = view.state;
  section.setAttribute('aria-busy', String(view.state === 'checking'));
  const status = $('dry-run-status');
  const result = $('dry-run-result');
  const button = $('confirm-send');
  status.classList.toggle('dry-error', view.state === 'failed');
  if (view.state === 'checking') {
    status.textContent = 'Checking… (asking the API what this send would do; nothing is sent yet)';
    result.innerHTML = '';
    button.disabled = true;
    button.textContent = 'Checking…';
  } else if (view.state === 'ready') {
    status.textContent = 'Checked with the API; nothing has been sent yet.';
    result.innerHTML = dryRunHtml(view.result);
    button.disabled = false;
    button.textContent = `Send ${num(n)}`;
  } else {
    status.textContent = `Could not check this send: ${errorDetail(view.error)}`;
    result.innerHTML = '<p class="dry-advice">The check is only advice, not a condition: you can still send without it. '
      + 'Who was sent to and who was skipped will show below once you do.</p>';
    button.disabled = false;
    button.textContent = `Send ${num(n)} anyway`;
  }
  // The page's guesses give way to the API's counts.
  const notes = view.state === 'ready' ? send.notes : [...send.notes, send.usNote, send.resend ? '' : send.invitedNote];
  $('confirm-extra').textContent = notes.filter(Boolean).join(' ');
  renderResendChoice(send, view);
}

/**
 * "Send again to these N guests": offered when the check leaves guests out
 * for an invitation they already have (or, when the check failed, when the
 * page counts some). Ticked, the check runs again and the send resends.
 */
function renderResendChoice(send, view) {
  if (view.state === 'ready' && !send.resend) send.leftOut = view.result.left_out.length;
  const n = send.leftOut ?? (view.state === 'failed' || send.resend ? send.invited : 0);
  $('resend-box').hidden = !(n > 0);
  $('resend-text').textContent = n === 1 ? 'Send again to this guest' : `Send again to these ${num(n)} guests`;
}

/** "(Ana, Bia and 3 more)": who is in a group, for small ones. */
function whoHtml(guests) {
  const names = guests.map((g) => g?.name ?? '?');
  const shown = names.slice(0, 3).join(', ');
  const more = names.length > 3 ? ` and ${num(names.length - 3)} more` : '';
  return ` <span class="who muted">(${esc(shown)}${more})</span>`;
}

function dryRunHtml(r) {
  const count = (cls, n, words) => `<li class="${cls}" data-count="${n}"><span class="n">${num(n)}</span> ${words}</li>`;
  const counts = `<ul class="dry-counts" aria-label="What this send would do">
    ${count('dry-queued', r.queued, 'will be sent')}
    ${r.resends ? count('dry-resends', r.resends, r.resends === 1 ? 'of them a second time' : 'of them a second time') : ''}
    ${r.left_out.length ? count('dry-left-out', r.left_out.length, 'already invited (left out)') : ''}
    ${count('dry-skipped', r.skipped.length, 'skipped')}
    ${count('dry-rejected', r.rejected.length, 'rejected')}
    ${r.duplicates.length ? count('dry-duplicates', r.duplicates.length, 'listed twice (sent once)') : ''}
  </ul>`;
  // Skipped, grouped by why, in words.
  const groups = new Map();
  for (const s of r.skipped) {
    const g = groups.get(s.code) ?? { code: s.code, message: s.message, guests: [] };
    g.guests.push(s.guest ?? { name: s.guest_id });
    groups.set(s.code, g);
  }
  const reasons = groups.size
    ? `<ul class="dry-reasons" aria-label="Why some are skipped">${[...groups.values()].map((g) => {
      const n = g.guests.length;
      const words = SKIP_WORDS[g.code]?.(n) ?? `${plural(n, 'guest')}: ${g.message || reasonWords(g.code)}`;
      return `<li data-code="${esc(g.code)}" data-count="${n}">${esc(words)}${whoHtml(g.guests)}</li>`;
    }).join('')}</ul>`
    : '';
  const rejected = r.rejected.length
    ? `<ul class="dry-rejections" aria-label="Rejected by the API">${r.rejected.slice(0, 5).map((x) => `<li data-index="${x.index}">`
      + `<bdi dir="auto">${esc(x.guest?.name ?? x.guest_id ?? '?')}</bdi> (${esc(x.guest?.phone ?? '?')}): ${esc(x.field)}: ${esc(x.message)}</li>`).join('')}`
      + `${r.rejected.length > 5 ? `<li>and ${num(r.rejected.length - 5)} more</li>` : ''}</ul>`
    : '';
  return counts + leftOutHtml(r) + reasons + rejected + waitHtml(r) + costHtml(r);
}

/** Who is left out for an invitation already on its way or delivered, with its status. */
function leftOutHtml(r) {
  const n = r.left_out.length;
  if (!n) return '';
  const who = r.left_out.map((x) => ({ name: `${x.guest?.name ?? x.guest_id ?? '?'}: ${statusLabel(x.status) ?? 'invited'}` }));
  return `<p class="dry-left" data-count="${n}">${esc(plural(n, 'guest'))} already ${n === 1 ? 'has' : 'have'} an invitation `
    + `on its way or delivered, so ${n === 1 ? 'is' : 'are'} left out${whoHtml(who)}.</p>`;
}

/** How many would wait for the daily limit, and when the send should finish. */
function waitHtml(r) {
  if (!r.queued) return '<p class="dry-wait" data-count="0">Nothing would be sent.</p>';
  const limit = typeof r.daily_unique_recipients === 'number'
    ? dailyLimitWords(r.daily_unique_recipients, state.sender?.window_seconds) : '';
  let head;
  if (r.would_wait > 0) {
    head = `${num(r.would_wait)} of ${num(r.queued)} would wait for WhatsApp's daily limit${limit ? ` (${esc(limit)})` : ''}`
      + ` and go out by themselves as places free`;
  } else if (r.daily_unique_recipients === 'unlimited') {
    head = 'None would wait: this sender has no daily limit on new guests';
  } else {
    head = `None would wait for WhatsApp's daily limit${limit ? ` (${esc(limit)})` : ''}`;
  }
  const finish = r.expected_finish ? `; expected to finish by ${timeHtml(r.expected_finish)}` : '';
  return `<p class="dry-wait" data-count="${r.would_wait}">${head}${finish}.</p>`;
}

/** The estimated cost, in the answer's currency, with a line per country. */
function costHtml(r) {
  const c = r.cost;
  if (!c) return '';
  const category = categoryWords(r.category);
  const basis = category
    ? `Twilio's fee plus WhatsApp's ${category} rate by country`
    : "Twilio's fee; WhatsApp charges nothing for free-form text";
  const lines = c.by_country ?? [];
  const table = lines.length
    ? `<table class="dry-countries"><caption class="visually-hidden">Estimated cost by country</caption>
      <thead><tr><th scope="col">Country code</th><th scope="col">Messages</th><th scope="col">Subtotal</th></tr></thead>
      <tbody>${lines.map((l) => `<tr data-calling-code="${esc(l.calling_code)}"><td>+${esc(l.calling_code)}</td>`
        + `<td class="n">${num(l.messages)}</td><td class="subtotal">${esc(money(l.subtotal, c.currency))}</td></tr>`).join('')}</tbody></table>`
    : '';
  return `<div class="dry-cost" data-total="${esc(c.total)}" data-currency="${esc(c.currency)}">
    <p><strong>Estimated cost: <span class="total">${esc(money(c.total, c.currency))}</span></strong>
      <span class="muted">An estimate (${esc(basis)}, from this stack's rate table); the invoice may differ.</span></p>
    ${table}</div>`;
}
