// The dashboard's benchmark: an organizer's 2,000-guest send, followed in
// Debian's Chromium (playwright-core) on a local stack. Prints its figures
// and writes them as JSON; measures, asserts nothing about speed.
//
// Run it with `make bench ARGS=--dashboard` (or `cargo run -p e2e --bin
// browser-tests -- --bench [--guests N] [--out FILE]`), which starts the
// stack and sets RSVP_API_URL and RSVP_SIM_URL.
//
// What it does: creates an event, saves N guests through the API, opens the
// event, selects everyone and sends through the confirmation. A few seconds
// into the send it reloads the page and measures, from the reload:
//   - when the running send's progress first shows (pinned), and when the
//     guest list is read and anything that sends may be used;
//   - whether any invited guest's row ever read "Not invited", and whether
//     any send control was usable before the list was read;
// then, until the send is done, the requests and bytes the page reads per
// minute (bytes as they crossed the network, compressed), the largest long
// task (main-thread work over 50 ms), and the JS heap. Every API request of
// the whole session is classified, to show none is made per guest.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const { chromium } = await import(new URL('../../infra/node/node_modules/playwright-core/index.mjs', import.meta.url));

const API = process.env.RSVP_API_URL;
const SIM = process.env.RSVP_SIM_URL;
if (!API || !SIM) {
  console.error('needs RSVP_API_URL and RSVP_SIM_URL: run `make bench ARGS=--dashboard`');
  process.exit(2);
}
const option = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
};
const GUESTS = Number(option('--guests', '2000'));
const OUT = option('--out', 'bench-dashboard.json');
/** How far into the send the page is reloaded. */
const RELOAD_AFTER_MS = 5_000;
/** The longest the bench follows a send. */
const FOLLOW_MAX_MS = 15 * 60_000;
const CHROMIUM = process.env.RSVP_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--enable-precise-memory-info'];

