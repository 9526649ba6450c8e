// The dashboard's CSV reading and guest checks (dashboard/js/guests.js),
// which must agree with the API's rules (shared/src/domain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCsv, readGuests, guestProblems, normalizePhone, idFromPhone } from '../../dashboard/js/guests.js';

test('CSV: quoted fields, doubled quotes, newlines in quotes, CRLF, BOM, blank lines', () => {
  const { records } = parseCsv('\uFEFFname,phone\r\n"Souza, Ana",+5511999990000\r\n\r\n"Bo ""the"" Best","+5511999990001"\n"Multi\nLine",+5511999990002\n');
  assert.deepEqual(records, [
    { line: 1, fields: ['name', 'phone'] },
    { line: 2, fields: ['Souza, Ana', '+5511999990000'] },
    { line: 4, fields: ['Bo "the" Best', '+5511999990001'] },
    { line: 5, fields: ['Multi\nLine', '+5511999990002'] },
  ]);
});

test('CSV: semicolons and tabs are recognised as delimiters', () => {
  assert.deepEqual(parseCsv('Ana;+5511999990000\nBo;+5511999990001').records.map((r) => r.fields),
    [['Ana', '+5511999990000'], ['Bo', '+5511999990001']]);
  assert.deepEqual(parseCsv('Ana\t+5511999990000').records[0].fields, ['Ana', '+5511999990000']);
});

test('CSV: an unclosed quote is reported', () => {
  const { guests, problems } = readGuests('Ana,+5511999990000\n"Bo,+5511999990001\nCy,+5511999990002');
  assert.equal(guests.length, 1);
  assert.match(problems.at(-1).messages[0], /never closed/);
});

test('phone numbers follow the API: + then 8 to 15 digits, not starting with 0', () => {
  for (const ok of ['+5511999990000', '+12345678', '+123456789012345']) {
    assert.deepEqual(guestProblems({ name: 'A', phone: ok }), [], ok);
  }
  for (const bad of ['5511999990000', '+0123456789', '+1234567', '+1234567890123456', '+55a1199999', '']) {
    const problems = guestProblems({ name: 'A', phone: bad });
    assert.equal(problems.length, 1, bad);
    assert.equal(problems[0].field, 'phone');
  }
  assert.equal(normalizePhone(' +55 (11) 99999-0000 '), '+5511999990000');
});

test('names are required and at most 100 characters; ids and tokens use the id alphabet', () => {
  assert.equal(guestProblems({ name: ' ', phone: '+5511999990000' })[0].field, 'name');
  assert.equal(guestProblems({ name: 'x'.repeat(101), phone: '+5511999990000' })[0].field, 'name');
  assert.deepEqual(guestProblems({ name: 'é'.repeat(100), phone: '+5511999990000' }), []);
  assert.equal(guestProblems({ name: 'A', phone: '+5511999990000', guest_id: 'a b' })[0].field, 'guest_id');
  assert.equal(guestProblems({ name: 'A', phone: '+5511999990000', guest_id: 'x'.repeat(65) })[0].field, 'guest_id');
  assert.deepEqual(guestProblems({ name: 'A', phone: '+5511999990000', guest_id: 'g-1_2.3' }), []);
  assert.equal(guestProblems({ name: 'A', phone: '+5511999990000', rsvp_token: 'tok/1' })[0].field, 'rsvp_token');
});

test('rows: header optional, columns by name, ids from the phone when absent, problems explained', () => {
  const text = [
    'phone,name,rsvp_token,id',
    '+5511999990000,Ana,tok-1,g1',
    '+5511999990001,"Souza, Bo",,',
    '12345,Cy,,',
    '+5511999990003,,,',
    '+5511999990000,Ana again,,g9',
    '+5511999990004,Di,,g1',
  ].join('\n');
  const { guests, problems, header } = readGuests(text);
  assert.ok(header);
  assert.deepEqual(guests.map(({ line, ...g }) => g), [
    { guest_id: 'g1', name: 'Ana', phone: '+5511999990000', rsvp_token: 'tok-1' },
    { guest_id: idFromPhone('+5511999990001'), name: 'Souza, Bo', phone: '+5511999990001' },
  ]);
  assert.deepEqual(problems.map((p) => p.line), [4, 5, 6, 7]);
  assert.match(problems[0].messages[0], /international form/);
  assert.match(problems[1].messages[0], /name is missing/);
  assert.match(problems[2].messages[0], /already listed on line 2/);
  assert.match(problems[3].messages[0], /already used on line 2/);

  const positional = readGuests('Ana,+5511999990000,g1,tok\nBo,+5511999990001');
  assert.equal(positional.header, null);
  assert.deepEqual(positional.guests.map((g) => g.guest_id), ['g1', 'p5511999990001']);
  assert.match(readGuests('Ana, Silva,+5511999990000,g1,tok').problems[0].messages[0], /double quotes/);
});

test('a phone already in the list under another id is a problem', () => {
  const { problems } = readGuests('Ana,+5511999990000,new-id', [{ guest_id: 'old', name: 'Ana', phone: '+5511999990000' }]);
  assert.match(problems[0].messages[0], /already belongs to guest old/);
});
