// The page's one shared mutable state, and the hooks through which a module
// low in the import graph asks one above it to act. No DOM here: every
// module may import this one, and it imports none.

export const state = {
  events: [],
  event: null,
  /** Counts the events picked: a read for an earlier pick is dropped. */
  epoch: 0,
  /** guest_id -> the guest's row as the API lists it, with its latest invitation. */
  guests: new Map(),
  /** Whether the whole list has been read: nothing that sends works before. */
  loaded: false,
  /** The listing's changes cursor: the next read asks only for what changed since. */
  cursor: null,
  /** A full read is wanted (Refresh, or a cursor the API no longer takes). */
  reloadWanted: false,
  /** Guest ids in the table's order (by name); null once a guest comes, goes or is renamed. */
  order: null,
  /** The rows on the table's page now. */
  pageRows: [],
  view: { filter: '', q: '', page: 0 },
  selected: new Set(),
  /** job_id -> JobWatch. */
  jobs: new Map(),
  /** Today's latest reminder job (from the rows), or null. */
  reminderJob: null,
  /** When a followed job's counts last changed. */
  jobChangedAt: 0,
  templates: null,
  sending: false,
  importing: false,
  /** The WhatsApp sender's profile (GET /api/whatsapp/sender), or null. */
  sender: null,
  senderAt: 0,
  /** guest_id -> their latest reply that was not an answer ({text, at}). */
  replies: new Map(),
  repliesReadAt: 0,
};

/**
 * Calls up the import graph. sync.js reads the guest list and answers.js
 * draws answers for the table, yet both must make a module that imports
 * them act; importing it back would be a cycle. So app.js fills these in
 * before anything runs, and the low module calls through here.
 */
export const hooks = {
  /** guest-list.js: the table, its counts, the controls and the preview's guests, after the list or the selection changed. */
  renderRows: null,
  /** guest-list.js: the counts and the controls only. */
  renderCounts: null,
  /** progress.js: follow the sends the list's invitations belong to. */
  followJobs: null,
  /** import.js: offer the guests an older version of the page kept in this browser. */
  offerLegacyGuests: null,
};
