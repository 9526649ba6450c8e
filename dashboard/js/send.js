// Sending: the confirmation (checked by a dry run first), the send itself
// in parts the API takes, under a key that makes a repeat safe; and retries
// of failed invitations, one or all.

import { api } from './api.js';
import { mergeDryRuns, renderCheck } from './dry-run.js';
import { limits, holdsGuest, statusLabel } from './facts.js';
import { invitationHere, plural, num } from './format.js';
import { sortedRows, canSelect, renderRows, renderCounts } from './guest-list.js';
import { watchJob } from './progress.js';
import { state } from './state.js';
import { storeJob } from './storage.js';
import { pollNow, setRowInvitation, rowByInvitation } from './sync.js';
import { marketingTemplate } from './templates.js';
import { $, showError, announce } from './ui.js';

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** Where the key of a send not yet answered is kept (this tab, across reloads). */
const PENDING_SEND = 'rsvp.pendingSend';

/**
 * The Idempotency-Key for sending these guests: the same one until the API
 * has answered every part of the send. A click again after a network
 * failure, a timeout or a reload is the same request, so the API finishes
 * the first one instead of messaging everyone a second time.
 */
function sendKey(eventId, templateId, guests, resend) {
  const signature = JSON.stringify([eventId, templateId ?? '', guests.map((g) => g.guest_id).sort(), Boolean(resend)]);
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(PENDING_SEND) ?? 'null');
  } catch {
    saved = null;
  }
  if (saved?.signature === signature) return saved.key;
  const key = newKey();
  sessionStorage.setItem(PENDING_SEND, JSON.stringify({ signature, key }));
  return key;
}

function selectedGuests() {
  if (!state.loaded) return [];
  return sortedRows().filter((r) => canSelect(r) && state.selected.has(r.guest_id));
}

/**
 * The send the page would make now: {event, guests, templateId, resend};
 * `resend`: also to guests who already have an invitation on its way or
 * delivered (the API leaves them out otherwise).
 */
function currentSend() {
  return { event: state.event, guests: selectedGuests(), templateId: $('template-select').value || undefined, resend: false };
}

/**
 * A send's requests, as the API takes them: parts of at most the API's
 * bulk_guests, [{chunk, body}]. The dry run and the send use the same ones.
 */
function bulkParts({ event, guests, templateId, resend }) {
  const parts = [];
  const max = limits.bulk_guests;
  for (let start = 0; start < guests.length; start += max) {
    const chunk = guests.slice(start, start + max);
    const body = {
      event_id: event.event_id,
      guests: chunk.map((g) => {
        const out = { guest_id: g.guest_id, name: g.name, phone: g.phone };
        if (g.rsvp_token) out.rsvp_token = g.rsvp_token;
        return out;
      }),
    };
    if (templateId) body.template_id = templateId;
    if (resend) body.resend = true;
    parts.push({ chunk, body });
  }
  return parts;
}

/** The send the confirmation is open for (checked by a dry run), or null. */
let pendingSend = null;
let dryRunAbort = null;

function askToSend() {
  const send = currentSend();
  const { guests, event } = send;
  if (!guests.length || !event) return;
  // The page's count of those the API will leave out, until the dry run says.
  send.invited = guests.filter((g) => holdsGuest(invitationHere(g)?.status)).length;
  send.leftOut = null;
  const template = $('template-select').selectedOptions[0]?.textContent ?? 'Event default';
  $('confirm-title').textContent = `Send ${plural(guests.length, 'WhatsApp invitation')}?`;
  $('confirm-text').textContent = `${plural(guests.length, 'guest')} of ${event.name} will get a WhatsApp message now (template: ${template}).`;
  send.notes = [];
  // The page's own guesses, until the dry run answers with the API's counts.
  send.invitedNote = send.invited
    ? `${plural(send.invited, 'guest')} of them already ${send.invited === 1 ? 'has' : 'have'} an invitation on its way or delivered: left out unless sent again.`
    : '';
  $('resend').checked = false;
  const us = marketingTemplate() ? guests.filter((g) => g.phone?.startsWith('+1')).length : 0;
  send.usNote = us
    ? `${plural(us, 'guest')} with a +1 number: those in the US will be skipped (WhatsApp does not deliver Marketing templates to US numbers).`
    : '';
  pendingSend = send;
  const dialog = $('confirm');
  dialog.returnValue = '';
  checkSend(send);
  dialog.showModal();
}