async function api(method, pathname, body) {
  const res = await fetch(`${API}${pathname}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathname}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** What a request to the API is, by its path: per-guest kinds are the ones that must not occur. */
function kind(pathname) {
  if (/^\/api\/whatsapp\/guests\/[^/]+\/[^/]+$/.test(pathname)) return 'one guest (per guest)';
  if (/^\/api\/whatsapp\/opt-outs\/(?!lookup$)/.test(pathname)) return 'one opt-out (per guest)';
  if (/^\/api\/whatsapp\/guests\/[^/]+$/.test(pathname)) return 'guest list';
  if (/^\/api\/whatsapp\/status\//.test(pathname)) return 'job status';
  if (/^\/api\/whatsapp\/invitations\//.test(pathname)) return 'invitations listing';
  const m = pathname.match(/^\/api\/whatsapp\/([^/]+)/);
  return m ? m[1] : 'other';
}

const mb = (bytes) => bytes / 1_000_000;
const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const eventId = `bench-${Date.now().toString(36)}`;
await api('PUT', `/api/whatsapp/events/${eventId}`, {
  name: 'Benchmark Wedding', starts_at: '2027-05-01T17:00:00-03:00', venue: 'Quinta', host: 'The couple',
  rsvp_base_url: 'https://rsvp.example.com/r/',
});
const phone = (i) => `+5511930${String(i).padStart(5, '0')}`;
const guests = Array.from({ length: GUESTS }, (_, i) => ({ guest_id: `w${i + 1}`, name: `Guest ${i + 1}`, phone: phone(i + 1) }));
const saved = await api('POST', `/api/whatsapp/guests/${eventId}`, { guests });
if (saved.created !== GUESTS) throw new Error(`saved ${JSON.stringify(saved)}`);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rsvp-bench-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(60_000);
const page = context.pages()[0] ?? await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));

// Every API response, with the bytes it took on the wire (DevTools' encodedDataLength).
const cdp = await context.newCDPSession(page);
await cdp.send('Network.enable');
const pending = new Map();
let log = [];
const allKinds = new Map();
cdp.on('Network.responseReceived', (e) => {
  const url = new URL(e.response.url);
  if (url.origin === new URL(API).origin && url.pathname.startsWith('/api/')) pending.set(e.requestId, url.pathname);
});
cdp.on('Network.loadingFinished', (e) => {
  const pathname = pending.get(e.requestId);
  if (!pathname) return;
  pending.delete(e.requestId);
  const k = kind(pathname);
  log.push({ at: Date.now(), kind: k, bytes: e.encodedDataLength });
  allKinds.set(k, (allKinds.get(k) ?? 0) + 1);
});

// On every load: when the pinned progress and the list showed, rows that
// said "Not invited" for an invited guest, controls usable too early, and
// the longest task.
await page.addInitScript(() => {
  const start = performance.now();
  const seen = { progressAt: null, loadedAt: null, notInvited: 0, usableEarly: 0, longestTask: 0, longTasks: 0 };
  window.benchSeen = seen;
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        seen.longTasks++;
        seen.longestTask = Math.max(seen.longestTask, entry.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
  } catch { /* no long task timing: reported as 0 */ }
  const check = () => {
    const card = document.getElementById('guests-card');
    if (!card) return;
    if (seen.progressAt === null && document.querySelector('#live:not([hidden]) .live-job')) seen.progressAt = performance.now() - start;
    for (const tr of document.querySelectorAll('#guest-rows tr[data-status="none"]')) if (tr.dataset.guestId) seen.notInvited++;
    if (card.dataset.loaded === 'true') {
      seen.loadedAt ??= performance.now() - start;
      return;
    }
    const usable = ['send', 'select-all', 'select-new', 'select-failed', 'retry-all']
      .filter((id) => document.getElementById(id) && !document.getElementById(id).disabled).length
      + document.querySelectorAll('#guest-rows input.pick:not(:disabled)').length;
    if (usable) seen.usableEarly++;
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
});

const fmt = (n) => n.toLocaleString('en-US');
await page.goto(`${API}/#event=${eventId}`);
await page.locator('#guests-card[data-loaded="true"]').waitFor();
await page.getByRole('button', { name: 'Select all' }).click();
await page.locator('#guest-count', { hasText: `${fmt(GUESTS)} guests · ${fmt(GUESTS)} selected` }).waitFor();
await page.getByRole('button', { name: /Send WhatsApp invitations/ }).click();
await page.locator('#dry-run[data-state="ready"]').waitFor();
const sendStart = Date.now();
await page.getByRole('dialog').getByRole('button', { name: `Send ${fmt(GUESTS)}`, exact: true }).click();
const job = page.locator(`#progress .job[data-total="${GUESTS}"]`);
await job.waitFor();
const jobId = await job.getAttribute('data-job-id');
await page.waitForTimeout(RELOAD_AFTER_MS);

// Reloaded mid-send.
const reloadAt = Date.now();
await page.reload();
await page.locator('#guests-card[data-loaded="true"]').waitFor();
const loaded = await page.evaluate(() => ({ ...window.benchSeen }));

// Following, until the send is done: only what the page reads from now.
log = [];
const followStart = Date.now();
let heapPeak = 0;
let done = false;
while (!done && Date.now() - followStart < FOLLOW_MAX_MS) {
  await page.waitForTimeout(2_000);
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  heapPeak = Math.max(heapPeak, usedSize);
  done = (await page.locator(`#progress .job[data-job-id="${jobId}"]`).getAttribute('data-done')) === 'true';
}
const followEnd = Date.now();
const status = await api('GET', `/api/whatsapp/status/${jobId}`);
// The rows settle after the job (the last read receipts): the table's final state.
await page.waitForTimeout(3_000);
const end = await page.evaluate(() => ({ ...window.benchSeen }));
const { usedSize: heapEnd } = await cdp.send('Runtime.getHeapUsage');
await context.close();
fs.rmSync(profile, { recursive: true, force: true });

const minutes = (followEnd - followStart) / 60_000;
const followBytes = log.filter((r) => r.at <= followEnd).reduce((sum, r) => sum + r.bytes, 0);
const followRequests = log.filter((r) => r.at <= followEnd);
const byKind = {};
for (const r of followRequests) {
  byKind[r.kind] ??= { requests: 0, bytes: 0 };
  byKind[r.kind].requests++;
  byKind[r.kind].bytes += r.bytes;
}
const perGuest = [...allKinds].filter(([k]) => k.includes('per guest')).reduce((sum, [, n]) => sum + n, 0);
const sent = status.total - status.counts.queued - status.counts.waiting - status.counts.sending;
const results = {
  guests: GUESTS,
  send_done: done,
  send_seconds: round((followEnd - sendStart) / 1000),
  send_rate_per_second: round(sent / ((followEnd - sendStart) / 1000), 2),
  after_reload: {
    reloaded_after_send_ms: reloadAt - sendStart,
    progress_shown_ms: loaded.progressAt === null ? null : Math.round(loaded.progressAt),
    list_ready_ms: Math.round(loaded.loadedAt),
    invited_rows_shown_not_invited: end.notInvited,
    send_controls_usable_before_ready: loaded.usableEarly,
  },
  following: {
    minutes: round(minutes, 2),
    requests_per_minute: round(followRequests.length / minutes),
    mb_per_minute: round(mb(followBytes) / minutes, 3),
    by_kind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, { per_minute: round(v.requests / minutes), kb_per_minute: round(v.bytes / 1000 / minutes) }])),
  },
  requests_per_guest_whole_session: perGuest,
  requests_by_kind_whole_session: Object.fromEntries(allKinds),
  longest_task_ms: Math.round(Math.max(loaded.longestTask, end.longestTask)),
  long_tasks_after_reload: end.longTasks,
  heap_mb: { peak_following: round(mb(heapPeak)), end: round(mb(heapEnd)) },
  page_errors: errors,
};

