// The organizer's page: pick or create an event, bring in guests, preview the
// message, send, and follow each invitation until it is read or fails.

import { api, allInvitations, apiBase, token, setToken, ApiError, sleep, OPT_OUT_LOOKUP_MAX } from './api.js';
import { readGuests } from './guests.js';
import {
  STATUSES, STATUS_LABEL, STATUS_TITLE, ACTIVE, RETRYABLE, FLAG_WORDS, reason, whatToDo, isOptedOutInvitation, OPTED_OUT_CODES,
  shortTime, longTime, clockTime, eventDate, escapeHtml as esc, plural, num, dailyLimitWords,
  money, SKIP_WORDS, categoryWords,
} from './format.js';

const $ = (id) => document.getElementById(id);

/** Bulk requests are capped at this many guests by the API. */
const MAX_BULK = 10000;
/** Polling: fast while a job changes, slower while it does not, slowest on errors. */
const POLL_FAST_MS = 400;
const POLL_MAX_MS = 5000;
const POLL_ERROR_MAX_MS = 30000;
/** After a job is done, read receipts are followed this long, at a slowing pace. */
const TAIL_MS = 10 * 60 * 1000;
const TAIL_FIRST_MS = 1000;
const TAIL_MAX_MS = 60000;
/** While a job's only invitations in flight wait for the daily limit, it is polled at most this slowly. */
const WAIT_POLL_MAX_MS = 30000;
/** The sender profile is read again after a change at most this often. */
const SENDER_MAX_AGE_MS = 30000;

const state = {
  events: [],
  event: null,
  /** Guests brought in for this event (kept in this browser): [{guest_id, name, phone, rsvp_token?}]. */
  guests: [],
  /** guest_id -> the guest's latest invitation. */
  invitations: new Map(),
  /** invitation_id -> invitation. */
  byInvitation: new Map(),
  /** phone -> opted out (true/false), as the opt-out API answered. */
  optOuts: new Map(),
  selected: new Set(),
  /** job_id -> JobWatch. */
  jobs: new Map(),
  templates: null,
  sending: false,
  /** The WhatsApp sender's profile (GET /api/whatsapp/sender), or null. */
  sender: null,
  senderAt: 0,
};

// ---------------------------------------------------------------- messages

const shownErrors = new Map();

/** An error in words: the API's message, field, status, code and request. */
function errorDetail(err) {
  return err instanceof ApiError
    ? `${err.message}${err.field && !err.message.startsWith(err.field) ? ` (field: ${err.field})` : ''} [${err.status || 'no answer'} ${err.code}; ${err.method} ${err.path}]`
    : String(err?.message ?? err);
}

/** Shows an error (from the API or the page) until dismissed; never swallowed. */
function showError(context, err) {
  if (err?.name === 'AbortError') return;
  console.error(context, err);
  const detail = errorDetail(err);
  const key = `${context}|${detail}`;
  const existing = shownErrors.get(key);
  if (existing) {
    existing.count++;
    existing.el.querySelector('.count').textContent = ` (${existing.count} times)`;
    return;
  }
  const el = document.createElement('div');
  el.className = 'error';
  el.innerHTML = `<p><strong>${esc(context)}:</strong> ${esc(detail)}<span class="count"></span></p>
    <button type="button" class="secondary small">Dismiss</button>`;
  el.querySelector('button').setAttribute('aria-label', `Dismiss error: ${context}`);
  el.querySelector('button').addEventListener('click', () => {
    el.remove();
    shownErrors.delete(key);
  });
  shownErrors.set(key, { el, count: 1 });
  $('errors').append(el);
}

function announce(text) {
  $('status').textContent = text;
}

// ---------------------------------------------------------------- storage

const guestsKey = (eventId) => `rsvp:guests:${eventId}`;

function loadGuests(eventId) {
  try {
    const list = JSON.parse(localStorage.getItem(guestsKey(eventId)) ?? '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function saveGuests() {
  if (!state.event) return;
  try {
    localStorage.setItem(guestsKey(state.event.event_id), JSON.stringify(state.guests));
  } catch (e) {
    showError('Could not keep the guest list in this browser', e);
  }
}

// ---------------------------------------------------------------- connection

function initConnection() {
  $('api-base').textContent = apiBase() || `${location.origin} (this page's origin)`;
  $('token').value = token();
  $('token-remember').checked = Boolean(localStorage.getItem('rsvp:token'));
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setToken($('token').value, $('token-remember').checked);
    announce(token() ? 'Access token saved.' : 'No access token.');
    loadEvents();
  });
  $('token-clear').addEventListener('click', () => {
    setToken('', false);
    $('token').value = '';
    announce('Access token forgotten.');
  });
}

// ---------------------------------------------------------------- events

async function loadEvents(selectId) {
  const select = $('event-select');
  try {
    const { body } = await api.listEvents();
    state.events = body?.items ?? [];
  } catch (e) {
    showError('Could not load the events', e);
    // Keep the event in use, if any; otherwise say why the list is empty.
    if (!state.event) select.innerHTML = '<option value="">Events could not be loaded</option>';
    return;
  }
  const wanted = selectId ?? state.event?.event_id ?? eventFromUrl() ?? localStorage.getItem('rsvp:event') ?? '';
  select.innerHTML = `<option value="">${state.events.length ? 'Choose an event…' : 'No events yet: create one'}</option>`
    + state.events.map((ev) => `<option value="${esc(ev.event_id)}">${esc(ev.name)} · ${esc(eventDate(ev.starts_at))}</option>`).join('');
  const found = state.events.find((ev) => ev.event_id === wanted);
  select.value = found ? found.event_id : '';
  if (!state.events.length) openEventForm(null);
  await selectEvent(found ?? null);
}

