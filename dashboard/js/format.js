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

// Twilio's codes in words, for an invitation stored without a message
// (the sender normally stores the words itself; see shared/src/twilio).
const CODE_WORDS = {
  20429: 'Twilio is rate limiting us; it will be tried again',
  21211: 'The phone number is not valid',
  21408: 'Sending to this country is not enabled on the Twilio account',
  21610: 'The guest has unsubscribed (replied STOP)',
  21614: 'The number is not a mobile number',
  30003: 'The phone is unreachable (off or out of coverage)',
  30005: 'The number does not exist',
  30006: 'The number cannot receive this message (landline or unreachable carrier)',
  30007: 'The carrier filtered the message',
  30008: 'Delivery failed for an unknown reason',
  63003: 'The number is not on WhatsApp',
  63016: 'Outside the 24-hour window: an approved template is needed',
  63018: 'WhatsApp rate limit reached; it will be tried again',
  63024: 'The number is not a valid WhatsApp recipient',
  opted_out: 'The guest opted out of WhatsApp messages, so nothing was sent',
  send_failed: 'The message could not be handed to Twilio',
  event_missing: 'The event was deleted before the message was sent',
  template_error: 'The message template could not be rendered for this guest',
  template_missing: 'The template version this invitation uses no longer exists',
  template_too_long: "The message is longer than WhatsApp's 1,600 characters for this guest",
  not_queued: 'The invitation was saved but could not be queued for sending',
};

/** Why an invitation failed or was skipped, in words, with the code. */
export function reason(inv) {
  if (!inv || (!inv.error_code && !inv.error_message)) return '';
  const words = inv.error_message || CODE_WORDS[inv.error_code] || 'Twilio could not send the message';
  return inv.error_code ? `${words} (error ${inv.error_code})` : words;
}

export const FLAG_WORDS = {
  send_unconfirmed:
    'Unconfirmed: sending was interrupted, so Twilio may or may not have taken the message. Retry only if the guest did not get it.',
};

export function isOptedOutInvitation(inv) {
  return inv?.status === 'skipped' && inv?.error_code === 'opted_out';
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
