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
  if (!window.confirm(`${button.textContent}? They get the event's reminder on WhatsApp (once a day).`)) return;
  button.disabled = true;
  try {
    const { body } = await api.remindNow(state.event.event_id);
    if (body.already) announce("Today's reminder was already sent: nobody was reminded again.");
    else announce(body.reminded ? `Reminding ${plural(body.reminded, 'guest')}.` : 'Nobody to remind: every guest reached has answered.');
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
}
