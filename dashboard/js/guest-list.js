// Step 4's table: the guests in order, filtered, searched and a page at a
// time, each with its invitation and answer; the counts, the selection, and
// what may be used while the list is still being read.

import { answerHtml, renderHeadcount, renderReplies, replyHtml, unreadReply } from './answers.js';
import { facts, statusNames, statusLabel, statusTitle, flagWords, isRetryable, isReached } from './facts.js';
import {
  ANSWERS, ANSWER_FILTER_LABEL, reason, whatToDo, shortTime, longTime, escapeHtml as esc, plural, num, isReminderJob, invitationHere, clockTime,
} from './format.js';
import { normalizePhone } from './guests.js';
import { loadSender, followJobs, renderProgress } from './progress.js';
import { state } from './state.js';
import { pollNow } from './sync.js';
import { renderPreviewGuests, updatePreview } from './templates.js';
import { $, announce } from './ui.js';

/** A guest reminded this recently is not reminded again (the API's rule). */
const REMINDED_WITHIN_MS = 20 * 3600 * 1000;

/** Guests on one page of the table. */
const PAGE_SIZE = 100;

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Every guest, in the table's order: by name ("Guest 2" before "Guest 10"), then id. */
export function sortedRows() {
  if (!state.order) {
    state.order = [...state.guests.values()]
      .sort((a, b) => collator.compare(a.name ?? '', b.name ?? '') || collator.compare(a.guest_id, b.guest_id))
      .map((r) => r.guest_id);
  }
  return state.order.map((id) => state.guests.get(id)).filter(Boolean);
}

let filterList = null;

/** The filter menu: value, label. The statuses' come from the API's facts: empty until they are loaded. */
function filters() {
  if (!filterList && facts.loaded) {
    filterList = [['', 'All'], ['not_invited', 'Not invited'], ...statusNames().map((s) => [s, statusLabel(s)]), ['opted_out', 'Opted out'],
      ...ANSWERS.map((a) => [`answer:${a}`, ANSWER_FILTER_LABEL[a]])];
  }
  return filterList ?? [];
}

/** Fills the filter menu, once the facts are loaded. */
export function renderFilterMenu() {
  $('status-filter').innerHTML = filters().map(([value, label]) => `<option value="${esc(value)}">${esc(label)}</option>`).join('');
}

