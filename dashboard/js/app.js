// The organizer's page: pick or create an event, bring in guests, preview the
// message, send, and follow each invitation until it is read or fails.
//
// This module starts it. Each view is a module that wires its own controls;
// state.js holds what they share. The imports run one way (a view imports
// only views below it); the few calls that must go up are state.js's hooks,
// filled in here before anything runs. The API's facts (statuses, limits)
// are read before the events (events.js), the templates and the sender's
// profile alongside.

import { sleep } from './api.js';
import { initAnswers } from './answers.js';
import { initConnection } from './connection.js';
import { initEvents, loadEvents } from './events.js';
import { initGuestDialog } from './guest-edit.js';
import { initRows, renderRows, renderCounts, renderAll } from './guest-list.js';
import { initImport, offerLegacyGuests } from './import.js';
import { followJobs, loadSender } from './progress.js';
import { initSending } from './send.js';
import { state, hooks } from './state.js';
import { initSync } from './sync.js';
import { initTemplates, loadTemplates } from './templates.js';
import { showError } from './ui.js';

window.addEventListener('unhandledrejection', (e) => showError('Unexpected problem', e.reason));
window.addEventListener('error', (e) => showError('Unexpected problem', e.error ?? e.message));

Object.assign(hooks, { renderRows, renderCounts, followJobs, offerLegacyGuests });

initConnection();
initEvents();
initImport();
initTemplates();
initRows();
initSending();
initAnswers();
initGuestDialog();
initSync();
// Nothing here needs the facts yet: no event, no rows, no sends, and the
// status filter stays empty until they are read.
renderAll();
await Promise.all([loadTemplates(), loadEvents(), loadSender()]);
// Expose a little for debugging in the console.
window.rsvp = { state, sleep };
