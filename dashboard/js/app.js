// The organizer's page: pick or create an event, bring in guests, preview the
// message, send, and follow each invitation until it is read or fails.

import { api, apiBase, token, setToken, ApiError, sleep, GUEST_PAGE_MAX, GUEST_IMPORT_MAX } from './api.js';
import { readGuests, guestProblems, normalizePhone } from './guests.js';
import {
  STATUSES, STATUS_LABEL, STATUS_TITLE, ACTIVE, RETRYABLE, ALREADY_INVITED, FLAG_WORDS, reason, whatToDo,
  shortTime, longTime, clockTime, eventDate, escapeHtml as esc, plural, num, dailyLimitWords,
  money, SKIP_WORDS, categoryWords, durationWords, ANSWERS, ANSWER_LABEL, ANSWER_FILTER_LABEL, VIA_LABEL, REACHED,
} from './format.js';

const $ = (id) => document.getElementById(id);

/** Bulk requests are capped at this many guests by the API. */
const MAX_BULK = 10000;
/**
 * Polling a job: every second while it changes, slower while it does not,
 * slowest on errors. (Every 0.4 s cost 0.1 MB a minute on top of the guest
 * list's changes, about 2 MB in a 2,000-guest send's first minute.)
 */
const POLL_FAST_MS = 1000;
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
/** The guest list's changes are read this often while a send moves, and otherwise. */
const FOLLOW_BUSY_MS = 2000;
const FOLLOW_IDLE_MS = 15000;
const FOLLOW_ERROR_MAX_MS = 60000;
/** After a job's counts change (read receipts come after it is done), changes are read at the busy pace this long. */
const FOLLOW_AFTER_CHANGE_MS = 10000;
/** Guests on one page of the table. */
const PAGE_SIZE = 100;
/** A send's rate is measured over its status answers of this long. */
const RATE_WINDOW_MS = 10000;