/** Whether a row passes the status filter and the search (name, or phone as typed or with spaces and dashes). */
function matcher({ filter, q }) {
  const text = q.trim().toLowerCase();
  const phone = normalizePhone(q);
  const answer = filter.startsWith('answer:') ? filter.slice('answer:'.length) : null;
  return (row) => {
    const status = invitationHere(row)?.status;
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
export function canSelect(row) {
  return state.loaded && !row.opted_out;
}

/** Cached rows of the page shown: guest_id -> {tr, sig}. A poll redraws only rows whose signature changed. */
const rowCache = new Map();
let loadingRow = null;

function rowSignature(row) {
  const i = row.invitation;
  const a = row.rsvp;
  return JSON.stringify([row.name, row.phone, row.opted_out, state.loaded, state.selected.has(row.guest_id),
    a?.answer, a?.companions, a?.via, a?.at, state.replies.get(row.guest_id)?.at,
    i?.invitation_id, i?.status, i?.attempt, i?.updated_at, i?.error_code, i?.error_message, i?.error_action, i?.what_to_do, i?.flag, i?.due_at,
    i?.sent_to_other_number]);
}

function badgeHtml(i) {
  if (i) {
    return (isReminderJob(i?.job_id) ? '<span class="tag reminder" data-reminder>Reminder</span> ' : '')
      + `<span class="badge st-${esc(i.status)}" data-status="${esc(i.status)}"${statusTitle(i.status) ? ` title="${esc(statusTitle(i.status))}"` : ''}>${esc(statusLabel(i.status))}</span>`
      + (i.attempt > 1 ? ` <span class="muted">attempt ${i.attempt}</span>` : '');
  }
  // Until the whole list is read, no invitation here may mean one not read yet.
  return state.loaded
    ? '<span class="badge st-none" data-status="none">Not invited</span>'
    : '<span class="badge st-loading" data-status="loading">Loading…</span>';
}

/** The row's status when its invitation went to the number the guest had before. */
function otherNumberHtml(inv) {
  const title = `The invitation went to ${inv.sent_to_other_number}; this number has had none. Send to invite them here.`;
  return `<span class="badge st-none" data-status="other-number" title="${esc(title)}">Not invited at this number</span>`;
}

function rowHtml(row) {
  const other = row.invitation?.sent_to_other_number ? row.invitation : null;
  const i = invitationHere(row);
  const checked = state.selected.has(row.guest_id) ? 'checked' : '';
  const disabled = canSelect(row) ? '' : 'disabled';
  const why = row.opted_out ? ' (opted out, cannot be sent to)' : state.loaded ? '' : ' (the guest list is still loading)';
  const tags = row.opted_out ? ' <span class="tag opted-out">Opted out</span>' : '';
  const details = [];
  const words = reason(i);
  if (words && (isRetryable(i.status) || i.status === 'skipped')) {
    details.push(`<span class="reason">${esc(words)}</span>`);
    const todo = whatToDo(i);
    if (todo) details.push(`<span class="todo muted" data-action="${esc(i.error_action ?? '')}">${esc(todo)}</span>`);
  }
  if (i?.flag) details.push(`<span class="reason">${esc(flagWords(i.flag))}</span>`);
  if (other) details.push(`<span class="reason muted">Invited at <span dir="ltr">${esc(other.sent_to_other_number)}</span> (${esc(statusLabel(other.status))}) before the number was changed</span>`);
  const canRetry = i && (isRetryable(i.status) || (i.flag && i.status === 'sending'));
  const off = state.loaded ? '' : ' disabled';
  const retry = canRetry
    ? `<button type="button" class="secondary small retry" data-invitation="${esc(i.invitation_id)}" aria-label="Retry invitation to ${esc(row.name)}"${off}>Retry</button>`
    : '';
  return `<td class="c-select"><input type="checkbox" class="pick" ${checked} ${disabled} aria-label="Select ${esc(row.name)}${esc(why)}"></td>
    <td class="c-guest"><bdi class="name" dir="auto">${esc(row.name)}</bdi>${tags}<br><span class="phone muted" dir="ltr">${esc(row.phone)}</span></td>
    <td class="c-status">${other ? otherNumberHtml(other) : badgeHtml(i)}</td>
    <td class="c-answer">${answerHtml(row.rsvp)}${replyHtml(row)}</td>
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
      cached.tr.dataset.status = invitationHere(row)?.status ?? (state.loaded ? 'none' : 'loading');
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

export function renderRows() {
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
  renderReplies();
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
  const byFilter = Object.fromEntries(filters().map(([value]) => [value, 0]));
  byFilter[''] = all.length;
  let failed = 0;
  let companions = 0;
  let remindable = 0;
  let remindedToday = 0;
  // Today's latest reminder job: its start is the time the button gives.
  let reminderJob = null;
  let reminderAt = 0;
  const today = new Date().toDateString();
  const recently = Date.now() - REMINDED_WITHIN_MS;
  for (const r of all) {
    const i = invitationHere(r);
    // As the API decides: reached, no answer, not opted out, not reminded
    // in the last 20 hours, and nothing written since (that waits for you).
    const reminded = isReminderJob(i?.job_id) ? Date.parse(i.updated_at) : 0;
    if (reminded && new Date(reminded).toDateString() === today) {
      remindedToday++;
      if (reminded > reminderAt) [reminderJob, reminderAt] = [i.job_id, reminded];
    }
    if (!r.rsvp && !r.opted_out && isReached(i?.status) && !(reminded > recently) && !unreadReply(r)) remindable++;
    byFilter[`answer:${r.rsvp?.answer ?? 'none'}`]++;
    if (r.rsvp?.answer === 'yes') companions += r.rsvp.companions ?? 0;
    const status = i?.status;
    if (status) byFilter[status] = (byFilter[status] ?? 0) + 1;
    else byFilter.not_invited++;
    if (r.opted_out) {
      byFilter.opted_out++;
      state.selected.delete(r.guest_id);
    }
    if (isRetryable(status)) failed++;
  }
  state.reminderJob = reminderJob;
  return { byFilter, optedOut: byFilter.opted_out, failed, companions, remindable, remindedToday };
}

/** "Reminded 3 today at 10:02 · next at Tue 2 Jun, 09:00 · Remind 2 who have not answered". */
function remindWords(remindable, remindedToday) {
  const parts = [];
  if (remindedToday) {
    // The job's start, once its status was read (followJobs reads it).
    const started = state.reminderJob && state.jobs.get(state.reminderJob)?.job?.created_at;
    parts.push(`Reminded ${num(remindedToday)} today${started ? ` at ${clockTime(started)}` : ''}`);
  }
  const next = state.event?.next_reminder_at;
  if (next && Date.parse(next) > Date.now()) parts.push(`next at ${clockTime(next)}`);
  if (remindable) parts.push(`Remind ${num(remindable)} who have not answered`);
  else if (!remindedToday) parts.push('Remind who has not answered');
  return parts.join(' · ');
}

export function renderCounts(all = sortedRows()) {
  const { byFilter, optedOut, failed, companions, remindable, remindedToday } = tally(all);
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
  renderControls(selected, failed, remindable, remindedToday);
}

/** The filter menu's counts, e.g. "Read (1,234)". */
function renderFilterCounts(byFilter) {
  const select = $('status-filter');
  for (const option of select.options) {
    const label = filters().find(([value]) => value === option.value)?.[1] ?? option.value;
    const text = state.loaded ? `${label} (${num(byFilter[option.value] ?? 0)})` : label;
    if (option.textContent !== text) option.textContent = text;
  }
}

/**
 * What may be used now. Nothing that sends (or selects to send) before the
 * whole list is read: a guest not read yet could be sent to twice.
 */
export function renderControls(selected = state.selected.size, failed = null, remindable = null, remindedToday = 0) {
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
    const words = remindWords(remindable, remindedToday);
    if ($('remind-now').textContent !== words) $('remind-now').textContent = words;
    $('remind-now').dataset.remindedToday = String(remindedToday);
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

/** The table and the progress, as the state now is. */
export function renderAll() {
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

export function initRows() {
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
  // A row's Retry, Edit and Remove are wired by send.js and guest-edit.js.
  $('select-all').addEventListener('click', () => select(() => true, 'All'));
  $('select-none').addEventListener('click', () => {
    state.selected.clear();
    renderRows();
    announce('None selected.');
  });
  // Invited at a number since changed: not yet invited at this one.
  $('select-new').addEventListener('click', () => select((r) => !invitationHere(r), 'Not yet invited'));
  $('select-failed').addEventListener('click', () => select((r) => isRetryable(invitationHere(r)?.status), 'Failed'));
  $('refresh').addEventListener('click', async () => {
    // A full read: it also brings opt-outs changed elsewhere, which changes do not list.
    if (state.loaded) state.reloadWanted = true;
    await Promise.all([pollNow(), loadSender()]);
    followJobs();
    announce('Refreshed.');
  });
}
