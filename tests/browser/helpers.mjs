// What the browser tests share: the stack's URLs, a fresh Chromium, the
// simulator's and the API's routes, events and templates, screenshots, and
// waiting for what the page shows. See dashboard.test.mjs for how they run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const { chromium } = await import(new URL('../../infra/node/node_modules/playwright-core/index.mjs', import.meta.url));

export const API = process.env.RSVP_API_URL;
export const SIM = process.env.RSVP_SIM_URL;
export const LIMITED_API = process.env.RSVP_LIMITED_API_URL;
export const LIMITED_SIM = process.env.RSVP_LIMITED_SIM_URL;
export const ARTIFACTS = process.env.RSVP_ARTIFACTS ?? path.resolve('test-artifacts/dashboard');
fs.mkdirSync(ARTIFACTS, { recursive: true });
export const CHROMIUM = process.env.RSVP_CHROMIUM ?? '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const skip = !API || !SIM ? 'needs RSVP_API_URL and RSVP_SIM_URL: run `cargo run -p e2e --bin browser-tests`' : false;
export const skipLimited = skip || (!LIMITED_API || !LIMITED_SIM
  ? 'needs RSVP_LIMITED_API_URL and RSVP_LIMITED_SIM_URL: run `cargo run -p e2e --bin browser-tests`' : false);

/** A fresh browser profile with one page at this viewport; closed by `close()`. */
export async function openBrowser(viewport) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsvp-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport,
    isMobile: viewport.width < 500, hasTouch: viewport.width < 500, deviceScaleFactor: 1,
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // API errors must show on the page (checked through #errors); a failed
  // load of anything else (the page's own files) is a problem here.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith('/api/')) problems.push(`${r.status()} for ${r.url()}`);
  });
  const close = async () => {
    await context.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { page, problems, close };
}

export async function sim(method, pathname, body, base = SIM) {
  const res = await fetch(base + pathname, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(res.ok, `simulator ${method} ${pathname}: ${res.status}`);
  return res.json();
}

export async function apiCall(method, pathname, body, base = API) {
  const res = await fetch(base + pathname, {
    method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function createTemplate(id, name, text) {
  const template_id = `${id}-${Date.now().toString(36)}`;
  const res = await apiCall('POST', '/api/whatsapp/templates', { template_id, name, text });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

export async function createEvent(eventId, name, base = API) {
  const res = await apiCall('PUT', `/api/whatsapp/events/${eventId}`, {
    name, starts_at: '2027-06-01T20:00:00+00:00', venue: 'Hall', host: 'Ana', rsvp_base_url: 'https://rsvp.example.com/r/',
  }, base);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

export function shooter(page, name) {
  const dir = path.join(ARTIFACTS, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  return (label) => page.screenshot({ path: path.join(dir, `${String(++n).padStart(2, '0')}-${label}.png`), fullPage: true });
}

export async function waitForCount(locator, n, timeout = 30_000) {
  const start = Date.now();
  for (;;) {
    const c = await locator.count();
    if (c === n) return;
    if (Date.now() - start > timeout) assert.fail(`expected ${n} of ${locator}, found ${c}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function assertEventually(check, timeout = 10_000) {
  const start = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() - start > timeout) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
