// Guests from a CSV, checked by the API's own rules before anything is sent.
// Pure functions (no DOM): the browser tests also run them under Node.

/** E.164 as the API takes it: `+`, then 8 to 15 digits, the first not 0. */
export const PHONE_RE = /^\+[1-9][0-9]{7,14}$/;
/** Ids (guest id, RSVP token): letters, digits, `.`, `_`, `-`. */
export const ID_RE = /^[A-Za-z0-9._-]+$/;
export const MAX_NAME = 100;
export const MAX_ID = 64;
export const MAX_TOKEN = 128;

const COLUMN_NAMES = {
  name: ['name', 'guest', 'guest name', 'guest_name', 'full name', 'nome'],
  phone: ['phone', 'phone number', 'phone_number', 'mobile', 'whatsapp', 'number', 'telefone', 'celular'],
  guest_id: ['id', 'guest id', 'guest_id', 'guestid'],
  rsvp_token: ['rsvp token', 'rsvp_token', 'token', 'rsvp'],
};
/** Without a header row, columns are in this order. */
export const POSITIONAL = ['name', 'phone', 'guest_id', 'rsvp_token'];

/**
 * Splits CSV text into records (RFC 4180: quoted fields may hold the
 * delimiter, newlines and doubled quotes). The delimiter is `,`, or `;` or a
 * tab when the first line has more of those outside quotes.
 * Returns [{line, fields}] with the 1-based line each record starts on;
 * blank lines are left out. A quote left open is reported in `error`.
 */
export function parseCsv(text) {
  text = String(text ?? '').replace(/^\uFEFF/, '');
  const delimiter = guessDelimiter(text);
  const records = [];
  let fields = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let error = null;
  const endField = () => {
    fields.push(field.trim());
    field = '';
  };
  const endRecord = () => {
    endField();
    if (fields.some((f) => f !== '')) records.push({ line: recordLine, fields });
    fields = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (c === delimiter) {
      endField();
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
    }
  }
  if (quoted) error = { line: recordLine, message: 'a quoted field is never closed (a " is missing)' };
  endRecord();
  return { records, delimiter, error };
}

function guessDelimiter(text) {
  const first = text.split(/\r?\n/, 1)[0] ?? '';
  const outside = first.replace(/"[^"]*"/g, '');
  const count = (ch) => outside.split(ch).length - 1;
  const candidates = [',', ';', '\t'].map((d) => [d, count(d)]);
  candidates.sort((a, b) => b[1] - a[1]);
  return candidates[0][1] > 0 ? candidates[0][0] : ',';
}

/** The column order from a header row, or null when the row is data. */
export function headerColumns(fields) {
  const columns = fields.map((f) => {
    const key = f.trim().toLowerCase().replace(/\s+/g, ' ');
    for (const [column, names] of Object.entries(COLUMN_NAMES)) {
      if (names.includes(key)) return column;
    }
    return null;
  });
  const named = columns.filter(Boolean);
  // A header names the phone column; a data row never has a cell called "phone".
  if (!named.includes('phone') && !named.includes('name')) return null;
  return columns;
}

/** Phone numbers as people write them: spaces, dashes, dots and brackets dropped. */
export function normalizePhone(raw) {
  return String(raw ?? '').trim().replace(/[\s\-().\u00A0]/g, '');
}

/** The id a guest gets when the CSV has none: stable for the same phone. */
export function idFromPhone(phone) {
  return 'p' + phone.replace(/\D/g, '');
}

/**
 * Checks one guest by the API's rules. Returns a list of problems
 * [{field, message}] (empty when the guest is valid).
 */
export function guestProblems(guest) {
  const problems = [];
  const name = (guest.name ?? '').trim();
  if (!name) problems.push({ field: 'name', message: 'the name is missing' });
  else if ([...name].length > MAX_NAME) {
    problems.push({ field: 'name', message: `the name is longer than ${MAX_NAME} characters` });
  }
  const phone = guest.phone ?? '';
  if (!phone) problems.push({ field: 'phone', message: 'the phone number is missing' });
  else if (!PHONE_RE.test(phone)) problems.push({ field: 'phone', message: phoneProblem(phone) });
  const id = guest.guest_id ?? '';
  if (id.length > MAX_ID) problems.push({ field: 'guest_id', message: `the id is longer than ${MAX_ID} characters` });
  else if (id && !ID_RE.test(id)) {
    problems.push({ field: 'guest_id', message: 'the id may hold only letters, digits, ".", "_" and "-"' });
  }
  const token = guest.rsvp_token ?? '';
  if (token.length > MAX_TOKEN) {
    problems.push({ field: 'rsvp_token', message: `the RSVP token is longer than ${MAX_TOKEN} characters` });
  } else if (token && !ID_RE.test(token)) {
    problems.push({ field: 'rsvp_token', message: 'the RSVP token may hold only letters, digits, ".", "_" and "-"' });
  }
  return problems;
}