function eventFromUrl() {
  const m = /(?:^|[#&])event=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

async function selectEvent(event) {
  for (const watch of state.jobs.values()) watch.stop();
  state.jobs.clear();
  state.event = event;
  optOutAbort?.abort();
  optOutAbort = null;
  state.optOuts = new Map();
  state.invitations.clear();
  state.byInvitation.clear();
  state.selected.clear();
  state.guests = event ? loadGuests(event.event_id) : [];
  $('progress').innerHTML = '';
  lastProgressHtml = '';
  $('import-result').innerHTML = '';
  $('event-edit').disabled = !event;
  $('import-form').querySelectorAll('textarea, input, button').forEach((el) => { el.disabled = !event; });
  if (event) {
    localStorage.setItem('rsvp:event', event.event_id);
    history.replaceState(null, '', `#event=${encodeURIComponent(event.event_id)}`);
    $('event-summary').textContent = `${event.name}: ${eventDate(event.starts_at)} at ${event.venue}, hosted by ${event.host}. RSVP links start with ${event.rsvp_base_url}`;
  } else {
    $('event-summary').textContent = 'Pick an event, or create one, to add guests and send invitations.';
  }
  renderAll();
  renderTemplateChoices();
  if (!event) return;
  await Promise.all([refreshInvitations().catch(() => {}), loadOptOuts()]);
  if (state.event !== event) return; // another event was picked meanwhile
  renderAll();
  followEventJobs();
  updatePreview();
}

function followEventJobs() {
  // Watch every job still moving, and the latest one so its bar shows.
  const jobs = new Map();
  for (const inv of state.byInvitation.values()) {
    const at = inv.timestamps?.queued ?? inv.updated_at;
    const job = jobs.get(inv.job_id) ?? { latest: '', active: false };
    if (at > job.latest) job.latest = at;
    if (ACTIVE.has(inv.status)) job.active = true;
    jobs.set(inv.job_id, job);
  }
  const ordered = [...jobs.entries()].sort((a, b) => b[1].latest.localeCompare(a[1].latest));
  ordered.forEach(([jobId, job], i) => {
    if (i === 0 || job.active) watchJob(jobId);
  });
}

const EVENT_FIELDS = {
  name: 'ev-name', event_id: 'ev-id', starts_at: 'ev-starts', venue: 'ev-venue', host: 'ev-host', rsvp_base_url: 'ev-rsvp',
  eventId: 'ev-id', default_template_id: 'ev-template',
};
let editingOffset = null;
let idTouched = false;

function openEventForm(event) {
  const form = $('event-form');
  form.hidden = false;
  clearFieldErrors(form);
  $('event-form-title').textContent = event ? `Edit ${event.name}` : 'New event';
  $('ev-name').value = event?.name ?? '';
  $('ev-id').value = event?.event_id ?? '';
  $('ev-id').readOnly = Boolean(event);
  idTouched = Boolean(event);
  $('ev-venue').value = event?.venue ?? '';
  $('ev-host').value = event?.host ?? '';
  $('ev-rsvp').value = event?.rsvp_base_url ?? '';
  const tpl = event?.default_template_id ?? '';
  if (tpl && ![...$('ev-template').options].some((o) => o.value === tpl)) {
    $('ev-template').add(new Option(tpl, tpl));
  }
  $('ev-template').value = tpl;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.exec(event?.starts_at ?? '');
  $('ev-starts').value = m ? m[1] : '';
  editingOffset = m ? (m[2] === 'Z' ? '+00:00' : m[2]) : null;
  updateStartsHint();
  $('ev-name').focus();
}

function closeEventForm() {
  $('event-form').hidden = true;
}

/** The browser's UTC offset on that local date, as +HH:MM. */
function localOffset(localValue) {
  const d = new Date(localValue);
  const minutes = Number.isNaN(d.getTime()) ? -new Date().getTimezoneOffset() : -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

function startsAtValue() {
  const v = $('ev-starts').value;
  if (!v) return '';
  return `${v.length === 16 ? `${v}:00` : v}${editingOffset ?? localOffset(v)}`;
}

function updateStartsHint() {
  const v = startsAtValue();
  $('ev-starts-hint').textContent = v ? `Saved as ${v} (UTC offset ${v.slice(-6)}).` : 'Your local time; its UTC offset is kept with it.';
}

function slug(text) {
  return text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48);
}

function clearFieldErrors(form) {
  form.querySelectorAll('.field-error').forEach((p) => { p.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
}

function fieldError(inputId, message) {
  const input = $(inputId);
  input.setAttribute('aria-invalid', 'true');
  const p = $(`${inputId}-error`);
  p.textContent = message;
  input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), p.id].filter(Boolean).join(' ').split(' ').filter((v, i, a) => a.indexOf(v) === i).join(' '));
}

function validateEvent(id, ev) {
  const problems = [];
  const need = (key, label, max) => {
    if (!ev[key]) problems.push([key, `${label} is required`]);
    else if ([...ev[key]].length > max) problems.push([key, `${label} must be at most ${max} characters`]);
  };
  need('name', 'The name', 200);
  if (!id) problems.push(['event_id', 'The event id is required']);
  else if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) problems.push(['event_id', 'The event id may hold only letters, digits, ".", "_" and "-" (at most 64)']);
  if (!ev.starts_at) problems.push(['starts_at', 'The date and time are required']);
  need('venue', 'The venue', 300);
  need('host', 'The host', 200);
  if (!ev.rsvp_base_url) problems.push(['rsvp_base_url', 'The RSVP base URL is required']);
  else if (!/^https?:\/\/\S+$/.test(ev.rsvp_base_url)) problems.push(['rsvp_base_url', 'The RSVP base URL must be an http(s) URL such as https://rsvp.example.com/r/']);
  return problems;
}

async function saveEvent(e) {
  e.preventDefault();
  const form = $('event-form');
  clearFieldErrors(form);
  const id = $('ev-id').value.trim();
  const ev = {
    name: $('ev-name').value.trim(),
    starts_at: startsAtValue(),
    venue: $('ev-venue').value.trim(),
    host: $('ev-host').value.trim(),
    rsvp_base_url: $('ev-rsvp').value.trim(),
  };
  // Sent whenever this API has templates: a PUT replaces the whole event.
  if (state.templates !== null) ev.default_template_id = $('ev-template').value || null;
  const problems = validateEvent(id, ev);
  if (problems.length) {
    for (const [field, message] of problems) fieldError(EVENT_FIELDS[field], message);
    $(EVENT_FIELDS[problems[0][0]]).focus();
    announce(`The event was not saved: ${problems.map((p) => p[1]).join('; ')}.`);
    return;
  }
  const button = $('event-save');
  button.disabled = true;
  try {
    const { status, body } = await api.putEvent(id, ev);
    closeEventForm();
    announce(`${status === 201 ? 'Created' : 'Saved'} event ${body.name}.`);
    await loadEvents(body.event_id);
  } catch (err) {
    if (err instanceof ApiError && err.field && EVENT_FIELDS[err.field]) {
      fieldError(EVENT_FIELDS[err.field], err.message);
      $(EVENT_FIELDS[err.field]).focus();
    }
    showError('Could not save the event', err);
  } finally {
    button.disabled = false;
  }
}

function initEvents() {
  $('event-select').addEventListener('change', (e) => {
    const ev = state.events.find((x) => x.event_id === e.target.value) ?? null;
    selectEvent(ev);
  });
  $('event-new').addEventListener('click', () => openEventForm(null));
  $('event-edit').addEventListener('click', () => state.event && openEventForm(state.event));
  $('event-cancel').addEventListener('click', () => {
    closeEventForm();
    $('event-new').focus();
  });
  $('event-form').addEventListener('submit', saveEvent);
  $('ev-starts').addEventListener('input', updateStartsHint);
  $('ev-id').addEventListener('input', () => { idTouched = true; });
  $('ev-name').addEventListener('input', () => {
    if (!idTouched && !$('ev-id').readOnly) $('ev-id').value = slug($('ev-name').value);
  });
}

// ---------------------------------------------------------------- guests in

function initImport() {
  $('import-form').addEventListener('submit', (e) => {
    e.preventDefault();
    importText($('csv-text').value, 'pasted text');
  });
  $('csv-file').addEventListener('change', async (e) => {
    const file = e.target.files?.[0];
    if (!file) return;
    try {
      const text = await file.text();
      $('csv-text').value = text;
      importText(text, file.name);
    } catch (err) {
      showError(`Could not read ${file.name}`, err);
    }
  });
  $('guests-clear').addEventListener('click', () => {
    if (!state.event || !state.guests.length) return;
    if (!confirm(`Remove all ${state.guests.length} guests from this browser's list for ${state.event.name}? Invitations already sent stay.`)) return;
    state.guests = [];
    state.selected.clear();
    saveGuests();
    renderAll();
    announce('Guest list cleared.');
  });
}

function importText(text, source) {
  if (!state.event) {
    showError('Guests not added', new Error('pick or create an event first'));
    return;
  }
  const { guests, problems } = readGuests(text, state.guests);
  const index = new Map(state.guests.map((g, i) => [g.guest_id, i]));
  let added = 0;
  let updated = 0;
  for (const { line, ...guest } of guests) {
    if (index.has(guest.guest_id)) {
      state.guests[index.get(guest.guest_id)] = guest;
      updated++;
    } else {
      index.set(guest.guest_id, state.guests.length);
      state.guests.push(guest);
      added++;
    }
  }
  saveGuests();
  const summary = `From ${source}: ${plural(added, 'guest')} added${updated ? `, ${updated} updated` : ''}`
    + (problems.length ? `; ${plural(problems.length, 'row')} not added (see below).` : '.');
  $('import-result').innerHTML = `<p class="${problems.length ? 'warn' : 'ok'}" id="import-summary">${esc(summary)}</p>`
    + (problems.length ? problemsTable(problems) : '');
  announce(summary);
  renderAll();
  updatePreview();
  loadOptOuts(guests.map((g) => g.phone));
}

function problemsTable(problems) {
  return `<div class="problems" id="import-problems">
    <h3 id="problems-heading">${plural(problems.length, 'row')} not added: fix ${problems.length === 1 ? 'it' : 'them'} in the CSV and add again</h3>
    <table aria-labelledby="problems-heading">
      <thead><tr><th scope="col">Line</th><th scope="col">Row</th><th scope="col">Problem</th></tr></thead>
      <tbody>${problems.map((p) => `<tr class="problem-row" data-line="${p.line}">
        <td data-label="Line">${p.line}</td>
        <td data-label="Row"><code>${esc(p.text) || '<span class="muted">(empty)</span>'}</code></td>
        <td data-label="Problem">${p.messages.map(esc).join('<br>')}</td></tr>`).join('')}</tbody>
    </table></div>`;
}

// ---------------------------------------------------------------- opt-outs

/** Lookup requests in flight at once (each of up to OPT_OUT_LOOKUP_MAX numbers). */
const OPT_OUT_PARALLEL = 2;
let optOutAbort = null;
/** Numbers being looked up now, so a lookup started meanwhile does not ask again. */
let optOutPending = new Set();
/** Lookups not answered yet: Send waits for them. */
let optOutLoads = 0;

/**
 * Asks the opt-out API about the guests' numbers (`phones`: only those, else
 * every guest's), OPT_OUT_LOOKUP_MAX numbers a request. The answer is the
 * number's current state, so a guest who opted back in (START) is
 * selectable again. Send stays disabled until it answers (or fails).
 */
async function loadOptOuts(phones) {
  if (!state.event) return;
  if (!phones || !optOutAbort) {
    optOutAbort?.abort();
    optOutAbort = new AbortController();
    optOutPending = new Set();
    state.optOuts = new Map();
  }
  const abort = optOutAbort;
  const pending = optOutPending;
  const todo = [...new Set(phones ?? state.guests.map((g) => g.phone))]
    .filter((p) => p && !state.optOuts.has(p) && !pending.has(p));
  if (!todo.length) return;
  const chunks = [];
  for (let start = 0; start < todo.length; start += OPT_OUT_LOOKUP_MAX) chunks.push(todo.slice(start, start + OPT_OUT_LOOKUP_MAX));
  for (const p of todo) pending.add(p);
  optOutLoads++;
  renderCounts();
  let next = 0;
  let failed = null;
  const rejected = [];
  const worker = async () => {
    while (next < chunks.length && !failed && !abort.signal.aborted) {
      const chunk = chunks[next++];
      try {
        const { body } = await api.optOutsLookup(chunk, abort.signal);
        if (abort.signal.aborted) return;
        for (const item of body?.items ?? []) {
          const phone = chunk[item.index] ?? item.phone;
          if (phone) state.optOuts.set(phone, Boolean(item.opted_out));
        }
        for (const r of body?.rejected ?? []) rejected.push(`${chunk[r.index] ?? r.field}: ${r.message}`);
      } catch (e) {
        failed = e;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(OPT_OUT_PARALLEL, chunks.length) }, worker));
  } finally {
    optOutLoads--;
    for (const p of todo) pending.delete(p);
  }
  if (abort.signal.aborted) {
    renderCounts();
    return;
  }
  // A number the API would not look up stays unknown here; a send reports it.
  if (rejected.length) console.warn(`Opt-outs not looked up for ${plural(rejected.length, 'number')}`, rejected);
  if (failed && failed.name !== 'AbortError' && !isMissingRoute(failed)) {
    showError('Could not check which guests opted out', failed);
  }
  renderRows();
}

