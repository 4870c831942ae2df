// MIME display through bin/mail: a Foxmail-style GB2312 quoted-printable
// message (the seed's sample headers, with its malformed Date and empty
// Subject), Big5 base64 text with a Big5 encoded-word subject, a GB2312
// subject in the header summary, ISO-8859-1, HTML-only mail, and a multipart
// message whose attachments are listed, never dumped.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Sandbox, makeSandbox, run } from './helpers.ts';

let sb: Sandbox;
let folder: string;

const FOXMAIL = `From sn-xwj@163.com Thu Jul 10 12:03:25 2003
Received: from sm212.163.com (mta6 [127.0.0.1])
    by mta6.x263.net (Postfix) with SMTP id 497122B7E2
    for <bearzhang@263.net>; Thu, 10 Jul 2003 12:03:25 +0800 (CST)
X-Originating-IP: [202.108.44.212]
From: "sn-xwj" <sn-xwj@163.com>
To: bearzhang@263.net <bearzhang@263.net>
Subject:
X-mailer: Foxmail 4.2 [cn]
Mime-Version: 1.0
Content-Type: text/plain;
      charset="GB2312"
Content-Transfer-Encoding: quoted-printable
Date: Thu, 10 Jul 2003 12:3:31 +0800
X-Virus: 1
Message-Id: <20030710040324.3112D1D101922@sm212.163.com>

=C4=E3=BA=C3=A3=AC=D5=E2=CA=C7=D2=BB=B7=E2=B2=E2=CA=D4=D3=CA=BC=FE=A1=A3
=D3=CA=BC=FE=CF=B5=CD=B3=B9=DC=C0=ED=D4=B1=C5=E0=D1=B5=CA=D6=B2=E1

`;

const BIG5 = `From tsnien@linux-2.cu.edu.tw Mon Aug  5 09:34:28 2002
From: tsnien@linux-2.cu.edu.tw
To: u1@linux-2.cu.edu.tw
Subject: =?Big5?B?uXGkbLZspfOodLLO?=
MIME-Version: 1.0
Content-Type: text/plain; charset=big5
Content-Transfer-Encoding: base64

uXGkbLZspfOodLLOCrNvrE+kQKvKtPq41atIpfOhQwo=

`;

const GB_SUBJECT = `From harley@mailer.com.cn Tue Sep  5 10:00:00 2000
From: harley@mailer.com.cn
Subject: =?GB2312?B?vfC10dPKvP4=?=
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 cr=E8me

`;

const ATTACHED = `From a@b.example Wed Jan  3 10:00:00 2024
From: Ann <a@b.example>
Subject: two files
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

--XYZ
Content-Type: text/plain; charset=utf-8

Files attached.
--XYZ
Content-Type: application/pdf; name="=?Big5?B?s/inaS5wZGY=?="
Content-Disposition: attachment; filename="=?Big5?B?s/inaS5wZGY=?="
Content-Transfer-Encoding: base64

JVBERi0xLjQKU0VDUkVUIFBERiBCT0RZ
--XYZ
Content-Type: image/png
Content-Disposition: attachment; filename="dot.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--XYZ--

`;

const HTML = `From h@b.example Wed Jan  3 11:00:00 2024
From: h@b.example
Subject: html only
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><body><p>Hello <b>there</b></p><p>second &amp; last</p></body></html>

`;

before(() => {
  sb = makeSandbox({ users: ['alice'] });
  folder = path.join(sb.dir, 'mime.mbox');
  fs.writeFileSync(folder, FOXMAIL + BIG5 + GB_SUBJECT + ATTACHED + HTML);
});
after(() => sb.cleanup());

const read = (commands: string) => run(sb, 'mail', ['-f', folder], commands, { HOME: sb.users.alice.home });

test('the header summary decodes GB2312 and Big5 subjects', () => {
  const r = run(sb, 'mail', ['-H', '-f', folder], '', { HOME: sb.users.alice.home });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0], /^>N  1 sn-xwj@163\.com\s+Thu Jul 10 12:03\s+\d+\/\d+$/);
  assert.match(lines[1], / 2 tsnien@linux-2\.cu\. Mon Aug  5 09:34 .* 電子郵件系統$/);
  assert.match(lines[2], / 3 harley@mailer\.com\. Tue Sep  5 10:00 .* 金笛邮件$/);
});

test('a Foxmail GB2312 quoted-printable message reads as Chinese text', () => {
  const r = read('p 1\nx\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /From: "sn-xwj" <sn-xwj@163\.com>\n/);
  assert.match(r.stdout, /\n你好，这是一封测试邮件。\n邮件系统管理员培训手册\n/);
  assert.doesNotMatch(r.stdout, /=C4=E3|X-mailer|Received:/);
  const all = read('P 1\nx\n');
  assert.match(all.stdout, /X-mailer: Foxmail 4\.2 \[cn\]\n/, 'Print shows every header');
});

test('a Big5 base64 message reads as Chinese text', () => {
  const r = read('p 2\nx\n');
  assert.match(r.stdout, /Subject: 電子郵件系統\n/);
  assert.match(r.stdout, /\n電子郵件系統\n這是一封測試信件。\n/);
});

test('ISO-8859-1 quoted-printable', () => {
  assert.match(read('p 3\nx\n').stdout, /\ncafé crème\n/);
});

test('attachments are listed with their decoded names, not dumped', () => {
  const r = read('p 4\nx\n');
  assert.match(r.stdout, /\nFiles attached\.\n/);
  assert.match(r.stdout, /\[-- Attachment #1: 報告\.pdf, application\/pdf, 24 bytes --\]\n/);
  assert.match(r.stdout, /\[-- Attachment #2: dot\.png, image\/png, 8 bytes --\]\n/);
  assert.doesNotMatch(r.stdout, /SECRET|JVBER/);
});

test('HTML-only mail is shown as text', () => {
  const r = read('p 5\nx\n');
  assert.match(r.stdout, /\nHello there\n+second & last\n/);
  assert.doesNotMatch(r.stdout, /<p>|<b>/);
});

test('top shows the first lines; size and from agree with the summary', () => {
  const r = read('set toplines=1\ntop 2\nsize 2\nf 2\nx\n');
  assert.match(r.stdout, /\n電子郵件系統\n\d+: \d+\/\d+\n/);
  assert.doesNotMatch(r.stdout, /這是一封/);
});
