// Step 1, the event: the list to pick from (read after the API's facts),
// picking one (which starts reading its guests and following its sends),
// and the form that creates or edits one.

import { api, ApiError } from './api.js';
import { facts, loadFacts } from './facts.js';
import { eventDate, escapeHtml as esc } from './format.js';
import { renderAll, renderFilterMenu } from './guest-list.js';
import { watchJob, resetProgress } from './progress.js';
import { state } from './state.js';
import { storedJob } from './storage.js';
import { pollNow, stopFollowing } from './sync.js';
import { renderTemplateChoices, updatePreview } from './templates.js';
import { $, showError, announce, clearFieldErrors, fieldError } from './ui.js';

/**
 * Reads the API's facts (statuses, limits) unless they are here: nothing of
 * an event's guests or sends is drawn without them. Says whether they are.
 * A failure (a deployed stack before its token is given) is shown, and the
 * next loadEvents (Save token) reads them again.
 */
async function factsFirst() {
  try {
    await loadFacts();
  } catch (e) {
    showError("Could not load the API's facts", e);
    if (!state.event) $('event-select').innerHTML = '<option value="">Events could not be loaded</option>';
    return false;
  }
  renderFilterMenu();
  return true;
}

export async function loadEvents(selectId) {
  if (!facts.loaded && !(await factsFirst())) return;
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
  resetProgress();
  stopFollowing();
  // Reads still on their way for the event before are dropped.
  state.epoch++;
  state.event = event;
  state.guests = new Map();
  state.order = null;
  state.loaded = false;
  state.cursor = null;
  state.replies = new Map();
  state.repliesReadAt = 0;
  state.reloadWanted = false;
  state.selected.clear();
  state.view = { filter: '', q: '', page: 0 };
  $('status-filter').value = '';
  $('guest-search').value = '';
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

export function initEvents() {
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