/** The local stack's answer for a route this API does not have (yet). */
function isMissingRoute(e) {
  return e instanceof ApiError && (e.status === 404 || e.status === 405) && /no such route|not allowed on this path|^Not Found$/i.test(e.message);
}

// ---------------------------------------------------------------- sender

let senderLoading = null;

/**
 * Reads the WhatsApp sender's profile (its rate and daily limit), unless it
 * was read less than `maxAgeMs` ago. Quiet on failure: the page works
 * without it, so it is only logged.
 */
async function loadSender({ maxAgeMs = 0 } = {}) {
  if (senderLoading) return senderLoading;
  if (state.sender && Date.now() - state.senderAt < maxAgeMs) return;
  senderLoading = (async () => {
    try {
      const { body } = await api.sender();
      state.sender = body ?? null;
      state.senderAt = Date.now();
    } catch (e) {
      console.warn('Could not read the WhatsApp sender profile', e);
    }
    renderSender();
    renderProgress();
  })();
  try {
    await senderLoading;
  } finally {
    senderLoading = null;
  }
}

/** "WhatsApp sender: 80 messages/s, 250 new guests a day (12 used now)". */
function renderSender() {
  const el = $('sender-profile');
  const s = state.sender;
  if (!s || typeof s.rate_per_second !== 'number') {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  const limit = dailyLimitWords(s.daily_unique_recipients, s.window_seconds);
  let text = `WhatsApp sender: ${num(s.rate_per_second)} messages/s, `
    + (limit ? `${limit}${s.counted_in_window != null ? ` (${num(s.counted_in_window)} used now)` : ''}` : 'no daily limit on new guests');
  if (s.paused_until) {
    text += `; paused until ${clockTime(s.paused_until)} (WhatsApp refused a message for its daily limit)`;
  } else if (s.free_now === 0 && s.next_free_at) {
    text += `; the limit is reached, the next place frees at ${clockTime(s.next_free_at)}`;
  }
  el.textContent = `${text}.`;
  el.dataset.dailyLimit = String(s.daily_unique_recipients ?? '');
  el.hidden = false;
}

// ---------------------------------------------------------------- templates

const DEFAULT_TEMPLATE = 'default';

function templateName(id) {
  const t = state.templates?.find((x) => x.template_id === id);
  return t ? `${t.name || t.template_id} (version ${t.version})` : id;
}

/** The template a send uses when none is chosen: the event's default, else the built-in one. */
function eventTemplateId() {
  return state.event?.default_template_id || DEFAULT_TEMPLATE;
}

/** The chosen template id, or null for the event's default. */
function chosenTemplateId() {
  return $('template-select').value || null;
}

async function loadTemplates() {
  try {
    const { body } = await api.listTemplates();
    state.templates = body?.items ?? [];
    state.templateVariables = body?.variables ?? [];
  } catch (e) {
    state.templates = null;
    if (!isMissingRoute(e)) showError('Could not load the templates', e);
  }
  renderTemplateChoices();
}

function renderTemplateChoices() {
  const select = $('template-select');
  const current = select.value;
  const list = state.templates ?? [];
  const defaultLabel = `Event default: ${templateName(eventTemplateId())}`;
  select.innerHTML = `<option value="">${esc(defaultLabel)}</option>`
    + list.map((t) => `<option value="${esc(t.template_id)}">${esc(t.name || t.template_id)} (version ${t.version})</option>`).join('');
  if (list.some((t) => t.template_id === current)) select.value = current;
  // The event form's default template.
  const evSelect = $('ev-template');
  const evCurrent = evSelect.value;
  evSelect.innerHTML = `<option value="">Built-in default</option>`
    + list.filter((t) => t.template_id !== DEFAULT_TEMPLATE)
      .map((t) => `<option value="${esc(t.template_id)}">${esc(t.name || t.template_id)}</option>`).join('');
  evSelect.value = evCurrent;
  evSelect.closest('.field').hidden = state.templates === null;
  describeTemplate();
}

function describeTemplate() {
  const hint = $('template-hint');
  if (state.templates === null) {
    hint.textContent = 'This API has only the built-in message.';
    return;
  }
  const id = chosenTemplateId() ?? eventTemplateId();
  const t = state.templates.find((x) => x.template_id === id);
  if (!t) {
    hint.textContent = '';
  } else if (t.content_sid) {
    hint.textContent = `A WhatsApp Content template (${t.content_sid}) with ${plural(Object.keys(t.content_variables ?? {}).length, 'variable')}: Twilio sends the approved text.`;
  } else {
    hint.textContent = 'Free-form text: WhatsApp delivers it only inside a 24-hour window after the guest wrote to you; use an approved Content template otherwise.';
  }
}

let previewSeq = 0;

function renderPreviewGuests() {
  const guestSel = $('preview-guest');
  const current = guestSel.value;
  guestSel.innerHTML = state.guests.length
    ? state.guests.map((g) => `<option value="${esc(g.guest_id)}">${esc(g.name)} (${esc(g.phone)})</option>`).join('')
    : '<option value="">No guests yet</option>';
  const firstSelected = state.guests.find((g) => state.selected.has(g.guest_id));
  if (state.guests.some((g) => g.guest_id === current)) guestSel.value = current;
  else if (firstSelected) guestSel.value = firstSelected.guest_id;
}

async function updatePreview() {
  const out = $('preview');
  const meta = $('preview-meta');
  renderPreviewGuests();
  describeTemplate();
  const guest = state.guests.find((g) => g.guest_id === $('preview-guest').value);
  const seq = ++previewSeq;
  out.textContent = '';
  if (!state.event || !guest) {
    meta.textContent = state.event ? 'Add guests to see the message one of them would get.' : '';
    return;
  }
  if (state.templates === null) {
    meta.textContent = 'Previews need the template routes, which this API does not have.';
    return;
  }
  const templateId = chosenTemplateId() ?? eventTemplateId();
  const g = { guest_id: guest.guest_id, name: guest.name, phone: guest.phone };
  if (guest.rsvp_token) g.rsvp_token = guest.rsvp_token;
  meta.textContent = 'Rendering…';
  try {
    const { body } = await api.previewTemplate(templateId, { event_id: state.event.event_id, guest: g });
    if (seq !== previewSeq) return;
    if (body?.content_sid) {
      const vars = Object.entries(body.content_variables ?? {}).map(([k, v]) => `{{${k}}} = ${v}`).join('\n');
      out.textContent = `Content template ${body.content_sid}\n${vars}`;
    } else {
      out.textContent = body?.body ?? '';
    }
    const parts = [`What ${guest.name} would get with ${templateName(templateId)}`];
    if (body?.length != null) parts.push(`${body.length} of ${body.max_length} characters`);
    if (!guest.rsvp_token) parts.push('the RSVP token in the link is made up here; each guest gets a random one when sent');
    meta.textContent = `${parts.join('; ')}.`;
    if (body?.length != null && body.max_length && body.length > body.max_length) {
      meta.textContent += ' Too long for WhatsApp: shorten the template or the event details.';
    }
  } catch (e) {
    if (seq !== previewSeq) return;
    meta.textContent = 'No preview (see the error above).';
    showError('Could not preview the message', e);
  }
}

function initTemplates() {
  $('template-select').addEventListener('change', updatePreview);
  $('preview-guest').addEventListener('change', updatePreview);
}

// ---------------------------------------------------------------- invitations

let refreshing = null;
let refreshAgain = false;

/**
 * Reloads the current event's invitations. Coalesced: while one load runs,
 * further calls wait for it and one more load after it.
 */
async function refreshInvitations() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      const eventId = state.event?.event_id;
      if (!eventId) return;
      let items;
      try {
        items = await allInvitations(eventId);
      } catch (e) {
        showError('Could not load the invitations', e);
        throw e;
      }
      // Picked another event meanwhile: load that one's instead.
      if (state.event?.event_id === eventId) applyInvitations(items);
      else refreshAgain = true;
    } while (refreshAgain);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