/**
 * Asks the API what this send would do (a dry run with exactly its guests
 * and template), and shows it. Send stays disabled until the answer; if the
 * check fails, that is shown and sending is still allowed: it is advice.
 */
async function checkSend(send) {
  dryRunAbort?.abort();
  const abort = new AbortController();
  dryRunAbort = abort;
  renderCheck(send, { state: 'checking' });
  try {
    const parts = [];
    for (const { chunk, body } of bulkParts(send)) {
      const { body: res } = await api.dryRun(body, abort.signal);
      parts.push({ chunk, res: res ?? {} });
    }
    if (pendingSend !== send || abort.signal.aborted) return;
    renderCheck(send, { state: 'ready', result: mergeDryRuns(parts) });
  } catch (e) {
    if (e?.name === 'AbortError' || pendingSend !== send) return;
    console.warn('The dry run of the send failed', e);
    renderCheck(send, { state: 'failed', error: e });
  } finally {
    if (dryRunAbort === abort) dryRunAbort = null;
  }
}

async function sendSelected(send = currentSend()) {
  // Guests removed while the confirmation was open (another tab, a poll) are not sent.
  const guests = send.guests.filter((g) => state.guests.has(g.guest_id));
  send = { ...send, guests };
  const { event, templateId, resend } = send;
  if (!guests.length || !event || state.sending) return;
  state.sending = true;
  renderCounts();
  const key = sendKey(event.event_id, templateId, guests, resend);
  let queued = 0;
  let admitting = 0;
  const skipped = [];
  const leftOut = [];
  try {
    for (const [part, { chunk, body }] of bulkParts(send).entries()) {
      const { body: res } = await api.sendBulk(body, `${key}-${part}`);
      // A large send is answered first; its progress tells who is skipped or left out.
      if (res.admitting) admitting += res.accepted ?? 0;
      else queued += res.queued ?? res.accepted ?? 0;
      for (const skip of res.skipped ?? []) {
        const guest = chunk[skip.index];
        skipped.push(`${guest?.name ?? skip.guest_id} (${skip.message})`);
      }
      for (const x of res.left_out ?? []) leftOut.push({ ...x, guest: chunk[x.index] ?? null });
      showRejections(res, chunk);
      for (const g of chunk) state.selected.delete(g.guest_id);
      // Kept, so a reload shows this send's progress before the list is read.
      storeJob(event.event_id, res.job_id);
      watchJob(res.job_id, { announce: true });
    }
    sessionStorage.removeItem(PENDING_SEND);
    announce((admitting
      ? `Sending to ${plural(admitting + queued, 'guest')} for ${event.name}: adding them to the send now; the progress shows any skipped or left out.`
      : `Queued ${plural(queued, 'invitation')} for ${event.name}.`)
      + (skipped.length ? ` Not sent to ${num(skipped.length)}: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? '…' : ''}.` : '')
      + (leftOut.length ? ` ${leftOutWords(leftOut)}` : ''));
    showSendReport(leftOut);
  } catch (e) {
    showError('Could not send the invitations', e);
  } finally {
    state.sending = false;
    renderRows();
    $('guests-heading').focus();
    // The sent guests' rows (the send also adds them to the list) come with the next read.
    pollNow();
  }
}

/** "Left out 2 guests already invited: Ana (Delivered), Bo (Read)." */
function leftOutWords(leftOut) {
  const names = leftOut.slice(0, 5).map((x) => `${x.guest?.name ?? x.guest_id ?? '?'} (${statusLabel(x.status) ?? 'invited'})`);
  return `Left out ${plural(leftOut.length, 'guest')} already invited: ${names.join(', ')}${leftOut.length > 5 ? ` and ${num(leftOut.length - 5)} more` : ''}.`;
}

