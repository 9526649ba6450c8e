// Step 2, guests in: a CSV pasted or uploaded, checked by the API's rules
// at once, then saved to the event's list; and the guests an older version
// of the page kept in this browser, offered to the server once.

import { api } from './api.js';
import { limits } from './facts.js';
import { escapeHtml as esc, plural, num } from './format.js';
import { readGuests, guestProblems, normalizePhone } from './guests.js';
import { renderControls } from './guest-list.js';
import { state } from './state.js';
import { legacyKey, legacyGuests } from './storage.js';
import { pollNow } from './sync.js';
import { $, showError, announce } from './ui.js';

export function initImport() {
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
 * at most the API's guest_import; each rejection keeps its guest (and line). Stops
 * at the first request that fails, counting the guests not saved.
 */
async function saveToServer(event, guests) {
  const out = emptyResult();
  const max = limits.guest_import;
  for (let start = 0; start < guests.length; start += max) {
    const chunk = guests.slice(start, start + max);
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
export function offerLegacyGuests() {
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