function applyInvitations(items) {
  state.byInvitation = new Map(items.map((i) => [i.invitation_id, i]));
  const latest = new Map();
  for (const inv of items) {
    const prev = latest.get(inv.guest_id);
    const at = inv.timestamps?.queued ?? inv.updated_at;
    if (!prev || at > (prev.timestamps?.queued ?? prev.updated_at)) latest.set(inv.guest_id, inv);
  }
  state.invitations = latest;
  renderRows();
}

function setInvitation(inv) {
  state.byInvitation.set(inv.invitation_id, inv);
  const cur = state.invitations.get(inv.guest_id);
  if (!cur || cur.invitation_id === inv.invitation_id) state.invitations.set(inv.guest_id, inv);
}

// ---------------------------------------------------------------- progress

class JobWatch {
  constructor(jobId) {
    this.jobId = jobId;
    this.job = null;
    this.timer = null;
    this.delay = POLL_FAST_MS;
    this.lastCounts = '';
    this.stopped = false;
    this.running = false;
    this.doneAt = null;
    this.announce = false;
    this.restart = false;
  }

  /** (Re)starts polling at the fast pace. */
  start() {
    this.stopped = false;
    this.delay = POLL_FAST_MS;
    clearTimeout(this.timer);
    // A poll in flight may have read the job before the change that
    // restarts it (a retry): poll again right after it.
    if (this.running) this.restart = true;
    else this.tick();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async tick() {
    this.running = true;
    let next = null;
    try {
      const { body } = await api.jobStatus(this.jobId);
      if (this.stopped) return;
      const wasDone = this.job?.done;
      this.job = body;
      const counts = JSON.stringify(body.counts);
      const changed = counts !== this.lastCounts;
      this.lastCounts = counts;
      renderProgress();
      if (changed) {
        await refreshInvitations().catch(() => {});
        // The daily limit's use moves with the sends: show it now and then,
        // and as it stands once the send is done.
        loadSender({ maxAgeMs: body.done && !wasDone ? 0 : SENDER_MAX_AGE_MS });
      }
      if (body.done) {
        if (wasDone === false || this.announce) announceDone(body);
        this.announce = false;
        this.doneAt ??= Date.now();
        // Done: nothing is on its way any more. Read receipts may still
        // come for delivered ones; follow them slowly for a while, then stop.
        if (body.counts.delivered > 0 && Date.now() - this.doneAt < TAIL_MS) {
          this.delay = changed ? TAIL_FIRST_MS : Math.min(Math.max(this.delay * 2, TAIL_FIRST_MS), TAIL_MAX_MS);
          next = this.delay;
        }
        return;
      }
      this.doneAt = null;
      this.delay = changed ? POLL_FAST_MS : Math.min(Math.round(this.delay * 1.5), pollCap(body));
      next = this.delay;
    } catch (e) {
      if (this.stopped) return;
      showError(`Could not follow the send ${this.jobId}`, e);
      if (e instanceof ApiError && e.status === 404) return;
      this.delay = Math.min(Math.max(this.delay * 2, 2000), POLL_ERROR_MAX_MS);
      next = this.delay;
    } finally {
      this.running = false;
      if (this.restart) {
        this.restart = false;
        this.delay = POLL_FAST_MS;
        next = POLL_FAST_MS;
      }
      if (next !== null && !this.stopped) this.timer = setTimeout(() => this.tick(), next);
    }
  }
}

/**
 * How slowly a job still in flight may be polled: POLL_MAX_MS, or longer
 * while all it has in flight waits for the daily limit's window (until
 * just after the next place frees, at most WAIT_POLL_MAX_MS).
 */
function pollCap(job) {
  const c = job.counts ?? {};
  if (!(c.waiting > 0) || c.queued > 0 || c.sending > 0 || c.sent > 0) return POLL_MAX_MS;
  // No next_at: a place is free now, and the waiting ones are about to go.
  const untilNext = Date.parse(job.waiting?.next_at ?? '') - Date.now();
  if (Number.isNaN(untilNext)) return POLL_MAX_MS;
  return Math.max(POLL_MAX_MS, Math.min(untilNext + 1000, WAIT_POLL_MAX_MS));
}

/** Follows a job; `announce`: say so when it is done (a send or retry from this page). */
function watchJob(jobId, { announce = false } = {}) {
  let watch = state.jobs.get(jobId);
  if (!watch) {
    watch = new JobWatch(jobId);
    state.jobs.set(jobId, watch);
  }
  if (announce) watch.announce = true;
  watch.start();
}

function announceDone(job) {
  const parts = STATUSES.filter((s) => job.counts[s]).map((s) => `${job.counts[s]} ${STATUS_LABEL[s].toLowerCase()}`);
  announce(`Sending finished for ${plural(job.total, 'invitation')}: ${parts.join(', ')}.`);
}

/** Invitations no longer in flight (neither queued, waiting, sending nor sent). */
function finished(job) {
  return job.total - [...ACTIVE].reduce((n, s) => n + (job.counts[s] ?? 0), 0);
}

function timeHtml(iso) {
  return `<time datetime="${esc(iso)}" title="${esc(longTime(iso))}">${esc(clockTime(iso))}</time>`;
}

/** "Expected to finish by 21:40": when the job's last invitation should have left. */
function etaHtml(job) {
  if (job.done || !job.expected_finish) return '';
  return `<p class="eta" data-at="${esc(job.expected_finish)}">Expected to finish by ${timeHtml(job.expected_finish)}</p>`;
}

/** Why some of the job's invitations wait, and that nothing needs doing. */
function waitingHtml(job) {
  const w = job.waiting;
  if (!w || !(w.count > 0)) return '';
  const limit = dailyLimitWords(w.daily_unique_recipients, state.sender?.window_seconds);
  const one = w.count === 1;
  const next = w.next_at ? `; next at ${timeHtml(w.next_at)}` : '';
  return `<p class="waiting" data-count="${w.count}" data-reason="${esc(w.reason ?? '')}" title="${esc(w.words ?? '')}">`
    + `${num(w.count)} waiting for WhatsApp's daily limit${limit ? ` (${esc(limit)})` : ''} — `
    + `${one ? 'it goes out by itself' : 'they go out by themselves'}, oldest first${next}</p>`;
}

function renderProgress() {
  const jobs = [...state.jobs.values()].filter((w) => w.job)
    .sort((a, b) => (b.job.created_at ?? '').localeCompare(a.job.created_at ?? ''))
    .slice(0, 3);
  const area = $('progress');
  const html = jobs.map((w) => {
    const job = w.job;
    const done = finished(job);
    const pct = job.total ? Math.floor((done * 100) / job.total) : 100;
    const stateText = job.done ? 'Done:' : 'Sending:';
    const id = `job-${job.job_id}`;
    return `<div class="job" data-job-id="${esc(job.job_id)}" data-total="${job.total}" data-done="${job.done}" data-percent="${pct}">
      <p class="job-head" id="${esc(id)}-label"><strong>${stateText}</strong>
        ${num(done)} of ${num(job.total)} ${job.total === 1 ? 'invitation' : 'invitations'} finished (${pct}%)
        <span class="muted">· started ${esc(shortTime(job.created_at))}</span></p>
      <progress id="${esc(id)}-bar" max="${job.total}" value="${done}" aria-labelledby="${esc(id)}-label">${pct}%</progress>
      ${etaHtml(job)}${waitingHtml(job)}
      <ul class="counts" aria-label="Invitations by status">${STATUSES.filter((s) => job.counts[s] > 0)
        .map((s) => `<li data-status="${s}"><span class="badge st-${s}"${STATUS_TITLE[s] ? ` title="${esc(STATUS_TITLE[s])}"` : ''}>${STATUS_LABEL[s]}</span> <span class="n">${num(job.counts[s])}</span></li>`).join('')}</ul>
    </div>`;
  }).join('');
  if (html !== lastProgressHtml) {
    area.innerHTML = html;
    lastProgressHtml = html;
  }
}
let lastProgressHtml = '';

// ---------------------------------------------------------------- guest rows

/** Every guest to show: those brought in here, then any known only from invitations. */
function guestRows() {
  const rows = state.guests.map((g) => ({ ...g, inv: state.invitations.get(g.guest_id) ?? null }));
  const known = new Set(state.guests.map((g) => g.guest_id));
  const others = [...state.invitations.values()].filter((i) => !known.has(i.guest_id))
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const inv of others) rows.push({ guest_id: inv.guest_id, name: inv.name, phone: null, inv });
  for (const row of rows) {
    // The opt-out API knows the number's current state; without its answer,
    // an invitation skipped because the guest opted out marks them.
    const known = row.phone ? state.optOuts.get(row.phone) : undefined;
    row.optedOut = known ?? isOptedOutInvitation(row.inv);
    row.selectable = Boolean(row.phone) && !row.optedOut;
    if (!row.selectable) state.selected.delete(row.guest_id);
  }
  return rows;
}