const state = {
  events: [],
  event: null,
  /** Counts the events picked: a read for an earlier pick is dropped. */
  epoch: 0,
  /** guest_id -> the guest's row as the API lists it, with its latest invitation. */
  guests: new Map(),
  /** Whether the whole list has been read: nothing that sends works before. */
  loaded: false,
  /** The listing's changes cursor: the next read asks only for what changed since. */
  cursor: null,
  /** A full read is wanted (Refresh, or a cursor the API no longer takes). */
  reloadWanted: false,
  /** Guest ids in the table's order (by name); null once a guest comes, goes or is renamed. */
  order: null,
  /** The rows on the table's page now. */
  pageRows: [],
  view: { filter: '', q: '', page: 0 },
  selected: new Set(),
  /** job_id -> JobWatch. */
  jobs: new Map(),
  /** When a followed job's counts last changed. */
  jobChangedAt: 0,
  templates: null,
  sending: false,
  importing: false,
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

/** Where this page kept an event's guests before the API kept guest lists. */
const legacyKey = (eventId) => `rsvp:guests:${eventId}`;
/** The last send this browser made for an event: a reload shows its progress at once. */
const lastJobKey = (eventId) => `rsvp:lastJob:${eventId}`;

function legacyGuests(eventId) {
  try {
    const list = JSON.parse(localStorage.getItem(legacyKey(eventId)) ?? '[]');
    return Array.isArray(list) ? list.filter((g) => g && typeof g === 'object') : [];
  } catch {
    return [];
  }
}

function storedJob(eventId) {
  try {
    return localStorage.getItem(lastJobKey(eventId));
  } catch {
    return null;
  }
}

function storeJob(eventId, jobId) {
  try {
    if (jobId) localStorage.setItem(lastJobKey(eventId), jobId);
    else localStorage.removeItem(lastJobKey(eventId));
  } catch {
    // Private mode or full: a reload then finds the send from its guests' rows.
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
  if (found && found.event_id === state.event?.event_id) {
    // The same event (saved, or read again): its guests stay as they are.
    Object.assign(state.event, found);
    renderEventSummary();
    renderTemplateChoices();
    updatePreview();
    return;
  }
  await selectEvent(found ?? null);
}

function eventFromUrl() {
  const m = /(?:^|[#&])event=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

async function selectEvent(event) {
  for (const watch of state.jobs.values()) watch.stop();
  state.jobs.clear();
  clearTimeout(followTimer);
  // Reads still on their way for the event before are dropped.
  state.epoch++;
  state.event = event;
  state.guests = new Map();
  state.order = null;
  state.loaded = false;
  state.cursor = null;
  state.reloadWanted = false;
  state.selected.clear();
  state.view = { filter: '', q: '', page: 0 };
  latestFollowed = false;
  $('status-filter').value = '';
  $('guest-search').value = '';
  $('progress').innerHTML = '';
  lastProgressHtml = '';
  $('import-result').innerHTML = '';
  $('legacy').hidden = true;
  $('send-report').hidden = true;
  $('event-edit').disabled = !event;
  if (event) {
    localStorage.setItem('rsvp:event', event.event_id);
    history.replaceState(null, '', `#event=${encodeURIComponent(event.event_id)}`);
  }
  renderEventSummary();
  renderAll();
  renderTemplateChoices();
  updatePreview();
  if (!event) return;
  // The send this browser made last shows its progress while the list loads.
  const last = storedJob(event.event_id);
  if (last) watchJob(last, { stored: true });
  await pollNow();
}

function renderEventSummary() {
  const event = state.event;
  $('event-summary').textContent = event
    ? `${event.name}: ${eventDate(event.starts_at)} at ${event.venue}, hosted by ${event.host}. ${event.rsvp_base_url ? `RSVP links start with ${event.rsvp_base_url}` : 'RSVP links open this stack\'s RSVP page'}.`
    : 'Pick an event, or create one, to add guests and send invitations.';
}

const EVENT_FIELDS = {
  name: 'ev-name', event_id: 'ev-id', starts_at: 'ev-starts', venue: 'ev-venue', host: 'ev-host', rsvp_base_url: 'ev-rsvp',
  eventId: 'ev-id', default_template_id: 'ev-template',
  'confirmations.yes': 'ev-conf-yes', 'confirmations.no': 'ev-conf-no', 'confirmations.maybe': 'ev-conf-maybe',
  rsvp_deadline: 'ev-deadline', reminders: 'ev-rem-days-1',
  'reminders[0].days_before': 'ev-rem-days-1', 'reminders[0].at': 'ev-rem-days-1',
  'reminders[1].days_before': 'ev-rem-days-2', 'reminders[1].at': 'ev-rem-days-2',
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
  const deadline = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})/.exec(event?.rsvp_deadline ?? '');
  $('ev-deadline').value = deadline ? deadline[1] : '';
  for (const n of [1, 2]) {
    const r = event?.reminders?.[n - 1];
    $(`ev-rem-days-${n}`).value = r ? String(r.days_before) : '';
    $(`ev-rem-at-${n}`).value = r ? r.at : '';
  }
  // Only texts changed from the defaults show (a default reads as the placeholder).
  for (const a of ['yes', 'no', 'maybe']) {
    const text = event?.confirmations?.[a] ?? '';
    $(`ev-conf-${a}`).value = text === $(`ev-conf-${a}`).placeholder ? '' : text;
  }
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
  if (ev.rsvp_base_url && !/^https?:\/\/\S+$/.test(ev.rsvp_base_url)) problems.push(['rsvp_base_url', 'The RSVP base URL must be an http(s) URL such as https://rsvp.example.com/r/']);
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
    rsvp_base_url: $('ev-rsvp').value.trim() || null,
    confirmations: Object.fromEntries(['yes', 'no', 'maybe']
      .map((a) => [a, $(`ev-conf-${a}`).value.trim()]).filter(([, text]) => text)),
    // In the start's offset, as the organizer means it.
    rsvp_deadline: $('ev-deadline').value ? `${$('ev-deadline').value}:00${startsAtValue().slice(-6)}` : null,
    reminders: [1, 2]
      .filter((n) => $(`ev-rem-days-${n}`).value !== '' || $(`ev-rem-at-${n}`).value !== '')
      .map((n) => ({ days_before: Number($(`ev-rem-days-${n}`).value || 0), at: $(`ev-rem-at-${n}`).value })),
  };
  // A PUT replaces the whole event: what the form does not show is kept as it was.
  const before = $('ev-id').readOnly && state.event?.event_id === id ? state.event : null;
  if (before) {
    ev.reminders.push(...(before.reminders ?? []).slice(2));
    ev.reminder_template_id = before.reminder_template_id ?? null;
  }
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
  $('legacy').addEventListener('click', (e) => {
    if (e.target.closest('#legacy-save')) saveLegacyGuests();
  });
}

/**
 * Checks the CSV at once (the problems show before anything is saved), then
 * saves the good rows to the event's list on the server and reads back what
 * changed. `existing` is the server's list, so a phone another guest has is
 * caught here too.
 */
async function importText(text, source) {
  if (!state.event) {
    showError('Guests not added', new Error('pick or create an event first'));
    return;
  }
  if (!state.loaded || state.importing) return;
  const event = state.event;
  const { guests, problems } = readGuests(text, [...state.guests.values()]);
  showImport(source, problems, null, guests.length);
  if (!guests.length) {
    showImport(source, problems, emptyResult());
    return;
  }
  state.importing = true;
  renderControls();
  try {
    const result = await saveToServer(event, guests);
    if (result.error) showError('Could not save the guests', result.error);
    // The saved guests' rows first, so the summary never runs ahead of the table.
    await pollNow();
    if (state.event !== event) return;
    showImport(source, problems, result);
  } finally {
    state.importing = false;
    renderControls();
  }
}

function emptyResult() {
  return { created: 0, updated: 0, unchanged: 0, rejected: [], notSaved: 0, error: null };
}

/**
 * Saves guests ({guest_id, name, phone, rsvp_token?, line}) in requests of
 * at most GUEST_IMPORT_MAX; each rejection keeps its guest (and line). Stops
 * at the first request that fails, counting the guests not saved.
 */
async function saveToServer(event, guests) {
  const out = emptyResult();
  for (let start = 0; start < guests.length; start += GUEST_IMPORT_MAX) {
    const chunk = guests.slice(start, start + GUEST_IMPORT_MAX);
    try {
      const { body } = await api.importGuests(event.event_id, chunk.map(({ line, ...g }) => g));
      out.created += body?.created ?? 0;
      out.updated += body?.updated ?? 0;
      out.unchanged += body?.unchanged ?? 0;
      for (const r of body?.rejected ?? []) out.rejected.push({ ...r, guest: chunk[r.index] ?? null });
    } catch (e) {
      out.error = e;
      out.notSaved = guests.length - start;
      break;
    }
  }
  return out;
}

/** The import's outcome: saving (`result` null), or what was added, and every row not added. */
function showImport(source, problems, result, saving = 0) {
  const box = $('import-result');
  if (!result) {
    box.innerHTML = `<p class="muted" id="import-summary">From ${esc(source)}: saving ${esc(plural(saving, 'guest'))}…</p>`
      + (problems.length ? problemsTable(problems) : '');
    return;
  }
  const notAdded = problems.length + result.rejected.length;
  let summary = `From ${source}: ${plural(result.created, 'guest')} added`;
  if (result.updated) summary += `, ${num(result.updated)} updated`;
  if (result.unchanged) summary += `, ${num(result.unchanged)} unchanged`;
  if (result.notSaved) summary += `; ${plural(result.notSaved, 'guest')} not saved (see the error above: add them again)`;
  summary += notAdded ? `; ${plural(notAdded, 'row')} not added (see below).` : '.';
  box.innerHTML = `<p class="${notAdded || result.notSaved ? 'warn' : 'ok'}" id="import-summary">${esc(summary)}</p>`
    + (problems.length ? problemsTable(problems) : '')
    + (result.rejected.length ? rejectedTable(result.rejected) : '');
  announce(summary);
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

/** Rows the API would not save (it checks what this page cannot, e.g. a phone used by another guest). */
function rejectedTable(rejected) {
  return `<div class="problems" id="import-rejected">
    <h3 id="rejected-heading">${plural(rejected.length, 'row')} not saved by the API</h3>
    <table aria-labelledby="rejected-heading">
      <thead><tr><th scope="col">Line</th><th scope="col">Guest</th><th scope="col">Problem</th></tr></thead>
      <tbody>${rejected.map((r) => {
        const line = r.line ?? r.guest?.line ?? '';
        const who = r.guest ? `${r.guest.name} (${r.guest.phone})` : (r.guest_id ?? '');
        return `<tr class="rejected-row" data-line="${esc(line)}">
        <td data-label="Line">${esc(line)}</td>
        <td data-label="Guest">${esc(who)}</td>
        <td data-label="Problem">${esc(r.field ? `${r.field}: ` : '')}${esc(r.message)}</td></tr>`;
      }).join('')}</tbody>
    </table></div>`;
}

/**
 * Guests an older version of this page kept in this browser: offered to the
 * server when its list for the event is empty, then forgotten here.
 */
function offerLegacyGuests() {
  const box = $('legacy');
  const list = state.event && state.guests.size === 0 ? legacyGuests(state.event.event_id) : [];
  box.hidden = list.length === 0;
  if (!list.length) {
    box.innerHTML = '';
    return;
  }
  box.innerHTML = `<p id="legacy-text">This browser still holds ${esc(plural(list.length, 'guest'))} for this event,
    kept here before guest lists were kept on the server.</p>
    <button type="button" id="legacy-save">Save ${esc(plural(list.length, 'guest'))} to the server</button>`;
}

async function saveLegacyGuests() {
  const event = state.event;
  if (!event || !state.loaded || state.importing) return;
  const guests = [];
  const problems = [];
  legacyGuests(event.event_id).forEach((g, i) => {
    const guest = { guest_id: String(g.guest_id ?? ''), name: String(g.name ?? '').trim(), phone: normalizePhone(g.phone) };
    if (g.rsvp_token) guest.rsvp_token = String(g.rsvp_token);
    const wrong = guestProblems(guest);
    if (wrong.length || !guest.guest_id) {
      problems.push({ line: i + 1, text: [guest.name, guest.phone, guest.guest_id].join(', '), messages: wrong.length ? wrong.map((p) => p.message) : ['no id'] });
    } else {
      guests.push({ ...guest, line: i + 1 });
    }
  });
  const source = 'this browser';
  state.importing = true;
  renderControls();
  showImport(source, problems, null, guests.length);
  try {
    const result = guests.length ? await saveToServer(event, guests) : emptyResult();
    if (result.error) {
      showError('Could not save the guests', result.error);
    } else {
      // On the server now (or reported above): this browser no longer keeps them.
      localStorage.removeItem(legacyKey(event.event_id));
      $('legacy').hidden = true;
    }
    await pollNow();
    if (state.event !== event) return;
    showImport(source, problems, result);
  } finally {
    state.importing = false;
    renderControls();
  }
}

// ---------------------------------------------------------------- one guest

/** The guest the dialog is open for: {guestId, mode: 'edit' | 'remove'}. */
let editing = null;

function openGuestDialog(guestId, mode) {
  const row = state.guests.get(guestId);
  if (!row || !state.loaded) return;
  editing = { guestId, mode };
  clearFieldErrors($('guest-form'));
  const edit = mode === 'edit';
  $('guest-dialog-title').textContent = edit ? `Edit ${row.name}` : `Remove ${row.name}?`;
  $('gd-fields').hidden = !edit;
  $('gd-text').textContent = edit ? ''
    : `${row.name} (${row.phone}) leaves this event's guest list. Invitations already sent to them are kept.`;
  $('gd-name').value = row.name;
  $('gd-phone').value = row.phone;
  $('gd-save').textContent = edit ? 'Save guest' : 'Remove guest';
  $('gd-save').classList.toggle('danger', !edit);
  $('guest-dialog').showModal();
  (edit ? $('gd-name') : $('gd-cancel')).focus();
}

function closeGuestDialog() {
  if ($('guest-dialog').open) $('guest-dialog').close();
}

/** Focus goes back to the row's button that opened the dialog (redrawn meanwhile), or to the list when the row is gone. */
function afterGuestDialog() {
  const ed = editing;
  editing = null;
  if (!ed) return;
  const button = document.querySelector(`#guest-rows tr[data-guest-id="${CSS.escape(ed.guestId)}"] button.${ed.mode}`);
  if (button && !button.disabled) button.focus();
  else $('guests-heading').focus();
}

async function submitGuestDialog(e) {
  e.preventDefault();
  const ed = editing;
  const event = state.event;
  if (!ed || !event) return;
  const button = $('gd-save');
  button.disabled = true;
  try {
    const done = ed.mode === 'edit' ? await saveGuest(event, ed.guestId) : await removeGuest(event, ed.guestId);
    if (done) closeGuestDialog();
  } finally {
    button.disabled = false;
  }
}

const GUEST_FIELDS = { name: 'gd-name', phone: 'gd-phone' };

/** Saves the dialog's name and phone; false (with the problem on its field) when not saved. */
async function saveGuest(event, guestId) {
  const form = $('guest-form');
  clearFieldErrors(form);
  const row = state.guests.get(guestId);
  const guest = { name: $('gd-name').value.trim(), phone: normalizePhone($('gd-phone').value) };
  if (row?.rsvp_token) guest.rsvp_token = row.rsvp_token;
  const problems = guestProblems(guest).filter((p) => GUEST_FIELDS[p.field]);
  const owner = [...state.guests.values()].find((g) => g.phone === guest.phone && g.guest_id !== guestId);
  if (owner) problems.push({ field: 'phone', message: `${guest.phone} is ${owner.name}'s phone in this list` });
  if (problems.length) {
    for (const p of problems) fieldError(GUEST_FIELDS[p.field], p.message);
    $(GUEST_FIELDS[problems[0].field]).focus();
    return false;
  }
  try {
    const { body } = await api.putGuest(event.event_id, guestId, guest);
    if (state.event !== event) return true;
    if (body?.guest_id) applyRows([body], [], { force: true });
    renderRows();
    announce(`Saved ${guest.name}.`);
    return true;
  } catch (err) {
    const field = err instanceof ApiError && /phone/.test(err.field ?? '') ? 'phone' : /name/.test(err?.field ?? '') ? 'name' : null;
    if (field) {
      fieldError(GUEST_FIELDS[field], err.message);
      $(GUEST_FIELDS[field]).focus();
    }
    showError(`Could not save ${guest.name || 'the guest'}`, err);
    return false;
  }
}

async function removeGuest(event, guestId) {
  const row = state.guests.get(guestId);
  const name = row?.name ?? guestId;
  try {
    await api.deleteGuest(event.event_id, guestId);
  } catch (err) {
    // Already gone (removed elsewhere, or an earlier try whose answer was lost).
    if (!(err instanceof ApiError && err.status === 404)) {
      showError(`Could not remove ${name}`, err);
      return false;
    }
  }
  if (state.event !== event) return true;
  applyRows([], [guestId]);
  renderRows();
  announce(`Removed ${name} from the guest list.`);
  return true;
}

function initGuestDialog() {
  $('guest-form').addEventListener('submit', submitGuestDialog);
  $('gd-cancel').addEventListener('click', closeGuestDialog);
  $('guest-dialog').addEventListener('close', afterGuestDialog);
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

/** What the preview shows now: [guest_id, name, phone, rsvp_token], so a change to the guest renders it again. */
let previewShown = '';
let previewOptions = '';

/**
 * The preview's guest choices: the table's page (the list may hold
 * thousands), and the guest chosen even when on another page. The first
 * selected guest, else the first shown, when none is chosen.
 * Says whether the guest to preview changed.
 */
function renderPreviewGuests() {
  const guestSel = $('preview-guest');
  const chosen = state.guests.get(guestSel.value);
  const page = state.pageRows.filter((r) => state.guests.get(r.guest_id) === r);
  const rows = chosen && !page.includes(chosen) ? [chosen, ...page] : page;
  const key = JSON.stringify(rows.map((g) => [g.guest_id, g.name, g.phone]));
  if (key !== previewOptions) {
    previewOptions = key;
    guestSel.innerHTML = rows.length
      ? rows.map((g) => `<option value="${esc(g.guest_id)}">${esc(g.name)} (${esc(g.phone)})</option>`).join('')
      : `<option value="">${state.event && !state.loaded ? 'Loading guests…' : 'No guests yet'}</option>`;
  }
  const guest = chosen ?? rows.find((g) => state.selected.has(g.guest_id)) ?? rows[0];
  guestSel.value = guest?.guest_id ?? '';
  return previewKey(guest) !== previewShown;
}

function previewKey(guest) {
  return guest ? JSON.stringify([guest.guest_id, guest.name, guest.phone, guest.rsvp_token ?? '']) : '';
}

async function updatePreview() {
  const out = $('preview');
  const meta = $('preview-meta');
  renderPreviewGuests();
  describeTemplate();
  const guest = state.guests.get($('preview-guest').value);
  previewShown = previewKey(guest);
  const seq = ++previewSeq;
  out.textContent = '';
  if (!state.event || !guest) {
    meta.textContent = !state.event ? '' : state.loaded ? 'Add guests to see the message one of them would get.' : 'Loading guests…';
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


// ---------------------------------------------------------------- the guest list

let polling = null;
let pollAgain = false;
let followTimer = null;
/** When the next read is due (a running send may bring it forward). */
let followDue = 0;
let followErrors = 0;

/**
 * Reads the event's guest list now: all of it the first time (or when a
 * full read is wanted), then only what changed. Coalesced: while one read
 * runs, callers wait for it and one more after it.
 */
async function pollNow() {
  if (polling) {
    pollAgain = true;
    return polling;
  }
  clearTimeout(followTimer);
  polling = (async () => {
    do {
      pollAgain = false;
      await readOnce();
    } while (pollAgain);
  })();
  try {
    await polling;
  } finally {
    polling = null;
    scheduleFollow();
  }
}

async function readOnce() {
  const event = state.event;
  const epoch = state.epoch;
  if (!event) return;
  try {
    if (!state.loaded || state.reloadWanted || !state.cursor) await readAll(event);
    else await readChanges(event);
    followErrors = 0;
  } catch (e) {
    if (state.epoch !== epoch) return;
    // A cursor the API no longer takes: read the whole list again.
    if (e instanceof ApiError && e.status === 400 && /since/.test(e.field ?? '') && !state.reloadWanted) {
      state.reloadWanted = true;
      pollAgain = true;
      return;
    }
    followErrors++;
    showError(state.loaded ? 'Could not follow the guest list' : 'Could not load the guests', e);
  }
}

/** The next read: every 2 s while a send moves, every 15 s otherwise, later after errors; none while the page is hidden. */
function scheduleFollow(delay = followDelay()) {
  clearTimeout(followTimer);
  if (!state.event) return;
  followDue = Date.now() + delay;
  followTimer = setTimeout(() => {
    if (!document.hidden) pollNow();
  }, delay);
}

function followDelay() {
  if (followErrors) return Math.min(FOLLOW_BUSY_MS * 2 ** followErrors, FOLLOW_ERROR_MAX_MS);
  return busy() ? FOLLOW_BUSY_MS : FOLLOW_IDLE_MS;
}

/** A send started moving: read changes at the busy pace from now. */
function hurryFollow() {
  if (polling || followErrors || !state.event) return;
  if (followDue - Date.now() > FOLLOW_BUSY_MS) scheduleFollow(FOLLOW_BUSY_MS);
}

/** Whether a followed send moves (or moved a moment ago: read receipts). */
function busy() {
  if (Date.now() - state.jobChangedAt < FOLLOW_AFTER_CHANGE_MS) return true;
  for (const watch of state.jobs.values()) if (watch.moving()) return true;
  return false;
}

/**
 * Reads every guest, GUEST_PAGE_MAX a request. The first read shows rows as
 * pages come (they say "Loading…" until the list is whole); a read again
 * replaces the list once complete, so the table never empties meanwhile.
 */
async function readAll(event) {
  const epoch = state.epoch;
  const first = !state.loaded;
  const rows = new Map();
  if (first) {
    state.guests = rows;
    state.order = null;
  }
  let changes = null;
  let cursor = null;
  do {
    const { body } = await api.listGuests(event.event_id, { limit: GUEST_PAGE_MAX, cursor });
    if (state.epoch !== epoch) return;
    // The first page's cursor: what changes while later pages are read comes next time.
    changes ??= body?.changes ?? null;
    for (const row of body?.items ?? []) rows.set(row.guest_id, row);
    cursor = body?.next_cursor ?? null;
    if (first) {
      state.order = null;
      renderRows();
    }
  } while (cursor);
  if (!first) {
    state.guests = rows;
    for (const id of [...state.selected]) if (!rows.has(id)) state.selected.delete(id);
  }
  state.order = null;
  state.cursor = changes;
  state.reloadWanted = false;
  state.loaded = true;
  renderRows();
  followJobs();
  if (first) offerLegacyGuests();
}

/** Reads what changed since the cursor, following pages, and applies it in place. */
async function readChanges(event) {
  const epoch = state.epoch;
  // A long list of changes comes in parts: each answer's next_cursor is the
  // `since` of the next; the last answer's `changes` is where to follow from.
  let since = state.cursor;
  let changed = false;
  for (;;) {
    const { body } = await api.listGuests(event.event_id, { limit: GUEST_PAGE_MAX, since });
    if (state.epoch !== epoch) return;
    if (applyRows(body?.items ?? [], body?.removed ?? [])) changed = true;
    if (body?.changes) state.cursor = body.changes;
    since = body?.next_cursor ?? null;
    if (!since) break;
  }
  if (changed) {
    renderRows();
    followJobs();
  }
}

/** When a row last changed: its own change or its invitation's, whichever is later. */
function rowStamp(row) {
  return Math.max(Date.parse(row.updated_at ?? '') || 0, Date.parse(row.invitation?.updated_at ?? '') || 0);
}

/**
 * Puts rows in the list (replacing the same guest's; a change read again is
 * harmless) and takes removed ones out. A row older than the one held (a read
 * that crossed an edit here) is left out unless `force`. Says whether
 * anything changed.
 */
function applyRows(items, removed = [], { force = false } = {}) {
  let changed = false;
  for (const row of items) {
    const old = state.guests.get(row.guest_id);
    if (old && !force && rowStamp(old) > rowStamp(row)) continue;
    if (old && JSON.stringify(old) === JSON.stringify(row)) continue;
    if (!old || old.name !== row.name) state.order = null;
    state.guests.set(row.guest_id, row);
    changed = true;
  }
  for (const id of removed) {
    if (!state.guests.delete(id)) continue;
    state.selected.delete(id);
    state.order = null;
    changed = true;
  }
  return changed;
}

/** Changes one guest's invitation here (a retry), before the list's next read says so. */
function setRowInvitation(guestId, changes) {
  const row = state.guests.get(guestId);
  if (!row?.invitation) return;
  state.guests.set(guestId, { ...row, invitation: { ...row.invitation, ...changes } });
}

function rowByInvitation(invitationId) {
  for (const row of state.guests.values()) if (row.invitation?.invitation_id === invitationId) return row;
  return null;
}

let latestFollowed = false;

/**
 * Follows every job with an invitation still in flight, and once the
 * event's latest send (so its bar shows, done or not).
 */
function followJobs() {
  let latest = null;
  for (const row of state.guests.values()) {
    const inv = row.invitation;
    if (!inv?.job_id) continue;
    if (ACTIVE.has(inv.status)) ensureWatch(inv.job_id);
    if (!latest || (Date.parse(inv.updated_at) || 0) > (Date.parse(latest.updated_at) || 0)) latest = inv;
  }
  if (!latestFollowed && state.loaded) {
    latestFollowed = true;
    if (latest) ensureWatch(latest.job_id);
  }
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
    /** The job is not there (404): never polled again. */
    this.gone = false;
    /** Kept in this browser as its last send: forgotten quietly if it is not there. */
    this.stored = false;
    /** [{at, left}]: how many had left for Twilio when; the rate comes from them. */
    this.samples = [];
  }

  /** (Re)starts polling at the fast pace. */
  start() {
    if (this.gone) return;
    this.stopped = false;
    this.delay = POLL_FAST_MS;
    clearTimeout(this.timer);
    this.timer = null;
    // A poll in flight may have read the job before the change that
    // restarts it (a retry): poll again right after it.
    if (this.running) this.restart = true;
    else this.tick();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Whether it is polled now (or about to be). */
  active() {
    return this.running || this.timer !== null;
  }

  /** Whether the send moves: some of it queued, sending or sent (not only waiting for the daily limit), or not read yet. */
  moving() {
    if (this.stopped || this.gone) return false;
    if (!this.job) return true;
    const c = this.job.counts ?? {};
    return !this.job.done && (c.queued > 0 || c.sending > 0 || c.sent > 0);
  }

  /** Messages a second, from the status answers of the last RATE_WINDOW_MS; null until two answers apart. */
  rate() {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || last.at - first.at < 1500) return null;
    return Math.max(0, (last.left - first.left) * 1000 / (last.at - first.at));
  }

  sample(job) {
    const now = Date.now();
    const c = job.counts ?? {};
    const left = job.total - (c.queued ?? 0) - (c.waiting ?? 0) - (c.sending ?? 0);
    this.samples.push({ at: now, left });
    while (this.samples.length > 2 && this.samples[1].at <= now - RATE_WINDOW_MS) this.samples.shift();
  }

  async tick() {
    this.timer = null;
    this.running = true;
    let next = null;
    try {
      const { body } = await api.jobStatus(this.jobId);
      if (this.stopped) return;
      const wasDone = this.job?.done;
      this.job = body;
      this.sample(body);
      const counts = JSON.stringify(body.counts);
      const changed = counts !== this.lastCounts;
      this.lastCounts = counts;
      renderProgress();
      if (changed) {
        // The guest list follows at the busy pace while counts move.
        state.jobChangedAt = Date.now();
        hurryFollow();
        // The daily limit's use moves with the sends: show it now and then,
        // and as it stands once the send is done.
        loadSender({ maxAgeMs: body.done && !wasDone ? 0 : SENDER_MAX_AGE_MS });
      }
      if (body.done) {
        // Just finished: the rows catch up with the bar now.
        if (wasDone === false) pollNow();
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
      if (e instanceof ApiError && e.status === 404) {
        this.gone = true;
        if (this.stored && state.event) storeJob(state.event.event_id, null);
        if (!this.stored) showError(`Could not follow the send ${this.jobId}`, e);
        return;
      }
      showError(`Could not follow the send ${this.jobId}`, e);
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

/**
 * Follows a job, from the fast pace; `announce`: say so when it is done (a
 * send or retry from this page); `stored`: this browser's last send.
 */
function watchJob(jobId, { announce = false, stored = false } = {}) {
  let watch = state.jobs.get(jobId);
  if (!watch) {
    watch = new JobWatch(jobId);
    watch.stored = stored;
    state.jobs.set(jobId, watch);
  }
  if (announce) watch.announce = true;
  watch.start();
  hurryFollow();
}

/** Follows a job unless it is followed already (its pace is left alone). */
function ensureWatch(jobId) {
  const watch = state.jobs.get(jobId);
  if (watch && (watch.active() || watch.gone)) return;
  watchJob(jobId);
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
  renderLive();
}
let lastProgressHtml = '';

/** Seconds until the job's last invitation has left: its expected finish, else at the measured rate; null when unknown. */
function secondsLeft(watch) {
  const job = watch.job;
  const c = job.counts ?? {};
  const remaining = (c.queued ?? 0) + (c.waiting ?? 0) + (c.sending ?? 0);
  if (!remaining) return null;
  const untilFinish = (Date.parse(job.expected_finish ?? '') - Date.now()) / 1000;
  if (untilFinish > 0) return untilFinish;
  const rate = watch.rate();
  return rate > 0 ? remaining / rate : null;
}

function rateWords(rate) {
  return `${rate.toLocaleString(undefined, { maximumFractionDigits: rate < 10 ? 1 : 0 })} messages/s`;
}

/**
 * The sends running now, pinned to the top of the viewport: the bar, the
 * rate and the time left. Hidden once none runs.
 */
function renderLive() {
  const running = [...state.jobs.values()].filter((w) => w.job && !w.job.done)
    .sort((a, b) => (b.job.created_at ?? '').localeCompare(a.job.created_at ?? ''))
    .slice(0, 3);
  const html = running.map((w) => {
    const job = w.job;
    const done = finished(job);
    const pct = job.total ? Math.floor((done * 100) / job.total) : 100;
    const rate = w.rate();
    const left = secondsLeft(w);
    const parts = [`${num(done)} of ${num(job.total)} finished (${pct}%)`];
    if (rate !== null) parts.push(rateWords(rate));
    if (left !== null) parts.push(`about ${durationWords(left)} left`);
    const id = `live-${job.job_id}`;
    return `<div class="live-job" data-job-id="${esc(job.job_id)}" data-percent="${pct}"`
      + ` data-rate="${rate === null ? '' : rate.toFixed(2)}" data-seconds-left="${left === null ? '' : Math.round(left)}">
      <p id="${esc(id)}-label"><strong>Sending:</strong> ${esc(parts.join(' · '))}</p>
      <progress max="${job.total}" value="${done}" aria-labelledby="${esc(id)}-label">${pct}%</progress>
    </div>`;
  }).join('');
  if (html === lastLiveHtml) return;
  lastLiveHtml = html;
  $('live').innerHTML = html;
  $('live').hidden = !html;
}
let lastLiveHtml = '';


// ---------------------------------------------------------------- guest rows

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Every guest, in the table's order: by name ("Guest 2" before "Guest 10"), then id. */
function sortedRows() {
  if (!state.order) {
    state.order = [...state.guests.values()]
      .sort((a, b) => collator.compare(a.name ?? '', b.name ?? '') || collator.compare(a.guest_id, b.guest_id))
      .map((r) => r.guest_id);
  }
  return state.order.map((id) => state.guests.get(id)).filter(Boolean);
}

/** The filter menu: value, label. */
const FILTERS = [['', 'All'], ['not_invited', 'Not invited'], ...STATUSES.map((s) => [s, STATUS_LABEL[s]]), ['opted_out', 'Opted out'],
  ...ANSWERS.map((a) => [`answer:${a}`, ANSWER_FILTER_LABEL[a]])];

/** Whether a row passes the status filter and the search (name, or phone as typed or with spaces and dashes). */
function matcher({ filter, q }) {
  const text = q.trim().toLowerCase();
  const phone = normalizePhone(q);
  const answer = filter.startsWith('answer:') ? filter.slice('answer:'.length) : null;
  return (row) => {
    const status = row.invitation?.status;
    if (answer) {
      if ((row.rsvp?.answer ?? 'none') !== answer) return false;
    } else if (filter === 'not_invited' ? status : filter === 'opted_out' ? !row.opted_out : filter && status !== filter) return false;
    if (!text) return true;
    return (row.name ?? '').toLowerCase().includes(text) || (phone !== '' && (row.phone ?? '').includes(phone));
  };
}

/** The guests the filter and search let through, all pages. */
function shownRows(all = sortedRows()) {
  const { filter, q } = state.view;
  return filter || q.trim() ? all.filter(matcher(state.view)) : all;
}

/** Sending works on a guest once the whole list is known, and never on one who opted out. */
function canSelect(row) {
  return state.loaded && !row.opted_out;
}

/** Cached rows of the page shown: guest_id -> {tr, sig}. A poll redraws only rows whose signature changed. */
const rowCache = new Map();
let loadingRow = null;

function rowSignature(row) {
  const i = row.invitation;
  const a = row.rsvp;
  return JSON.stringify([row.name, row.phone, row.opted_out, state.loaded, state.selected.has(row.guest_id),
    a?.answer, a?.companions, a?.via, a?.at,
    i?.invitation_id, i?.status, i?.attempt, i?.updated_at, i?.error_code, i?.error_message, i?.error_action, i?.what_to_do, i?.flag]);
}

function badgeHtml(i) {
  if (i) {
    return `<span class="badge st-${esc(i.status)}" data-status="${esc(i.status)}"${STATUS_TITLE[i.status] ? ` title="${esc(STATUS_TITLE[i.status])}"` : ''}>${STATUS_LABEL[i.status] ?? esc(i.status)}</span>`
      + (i.attempt > 1 ? ` <span class="muted">attempt ${i.attempt}</span>` : '');
  }
  // Until the whole list is read, no invitation here may mean one not read yet.
  return state.loaded
    ? '<span class="badge st-none" data-status="none">Not invited</span>'
    : '<span class="badge st-loading" data-status="loading">Loading…</span>';
}

/** A guest's answer: a badge, companions, and how and when it came. */
function answerHtml(rsvp) {
  if (!rsvp) return '<span class="answer-none muted" data-answer="none">No answer yet</span>';
  const plus = rsvp.companions ? ` <span class="muted">+${num(rsvp.companions)}</span>` : '';
  return `<span class="badge ans-${esc(rsvp.answer)}" data-answer="${esc(rsvp.answer)}">${esc(ANSWER_LABEL[rsvp.answer] ?? rsvp.answer)}</span>${plus}`
    + `<br><span class="muted small">${esc(VIA_LABEL[rsvp.via] ?? rsvp.via)}, <time datetime="${esc(rsvp.at)}" title="${esc(longTime(rsvp.at))}">${esc(shortTime(rsvp.at))}</time></span>`;
}

function rowHtml(row) {
  const i = row.invitation ?? null;
  const checked = state.selected.has(row.guest_id) ? 'checked' : '';
  const disabled = canSelect(row) ? '' : 'disabled';
  const why = row.opted_out ? ' (opted out, cannot be sent to)' : state.loaded ? '' : ' (the guest list is still loading)';
  const tags = row.opted_out ? ' <span class="tag opted-out">Opted out</span>' : '';
  const details = [];
  const words = reason(i);
  if (words && (RETRYABLE.has(i.status) || i.status === 'skipped')) {
    details.push(`<span class="reason">${esc(words)}</span>`);
    const todo = whatToDo(i);
    if (todo) details.push(`<span class="todo muted" data-action="${esc(i.error_action ?? '')}">${esc(todo)}</span>`);
  }
  if (i?.flag) details.push(`<span class="reason">${esc(FLAG_WORDS[i.flag] ?? i.flag)}</span>`);
  const canRetry = i && (RETRYABLE.has(i.status) || (i.flag && i.status === 'sending'));
  const off = state.loaded ? '' : ' disabled';
  const retry = canRetry
    ? `<button type="button" class="secondary small retry" data-invitation="${esc(i.invitation_id)}" aria-label="Retry invitation to ${esc(row.name)}"${off}>Retry</button>`
    : '';
  return `<td class="c-select"><input type="checkbox" class="pick" ${checked} ${disabled} aria-label="Select ${esc(row.name)}${esc(why)}"></td>
    <td class="c-guest"><span class="name">${esc(row.name)}</span>${tags}<br><span class="phone muted">${esc(row.phone)}</span></td>
    <td class="c-status">${badgeHtml(i)}</td>
    <td class="c-answer">${answerHtml(row.rsvp)}</td>
    <td class="c-time">${i ? `<time datetime="${esc(i.updated_at)}" title="${esc(longTime(i.updated_at))}">${esc(shortTime(i.updated_at))}</time>` : ''}</td>
    <td class="c-details">${details.join('<br>')}</td>
    <td class="c-actions">${retry}<button type="button" class="secondary small edit" aria-label="Edit ${esc(row.name)}"${off}>Edit</button><button type="button" class="secondary small remove" aria-label="Remove ${esc(row.name)}"${off}>Remove</button></td>`;
}

/** Draws the page's rows in order, reusing each row's element while its signature holds. */
function drawRows(rows) {
  const tbody = $('guest-rows');
  const seen = new Set();
  let prev = null;
  for (const row of rows) {
    seen.add(row.guest_id);
    let cached = rowCache.get(row.guest_id);
    if (!cached) {
      const tr = document.createElement('tr');
      tr.dataset.guestId = row.guest_id;
      cached = { tr, sig: null };
      rowCache.set(row.guest_id, cached);
    }
    const sig = rowSignature(row);
    if (cached.sig !== sig) {
      const focused = cached.tr.contains(document.activeElement) ? document.activeElement.className : null;
      cached.tr.innerHTML = rowHtml(row);
      cached.tr.dataset.status = row.invitation?.status ?? (state.loaded ? 'none' : 'loading');
      cached.tr.classList.toggle('opted-out', Boolean(row.opted_out));
      cached.sig = sig;
      // Keep keyboard focus on the same control when a row is redrawn.
      if (focused) (cached.tr.querySelector(`.${focused.split(' ').pop()}`) ?? cached.tr.querySelector('.pick'))?.focus();
    }
    const expected = prev ? prev.nextSibling : tbody.firstChild;
    if (expected !== cached.tr) tbody.insertBefore(cached.tr, expected);
    prev = cached.tr;
  }
  // Rows off this page leave the table and the cache, which so holds one page.
  for (const [id, cached] of rowCache) {
    if (!seen.has(id)) {
      cached.tr.remove();
      rowCache.delete(id);
    }
  }
  // Nothing read yet: one row says the list is on its way.
  if (state.event && !state.loaded && rows.length === 0) {
    if (!loadingRow) {
      loadingRow = document.createElement('tr');
      loadingRow.className = 'loading-row';
      loadingRow.dataset.status = 'loading';
      loadingRow.innerHTML = '<td colspan="7"><span class="badge st-loading">Loading…</span> Reading the guest list</td>';
    }
    if (loadingRow.parentNode !== tbody) tbody.append(loadingRow);
  } else {
    loadingRow?.remove();
  }
}

function renderRows() {
  const all = sortedRows();
  const shown = shownRows(all);
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  state.view.page = Math.max(0, Math.min(state.view.page, pages - 1));
  const start = state.view.page * PAGE_SIZE;
  state.pageRows = shown.slice(start, start + PAGE_SIZE);
  drawRows(state.pageRows);
  renderPager(start, state.pageRows.length, shown.length, all.length);
  $('no-guests').hidden = !state.event || !state.loaded || all.length > 0;
  renderCounts(all);
  if (renderPreviewGuests()) updatePreview();
}

/** "Showing 1–100 of 2,000", Previous and Next. */
function renderPager(start, count, matching, total) {
  $('pager').hidden = total === 0;
  let info = '';
  if (matching === 0 && total > 0) info = 'No guests match: change the filter or the search.';
  else if (matching > 0) info = `Showing ${num(start + 1)}–${num(start + count)} of ${num(matching)}${matching < total ? ` (of ${num(total)} guests)` : ''}`;
  if ($('page-info').textContent !== info) $('page-info').textContent = info;
  $('page-prev').disabled = start === 0;
  $('page-next').disabled = start + count >= matching;
}

/** One pass over the list: how many per filter, opted out and failed; drops from the selection who cannot be sent to. */
function tally(all) {
  const byFilter = Object.fromEntries(FILTERS.map(([value]) => [value, 0]));
  byFilter[''] = all.length;
  let failed = 0;
  let companions = 0;
  let remindable = 0;
  for (const r of all) {
    if (!r.rsvp && !r.opted_out && REACHED.has(r.invitation?.status)) remindable++;
    byFilter[`answer:${r.rsvp?.answer ?? 'none'}`]++;
    if (r.rsvp?.answer === 'yes') companions += r.rsvp.companions ?? 0;
    const status = r.invitation?.status;
    if (status) byFilter[status] = (byFilter[status] ?? 0) + 1;
    else byFilter.not_invited++;
    if (r.opted_out) {
      byFilter.opted_out++;
      state.selected.delete(r.guest_id);
    }
    if (RETRYABLE.has(status)) failed++;
  }
  return { byFilter, optedOut: byFilter.opted_out, failed, companions, remindable };
}

function renderCounts(all = sortedRows()) {
  const { byFilter, optedOut, failed, companions, remindable } = tally(all);
  renderHeadcount(byFilter, companions, all.length);
  const selected = state.selected.size;
  let text = '';
  if (state.event && !state.loaded) {
    text = all.length ? `Loading guests… ${num(all.length)} read so far` : 'Loading guests…';
  } else if (all.length) {
    text = `${plural(all.length, 'guest')} · ${num(selected)} selected${optedOut ? ` · ${num(optedOut)} opted out` : ''}${failed ? ` · ${num(failed)} failed` : ''}`;
  }
  $('guest-count').textContent = text;
  renderFilterCounts(byFilter);
  renderControls(selected, failed, remindable);
}

/** Coming / not coming / maybe / no answer yet, and companions: once the whole list is read. */
function renderHeadcount(byFilter, companions, total) {
  const box = $('headcount');
  box.hidden = !state.event || !state.loaded || total === 0;
  for (const a of ANSWERS) {
    const text = num(byFilter[`answer:${a}`] ?? 0);
    if ($(`hc-${a}`).textContent !== text) $(`hc-${a}`).textContent = text;
  }
  const text = num(companions);
  if ($('hc-companions').textContent !== text) $('hc-companions').textContent = text;
}

/** The filter menu's counts, e.g. "Read (1,234)". */
function renderFilterCounts(byFilter) {
  const select = $('status-filter');
  for (const option of select.options) {
    const label = FILTERS.find(([value]) => value === option.value)?.[1] ?? option.value;
    const text = state.loaded ? `${label} (${num(byFilter[option.value] ?? 0)})` : label;
    if (option.textContent !== text) option.textContent = text;
  }
}

/**
 * What may be used now. Nothing that sends (or selects to send) before the
 * whole list is read: a guest not read yet could be sent to twice.
 */
function renderControls(selected = state.selected.size, failed = null, remindable = null) {
  const ready = Boolean(state.event) && state.loaded;
  $('guests-card').dataset.loaded = String(ready);
  $('guest-table').setAttribute('aria-busy', String(Boolean(state.event) && !state.loaded));
  const send = $('send');
  send.disabled = !ready || selected === 0 || state.sending;
  send.textContent = selected ? `Send WhatsApp invitations (${num(selected)})` : 'Send WhatsApp invitations';
  if (failed !== null) $('retry-all').disabled = !ready || failed === 0;
  else if (!ready) $('retry-all').disabled = true;
  if (remindable !== null) {
    $('remind-now').disabled = !ready || remindable === 0;
    $('remind-now').textContent = remindable ? `Remind ${num(remindable)} who have not answered` : 'Remind who has not answered';
  } else if (!ready) $('remind-now').disabled = true;
  for (const id of ['select-all', 'select-none', 'select-new', 'select-failed']) $(id).disabled = !ready;
  $('refresh').disabled = !state.event;
  $('csv-text').disabled = !state.event;
  $('csv-check').disabled = !ready || state.importing;
  $('csv-file').disabled = !ready || state.importing;
  $('status-filter').disabled = !state.event;
  $('guest-search').disabled = !state.event;
  $('legacy-save')?.toggleAttribute('disabled', !ready || state.importing);
}

function renderAll() {
  renderRows();
  renderProgress();
}

/** Selects the guests the filter and search show (every page) that `predicate` picks. */
function select(predicate, label) {
  if (!state.loaded) return;
  const filtered = Boolean(state.view.filter || state.view.q.trim());
  state.selected.clear();
  for (const r of shownRows()) if (canSelect(r) && predicate(r)) state.selected.add(r.guest_id);
  renderRows();
  announce(`${label}${filtered ? ' (of the guests shown)' : ''}: ${plural(state.selected.size, 'guest')} selected.`);
}

function goToPage(delta) {
  state.view.page += delta;
  renderRows();
  // The button pressed may be disabled now (first or last page): keep focus in the pager.
  if (document.activeElement?.disabled) (delta > 0 ? $('page-prev') : $('page-next')).focus();
}

let searchTimer = null;

function initRows() {
  $('status-filter').innerHTML = FILTERS.map(([value, label]) => `<option value="${esc(value)}">${esc(label)}</option>`).join('');
  $('status-filter').addEventListener('change', (e) => {
    state.view.filter = e.target.value;
    state.view.page = 0;
    renderRows();
  });
  // Typing searches once it pauses: 10,000 rows are filtered per search.
  $('guest-search').addEventListener('input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.view.q = e.target.value;
      state.view.page = 0;
      renderRows();
    }, 150);
  });
  $('page-prev').addEventListener('click', () => goToPage(-1));
  $('page-next').addEventListener('click', () => goToPage(1));
  $('guest-rows').addEventListener('change', (e) => {
    if (!e.target.classList.contains('pick')) return;
    const id = e.target.closest('tr').dataset.guestId;
    if (e.target.checked) state.selected.add(id);
    else state.selected.delete(id);
    renderRows();
  });
  $('guest-rows').addEventListener('click', (e) => {
    const button = e.target.closest('button');
    if (!button || button.disabled) return;
    const id = button.closest('tr')?.dataset.guestId;
    if (button.classList.contains('retry')) retryOne(button.dataset.invitation, button);
    else if (button.classList.contains('edit')) openGuestDialog(id, 'edit');
    else if (button.classList.contains('remove')) openGuestDialog(id, 'remove');
  });
  $('select-all').addEventListener('click', () => select(() => true, 'All'));
  $('select-none').addEventListener('click', () => {
    state.selected.clear();
    renderRows();
    announce('None selected.');
  });
  $('select-new').addEventListener('click', () => select((r) => !r.invitation, 'Not yet invited'));
  $('select-failed').addEventListener('click', () => select((r) => RETRYABLE.has(r.invitation?.status), 'Failed'));
  $('refresh').addEventListener('click', async () => {
    // A full read: it also brings opt-outs changed elsewhere, which changes do not list.
    if (state.loaded) state.reloadWanted = true;
    await Promise.all([pollNow(), loadSender()]);
    followJobs();
    announce('Refreshed.');
  });
  $('retry-all').addEventListener('click', retryAllFailed);
  $('remind-now').addEventListener('click', remindNow);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.event) pollNow();
  });
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
function sendKey(eventId, templateId, guests, resend) {
  const signature = JSON.stringify([eventId, templateId ?? '', guests.map((g) => g.guest_id).sort(), Boolean(resend)]);
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
  if (!state.loaded) return [];
  return sortedRows().filter((r) => canSelect(r) && state.selected.has(r.guest_id));
}

/**
 * The send the page would make now: {event, guests, templateId, resend};
 * `resend`: also to guests who already have an invitation on its way or
 * delivered (the API leaves them out otherwise).
 */
function currentSend() {
  return { event: state.event, guests: selectedGuests(), templateId: $('template-select').value || undefined, resend: false };
}

/**
 * A send's requests, as the API takes them: parts of at most MAX_BULK
 * guests, [{chunk, body}]. The dry run and the send use the same ones.
 */
function bulkParts({ event, guests, templateId, resend }) {
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
    if (resend) body.resend = true;
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
  // The page's count of those the API will leave out, until the dry run says.
  send.invited = guests.filter((g) => ALREADY_INVITED.has(g.invitation?.status)).length;
  send.leftOut = null;
  const template = $('template-select').selectedOptions[0]?.textContent ?? 'Event default';
  $('confirm-title').textContent = `Send ${plural(guests.length, 'WhatsApp invitation')}?`;
  $('confirm-text').textContent = `${plural(guests.length, 'guest')} of ${event.name} will get a WhatsApp message now (template: ${template}).`;
  send.notes = [];
  // The page's own guesses, until the dry run answers with the API's counts.
  send.invitedNote = send.invited
    ? `${plural(send.invited, 'guest')} of them already ${send.invited === 1 ? 'has' : 'have'} an invitation on its way or delivered: left out unless sent again.`
    : '';
  $('resend').checked = false;
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
      const words = SKIP_WORDS[g.code]?.(n) ?? `${plural(n, 'guest')}: ${g.message || g.code}`;
      return `<li data-code="${esc(g.code)}" data-count="${n}">${esc(words)}${whoHtml(g.guests)}</li>`;
    }).join('')}</ul>`
    : '';
  const rejected = r.rejected.length
    ? `<ul class="dry-rejections" aria-label="Rejected by the API">${r.rejected.slice(0, 5).map((x) => `<li data-index="${x.index}">`
      + `${esc(x.guest?.name ?? x.guest_id ?? '?')} (${esc(x.guest?.phone ?? '?')}): ${esc(x.field)}: ${esc(x.message)}</li>`).join('')}`
      + `${r.rejected.length > 5 ? `<li>and ${num(r.rejected.length - 5)} more</li>` : ''}</ul>`
    : '';
  return counts + leftOutHtml(r) + reasons + rejected + waitHtml(r) + costHtml(r);
}

/** Who is left out for an invitation already on its way or delivered, with its status. */
function leftOutHtml(r) {
  const n = r.left_out.length;
  if (!n) return '';
  const who = r.left_out.map((x) => ({ name: `${x.guest?.name ?? x.guest_id ?? '?'}: ${STATUS_LABEL[x.status] ?? x.status ?? 'invited'}` }));
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

async function sendSelected(send = currentSend()) {
  // Guests removed while the confirmation was open (another tab, a poll) are not sent.
  const guests = send.guests.filter((g) => state.guests.has(g.guest_id));
  send = { ...send, guests };
  const { event, templateId, resend } = send;
  if (!guests.length || !event || state.sending) return;
  state.sending = true;
  renderCounts();
  const key = sendKey(event.event_id, templateId, guests, resend);
  let queued = 0;
  const skipped = [];
  const leftOut = [];
  try {
    for (const [part, { chunk, body }] of bulkParts(send).entries()) {
      const { body: res } = await api.sendBulk(body, `${key}-${part}`);
      queued += res.queued ?? res.accepted ?? 0;
      for (const skip of res.skipped ?? []) {
        const guest = chunk[skip.index];
        skipped.push(`${guest?.name ?? skip.guest_id} (${skip.message})`);
      }
      for (const x of res.left_out ?? []) leftOut.push({ ...x, guest: chunk[x.index] ?? null });
      showRejections(res, chunk);
      for (const g of chunk) state.selected.delete(g.guest_id);
      // Kept, so a reload shows this send's progress before the list is read.
      storeJob(event.event_id, res.job_id);
      watchJob(res.job_id, { announce: true });
    }
    sessionStorage.removeItem(PENDING_SEND);
    announce(`Queued ${plural(queued, 'invitation')} for ${event.name}.`
      + (skipped.length ? ` Not sent to ${num(skipped.length)}: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? '…' : ''}.` : '')
      + (leftOut.length ? ` ${leftOutWords(leftOut)}` : ''));
    showSendReport(leftOut);
  } catch (e) {
    showError('Could not send the invitations', e);
  } finally {
    state.sending = false;
    renderRows();
    $('guests-heading').focus();
    // The sent guests' rows (the send also adds them to the list) come with the next read.
    pollNow();
  }
}

/** "Left out 2 guests already invited: Ana (Delivered), Bo (Read)." */
function leftOutWords(leftOut) {
  const names = leftOut.slice(0, 5).map((x) => `${x.guest?.name ?? x.guest_id ?? '?'} (${STATUS_LABEL[x.status] ?? x.status ?? 'invited'})`);
  return `Left out ${plural(leftOut.length, 'guest')} already invited: ${names.join(', ')}${leftOut.length > 5 ? ` and ${num(leftOut.length - 5)} more` : ''}.`;
}

/** After a send: who the API left out for an invitation they already had, until the next send. */
function showSendReport(leftOut) {
  const p = $('send-report');
  p.hidden = leftOut.length === 0;
  p.dataset.leftOut = String(leftOut.length);
  p.textContent = leftOut.length
    ? `${leftOutWords(leftOut)} To message them once more, select them and tick "Send again" in the confirmation.`
    : '';
}

function showRejections(res, chunk) {
  const left = [...(res.rejected ?? []).map((r) => ({ guest: chunk[r.index], text: `${r.field}: ${r.message}` })),
    ...(res.duplicates ?? []).map((d) => ({ guest: chunk[d.index], text: `the same guest as ${chunk[d.duplicate_of]?.name ?? `entry ${d.duplicate_of}`}: sent once` }))];
  if (!left.length) return;
  showError(`The API left out ${plural(left.length, 'guest')}`,
    new Error(left.map((l) => `${l.guest?.name ?? '?'} (${l.guest?.phone ?? '?'}): ${l.text}`).join('; ')));
}

/** A retried invitation, as the retry answered, until the list's next read. */
function retried(row, attempt, status = 'queued') {
  setRowInvitation(row.guest_id, {
    status, attempt, error_code: null, error_message: null, error_action: null, what_to_do: null, flag: null,
  });
}

async function retryOne(invitationId, button) {
  const row = rowByInvitation(invitationId);
  const name = row?.name ?? invitationId;
  button.disabled = true;
  try {
    const { body } = await api.retry(invitationId);
    if (row) retried(row, body.attempt, body.status);
    announce(`Retrying the invitation to ${name} (attempt ${body.attempt}).`);
    renderRows();
    if (row?.invitation?.job_id) watchJob(row.invitation.job_id, { announce: true });
  } catch (e) {
    showError(`Could not retry the invitation to ${name}`, e);
    button.disabled = false;
  } finally {
    pollNow();
  }
}

/** "Remind now": once a day per event; the API says if today's was already sent. */
async function remindNow() {
  if (!state.event || !state.loaded) return;
  const button = $('remind-now');
  if (!window.confirm(`${button.textContent}? They get the event's reminder on WhatsApp (once a day).`)) return;
  button.disabled = true;
  try {
    const { body } = await api.remindNow(state.event.event_id);
    if (body.already) announce("Today's reminder was already sent: nobody was reminded again.");
    else announce(body.reminded ? `Reminding ${plural(body.reminded, 'guest')}.` : 'Nobody to remind: every guest reached has answered.');
    if (body.reminded) watchJob(body.job_id, { announce: true });
  } catch (e) {
    showError('Could not send the reminders', e);
  } finally {
    renderCounts();
    pollNow();
  }
}

async function retryAllFailed() {
  if (!state.event || !state.loaded) return;
  const button = $('retry-all');
  button.disabled = true;
  try {
    const { body } = await api.retryFailed({ event_id: state.event.event_id });
    announce(body.retried ? `Retrying ${plural(body.retried, 'failed invitation')}.` : 'Nothing to retry: no invitation has failed.');
    const jobs = new Set();
    for (const id of body.invitation_ids ?? []) {
      const row = rowByInvitation(id);
      if (!row) continue;
      jobs.add(row.invitation.job_id);
      retried(row, (row.invitation.attempt ?? 1) + 1);
    }
    renderRows();
    for (const job of jobs) if (job) watchJob(job, { announce: true });
  } catch (e) {
    showError('Could not retry the failed invitations', e);
  } finally {
    renderCounts();
    pollNow();
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
  // Sending again to those already invited is a different send: check it again.
  $('resend').addEventListener('change', (e) => {
    if (!pendingSend) return;
    pendingSend.resend = e.target.checked;
    checkSend(pendingSend);
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
initGuestDialog();
renderAll();
await Promise.all([loadTemplates(), loadEvents(), loadSender()]);
// Expose a little for debugging in the console.
window.rsvp = { state, sleep };
