// What guests answered: a guest's answer in the table, the headcount, and
// "remind now" for those reached who have not answered.

import { api } from './api.js';
import { ANSWERS, ANSWER_LABEL, VIA_LABEL, shortTime, longTime, escapeHtml as esc, plural, num } from './format.js';
import { watchJob } from './progress.js';
import { state, hooks } from './state.js';
import { pollNow } from './sync.js';
import { $, showError, announce } from './ui.js';

/** A guest's answer: a badge, companions, and how and when it came. */
export function answerHtml(rsvp) {
  if (!rsvp) return '<span class="answer-none muted" data-answer="none">No answer yet</span>';
  const plus = rsvp.companions ? ` <span class="muted">+${num(rsvp.companions)}</span>` : '';
  return `<span class="badge ans-${esc(rsvp.answer)}" data-answer="${esc(rsvp.answer)}">${esc(ANSWER_LABEL[rsvp.answer] ?? rsvp.answer)}</span>${plus}`
    + `<br><span class="muted small">${esc(VIA_LABEL[rsvp.via] ?? rsvp.via)}, <time datetime="${esc(rsvp.at)}" title="${esc(longTime(rsvp.at))}">${esc(shortTime(rsvp.at))}</time></span>`;
}

/** A guest's reply not yet answered for: newer than their latest answer. */
export function unreadReply(row) {
  const reply = state.replies.get(row.guest_id);
  if (!reply) return null;
  return !row.rsvp || reply.at > row.rsvp.at ? reply : null;
}

/** What a guest wrote, in the answer cell of their row. */
export function replyHtml(row) {
  const reply = unreadReply(row);
  if (!reply) return '';
  return `<br><span class="reply small" data-reply>Wrote: “<bdi dir="auto">${esc(reply.text)}</bdi>”</span>`;
}

/** "Replies to read": what guests wrote that is not an answer, each with one click to record Yes, No or Maybe. */
export function renderReplies() {
  const box = $('replies');
  const rows = [...state.guests.values()]
    .map((row) => ({ row, reply: unreadReply(row) }))
    .filter((x) => x.reply)
    .sort((a, b) => b.reply.at.localeCompare(a.reply.at));
  box.hidden = !state.event || rows.length === 0;
  $('replies-count').textContent = num(rows.length);
  const html = rows.slice(0, 50).map(({ row, reply }) => `<li data-guest-id="${esc(row.guest_id)}">
      <p class="reply-text"><bdi dir="auto" class="name">${esc(row.name)}</bdi> wrote
        <time datetime="${esc(reply.at)}" title="${esc(longTime(reply.at))}">${esc(shortTime(reply.at))}</time>:
        “<bdi dir="auto">${esc(reply.text)}</bdi>”</p>
      <div class="row wrap" role="group" aria-label="Record ${esc(row.name)}'s answer">
        ${ANSWERS.filter((a) => a !== 'none').map((a) => `<button type="button" class="secondary small record" data-answer="${esc(a)}" aria-label="Record ${esc(ANSWER_LABEL[a])} for ${esc(row.name)}">${esc(ANSWER_LABEL[a])}</button>`).join('')}
      </div>
    </li>`).join('');
  const list = $('replies-list');
  if (list.dataset.html !== html) {
    list.innerHTML = html;
    list.dataset.html = html;
  }
}

/** One click on a reply: the organizer records what the guest meant. */
async function recordFromReply(event) {
  const button = event.target.closest('button.record');
  if (!button || !state.event) return;
  const guestId = button.closest('li').dataset.guestId;
  const row = state.guests.get(guestId);
  button.disabled = true;
  try {
    const { body } = await api.putRsvp(state.event.event_id, guestId, button.dataset.answer);
    if (row && body?.rsvp) state.guests.set(guestId, { ...row, rsvp: body.rsvp });
    announce(`Recorded ${ANSWER_LABEL[button.dataset.answer]} for ${row?.name ?? guestId}.`);
  } catch (e) {
    button.disabled = false;
    showError('Could not record the answer', e);
  } finally {
    hooks.renderRows();
  }
}

/** Coming / not coming / maybe / no answer yet, and companions: once the whole list is read. */
export function renderHeadcount(byFilter, companions, total) {
  const box = $('headcount');
  box.hidden = !state.event || !state.loaded || total === 0;
  for (const a of ANSWERS) {
    const text = num(byFilter[`answer:${a}`] ?? 0);
    if ($(`hc-${a}`).textContent !== text) $(`hc-${a}`).textContent = text;
  }
  const text = num(companions);
  if ($('hc-companions').textContent !== text) $('hc-companions').textContent = text;
}

/** "Remind now": once a day per event; the API says if today's was already sent. */
async function remindNow() {
  if (!state.event || !state.loaded) return;
  const button = $('remind-now');
  const free = state.sender?.free_now;
  const places = typeof free === 'number'
    ? ` Each reminder to a guest not messaged in the last 24 hours takes one of today's ${num(free)} free places of WhatsApp's daily limit.`
    : '';
  if (!window.confirm(`${button.textContent}? They get the event's reminder on WhatsApp (once a day).${places}`)) return;
  button.disabled = true;
  try {
    const { body } = await api.remindNow(state.event.event_id);
    if (body.already) announce("Today's reminder was already sent: nobody was reminded again.");
    else {
      const wrote = body.wrote ? ` ${plural(body.wrote, 'guest')} who wrote ${body.wrote === 1 ? 'was' : 'were'} not reminded: see Replies to read.` : '';
      announce((body.reminded ? `Reminding ${plural(body.reminded, 'guest')}.` : 'Nobody to remind: every guest reached has answered or written.') + wrote);
    }
    if (body.reminded) watchJob(body.job_id, { announce: true });
  } catch (e) {
    showError('Could not send the reminders', e);
  } finally {
    // Through the hook: guest-list.js imports this module for the answers it draws.
    hooks.renderCounts();
    pollNow();
  }
}

export function initAnswers() {
  $('remind-now').addEventListener('click', remindNow);
  $('replies-list').addEventListener('click', recordFromReply);
}
