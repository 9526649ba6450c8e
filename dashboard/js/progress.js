// The sends followed: each job polled at a pace that follows its moves, its
// bar, counts, expected finish and wait for the daily limit (step 4), the
// ones running pinned to the top, and the WhatsApp sender's profile.

import { api, ApiError } from './api.js';
import { statusNames, statusLabel, statusTitle, isInFlight } from './facts.js';
import {
  shortTime, clockTime, escapeHtml as esc, plural, num, dailyLimitWords, durationWords, isReminderJob,
} from './format.js';
import { state, hooks } from './state.js';
import { storeJob } from './storage.js';
import { pollNow, hurryFollow } from './sync.js';
import { $, showError, announce, timeHtml } from './ui.js';

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
/** A send's rate is measured over its status answers of this long. */
const RATE_WINDOW_MS = 10000;

/** What the bars and the pinned bars show now: redrawn only when it changes. */
let lastProgressHtml = '';
let lastLiveHtml = '';
/** Whether the event's latest send is followed (once, so its bar shows). */
let latestFollowed = false;

let senderLoading = null;

/**
 * Reads the WhatsApp sender's profile (its rate and daily limit), unless it
 * was read less than `maxAgeMs` ago. Quiet on failure: the page works
 * without it, so it is only logged.
 */
export async function loadSender({ maxAgeMs = 0 } = {}) {
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
  if (s.learned_limit != null) {
    text += `; WhatsApp allows ${num(s.learned_limit)} now (it refused a message for its daily limit)`;
  }
  if (s.free_now === 0 && s.next_free_at) {
    text += `; the limit is reached, the next place frees at ${clockTime(s.next_free_at)}`;
  }
  el.textContent = `${text}.`;
  el.dataset.dailyLimit = String(s.daily_unique_recipients ?? '');
  el.hidden = false;
}

/**
 * Follows every job with an invitation still in flight, and once the
 * event's latest send (so its bar shows, done or not).
 */
export function followJobs() {
  let latest = null;
  for (const row of state.guests.values()) {
    const inv = row.invitation;
    if (!inv?.job_id) continue;
    if (isInFlight(inv.status)) ensureWatch(inv.job_id);
    // Today's reminder: its status says when it started (the Remind button).
    else if (inv.job_id === state.reminderJob) ensureWatch(inv.job_id);
    if (!latest || (Date.parse(inv.updated_at) || 0) > (Date.parse(latest.updated_at) || 0)) latest = inv;
  }
  if (!latestFollowed && state.loaded) {
    latestFollowed = true;
    if (latest) ensureWatch(latest.job_id);
  }
}

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
      const firstRead = !this.job;
      this.job = body;
      this.sample(body);
      // Today's reminder: the Remind button gives its time once it is known.
      if (firstRead && this.jobId === state.reminderJob) hooks.renderCounts();
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
export function watchJob(jobId, { announce = false, stored = false } = {}) {
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
  const parts = statusNames().filter((s) => job.counts[s]).map((s) => `${job.counts[s]} ${statusLabel(s).toLowerCase()}`);
  const what = isReminderJob(job.job_id) ? plural(job.total, 'reminder') : plural(job.total, 'invitation');
  announce(`Sending finished for ${what}: ${parts.join(', ')}.`);
}

