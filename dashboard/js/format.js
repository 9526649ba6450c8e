// Words and times for what the API returns.

export const STATUSES = ['queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'undelivered', 'skipped'];

export const STATUS_LABEL = {
  queued: 'Queued',
  sending: 'Sending',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Failed',
  undelivered: 'Undelivered',
  skipped: 'Skipped',
};

/** Still moving: a job is done once none of its invitations is in these. */
export const ACTIVE = new Set(['queued', 'sending', 'sent']);
export const RETRYABLE = new Set(['failed', 'undelivered']);

/** Why an invitation failed or was skipped, in words, with the code: the
 * API gives the words (one table, shared/src/adapters/twilio/codes.rs). */
export function reason(inv) {
  if (!inv || (!inv.error_code && !inv.error_message)) return '';
  const words = inv.error_message || 'Twilio could not send the message';
  return inv.error_code ? `${words} (error ${inv.error_code})` : words;
}

/** What the organizer can do about it, as the API says. */
export function whatToDo(inv) {
  return inv?.what_to_do ?? '';
}

export const FLAG_WORDS = {
  send_unconfirmed:
    'Unconfirmed: sending was interrupted, so Twilio may or may not have taken the message. Retry only if the guest did not get it.',
};

/** Skipped for the guest's STOP, or for the organizer's own opt-out. */
export const OPTED_OUT_CODES = new Set(['opted_out', 'opted_out_by_you']);

export function isOptedOutInvitation(inv) {
  return inv?.status === 'skipped' && OPTED_OUT_CODES.has(inv?.error_code);
}

/** A short local time for a timestamp: the time today, else date and time. */
export function shortTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

export function longTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : d.toLocaleString([], { dateStyle: 'full', timeStyle: 'long' });
}

/** An event's start as written (its own offset's wall time), e.g. "Sat, 1 May 2027, 17:00". */
export function eventDate(startsAt) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(startsAt ?? '');
  if (!m) return startsAt ?? '';
  const [, y, mo, da, h, mi] = m;
  const d = new Date(Date.UTC(+y, +mo - 1, +da, +h, +mi));
  return d.toLocaleString([], { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function escapeHtml(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}