const line = (label, value) => console.log(`${label.padEnd(46)} ${value}`);
console.log(`\ndashboard benchmark: ${fmt(GUESTS)} guests, one send, reloaded ${round(results.after_reload.reloaded_after_send_ms / 1000)} s into it`);
line('send', `${done ? 'done' : 'NOT done'} in ${results.send_seconds} s (${results.send_rate_per_second} messages/s with the page open)`);
line('after the reload: the send\'s progress shows in', results.after_reload.progress_shown_ms === null ? 'never' : `${results.after_reload.progress_shown_ms} ms`);
line('after the reload: the list is read in', `${results.after_reload.list_ready_ms} ms`);
line('invited rows that read "Not invited"', results.after_reload.invited_rows_shown_not_invited);
line('send controls usable before the list was read', results.after_reload.send_controls_usable_before_ready);
line('following: requests per minute', results.following.requests_per_minute);
line('following: MB read per minute (compressed)', `${results.following.mb_per_minute}${results.following.mb_per_minute < 1 ? ' (under 1 MB)' : ' (OVER 1 MB)'}`);
for (const [k, v] of Object.entries(results.following.by_kind)) line(`  ${k}`, `${v.per_minute}/min, ${v.kb_per_minute} kB/min`);
line('requests per guest (whole session)', perGuest);
line('longest task', `${results.longest_task_ms} ms`);
line('JS heap: peak while following / at the end', `${results.heap_mb.peak_following} / ${results.heap_mb.end} MB`);
if (errors.length) line('page errors', errors.join('; '));
fs.writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwritten to ${OUT}`);
const broken = !done || perGuest > 0 || end.notInvited > 0 || loaded.usableEarly > 0 || errors.length > 0 || results.after_reload.progress_shown_ms === null;
process.exit(broken ? 1 : 0);