const rowCache = new Map();

function rowSignature(row) {
  const i = row.inv;
  return JSON.stringify([row.name, row.phone, row.optedOut, row.selectable, state.selected.has(row.guest_id),
    i?.invitation_id, i?.status, i?.attempt, i?.updated_at, i?.error_code, i?.error_message, i?.what_to_do, i?.flag]);
}

function rowHtml(row) {
  const i = row.inv;
  const checked = state.selected.has(row.guest_id) ? 'checked' : '';
  const disabled = row.selectable ? '' : 'disabled';
  const why = row.optedOut ? ' (opted out, cannot be sent to)' : row.phone ? '' : ' (phone unknown: add the guest again in step 2)';
  const badge = i
    ? `<span class="badge st-${esc(i.status)}" data-status="${esc(i.status)}"${STATUS_TITLE[i.status] ? ` title="${esc(STATUS_TITLE[i.status])}"` : ''}>${STATUS_LABEL[i.status] ?? esc(i.status)}</span>${i.attempt > 1 ? ` <span class="muted">attempt ${i.attempt}</span>` : ''}`
    : '<span class="badge st-none" data-status="none">Not invited</span>';
  const tags = row.optedOut ? ' <span class="tag opted-out">Opted out</span>' : '';
  const details = [];
  const words = reason(i);
  if (words && (RETRYABLE.has(i.status) || i.status === 'skipped')) {
    details.push(`<span class="reason">${esc(words)}</span>`);
    const todo = whatToDo(i);
    if (todo) details.push(`<span class="todo muted" data-action="${esc(i.error_action ?? '')}">${esc(todo)}</span>`);
  }
  if (i?.flag) details.push(`<span class="reason">${esc(FLAG_WORDS[i.flag] ?? i.flag)}</span>`);
  const canRetry = i && (RETRYABLE.has(i.status) || (i.flag && i.status === 'sending'));
  const retry = canRetry
    ? `<button type="button" class="secondary small retry" data-invitation="${esc(i.invitation_id)}" aria-label="Retry invitation to ${esc(row.name)}">Retry</button>`
    : '';
  return `<td class="c-select"><input type="checkbox" class="pick" ${checked} ${disabled} aria-label="Select ${esc(row.name)}${esc(why)}"></td>
    <td class="c-guest"><span class="name">${esc(row.name)}</span>${tags}<br><span class="phone muted">${esc(row.phone ?? 'phone unknown')}</span></td>
    <td class="c-status">${badge}</td>
    <td class="c-time">${i ? `<time datetime="${esc(i.updated_at)}" title="${esc(longTime(i.updated_at))}">${esc(shortTime(i.updated_at))}</time>` : ''}</td>
    <td class="c-details">${details.join('<br>')}</td>
    <td class="c-actions">${retry}</td>`;
}

