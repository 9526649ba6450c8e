// The HTTP API (openapi.yaml), called with fetch. Every failure becomes an
// ApiError naming the request, the status, the API's code and message, and
// the field at fault, so the page can show it.

const TOKEN_KEY = 'rsvp:token';

export class ApiError extends Error {
  constructor({ method, path, status = 0, code, message, field = null }) {
    super(message);
    this.name = 'ApiError';
    this.method = method;
    this.path = path;
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** The API's base URL: config.js's RSVP_API_BASE ("" is this page's origin). */
export function apiBase() {
  const base = typeof window !== 'undefined' ? window.RSVP_API_BASE : '';
  return String(base ?? '').replace(/\/+$/, '');
}

/** The organizer's token (a deployed stack's JWT); none is needed locally. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(value, remember) {
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  const v = value.trim().replace(/^Bearer\s+/i, '');
  if (v) (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, v);
}

/**
 * One request. `body` is sent as JSON; `headers` are added. Network failures
 * are retried `retries` times (only for requests safe to repeat).
 * Resolves to {status, body}; rejects with ApiError.
 */
export async function request(method, path, { body, headers = {}, retries = 0, signal } = {}) {
  const url = apiBase() + path;
  const init = { method, headers: { accept: 'application/json', ...headers }, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const bearer = token();
  if (bearer) init.headers.authorization = `Bearer ${bearer}`;
  let response;
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch(url, init);
      break;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (attempt >= retries) {
        throw new ApiError({
          method, path, status: 0, code: 'network_error',
          message: `could not reach the API at ${apiBase() || location.origin} (offline, blocked by CORS, or a wrong RSVP_API_BASE in config.js)`,
        });
      }
      await sleep(500 * 2 ** attempt);
    }
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (response.ok) return { status: response.status, body: json };
  const err = json?.error;
  let message = err?.message ?? json?.message ?? (text.trim().slice(0, 300) || response.statusText || 'no details');
  let code = err?.code ?? (response.status === 401 ? 'unauthorized' : response.status === 429 ? 'throttled' : `http_${response.status}`);
  if (response.status === 401) {
    message += bearer ? ' (the access token was refused: sign in again and paste a new one under Connection)' : ' (this API needs an access token: paste one under Connection)';
  }
  throw new ApiError({ method, path, status: response.status, code, message, field: err?.field ?? null });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const enc = encodeURIComponent;

export const api = {
  /** The statuses, flags, reason codes and limits the page takes from the API (facts.js). */
  facts: () => request('GET', '/api/whatsapp/facts', { retries: 2 }),
  listEvents: () => request('GET', '/api/whatsapp/events', { retries: 2 }),
  getEvent: (id) => request('GET', `/api/whatsapp/events/${enc(id)}`, { retries: 2 }),
  putEvent: (id, event) => request('PUT', `/api/whatsapp/events/${enc(id)}`, { body: event, retries: 2 }),
  sendBulk: async (body, idempotencyKey) => {
    // The key makes a resend of the same request safe: the API finishes the
    // first one and answers its 202 again. So "still in progress" while the
    // first try runs, or a gateway's timeout, is sent again with the same key.
    for (let attempt = 0; ; attempt++) {
      try {
        return await request('POST', '/api/whatsapp/send-bulk', { body, headers: { 'idempotency-key': idempotencyKey }, retries: 2 });
      } catch (e) {
        const again = e.code === 'in_progress' || [502, 503, 504].includes(e.status);
        if (!again || attempt >= 5) throw e;
        await sleep(2000 * (attempt + 1));
      }
    }
  },
  /**
   * What sending `body` would do (who is queued, skipped, rejected; the wait
   * for the daily limit; the cost), writing and sending nothing. Carries no
   * Idempotency-Key (the API ignores one here), and is safe to repeat.
   */
  dryRun: (body, signal) => request('POST', '/api/whatsapp/send-bulk', { body: { ...body, dry_run: true }, retries: 1, signal }),
  /** A job's counts, `expected_finish` and `waiting` (why some wait for the daily limit). */
  jobStatus: (jobId) => request('GET', `/api/whatsapp/status/${enc(jobId)}`),
  /** The WhatsApp sender's profile: rate, daily limit and how much of it is used. */
  sender: () => request('GET', '/api/whatsapp/sender', { retries: 1 }),
  retry: (invitationId) => request('POST', `/api/whatsapp/retry/${enc(invitationId)}`),
  retryFailed: (body) => request('POST', '/api/whatsapp/retry-failed', { body }),
  /** Reminds the event's guests reached and not answered; once a day, so safe to repeat. */
  remindNow: (eventId) => request('POST', `/api/whatsapp/remind/${enc(eventId)}`, { retries: 1 }),
  /** What guests wrote that was not an answer, newest first: {items: [{guest_id, text, at}]}. */
  replies: (eventId) => request('GET', `/api/whatsapp/replies/${enc(eventId)}?limit=500`, { retries: 1 }),
  /** Records a guest's answer as the organizer; the same answer twice writes nothing. */
  putRsvp: (eventId, guestId, answer) =>
    request('PUT', `/api/whatsapp/rsvps/${enc(eventId)}/${enc(guestId)}`, { body: { answer }, retries: 1 }),
  listTemplates: () => request('GET', '/api/whatsapp/templates', { retries: 1 }),
  previewTemplate: (templateId, body) =>
    request('POST', `/api/whatsapp/templates/${enc(templateId)}/preview`, { body }),
  /**
   * One page of an event's guests, each with its latest invitation and
   * whether the guest opted out: {items, next_cursor, changes, removed}.
   * With `since` (an earlier answer's `changes`), only the guests changed
   * since then, and the ids of those removed. `limit`: at most the API's
   * guest_page (facts.js). It only reads: safe to repeat.
   */
  listGuests: (eventId, { limit, cursor, since }) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    if (since) q.set('since', since);
    return request('GET', `/api/whatsapp/guests/${enc(eventId)}?${q}`, { retries: 1 });
  },
  /**
   * Adds guests to an event's list, or updates them (by id, else by phone),
   * at most the API's guest_import (facts.js) a request:
   * {created, updated, unchanged, rejected, changes}. Merging the same rows
   * twice changes nothing, so a request whose answer was lost is safe to repeat.
   */
  importGuests: (eventId, guests) =>
    request('POST', `/api/whatsapp/guests/${enc(eventId)}`, { body: { guests }, retries: 1 }),
  /** A guest's new name and phone; answers the guest's row. */
  putGuest: (eventId, guestId, guest) =>
    request('PUT', `/api/whatsapp/guests/${enc(eventId)}/${enc(guestId)}`, { body: guest, retries: 1 }),
  deleteGuest: (eventId, guestId) =>
    request('DELETE', `/api/whatsapp/guests/${enc(eventId)}/${enc(guestId)}`, { retries: 1 }),
};
