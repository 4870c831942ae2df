// The mailbox module's public face: the only code in mailtk that opens an mbox.
// Writing (appendToMbox for the spool, appendToFile for /file aliases) is all
// or nothing under the standard USER.lock dotlock; reading (scanMbox,
// readMessageBytes, unquoteFrom) indexes mbox files from Postfix, mail.local,
// mutt, s-nail and mailtk for `mail`, POP3 and IMAP, reading message text as
// mboxrd, as every writer here writes it (mboxrd.ts); scanMboxHeaders is the
// same scan (scan.ts, the one scanner) with header blocks, for `mail -H`;
// served.ts makes (and counts) the bytes POP3 and IMAP send. rewriteMbox drops
// and re-flags messages in place, keeping mail that arrived meanwhile;
// appendToFolder saves to a person's own folders. Import only this file.

export { acquireDotlock, DOTLOCK_STALE_MS, DOTLOCK_TIMEOUT_MS, type Dotlock, type DotlockOptions } from './dotlock.ts';
export { mboxPath, mailGroupGid, ensureSpoolDir } from './spool.ts';
export { appendToMbox, appendToFile, ensureInbox, mailboxUsage, type AppendHooks, type MboxQuota, type MboxUsage } from './append.ts';
export type { PlacedMessage } from './format.ts';
export { fromLine, fromLineSender, type MboxMessage, type StoredFlags } from './format.ts';
export { scanMbox, scanMboxHeaders, readMessageBytes, unquoteFrom, type MboxIndex, type MboxEntry, type MboxSummary, type ScanHeadersOptions } from './scan.ts';
export { isQuotedFromLine, xtextDecode } from './mboxrd.ts';
export { acquireMailboxLock } from './dotlock-helper.ts';
export { rewriteMbox, recoverRewrite, pendingRewrite, backupPath, type RewriteKeep, type RewriteOptions, type RewriteStep } from './rewrite.ts';
export { readFlags, flagsFrom, withFlags, statusLines, type MessageFlags } from './flags.ts';
// The per-mailbox index of POP3 and IMAP (UIDs, flags, summaries) and the served (CRLF) form of messages.
export { openFolder, Folder, type FolderSpec, type FolderReader, type NewMessage, type MessageRecord } from './folder.ts';
export { FLAG, SYSTEM_FLAGS, visibleHeader, withoutMboxState } from './folder-flags.ts';
export { ensureIndexDir, removeIndexDir, renameIndexDir } from './folder-file.ts';
// Paths below a trusted directory, opened one component at a time without following symlinks.
export { HeldDir, lstatBeneath, openDirBeneath, UnsafePath } from './safe-open.ts';
export { HIDDEN, ServedConverter, DotStuffer, ByteWindow, toServed, servedHeader } from './served.ts';
export { CopiedBytes } from './copy-out.ts';
export { appendToFolder, folderMessage, storedMessage } from './save.ts';
export { replaceFile } from './io.ts';