function renderRows() {
  const rows = guestRows();
  const tbody = $('guest-rows');
  const seen = new Set();
  let prev = null;
  for (const row of rows) {
    seen.add(row.guest_id);
    let cached = rowCache.get(row.guest_id);
    const sig = rowSignature(row);
    if (!cached) {
      const tr = document.createElement('tr');
      tr.dataset.guestId = row.guest_id;
      cached = { tr, sig: null };
      rowCache.set(row.guest_id, cached);
    }
    if (cached.sig !== sig) {
      const focused = cached.tr.contains(document.activeElement) ? document.activeElement.className : null;
      cached.tr.innerHTML = rowHtml(row);
      cached.tr.dataset.status = row.inv?.status ?? 'none';
      cached.tr.classList.toggle('opted-out', Boolean(row.optedOut));
      cached.sig = sig;
      // Keep keyboard focus on the same control when a row is redrawn.
      if (focused) (cached.tr.querySelector(`.${focused.split(' ').pop()}`) ?? cached.tr.querySelector('.pick'))?.focus();
    }
    const expected = prev ? prev.nextSibling : tbody.firstChild;
    if (expected !== cached.tr) tbody.insertBefore(cached.tr, expected);
    prev = cached.tr;
  }
  for (const [id, cached] of rowCache) {
    if (!seen.has(id)) {
      cached.tr.remove();
      rowCache.delete(id);
    }
  }
  $('no-guests').hidden = rows.length > 0;
  renderCounts(rows);
}

