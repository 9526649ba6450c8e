// The Connection panel: where the API is, and the organizer's access token
// (a deployed stack's sign-in token; none is needed locally).

import { apiBase, token, setToken } from './api.js';
import { loadEvents } from './events.js';
import { $, announce } from './ui.js';

export function initConnection() {
  $('api-base').textContent = apiBase() || `${location.origin} (this page's origin)`;
  $('token').value = token();
  $('token-remember').checked = Boolean(localStorage.getItem('rsvp:token'));
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setToken($('token').value, $('token-remember').checked);
    announce(token() ? 'Access token saved.' : 'No access token.');
    // With the token, the API's facts too if they could not be read before (events.js).
    loadEvents();
  });
  $('token-clear').addEventListener('click', () => {
    setToken('', false);
    $('token').value = '';
    announce('Access token forgotten.');
  });
}
