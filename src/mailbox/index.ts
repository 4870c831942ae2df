// The mailbox module's public face: the only code in mailtk that opens an mbox.
// Writing (appendToMbox for the spool, appendToFile for /file aliases) is all
// or nothing under the standard USER.lock dotlock; reading (scanMbox,
// readMessageBytes, unquoteFrom) indexes mboxo files from Postfix, mail.local,
// mutt, s-nail and mailtk for `mail`, POP3 and IMAP. Import only this file.

export { acquireDotlock, DOTLOCK_STALE_MS, DOTLOCK_TIMEOUT_MS, type Dotlock, type DotlockOptions } from './dotlock.ts';
export { mboxPath } from './spool.ts';
export { appendToMbox, appendToFile, isStillThere, type PlacedMessage, type AppendHooks } from './append.ts';
export { fromLine, type MboxMessage } from './format.ts';
export { scanMbox, readMessageBytes, unquoteFrom, type MboxIndex, type MboxEntry } from './scan.ts';
