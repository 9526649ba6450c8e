// What this browser keeps for the page: the guests an older version kept
// here, and the last send made for each event.

/** Where this page kept an event's guests before the API kept guest lists. */
export const legacyKey = (eventId) => `rsvp:guests:${eventId}`;
/** The last send this browser made for an event: a reload shows its progress at once. */
const lastJobKey = (eventId) => `rsvp:lastJob:${eventId}`;

export function legacyGuests(eventId) {
  try {
    const list = JSON.parse(localStorage.getItem(legacyKey(eventId)) ?? '[]');
    return Array.isArray(list) ? list.filter((g) => g && typeof g === 'object') : [];
  } catch {
    return [];
  }
}

export function storedJob(eventId) {
  try {
    return localStorage.getItem(lastJobKey(eventId));
  } catch {
    return null;
  }
}

export function storeJob(eventId, jobId) {
  try {
    if (jobId) localStorage.setItem(lastJobKey(eventId), jobId);
    else localStorage.removeItem(lastJobKey(eventId));
  } catch {
    // Private mode or full: a reload then finds the send from its guests' rows.
  }
}
