// What every view shares: elements by id, errors shown until dismissed, the
// polite status line, a form field's error, and a time in a <time>.

import { ApiError } from './api.js';
import { escapeHtml as esc, longTime, clockTime } from './format.js';

export const $ = (id) => document.getElementById(id);

const shownErrors = new Map();

/** An error in words: the API's message, field, status, code and request. */
export function errorDetail(err) {
  return err instanceof ApiError
    ? `${err.message}${err.field && !err.message.startsWith(err.field) ? ` (field: ${err.field})` : ''} [${err.status || 'no answer'} ${err.code}; ${err.method} ${err.path}]`
    : String(err?.message ?? err);
}

/** Shows an error (from the API or the page) until dismissed; never swallowed. */
export function showError(context, err) {
  if (err?.name === 'AbortError') return;
  console.error(context, err);
  const detail = errorDetail(err);
  const key = `${context}|${detail}`;
  const existing = shownErrors.get(key);
  if (existing) {
    existing.count++;
    existing.el.querySelector('.count').textContent = ` (${existing.count} times)`;
    return;
  }
  const el = document.createElement('div');
  el.className = 'error';
  el.innerHTML = `<p><strong>${esc(context)}:</strong> ${esc(detail)}<span class="count"></span></p>
    <button type="button" class="secondary small">Dismiss</button>`;
  el.querySelector('button').setAttribute('aria-label', `Dismiss error: ${context}`);
  el.querySelector('button').addEventListener('click', () => {
    el.remove();
    shownErrors.delete(key);
  });
  shownErrors.set(key, { el, count: 1 });
  $('errors').append(el);
}

/** Says `text` in the status line (read out politely by screen readers). */
export function announce(text) {
  $('status').textContent = text;
}

/** Clears a form's field errors (fieldError's). */
export function clearFieldErrors(form) {
  form.querySelectorAll('.field-error').forEach((p) => { p.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
}

/** Marks a field invalid and says why under it (its `${id}-error` element, which it is then described by). */
export function fieldError(inputId, message) {
  const input = $(inputId);
  input.setAttribute('aria-invalid', 'true');
  const p = $(`${inputId}-error`);
  p.textContent = message;
  input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), p.id].filter(Boolean).join(' ').split(' ').filter((v, i, a) => a.indexOf(v) === i).join(' '));
}

/** The local stack's answer for a route this API does not have (yet). */
export function isMissingRoute(e) {
  return e instanceof ApiError && (e.status === 404 || e.status === 405) && /no such route|not allowed on this path|^Not Found$/i.test(e.message);
}

/** A local time to wait for, in a <time> with the full date as its title. */
export function timeHtml(iso) {
  return `<time datetime="${esc(iso)}" title="${esc(longTime(iso))}">${esc(clockTime(iso))}</time>`;
}