function phoneProblem(phone) {
  if (!phone.startsWith('+')) {
    return `"${phone}" is not in international form: start with + and the country code, e.g. +5511999990000`;
  }
  const digits = phone.slice(1);
  if (/\D/.test(digits)) return `"${phone}" has characters other than digits after the +`;
  if (digits.startsWith('0')) return `"${phone}": the country code cannot start with 0`;
  if (digits.length < 8) return `"${phone}" is too short: a + then 8 to 15 digits`;
  return `"${phone}" is too long: a + then 8 to 15 digits`;
}

/**
 * Reads guests from CSV text. `existing` (optional) is the guest list they
 * join: a row whose phone belongs to another guest id there is a problem.
 * Returns {guests, problems, header}: `guests` ready to send
 * ({guest_id, name, phone, rsvp_token?, line}), and one entry per bad row
 * ({line, text, messages[]}).
 */
export function readGuests(text, existing = []) {
  const { records, error } = parseCsv(text);
  const guests = [];
  const problems = [];
  if (records.length === 0 && !error) {
    return { guests, problems: [{ line: 1, text: '', messages: ['no rows: paste or upload a CSV with a name and a phone per line'] }], header: null };
  }
  let columns = POSITIONAL;
  let rows = records;
  const header = records.length ? headerColumns(records[0].fields) : null;
  if (header) {
    columns = header;
    rows = records.slice(1);
    if (!header.includes('phone')) {
      return { guests, problems: [{ line: records[0].line, text: records[0].fields.join(', '), messages: ['the header row has no phone column'] }], header };
    }
    if (!header.includes('name')) {
      return { guests, problems: [{ line: records[0].line, text: records[0].fields.join(', '), messages: ['the header row has no name column'] }], header };
    }
  }
  const phoneOwner = new Map(existing.map((g) => [g.phone, g.guest_id]));
  const seenIds = new Map();
  const seenPhones = new Map();
  for (const { line, fields } of rows) {
    const messages = [];
    const raw = {};
    if (!header && fields.length > POSITIONAL.length) {
      messages.push(`${fields.length} fields where at most ${POSITIONAL.length} are expected (name, phone, id, RSVP token): put a name with a comma in double quotes`);
    }
    columns.forEach((column, i) => {
      if (column && fields[i] !== undefined && raw[column] === undefined) raw[column] = fields[i];
    });
    const phone = normalizePhone(raw.phone);
    const guest = {
      guest_id: (raw.guest_id ?? '').trim(),
      name: (raw.name ?? '').trim(),
      phone,
      rsvp_token: (raw.rsvp_token ?? '').trim(),
    };
    for (const p of guestProblems(guest)) messages.push(p.message);
    if (messages.length === 0) {
      if (!guest.guest_id) guest.guest_id = idFromPhone(phone);
      if (seenIds.has(guest.guest_id)) {
        messages.push(`the id ${guest.guest_id} is already used on line ${seenIds.get(guest.guest_id)}`);
      } else if (seenPhones.has(phone)) {
        messages.push(`the phone ${phone} is already listed on line ${seenPhones.get(phone)}`);
      } else if (phoneOwner.has(phone) && phoneOwner.get(phone) !== guest.guest_id) {
        messages.push(`the phone ${phone} already belongs to guest ${phoneOwner.get(phone)} in the list`);
      }
    }
    if (messages.length) {
      problems.push({ line, text: fields.join(', '), messages });
      continue;
    }
    seenIds.set(guest.guest_id, line);
    seenPhones.set(phone, line);
    if (!guest.rsvp_token) delete guest.rsvp_token;
    guests.push({ ...guest, line });
  }
  if (error) problems.push({ line: error.line, text: '', messages: [error.message] });
  return { guests, problems, header };
}
