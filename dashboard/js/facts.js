// What the API says about itself (GET /api/whatsapp/facts), read once at
// boot: the invitation statuses in the order the page shows them, with their
// words and what each means; the words for a flag and for a reason code; the
// API's limits. The API is the one place for these facts, so the page keeps
// no copy of them, and draws nothing that needs them (the status filter,
// badges, progress counts) nor sends before loadFacts() has resolved.

import { api } from './api.js';

/** As the API gave them; `loaded` once loadFacts() resolved. */
export const facts = {
  loaded: false,
  /** [{status, label, title, in_flight, holds_guest, retryable, reached}], in display order. */
  statuses: [],
  /** A flag on an invitation -> its words. */
  flags: {},
  /** A reason code (why an invitation was skipped or failed) -> the API's words for it. */
  reasons: {},
};

/**
 * The API's limits: `bulk_guests` a send-bulk request, `guest_page` a
 * listing request, `guest_import` an import request, `opt_out_lookup` an
 * opt-out lookup (unused here: the list carries each guest's opt-out).
 */
export const limits = {};

/** The limits the page cannot work without. */
const NEEDED_LIMITS = ['bulk_guests', 'guest_page', 'guest_import'];

const byStatus = new Map();
let names = [];
let loading = null;

/**
 * Reads the facts once (callers at the same time share the read; later ones
 * resolve at once). Rejects when they cannot be read, e.g. before a deployed
 * stack's token is given; the next call then reads again.
 */
export function loadFacts() {
  if (facts.loaded) return Promise.resolve(facts);
  loading ??= api.facts()
    .then(({ body }) => {
      apply(body);
      return facts;
    })
    .finally(() => {
      loading = null;
    });
  return loading;
}

/** Takes the answer in, or throws when it lacks what the page needs (so it is shown, not half-used). */
function apply(body) {
  const statuses = body?.statuses;
  if (!Array.isArray(statuses) || !statuses.length || !statuses.every((s) => typeof s?.status === 'string' && typeof s.label === 'string')) {
    throw new Error("the API's facts list no invitation statuses");
  }
  const missing = NEEDED_LIMITS.filter((k) => !(Number.isInteger(body.limits?.[k]) && body.limits[k] > 0));
  if (missing.length) throw new Error(`the API's facts lack the limits ${missing.join(', ')}`);
  facts.statuses = statuses;
  facts.flags = { ...body.flags };
  facts.reasons = { ...body.reasons };
  Object.assign(limits, body.limits);
  byStatus.clear();
  for (const s of statuses) byStatus.set(s.status, s);
  names = statuses.map((s) => s.status);
  facts.loaded = true;
}

/** The statuses, in the order the page shows them. */
export function statusNames() {
  return names;
}

/** A status's label ("Waiting for daily limit"); an unknown status as it is. */
export function statusLabel(status) {
  return byStatus.get(status)?.label ?? status;
}

/** What a status means, where the label alone does not say it; else null. */
export function statusTitle(status) {
  return byStatus.get(status)?.title || null;
}

/** Still moving: a job is done once none of its invitations is in flight. */
export function isInFlight(status) {
  return Boolean(byStatus.get(status)?.in_flight);
}

/** On its way or delivered: a send leaves the guest out unless asked to send again. */
export function holdsGuest(status) {
  return Boolean(byStatus.get(status)?.holds_guest);
}

/** Failed in a way a retry may mend. */
export function isRetryable(status) {
  return Boolean(byStatus.get(status)?.retryable);
}

/** Reached (or reaching) the guest: a reminder may follow. */
export function isReached(status) {
  return Boolean(byStatus.get(status)?.reached);
}

/** A flag's words; an unknown flag as it is. */
export function flagWords(flag) {
  return Object.hasOwn(facts.flags, flag) ? facts.flags[flag] : flag;
}

/** The API's words for a reason code; an unknown code as it is. */
export function reasonWords(code) {
  return Object.hasOwn(facts.reasons, code) ? facts.reasons[code] : code;
}
