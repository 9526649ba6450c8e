// Step 3, the message: the templates, the one a send uses, and a preview
// of what a guest of the table's page would get.

import { api } from './api.js';
import { escapeHtml as esc, plural } from './format.js';
import { state } from './state.js';
import { $, showError, isMissingRoute } from './ui.js';

const DEFAULT_TEMPLATE = 'default';

function templateName(id) {
  const t = state.templates?.find((x) => x.template_id === id);
  return t ? `${t.name || t.template_id} (version ${t.version})` : id;
}

/** The template a send uses when none is chosen: the event's default, else the built-in one. */
function eventTemplateId() {
  return state.event?.default_template_id || DEFAULT_TEMPLATE;
}

/** The chosen template id, or null for the event's default. */
function chosenTemplateId() {
  return $('template-select').value || null;
}

export async function loadTemplates() {
  try {
    const { body } = await api.listTemplates();
    state.templates = body?.items ?? [];
    state.templateVariables = body?.variables ?? [];
  } catch (e) {
    state.templates = null;
    if (!isMissingRoute(e)) showError('Could not load the templates', e);
  }
  renderTemplateChoices();
}

export function renderTemplateChoices() {
  const select = $('template-select');
  const current = select.value;
  const list = state.templates ?? [];
  const defaultLabel = `Event default: ${templateName(eventTemplateId())}`;
  select.innerHTML = `<option value="">${esc(defaultLabel)}</option>`
    + list.map((t) => `<option value="${esc(t.template_id)}">${esc(t.name || t.template_id)} (version ${t.version})</option>`).join('');
  if (list.some((t) => t.template_id === current)) select.value = current;
  // The event form's default template.
  const evSelect = $('ev-template');
  const evCurrent = evSelect.value;
  evSelect.innerHTML = `<option value="">Built-in default</option>`
    + list.filter((t) => t.template_id !== DEFAULT_TEMPLATE)
      .map((t) => `<option value="${esc(t.template_id)}">${esc(t.name || t.template_id)}</option>`).join('');
  evSelect.value = evCurrent;
  evSelect.closest('.field').hidden = state.templates === null;
  describeTemplate();
}

function describeTemplate() {
  const hint = $('template-hint');
  if (state.templates === null) {
    hint.textContent = 'This API has only the built-in message.';
    return;
  }
  const id = chosenTemplateId() ?? eventTemplateId();
  const t = state.templates.find((x) => x.template_id === id);
  if (!t) {
    hint.textContent = '';
  } else if (t.content_sid) {
    hint.textContent = `A WhatsApp Content template (${t.content_sid}) with ${plural(Object.keys(t.content_variables ?? {}).length, 'variable')}: Twilio sends the approved text.`;
  } else {
    hint.textContent = 'Free-form text: WhatsApp delivers it only inside a 24-hour window after the guest wrote to you; use an approved Content template otherwise.';
  }
}

let previewSeq = 0;

/** What the preview shows now: [guest_id, name, phone, rsvp_token], so a change to the guest renders it again. */
let previewShown = '';
let previewOptions = '';

/**
 * The preview's guest choices: the table's page (the list may hold
 * thousands), and the guest chosen even when on another page. The first
 * selected guest, else the first shown, when none is chosen.
 * Says whether the guest to preview changed.
 */
export function renderPreviewGuests() {
  const guestSel = $('preview-guest');
  const chosen = state.guests.get(guestSel.value);
  const page = state.pageRows.filter((r) => state.guests.get(r.guest_id) === r);
  const rows = chosen && !page.includes(chosen) ? [chosen, ...page] : page;
  const key = JSON.stringify(rows.map((g) => [g.guest_id, g.name, g.phone]));
  if (key !== previewOptions) {
    previewOptions = key;
    guestSel.innerHTML = rows.length
      ? rows.map((g) => `<option value="${esc(g.guest_id)}">${esc(g.name)} (${esc(g.phone)})</option>`).join('')
      : `<option value="">${state.event && !state.loaded ? 'Loading guests…' : 'No guests yet'}</option>`;
  }
  const guest = chosen ?? rows.find((g) => state.selected.has(g.guest_id)) ?? rows[0];
  guestSel.value = guest?.guest_id ?? '';
  return previewKey(guest) !== previewShown;
}

function previewKey(guest) {
  return guest ? JSON.stringify([guest.guest_id, guest.name, guest.phone, guest.rsvp_token ?? '']) : '';
}

/** A Content template's buttons under the preview (none: hidden). */
function showButtons(titles) {
  const list = $('preview-buttons');
  list.replaceChildren(...titles.map((title) => {
    const li = document.createElement('li');
    li.textContent = title;
    return li;
  }));
  list.hidden = titles.length === 0;
}

export async function updatePreview() {
  const out = $('preview');
  const meta = $('preview-meta');
  renderPreviewGuests();
  describeTemplate();
  const guest = state.guests.get($('preview-guest').value);
  previewShown = previewKey(guest);
  const seq = ++previewSeq;
  out.textContent = '';
  showButtons([]);
  if (!state.event || !guest) {
    meta.textContent = !state.event ? '' : state.loaded ? 'Add guests to see the message one of them would get.' : 'Loading guests…';
    return;
  }
  if (state.templates === null) {
    meta.textContent = 'Previews need the template routes, which this API does not have.';
    return;
  }
  const templateId = chosenTemplateId() ?? eventTemplateId();
  const g = { guest_id: guest.guest_id, name: guest.name, phone: guest.phone };
  if (guest.rsvp_token) g.rsvp_token = guest.rsvp_token;
  meta.textContent = 'Rendering…';
  try {
    const { body } = await api.previewTemplate(templateId, { event_id: state.event.event_id, guest: g });
    if (seq !== previewSeq) return;
    const parts = [`What ${guest.name} would get with ${templateName(templateId)}`];
    if (body?.content) {
      // As Twilio has the Content template: its text and buttons, filled in.
      out.textContent = body.content.body;
      showButtons(body.content.buttons);
      parts.push(`Twilio's Content template ${body.content_sid}`);
    } else if (body?.content_sid) {
      const vars = Object.entries(body.content_variables ?? {}).map(([k, v]) => `{{${k}}} = ${v}`).join('\n');
      out.textContent = `Content template ${body.content_sid}\n${vars}`;
      if (body.content_note) parts.push(body.content_note);
    } else {
      out.textContent = body?.body ?? '';
    }
    if (body?.length != null) parts.push(`${body.length} of ${body.max_length} characters`);
    if (!guest.rsvp_token) parts.push('the RSVP token in the link is made up here; each guest gets a random one when sent');
    meta.textContent = `${parts.join('; ')}.`;
    if (body?.length != null && body.max_length && body.length > body.max_length) {
      meta.textContent += ' Too long for WhatsApp: shorten the template or the event details.';
    }
  } catch (e) {
    if (seq !== previewSeq) return;
    meta.textContent = 'No preview (see the error above).';
    showError('Could not preview the message', e);
  }
}

export function initTemplates() {
  $('template-select').addEventListener('change', updatePreview);
  $('preview-guest').addEventListener('change', updatePreview);
}

/** Whether the send would use a Content template approved as Marketing. */
export function marketingTemplate() {
  const id = chosenTemplateId() ?? eventTemplateId();
  return state.templates?.find((x) => x.template_id === id)?.category === 'marketing';
}
