// mail at a real terminal, driven as a person would through tmux (new-session
// on a private socket, send-keys, capture-pane): composing with tilde escapes
// (~s ~c ~r ~p ~.), a reading session (summary, print, reply, save, delete,
// quit) while new mail arrives, and ^C twice keeping the text in dead.letter.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, run, splitMbox } from './helpers.ts';
import { noTmux, Terminal } from './tmux.ts';

let sb: Sandbox;
// mail is line-mode: what a test checks may have scrolled off the top, and
// its prompts end in a blank.
const term = new Terminal({ history: 500, keepBlanks: true });

/** Start mail in a fresh tmux window as alice's session (run as root, HOME hers). */
function start(name: string, args: string[]): void {
  const env = { HOME: sb.users.alice.home, MAILTK_CONFIG: sb.conf, NO_COLOR: '1', PAGER: 'cat', PATH: process.env.PATH ?? '/usr/bin:/bin' };
  term.start(name, [path.join(BIN, 'mail'), '-C', sb.conf, ...args], env);
}

const enter = (name: string, text = '') => term.type(name, text, true);

const messagesOf = (u: string) => splitMbox(sb.readMbox(u));
function deliver(to: string, text: string): void {
  const r = run(sb, 'sendmail', ['-odi', '-i', to], text);
  assert.equal(r.status, 0, r.stderr);
}

describe('mail at a terminal (tmux)', { skip: noTmux }, () => {
  before(() => {
    sb = makeSandbox({ users: ['alice', 'bob', 'carol'], extraConf: 'delivery_mode = interactive' });
  });
  after(() => {
    term.kill();
    sb.cleanup();
  });

  test('compose with tilde escapes: Subject prompt, ~c, ~r, ~p, ~s, ~.', async () => {
    const insert = path.join(sb.dir, 'insert.txt');
    fs.writeFileSync(insert, 'inserted from a file\n');
    start('compose', ['bob']);
    await term.see('compose', /Subject: $/m);
    enter('compose', 'First subject');
    enter('compose', 'Hello Bob,');
    enter('compose', '~c carol');
    enter('compose', `~r ${insert}`);
    await term.see('compose', /"[^"]*insert\.txt" 1\/21/);
    enter('compose', '~s Tmux test');
    enter('compose', '~p');
    await term.see('compose', /Message contains:\nTo: bob\nSubject: Tmux test\nCc: carol\n\nHello Bob,\ninserted from a file\n\(continue\)/);
    enter('compose', 'Bye.');
    enter('compose', '~.');
    await term.see('compose', /\[exit 0\]/);
    const m = messagesOf('bob').at(-1)!;
    assert.match(m, /\nSubject: Tmux test\n/);
    assert.match(m, /\nCc: carol\n/);
    assert.match(m, /\n\nHello Bob,\ninserted from a file\nBye\.\n/);
    assert.match(messagesOf('carol').at(-1)!, /\nSubject: Tmux test\n/);
  });

  test('^C twice gives up and keeps the text in ~/dead.letter', async () => {
    const dead = path.join(sb.users.alice.home, 'dead.letter');
    fs.rmSync(dead, { force: true });
    const before = messagesOf('bob').length;
    start('interrupt', ['-s', 'never sent', 'bob']);
    enter('interrupt', 'half a thought');
    await term.see('interrupt', /half a thought/);
    // A ^C before mail has the terminal in raw mode would kill the shell around it.
    await new Promise((r) => setTimeout(r, 800));
    term.keys('interrupt', 'C-c');
    await term.see('interrupt', /\(Interrupt -- one more to kill letter\)/);
    term.keys('interrupt', 'C-c');
    await term.see('interrupt', /\[exit 1\]/);
    assert.match(fs.readFileSync(dead, 'utf8'), /\nSubject: never sent\n[\s\S]*\nhalf a thought\n/);
    assert.equal(messagesOf('bob').length, before);
  });

  test('read, reply, save, delete and quit, while new mail arrives', async () => {
    deliver('alice', 'From: Bob <bob@mail.test>\nSubject: lunch?\nMessage-ID: <lunch@mail.test>\n\nNoon at the usual place?\n');
    deliver('alice', 'From: carol@mail.test\nSubject: minutes\n\nThe minutes are attached in spirit.\n');
    deliver('alice', 'From: carol@mail.test\nSubject: spam\n\nBuy now.\n');
    const saved = path.join(sb.users.alice.home, 'keep.mbox');
    start('read', ['-u', 'alice']);
    await term.see('read', /Type \? for help\.\n"[^"]+alice": 3 messages 3 new\n>N  1 bob@mail\.test .* lunch\?\n N  2 carol@mail\.test .* minutes\n N  3 .* spam\n\? $/m);
    enter('read', 'p 1');
    await term.see('read', /Message 1:\n(.+\n)*Subject: lunch\?\n\nNoon at the usual place\?\n/);
    enter('read', 'r');
    await term.see('read', /To: Bob <bob@mail\.test>\nSubject: Re: lunch\?\n\nOn .*, Bob wrote:\n> Noon at the usual place\?\n/);
    enter('read', 'Yes, see you there.');
    enter('read', '~.');
    await term.see('read', /see you there\.\n~\.\n\?/);
    enter('read', `s 2 ${saved}`);
    await term.see('read', /keep\.mbox" \[New file\]/);
    enter('read', 'd 3');
    deliver('alice', 'Subject: arrived while reading\n\nlate\n');
    enter('read', 'h');
    await term.see('read', /New mail has arrived\./);
    enter('read', 'q');
    await term.see('read', /Saved 1 message in .*mbox\n(.+\n)?\[exit 0\]/);
    const reply = messagesOf('bob').at(-1)!;
    assert.match(reply, /\nSubject: Re: lunch\?\n(.+\n)*In-Reply-To: <lunch@mail\.test>\n/);
    assert.match(reply, /\n> Noon at the usual place\?\nYes, see you there\.\n/);
    assert.match(fs.readFileSync(saved, 'utf8'), /\nSubject: minutes\n/);
    const left = messagesOf('alice').map((m) => /\nSubject: (.+)/.exec(m)![1]);
    assert.deepEqual(left, ['arrived while reading']);
    assert.match(fs.readFileSync(path.join(sb.users.alice.home, 'mbox'), 'utf8'), /\nSubject: lunch\?\n(.+\n)*Status: RO\nX-Status: A\n/);
  });
});