function renderCounts(rows = guestRows()) {
  const selected = rows.filter((r) => state.selected.has(r.guest_id)).length;
  const optedOut = rows.filter((r) => r.optedOut).length;
  const failed = rows.filter((r) => r.inv && RETRYABLE.has(r.inv.status)).length;
  $('guest-count').textContent = rows.length
    ? `${plural(rows.length, 'guest')} · ${selected} selected${optedOut ? ` · ${optedOut} opted out` : ''}${failed ? ` · ${failed} failed` : ''}`
      + (optOutLoads > 0 ? ' · checking opt-outs…' : '')
    : '';
  const send = $('send');
  // Until the opt-out lookup answers, an opted-out guest may still look selectable.
  send.disabled = !state.event || selected === 0 || state.sending || optOutLoads > 0;
  send.textContent = selected ? `Send WhatsApp invitations (${selected})` : 'Send WhatsApp invitations';
  $('retry-all').disabled = !state.event || failed === 0;
  for (const id of ['select-all', 'select-none', 'select-new', 'select-failed', 'refresh']) $(id).disabled = !state.event;
}

function renderAll() {
  renderRows();
  renderProgress();
}

function select(predicate, label) {
  const rows = guestRows();
  state.selected.clear();
  for (const r of rows) if (r.selectable && predicate(r)) state.selected.add(r.guest_id);
  renderRows();
  announce(`${label}: ${plural(state.selected.size, 'guest')} selected.`);
}

function initRows() {
  $('guest-rows').addEventListener('change', (e) => {
    if (!e.target.classList.contains('pick')) return;
    const id = e.target.closest('tr').dataset.guestId;
    if (e.target.checked) state.selected.add(id);
    else state.selected.delete(id);
    renderRows();
  });
  $('guest-rows').addEventListener('click', (e) => {
    const button = e.target.closest('button.retry');
    if (button) retryOne(button.dataset.invitation, button);
  });
  $('select-all').addEventListener('click', () => select(() => true, 'All'));
  $('select-none').addEventListener('click', () => select(() => false, 'None'));
  $('select-new').addEventListener('click', () => select((r) => !r.inv, 'Not yet invited'));
  $('select-failed').addEventListener('click', () => select((r) => r.inv && RETRYABLE.has(r.inv.status), 'Failed'));
  $('refresh').addEventListener('click', async () => {
    await Promise.all([refreshInvitations().catch(() => {}), loadOptOuts(), loadSender()]);
    renderRows();
    followEventJobs();
    announce('Refreshed.');
  });
  $('retry-all').addEventListener('click', retryAllFailed);
}

// ---------------------------------------------------------------- sending

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** Where the key of a send not yet answered is kept (this tab, across reloads). */
const PENDING_SEND = 'rsvp.pendingSend';

/**
 * The Idempotency-Key for sending these guests: the same one until the API
 * has answered every part of the send. A click again after a network
 * failure, a timeout or a reload is the same request, so the API finishes
 * the first one instead of messaging everyone a second time.
 */
function sendKey(eventId, templateId, guests) {
  const signature = JSON.stringify([eventId, templateId ?? '', guests.map((g) => g.guest_id).sort()]);
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(PENDING_SEND) ?? 'null');
  } catch {
    saved = null;
  }
  if (saved?.signature === signature) return saved.key;
  const key = newKey();
  sessionStorage.setItem(PENDING_SEND, JSON.stringify({ signature, key }));
  return key;
}

function selectedGuests() {
  return guestRows().filter((r) => r.selectable && state.selected.has(r.guest_id));
}

/** The send the page would make now: {event, guests, templateId}. */
function currentSend() {
  return { event: state.event, guests: selectedGuests(), templateId: $('template-select').value || undefined };
}

/**
 * A send's requests, as the API takes them: parts of at most MAX_BULK
 * guests, [{chunk, body}]. The dry run and the send use the same ones.
 */
function bulkParts({ event, guests, templateId }) {
  const parts = [];
  for (let start = 0; start < guests.length; start += MAX_BULK) {
    const chunk = guests.slice(start, start + MAX_BULK);
    const body = {
      event_id: event.event_id,
      guests: chunk.map((g) => {
        const out = { guest_id: g.guest_id, name: g.name, phone: g.phone };
        if (g.rsvp_token) out.rsvp_token = g.rsvp_token;
        return out;
      }),
    };
    if (templateId) body.template_id = templateId;
    parts.push({ chunk, body });
  }
  return parts;
}

/** Whether the send would use a Content template approved as Marketing. */
function marketingTemplate() {
  const id = $('template-select').value || state.event?.default_template_id || 'default';
  return state.templates?.find((x) => x.template_id === id)?.category === 'marketing';
}

/** The send the confirmation is open for (checked by a dry run), or null. */
let pendingSend = null;
let dryRunAbort = null;

function askToSend() {
  const send = currentSend();
  const { guests, event } = send;
  if (!guests.length || !event) return;
  const again = guests.filter((g) => g.inv).length;
  const template = $('template-select').selectedOptions[0]?.textContent ?? 'Event default';
  $('confirm-title').textContent = `Send ${plural(guests.length, 'WhatsApp invitation')}?`;
  $('confirm-text').textContent = `${plural(guests.length, 'guest')} of ${event.name} will get a WhatsApp message now (template: ${template}).`;
  send.notes = [];
  if (again) send.notes.push(`${again} of them ${again === 1 ? 'was' : 'were'} invited before and will get another message.`);
  // The page's own guess, until the dry run answers with the API's count.
  const us = marketingTemplate() ? guests.filter((g) => g.phone?.startsWith('+1')).length : 0;
  send.usNote = us
    ? `${plural(us, 'guest')} with a US (+1) number will be skipped: WhatsApp does not deliver Marketing templates to US numbers.`
    : '';
  pendingSend = send;
  const dialog = $('confirm');
  dialog.returnValue = '';
  checkSend(send);
  dialog.showModal();
}

/**
 * Asks the API what this send would do (a dry run with exactly its guests
 * and template), and shows it. Send stays disabled until the answer; if the
 * check fails, that is shown and sending is still allowed: it is advice.
 */
async function checkSend(send) {
  dryRunAbort?.abort();
  const abort = new AbortController();
  dryRunAbort = abort;
  renderCheck(send, { state: 'checking' });
  try {
    const parts = [];
    for (const { chunk, body } of bulkParts(send)) {
      const { body: res } = await api.dryRun(body, abort.signal);
      parts.push({ chunk, res: res ?? {} });
    }
    if (pendingSend !== send || abort.signal.aborted) return;
    renderCheck(send, { state: 'ready', result: mergeDryRuns(parts) });
  } catch (e) {
    if (e?.name === 'AbortError' || pendingSend !== send) return;
    console.warn('The dry run of the send failed', e);
    renderCheck(send, { state: 'failed', error: e });
  } finally {
    if (dryRunAbort === abort) dryRunAbort = null;
  }
}