/** Invitations no longer in flight (neither queued, waiting, sending nor sent). */
function finished(job) {
  return job.total - statusNames().filter(isInFlight).reduce((n, s) => n + (job.counts[s] ?? 0), 0);
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

/** A large send's guests being added behind its answer, and those left out. */
function admissionHtml(job) {
  const a = job.admission;
  if (!a) return '';
  const added = a.guests - a.pending;
  const left = a.left_out > 0
    ? ` ${num(a.left_out)} left out: an earlier invitation already holds ${a.left_out === 1 ? 'that guest' : 'them'}.`
    : '';
  if (a.state === 'admitting') {
    return `<p class="admission" data-state="admitting" data-pending="${a.pending}">Adding guests to the send: ${num(added)} of ${num(a.guests)}.${left}</p>`;
  }
  return left ? `<p class="admission" data-state="admitted" data-left-out="${a.left_out}">${left.trim()}</p>` : '';
}

export function renderProgress() {
  const jobs = [...state.jobs.values()].filter((w) => w.job)
    .sort((a, b) => (b.job.created_at ?? '').localeCompare(a.job.created_at ?? ''))
    .slice(0, 3);
  const area = $('progress');
  const html = jobs.map((w) => {
    const job = w.job;
    const done = finished(job);
    const pct = job.total ? Math.floor((done * 100) / job.total) : 100;
    const reminders = isReminderJob(job.job_id);
    const noun = reminders ? (job.total === 1 ? 'reminder' : 'reminders') : (job.total === 1 ? 'invitation' : 'invitations');
    const stateText = job.done ? 'Done:' : job.admission?.state === 'admitting' ? 'Adding guests, sending:' : reminders ? 'Reminding:' : 'Sending:';
    const id = `job-${job.job_id}`;
    return `<div class="job" data-job-id="${esc(job.job_id)}" data-total="${job.total}" data-done="${job.done}" data-percent="${pct}">
      <p class="job-head" id="${esc(id)}-label"><strong>${stateText}</strong>
        ${num(done)} of ${num(job.total)} ${noun} finished (${pct}%)
        <span class="muted">· started ${esc(shortTime(job.created_at))}</span></p>
      <progress id="${esc(id)}-bar" max="${job.total}" value="${done}" aria-labelledby="${esc(id)}-label">${pct}%</progress>
      ${admissionHtml(job)}${etaHtml(job)}${waitingHtml(job)}
      <ul class="counts" aria-label="Invitations by status">${statusNames().filter((s) => job.counts[s] > 0)
        .map((s) => `<li data-status="${esc(s)}"><span class="badge st-${esc(s)}"${statusTitle(s) ? ` title="${esc(statusTitle(s))}"` : ''}>${esc(statusLabel(s))}</span> <span class="n">${num(job.counts[s])}</span></li>`).join('')}</ul>
    </div>`;
  }).join('');
  if (html !== lastProgressHtml) {
    area.innerHTML = html;
    lastProgressHtml = html;
  }
  renderLive();
}

/**
 * Seconds until the job's last invitation has left, and from what: the
 * daily limit's window while some wait for it, else the rate measured from
 * successive status answers once there is one, else the sender's
 * configured rate (the job's expected finish). Null when unknown.
 */
function timeLeft(watch) {
  const job = watch.job;
  const c = job.counts ?? {};
  const pending = job.admission?.pending ?? 0;
  const remaining = (c.queued ?? 0) + (c.waiting ?? 0) + (c.sending ?? 0) + pending;
  if (!remaining) return null;
  const untilFinish = (Date.parse(job.expected_finish ?? '') - Date.now()) / 1000;
  if ((c.waiting ?? 0) > 0 && untilFinish > 0) return { seconds: untilFinish, from: 'window' };
  const rate = watch.rate();
  if (rate > 0) return { seconds: remaining / rate, from: 'measured' };
  return untilFinish > 0 ? { seconds: untilFinish, from: 'configured' } : null;
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
    const left = timeLeft(w);
    const parts = [`${num(done)} of ${num(job.total)} finished (${pct}%)`];
    if (rate !== null) parts.push(rateWords(rate));
    if (left !== null) parts.push(`about ${durationWords(left.seconds)} left`);
    const id = `live-${job.job_id}`;
    return `<div class="live-job" data-job-id="${esc(job.job_id)}" data-percent="${pct}"`
      + ` data-rate="${rate === null ? '' : rate.toFixed(2)}" data-seconds-left="${left === null ? '' : Math.round(left.seconds)}" data-left-from="${left?.from ?? ''}">
      <p id="${esc(id)}-label"><strong>${isReminderJob(job.job_id) ? 'Reminding' : 'Sending'}:</strong> ${esc(parts.join(' · '))}</p>
      <progress max="${job.total}" value="${done}" aria-labelledby="${esc(id)}-label">${pct}%</progress>
    </div>`;
  }).join('');
  if (html === lastLiveHtml) return;
  lastLiveHtml = html;
  $('live').innerHTML = html;
  $('live').hidden = !html;
}

/** Another event is picked: the sends followed stop, and their bars go. */
export function resetProgress() {
  for (const watch of state.jobs.values()) watch.stop();
  state.jobs.clear();
  latestFollowed = false;
  $('progress').innerHTML = '';
  lastProgressHtml = '';
}
