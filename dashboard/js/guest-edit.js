// One guest, from the table's Edit and Remove: a dialog to change the
// name and phone, or to take the guest off the event's list.

import { api, ApiError } from './api.js';
import { guestProblems, normalizePhone } from './guests.js';
import { renderRows } from './guest-list.js';
import { state } from './state.js';
import { applyRows } from './sync.js';
import { $, showError, announce, clearFieldErrors, fieldError } from './ui.js';

/** The guest the dialog is open for: {guestId, mode: 'edit' | 'remove'}. */
let editing = null;

function openGuestDialog(guestId, mode) {
  const row = state.guests.get(guestId);
  if (!row || !state.loaded) return;
  editing = { guestId, mode };
  clearFieldErrors($('guest-form'));
  const edit = mode === 'edit';
  $('guest-dialog-title').textContent = edit ? `Edit ${row.name}` : `Remove ${row.name}?`;
  $('gd-fields').hidden = !edit;
  $('gd-text').textContent = edit ? ''
    : `${row.name} (${row.phone}) leaves this event's guest list. Invitations already sent to them are kept.`;
  $('gd-name').value = row.name;
  $('gd-phone').value = row.phone;
  $('gd-save').textContent = edit ? 'Save guest' : 'Remove guest';
  $('gd-save').classList.toggle('danger', !edit);
  $('guest-dialog').showModal();
  (edit ? $('gd-name') : $('gd-cancel')).focus();
}

function closeGuestDialog() {
  if ($('guest-dialog').open) $('guest-dialog').close();
}

/** Focus goes back to the row's button that opened the dialog (redrawn meanwhile), or to the list when the row is gone. */
function afterGuestDialog() {
  const ed = editing;
  editing = null;
  if (!ed) return;
  const button = document.querySelector(`#guest-rows tr[data-guest-id="${CSS.escape(ed.guestId)}"] button.${ed.mode}`);
  if (button && !button.disabled) button.focus();
  else $('guests-heading').focus();
}

async function submitGuestDialog(e) {
  e.preventDefault();
  const ed = editing;
  const event = state.event;
  if (!ed || !event) return;
  const button = $('gd-save');
  button.disabled = true;
  try {
    const done = ed.mode === 'edit' ? await saveGuest(event, ed.guestId) : await removeGuest(event, ed.guestId);
    if (done) closeGuestDialog();
  } finally {
    button.disabled = false;
  }
}

const GUEST_FIELDS = { name: 'gd-name', phone: 'gd-phone' };

/** Saves the dialog's name and phone; false (with the problem on its field) when not saved. */
async function saveGuest(event, guestId) {
  const form = $('guest-form');
  clearFieldErrors(form);
  const row = state.guests.get(guestId);
  const guest = { name: $('gd-name').value.trim(), phone: normalizePhone($('gd-phone').value) };
  if (row?.rsvp_token) guest.rsvp_token = row.rsvp_token;
  const problems = guestProblems(guest).filter((p) => GUEST_FIELDS[p.field]);
  const owner = [...state.guests.values()].find((g) => g.phone === guest.phone && g.guest_id !== guestId);
  if (owner) problems.push({ field: 'phone', message: `${guest.phone} is ${owner.name}'s phone in this list` });
  if (problems.length) {
    for (const p of problems) fieldError(GUEST_FIELDS[p.field], p.message);
    $(GUEST_FIELDS[problems[0].field]).focus();
    return false;
  }
  try {
    const { body } = await api.putGuest(event.event_id, guestId, guest);
    if (state.event !== event) return true;
    if (body?.guest_id) applyRows([body], [], { force: true });
    renderRows();
    announce(`Saved ${guest.name}.`);
    return true;
  } catch (err) {
    const field = err instanceof ApiError && /phone/.test(err.field ?? '') ? 'phone' : /name/.test(err?.field ?? '') ? 'name' : null;
    if (field) {
      fieldError(GUEST_FIELDS[field], err.message);
      $(GUEST_FIELDS[field]).focus();
    }
    showError(`Could not save ${guest.name || 'the guest'}`, err);
    return false;
  }
}

async function removeGuest(event, guestId) {
  const row = state.guests.get(guestId);
  const name = row?.name ?? guestId;
  try {
    await api.deleteGuest(event.event_id, guestId);
  } catch (err) {
    // Already gone (removed elsewhere, or an earlier try whose answer was lost).
    if (!(err instanceof ApiError && err.status === 404)) {
      showError(`Could not remove ${name}`, err);
      return false;
    }
  }
  if (state.event !== event) return true;
  applyRows([], [guestId]);
  renderRows();
  announce(`Removed ${name} from the guest list.`);
  return true;
}

export function initGuestDialog() {
  $('guest-form').addEventListener('submit', submitGuestDialog);
  $('gd-cancel').addEventListener('click', closeGuestDialog);
  $('guest-dialog').addEventListener('close', afterGuestDialog);
  // A row's Edit and Remove (its Retry is send.js's).
  $('guest-rows').addEventListener('click', (e) => {
    const button = e.target.closest('button');
    if (!button || button.disabled) return;
    const id = button.closest('tr')?.dataset.guestId;
    if (button.classList.contains('edit')) openGuestDialog(id, 'edit');
    else if (button.classList.contains('remove')) openGuestDialog(id, 'remove');
  });
}