/**
 * One answer for a send of several parts (over MAX_BULK guests), each
 * entry with its guest. Every part is checked against the daily limit's
 * places free now, so those free are the fewest any waiting part saw.
 */
function mergeDryRuns(parts) {
  const first = parts[0]?.res ?? {};
  const out = {
    accepted: 0, queued: 0, skipped: [], rejected: [], duplicates: [], would_wait: 0,
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
function renderCheck(send, view) {
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
    button.textContent = `Send ${n}`;
  } else {
    status.textContent = `Could not check this send: ${errorDetail(view.error)}`;
    result.innerHTML = '<p class="dry-advice">The check is only advice, not a condition: you can still send without it. '
      + 'Who was sent to and who was skipped will show below once you do.</p>';
    button.disabled = false;
    button.textContent = `Send ${n} anyway`;
  }
  // The page's guess about US numbers gives way to the API's count.
  const notes = view.state === 'ready' ? send.notes : [...send.notes, send.usNote];
  $('confirm-extra').textContent = notes.filter(Boolean).join(' ');
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
      const words = SKIP_WORDS[g.code]?.(n) ?? `${plural(n, 'guest')}: ${g.message || g.code}`;
      return `<li data-code="${esc(g.code)}" data-count="${n}">${esc(words)}${whoHtml(g.guests)}</li>`;
    }).join('')}</ul>`
    : '';
  const rejected = r.rejected.length
    ? `<ul class="dry-rejections" aria-label="Rejected by the API">${r.rejected.slice(0, 5).map((x) => `<li data-index="${x.index}">`
      + `${esc(x.guest?.name ?? x.guest_id ?? '?')} (${esc(x.guest?.phone ?? '?')}): ${esc(x.field)}: ${esc(x.message)}</li>`).join('')}`
      + `${r.rejected.length > 5 ? `<li>and ${num(r.rejected.length - 5)} more</li>` : ''}</ul>`
    : '';
  return counts + reasons + rejected + waitHtml(r) + costHtml(r);
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

async function sendSelected(send = currentSend()) {
  const { guests, event, templateId } = send;
  if (!guests.length || !event || state.sending) return;
  state.sending = true;
  renderCounts();
  const key = sendKey(event.event_id, templateId, guests);
  let queued = 0;
  const skipped = [];
  try {
    for (const [part, { chunk, body }] of bulkParts(send).entries()) {
      const { body: res } = await api.sendBulk(body, `${key}-${part}`);
      queued += res.queued ?? res.accepted;
      for (const skip of res.skipped ?? []) {
        const guest = chunk[skip.index];
        skipped.push(`${guest?.name ?? skip.guest_id} (${skip.message})`);
        if (guest && OPTED_OUT_CODES.has(skip.code)) state.optOuts.set(guest.phone, true);
      }
      showRejections(res, chunk);
      for (const g of chunk) state.selected.delete(g.guest_id);
      watchJob(res.job_id, { announce: true });
    }
    sessionStorage.removeItem(PENDING_SEND);
    announce(`Queued ${plural(queued, 'invitation')} for ${event.name}.`
      + (skipped.length ? ` Not sent to ${skipped.length}: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? '…' : ''}.` : ''));
  } catch (e) {
    showError('Could not send the invitations', e);
  } finally {
    state.sending = false;
    await refreshInvitations().catch(() => {});
    renderRows();
    $('guests-heading').focus();
  }
}

function showRejections(res, chunk) {
  const left = [...(res.rejected ?? []).map((r) => ({ guest: chunk[r.index], text: `${r.field}: ${r.message}` })),
    ...(res.duplicates ?? []).map((d) => ({ guest: chunk[d.index], text: `the same guest as ${chunk[d.duplicate_of]?.name ?? `entry ${d.duplicate_of}`}: sent once` }))];
  if (!left.length) return;
  showError(`The API left out ${plural(left.length, 'guest')}`,
    new Error(left.map((l) => `${l.guest?.name ?? '?'} (${l.guest?.phone ?? '?'}): ${l.text}`).join('; ')));
}

async function retryOne(invitationId, button) {
  const inv = state.byInvitation.get(invitationId);
  button.disabled = true;
  try {
    const { body } = await api.retry(invitationId);
    if (inv) setInvitation({ ...inv, status: body.status, attempt: body.attempt, error_code: null, error_message: null, error_action: null, what_to_do: null, flag: null, updated_at: new Date().toISOString() });
    announce(`Retrying the invitation to ${inv?.name ?? invitationId} (attempt ${body.attempt}).`);
    renderRows();
    if (inv) watchJob(inv.job_id, { announce: true });
  } catch (e) {
    showError(`Could not retry the invitation to ${inv?.name ?? invitationId}`, e);
    button.disabled = false;
    refreshInvitations().catch(() => {});
  }
}

async function retryAllFailed() {
  if (!state.event) return;
  const button = $('retry-all');
  button.disabled = true;
  try {
    const { body } = await api.retryFailed({ event_id: state.event.event_id });
    announce(body.retried ? `Retrying ${plural(body.retried, 'failed invitation')}.` : 'Nothing to retry: no invitation has failed.');
    const jobs = new Set();
    for (const id of body.invitation_ids ?? []) {
      const inv = state.byInvitation.get(id);
      if (inv) {
        jobs.add(inv.job_id);
        setInvitation({ ...inv, status: 'queued', attempt: inv.attempt + 1, error_code: null, error_message: null, error_action: null, what_to_do: null, flag: null });
      }
    }
    renderRows();
    await refreshInvitations().catch(() => {});
    for (const id of body.invitation_ids ?? []) {
      const inv = state.byInvitation.get(id);
      if (inv) jobs.add(inv.job_id);
    }
    for (const job of jobs) watchJob(job, { announce: true });
  } catch (e) {
    showError('Could not retry the failed invitations', e);
  } finally {
    renderCounts();
  }
}

function initSending() {
  $('send').addEventListener('click', askToSend);
  $('confirm').addEventListener('close', () => {
    // The guests and template checked are the ones sent.
    const send = pendingSend;
    pendingSend = null;
    dryRunAbort?.abort();
    dryRunAbort = null;
    $('dry-run').dataset.state = 'idle';
    if ($('confirm').returnValue === 'send' && send) sendSelected(send);
    else $('send').focus();
  });
}

// ---------------------------------------------------------------- start

window.addEventListener('unhandledrejection', (e) => showError('Unexpected problem', e.reason));
window.addEventListener('error', (e) => showError('Unexpected problem', e.error ?? e.message));

initConnection();
initEvents();
initImport();
initTemplates();
initRows();
initSending();
renderAll();
await Promise.all([loadTemplates(), loadEvents(), loadSender()]);
// Expose a little for debugging in the console.
window.rsvp = { state, sleep };
