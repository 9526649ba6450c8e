// The event's guest list, kept in step with the server: read whole once,
// then only what changed, at a pace that follows the sends. It changes the
// shared state, and asks the views above it to redraw through state.js's hooks.

import { api, ApiError } from './api.js';
import { limits } from './facts.js';
import { state, hooks } from './state.js';
import { showError } from './ui.js';

/** The guest list's changes are read this often while a send moves, and otherwise. */
const FOLLOW_BUSY_MS = 2000;
const FOLLOW_IDLE_MS = 15000;
const FOLLOW_ERROR_MAX_MS = 60000;
/** After a job's counts change (read receipts come after it is done), changes are read at the busy pace this long. */
const FOLLOW_AFTER_CHANGE_MS = 10000;

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
export async function pollNow() {
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

/** What guests wrote is read this often (and with the list's first read). */
const REPLIES_EVERY_MS = 15000;

/** The latest reply of each guest who wrote something that was not an answer. */
async function readReplies(event, epoch) {
  if (Date.now() - (state.repliesReadAt ?? 0) < REPLIES_EVERY_MS) return;
  state.repliesReadAt = Date.now();
  const { body } = await api.replies(event.event_id);
  if (state.epoch !== epoch) return;
  const latest = new Map();
  for (const r of body?.items ?? []) {
    const seen = latest.get(r.guest_id);
    if (!seen || r.at > seen.at) latest.set(r.guest_id, r);
  }
  state.replies = latest;
  hooks.renderRows();
}

async function readOnce() {
  const event = state.event;
  const epoch = state.epoch;
  if (!event) return;
  try {
    if (!state.loaded || state.reloadWanted || !state.cursor) await readAll(event);
    else await readChanges(event);
    await readReplies(event, epoch);
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
export function hurryFollow() {
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
 * Reads every guest, the API's guest_page a request. The first read shows rows as
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
    const { body } = await api.listGuests(event.event_id, { limit: limits.guest_page, cursor });
    if (state.epoch !== epoch) return;
    // The first page's cursor: what changes while later pages are read comes next time.
    changes ??= body?.changes ?? null;
    for (const row of body?.items ?? []) rows.set(row.guest_id, row);
    cursor = body?.next_cursor ?? null;
    if (first) {
      state.order = null;
      hooks.renderRows();
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
  hooks.renderRows();
  hooks.followJobs();
  if (first) hooks.offerLegacyGuests();
}

/** Reads what changed since the cursor, following pages, and applies it in place. */
async function readChanges(event) {
  const epoch = state.epoch;
  // A long list of changes comes in parts: each answer's next_cursor is the
  // `since` of the next; the last answer's `changes` is where to follow from.
  let since = state.cursor;
  let changed = false;
  for (;;) {
    const { body } = await api.listGuests(event.event_id, { limit: limits.guest_page, since });
    if (state.epoch !== epoch) return;
    if (applyRows(body?.items ?? [], body?.removed ?? [])) changed = true;
    if (body?.changes) state.cursor = body.changes;
    since = body?.next_cursor ?? null;
    if (!since) break;
  }
  if (changed) {
    hooks.renderRows();
    hooks.followJobs();
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
export function applyRows(items, removed = [], { force = false } = {}) {
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
export function setRowInvitation(guestId, changes) {
  const row = state.guests.get(guestId);
  if (!row?.invitation) return;
  state.guests.set(guestId, { ...row, invitation: { ...row.invitation, ...changes } });
}

/** The guest whose latest invitation this is, or null. */
export function rowByInvitation(invitationId) {
  for (const row of state.guests.values()) if (row.invitation?.invitation_id === invitationId) return row;
  return null;
}

/** Another event is picked: no read for the one before is scheduled. */
export function stopFollowing() {
  clearTimeout(followTimer);
}

/** Reads the list again when the page is shown again (it is not read while hidden). */
export function initSync() {
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.event) pollNow();
  });
}