/** After a send: who the API left out for an invitation they already had, until the next send. */
function showSendReport(leftOut) {
  const p = $('send-report');
  p.hidden = leftOut.length === 0;
  p.dataset.leftOut = String(leftOut.length);
  p.textContent = leftOut.length
    ? `${leftOutWords(leftOut)} To message them once more, select them and tick "Send again" in the confirmation.`
    : '';
}

function showRejections(res, chunk) {
  const left = [...(res.rejected ?? []).map((r) => ({ guest: chunk[r.index], text: `${r.field}: ${r.message}` })),
    ...(res.duplicates ?? []).map((d) => ({ guest: chunk[d.index], text: `the same guest as ${chunk[d.duplicate_of]?.name ?? `entry ${d.duplicate_of}`}: sent once` }))];
  if (!left.length) return;
  showError(`The API left out ${plural(left.length, 'guest')}`,
    new Error(left.map((l) => `${l.guest?.name ?? '?'} (${l.guest?.phone ?? '?'}): ${l.text}`).join('; ')));
}

/** A retried invitation, as the retry answered, until the list's next read. */
function retried(row, attempt, status = 'queued') {
  setRowInvitation(row.guest_id, {
    status, attempt, error_code: null, error_message: null, error_action: null, what_to_do: null, flag: null,
    // A retry goes to the number the guest has now.
    sent_to_other_number: null,
  });
}

async function retryOne(invitationId, button) {
  const row = rowByInvitation(invitationId);
  const name = row?.name ?? invitationId;
  button.disabled = true;
  try {
    const { body } = await api.retry(invitationId);
    if (row) retried(row, body.attempt, body.status);
    // The API renders the new attempt as things are now, and says so.
    announce(`Retrying the invitation to ${name} (attempt ${body.attempt}). ${body.message ?? ''}`.trim());
    renderRows();
    if (row?.invitation?.job_id) watchJob(row.invitation.job_id, { announce: true });
  } catch (e) {
    showError(`Could not retry the invitation to ${name}`, e);
    button.disabled = false;
  } finally {
    pollNow();
  }
}

async function retryAllFailed() {
  if (!state.event || !state.loaded) return;
  const button = $('retry-all');
  button.disabled = true;
  try {
    const { body } = await api.retryFailed({ event_id: state.event.event_id });
    announce(body.retried ? `Retrying ${plural(body.retried, 'failed invitation')}.` : 'Nothing to retry: no invitation has failed.');
    const jobs = new Set();
    for (const id of body.invitation_ids ?? []) {
      const row = rowByInvitation(id);
      if (!row) continue;
      jobs.add(row.invitation.job_id);
      retried(row, (row.invitation.attempt ?? 1) + 1);
    }
    renderRows();
    for (const job of jobs) if (job) watchJob(job, { announce: true });
  } catch (e) {
    showError('Could not retry the failed invitations', e);
  } finally {
    renderCounts();
    pollNow();
  }
}

export function initSending() {
  $('send').addEventListener('click', askToSend);
  $('confirm').addEventListener('close', () => {
    // The guests and template checked are the ones sent.
    const send = pendingSend;
    pendingSend = null;
    dryRunAbort?.abort();
    dryRunAbort = null;
    $('dry-run').dataset.state = 'idle';
    if ($('confirm').returnValue === 'send' && send) sendSelected(send);
    else $('send').focus();
  });
  // Sending again to those already invited is a different send: check it again.
  $('resend').addEventListener('change', (e) => {
    if (!pendingSend) return;
    pendingSend.resend = e.target.checked;
    checkSend(pendingSend);
  });
  // A row's Retry (its Edit and Remove are guest-edit.js's), and Retry all failed.
  $('guest-rows').addEventListener('click', (e) => {
    const button = e.target.closest('button');
    if (!button || button.disabled) return;
    if (button.classList.contains('retry')) retryOne(button.dataset.invitation, button);
  });
  $('retry-all').addEventListener('click', retryAllFailed);
}
