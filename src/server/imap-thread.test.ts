// RFC 5256's base subject (2.1), SORT order (3) and both THREAD algorithms (4)
// on plain records.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseSubject, formatThread, sortMessages, type SortMsg, threadOrderedSubject, threadReferences } from './imap-thread.ts';

let seq = 0;
function msg(p: Partial<SortMsg>): SortMsg {
  seq++;
  return { n: seq, seq, arrival: seq * 1000, size: 100, date: NaN, subject: '', from: '', to: '', cc: '', ...p };
}

test('base subject (RFC 5256 2.1)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['Re: test', 'test', true],
    ['test', 'test', false],
    ['Re: Re: [fwd: Re: test]', 'test', true],
    ['[PATCH] Re: foo (fwd)', 'foo', true],
    ['[PATCH] foo', 'foo', false],
    ['[PATCH]', '[PATCH]', false],
    ['Fwd:  Hello \t World  ', 'Hello World', true],
    ['FW: x', 'x', true],
    ['Re[2]: x', 'x', true],
    ['re:', '', true],
    ['[fwd: [fwd: x]]', 'x', true],
    ['[list] [other] Re: [list] subject', 'subject', true],
    ['Rebus: x', 'Rebus: x', false],
    ['(fwd) x (FWD)', '(fwd) x', true],
  ];
  for (const [input, base, reply] of cases) assert.deepEqual(baseSubject(input), { base, replyOrFwd: reply }, input);
});

test('SORT (RFC 5256 3): keys in turn, REVERSE per key, ties by sequence number, i;ascii-casemap', () => {
  seq = 0;
  const a = msg({ subject: 'Re: beta', from: 'zed', size: 300, date: Date.parse('2024-01-03T00:00:00Z') });
  const b = msg({ subject: 'alpha', from: 'Amy', size: 100 }); // no Date: its arrival, 2000 ms
  const c = msg({ subject: 'BETA', from: 'amy', size: 300, date: Date.parse('2024-01-01T00:00:00Z') });
  const d = msg({ subject: '[fwd: Alpha]', from: '', size: 200, date: Date.parse('2024-01-02T00:00:00Z') });
  const order = (keys: Array<[string, boolean]>) => sortMessages([a, b, c, d], keys.map(([key, reverse]) => ({ key: key as never, reverse }))).map((m) => m.n);
  assert.deepEqual(order([['SUBJECT', false]]), [2, 4, 1, 3]);
  assert.deepEqual(order([['FROM', false]]), [4, 2, 3, 1]);
  assert.deepEqual(order([['SIZE', true], ['SUBJECT', false]]), [1, 3, 4, 2]);
  assert.deepEqual(order([['DATE', false]]), [2, 3, 4, 1]);
  assert.deepEqual(order([['ARRIVAL', true]]), [4, 3, 2, 1]);
  assert.deepEqual(order([['SIZE', false]]), [2, 4, 1, 3]);
});

test('THREAD=ORDEREDSUBJECT (RFC 5256 4)', () => {
  seq = 0;
  const day = (n: number) => Date.parse(`2024-01-0${n}T00:00:00Z`);
  const msgs = [
    msg({ subject: 'b', date: day(2) }),
    msg({ subject: 'Re: a', date: day(3) }),
    msg({ subject: 'a', date: day(1) }),
    msg({ subject: 'Re: b', date: day(4) }),
    msg({ subject: 'Fwd: a', date: day(5) }),
    msg({ subject: 'c', date: day(6) }),
  ];
  assert.equal(threadOrderedSubject(msgs).map(formatThread).join(''), '(3 (2)(5))(1 4)(6)');
});

test('THREAD=REFERENCES (RFC 5256 4): links, dummies, subject merging, dates', () => {
  seq = 0;
  const day = (n: number) => Date.parse(`2024-01-${String(n).padStart(2, '0')}T00:00:00Z`);
  const msgs = [
    msg({ messageId: '<1@x>', subject: 'topic', date: day(1) }), // 1
    msg({ messageId: '<2@x>', references: '<1@x>', subject: 'Re: topic', date: day(2) }), // 2
    msg({ messageId: '<3@x>', references: '<1@x> <2@x>', subject: 'Re: topic', date: day(3) }), // 3
    msg({ messageId: '<4@x>', inReplyTo: '<1@x>', subject: 'Re: topic', date: day(4) }), // 4
    // two replies to a message not here: a dummy with two children at the root
    msg({ messageId: '<6@x>', references: '<gone@x>', subject: 'Re: other', date: day(6) }), // 5
    msg({ messageId: '<7@x>', references: '<gone@x>', subject: 'Re: other', date: day(5) }), // 6
    // no references, same base subject as thread 1 and a reply: joins it as a child (5 E iii)
    msg({ messageId: '<8@x>', subject: 'Re: topic', date: day(8) }), // 7
    // a duplicate Message-ID gets its own: a root of its own subject
    msg({ messageId: '<1@x>', subject: 'lonely', date: day(9) }), // 8
    // a single reply to a missing parent is promoted to the root (3 B)
    msg({ messageId: '<10@x>', references: '<missing@x>', subject: 'solo', date: day(7) }), // 9
  ];
  assert.equal(threadReferences(msgs).map(formatThread).join(''), '(1 (2 3)(4)(7))((6)(5))(9)(8)');
  // Two roots with the same subject, neither a reply: a new dummy holds both (5 E iv).
  seq = 0;
  const two = [msg({ messageId: '<a@x>', subject: 'same', date: day(2) }), msg({ messageId: '<b@x>', subject: 'same', date: day(1) })];
  assert.equal(threadReferences(two).map(formatThread).join(''), '((2)(1))');
  // A loop in References is not followed.
  seq = 0;
  const loop = [
    msg({ messageId: '<p@x>', references: '<q@x>', subject: 'x', date: day(1) }),
    msg({ messageId: '<q@x>', references: '<p@x>', subject: 'y', date: day(2) }),
  ];
  assert.equal(threadReferences(loop).map(formatThread).join(''), '(2 1)');
});
