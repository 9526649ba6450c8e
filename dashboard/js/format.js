// Words and times for what the API returns. The statuses' words and sets,
// the flags' words and the limits are the API's own (facts.js), not here.

/** A reminder's job: the API names reminder jobs `rem_…`. */
export function isReminderJob(jobId) {
  return Boolean(jobId?.startsWith('rem_'));
}

/** A guest's invitation at the number they have now: none when it went to
 * a number since changed (the API says `sent_to_other_number`). */
export function invitationHere(row) {
  const i = row?.invitation;
  return i && !i.sent_to_other_number ? i : null;
}

/** A guest's answer ("none": no answer yet), as the API names them. */
export const ANSWERS = ['yes', 'no', 'maybe', 'none'];
export const ANSWER_LABEL = { yes: 'Coming', no: 'Not coming', maybe: 'Maybe', none: 'No answer yet' };
/** The filter menu's words for each answer. */
export const ANSWER_FILTER_LABEL = { yes: 'Answered: coming', no: 'Answered: not coming', maybe: 'Answered: maybe', none: 'No answer yet' };
/** How an answer came. */
export const VIA_LABEL = { button: 'WhatsApp button', typed: 'WhatsApp reply', link: 'RSVP page', organizer: 'entered by you' };

/** Why an invitation failed or was skipped, in words, with the code: the
 * API gives the words (one table, shared/src/adapters/twilio/codes.rs). */
export function reason(inv) {
  if (!inv || (!inv.error_code && !inv.error_message)) return '';
  const words = inv.error_message || 'Twilio could not send the message';
  const when = inv.due_at ? `; tried again at ${shortTime(inv.due_at)}` : '';
  return inv.error_code ? `${words}${when} (error ${inv.error_code})` : `${words}${when}`;
}

/** What the organizer can do about it, as the API says. */
export function whatToDo(inv) {
  return inv?.what_to_do ?? '';
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

/**
 * A local time to wait for: "21:40" today, else with the date
 * ("Tue, 1 Dec, 09:15"; the year too when it is another year).
 */
export function clockTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const now = new Date();
  const time = { hour: '2-digit', minute: '2-digit' };
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], time);
  const date = { weekday: 'short', day: 'numeric', month: 'short' };
  if (d.getFullYear() !== now.getFullYear()) date.year = 'numeric';
  return d.toLocaleString([], { ...date, ...time });
}

/** A count with the reader's thousands separators. */
export function num(n) {
  return Number(n ?? 0).toLocaleString();
}

/** The daily limit's window in words: "a day", else "per 30 seconds" etc. */
export function windowWords(seconds) {
  if (!seconds || seconds === 86400) return 'a day';
  if (seconds % 3600 === 0) return `per ${plural(seconds / 3600, 'hour')}`;
  if (seconds % 60 === 0) return `per ${plural(seconds / 60, 'minute')}`;
  return `per ${plural(seconds, 'second')}`;
}

/** "250 new guests a day", or '' when there is no limit (or it is not known). */
export function dailyLimitWords(limit, windowSeconds) {
  if (typeof limit !== 'number') return '';
  return `${num(limit)} new ${limit === 1 ? 'guest' : 'guests'} ${windowWords(windowSeconds)}`;
}

/**
 * An amount of money in the reader's format ("$40.30"); amounts under 1 keep
 * up to four decimals ("$0.0675"), as an estimate per message needs them.
 */
export function money(amount, currency) {
  const n = Number(amount ?? 0);
  try {
    const plain = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const { minimumFractionDigits: min, maximumFractionDigits: max } = plain.resolvedOptions();
    if (n === 0 || Math.abs(n) >= 1 || max >= 4) return plain.format(n);
    return new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: min, maximumFractionDigits: 4 }).format(n);
  } catch {
    // Not a currency this browser knows: the number and the code as given.
    return `${n.toLocaleString()} ${currency ?? ''}`.trim();
  }
}

/**
 * Why a dry run would skip guests, by the API's code, for a group of `n`
 * (the API's own message for codes not named here). The page's phrasing
 * for a group ("3 guests you opted out"), which the API's words for one
 * invitation do not give.
 */
export const SKIP_WORDS = {
  opted_out_by_you: (n) => `${plural(n, 'guest')} you opted out`,
  opted_out: (n) => `${plural(n, 'guest')} who opted out themselves (they sent STOP)`,
  marketing_to_us: (n) => `${plural(n, 'guest')} with a US number: WhatsApp does not deliver Marketing templates to US numbers`,
};

/** "Marketing" for a template category; '' for free-form text. */
export function categoryWords(category) {
  return category ? category[0].toUpperCase() + category.slice(1) : '';
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
  return `${num(n)} ${n === 1 ? one : many}`;
}

/** A wait in words, rounded as a person would say it: "40 s", "3 min", "1 h 20 min". */
export function durationWords(seconds) {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${num(h)} h ${m} min` : `${num(h)} h`;
}
