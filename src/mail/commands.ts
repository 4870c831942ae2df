// The commands of `mail`, in one table as s-nail keeps them: name, the
// shortest abbreviation, what the argument is, the handler and a help line.
// Order matters: an abbreviation picks the first command it prefixes (p is
// print, not preserve), as in mailx. Argument kinds: msglist (undeleted
// messages; default the current one), ndmsglist (deleted ones too),
// msglist-file (messages then a file), words, raw (the rest of the line), none.

import * as change from './cmd-change.ts';
import { mail, reply } from './cmd-compose.ts';
import * as misc from './cmd-misc.ts';
import * as read from './cmd-read.ts';
import type { Command } from './session.ts';

export const COMMANDS: Command[] = [
  { name: 'next', abbrev: 'n', arg: 'raw', run: read.next, help: 'go to and type the next message' },
  { name: '+', abbrev: '+', arg: 'raw', run: read.next, help: 'the same as next' },
  { name: '-', abbrev: '-', arg: 'none', run: read.previous, help: 'go to and type the previous message' },
  { name: 'print', abbrev: 'p', arg: 'msglist', run: read.typeMessages, help: 'type messages, MIME decoded' },
  { name: 'type', abbrev: 't', arg: 'msglist', run: read.typeMessages, help: 'the same as print' },
  { name: 'Print', abbrev: 'P', arg: 'msglist', run: read.typeAll, help: 'type messages with every header' },
  { name: 'Type', abbrev: 'T', arg: 'msglist', run: read.typeAll, help: 'the same as Print' },
  { name: 'top', abbrev: 'to', arg: 'msglist', run: read.topMessages, help: 'type the first lines (toplines) of messages' },
  { name: 'headers', abbrev: 'h', arg: 'words', run: read.headers, help: 'list a screenful of headers' },
  { name: 'z', abbrev: 'z', arg: 'words', run: read.scroll, help: 'the next (z) or previous (z -) screenful of headers' },
  { name: 'from', abbrev: 'f', arg: 'msglist', run: read.from, help: 'list the headers of messages' },
  { name: 'size', abbrev: 'si', arg: 'msglist', run: read.size, help: 'show the lines/bytes of messages' },
  { name: '=', abbrev: '=', arg: 'none', run: read.dotNumber, help: 'show the current message number' },
  { name: 'delete', abbrev: 'd', arg: 'msglist', run: change.deleteMessages, help: 'delete messages (at quit)' },
  { name: 'dp', abbrev: 'dp', arg: 'msglist', run: change.deleteAndPrint, help: 'delete, then type the next message' },
  { name: 'dt', abbrev: 'dt', arg: 'msglist', run: change.deleteAndPrint, help: 'the same as dp' },
  { name: 'undelete', abbrev: 'u', arg: 'ndmsglist', run: change.undelete, help: 'undelete messages' },
  { name: 'save', abbrev: 's', arg: 'msglist-file', run: change.save(true), help: 'append messages to a folder (default mbox)' },
  { name: 'Save', abbrev: 'S', arg: 'msglist', run: change.saveBySender(true), help: 'save to a file named after the sender' },
  { name: 'copy', abbrev: 'c', arg: 'msglist-file', run: change.save(false), help: 'like save, but the messages stay' },
  { name: 'Copy', abbrev: 'C', arg: 'msglist', run: change.saveBySender(false), help: 'like Save, but the messages stay' },
  { name: 'write', abbrev: 'w', arg: 'msglist-file', run: change.write, help: 'append message bodies (no headers) to a file' },
  { name: 'reply', abbrev: 'r', arg: 'msglist', run: reply(true), help: 'reply to the sender and all recipients' },
  { name: 'respond', abbrev: 'res', arg: 'msglist', run: reply(true), help: 'the same as reply' },
  { name: 'Reply', abbrev: 'R', arg: 'msglist', run: reply(false), help: 'reply to the sender only' },
  { name: 'Respond', abbrev: 'Res', arg: 'msglist', run: reply(false), help: 'the same as Reply' },
  { name: 'mail', abbrev: 'm', arg: 'raw', run: mail, help: 'write a new message to addresses' },
  { name: 'mbox', abbrev: 'mb', arg: 'msglist', run: change.mbox, help: 'move messages to mbox at quit' },
  { name: 'hold', abbrev: 'ho', arg: 'msglist', run: change.hold, help: 'keep messages in the mailbox at quit' },
  { name: 'preserve', abbrev: 'pre', arg: 'msglist', run: change.hold, help: 'the same as hold' },
  { name: 'touch', abbrev: 'tou', arg: 'msglist', run: change.touch, help: 'treat messages as read for mbox at quit' },
  { name: 'flag', abbrev: 'fl', arg: 'msglist', run: change.flag(true), help: 'flag messages (X-Status: F)' },
  { name: 'unflag', abbrev: 'unf', arg: 'msglist', run: change.flag(false), help: 'unflag messages' },
  { name: 'unread', abbrev: 'unr', arg: 'msglist', run: change.unread, help: 'mark messages as not read' },
  { name: 'pipe', abbrev: 'pi', arg: 'raw', run: read.pipe, help: 'pipe messages into a shell command' },
  { name: '|', abbrev: '|', arg: 'raw', run: read.pipe, help: 'the same as pipe' },
  { name: 'quit', abbrev: 'q', arg: 'none', run: misc.quit, help: 'apply the changes and leave' },
  { name: 'exit', abbrev: 'ex', arg: 'none', run: misc.exit, help: 'leave without changing the mailbox' },
  { name: 'xit', abbrev: 'x', arg: 'none', run: misc.exit, help: 'the same as exit' },
  { name: 'folder', abbrev: 'fo', arg: 'words', run: misc.folder, help: 'show the folder, or commit it and open another' },
  { name: 'file', abbrev: 'fi', arg: 'words', run: misc.folder, help: 'the same as folder' },
  { name: 'folders', abbrev: 'folders', arg: 'none', run: misc.folders, help: 'list the folders in the folder directory' },
  { name: 'set', abbrev: 'se', arg: 'raw', run: misc.set, help: 'set variables (set name=value, set noname)' },
  { name: 'unset', abbrev: 'uns', arg: 'words', run: misc.unset, help: 'unset variables' },
  { name: 'alias', abbrev: 'a', arg: 'words', run: misc.alias, help: 'define or show aliases' },
  { name: 'group', abbrev: 'g', arg: 'words', run: misc.alias, help: 'the same as alias' },
  { name: 'unalias', abbrev: 'unal', arg: 'words', run: misc.unalias, help: 'remove aliases' },
  { name: 'ignore', abbrev: 'ig', arg: 'words', run: misc.headerList('ignore'), help: 'hide header fields when typing' },
  { name: 'discard', abbrev: 'di', arg: 'words', run: misc.headerList('ignore'), help: 'the same as ignore' },
  { name: 'retain', abbrev: 'ret', arg: 'words', run: misc.headerList('retain'), help: 'show only these header fields' },
  { name: 'unignore', abbrev: 'uni', arg: 'words', run: misc.unHeaderList('ignore'), help: 'stop hiding header fields' },
  { name: 'unretain', abbrev: 'unret', arg: 'words', run: misc.unHeaderList('retain'), help: 'stop retaining header fields' },
  { name: 'source', abbrev: 'so', arg: 'words', run: misc.source, help: 'run the commands in a file' },
  { name: '!', abbrev: '!', arg: 'raw', run: misc.shell, help: 'run a shell command' },
  { name: 'echo', abbrev: 'ec', arg: 'raw', run: misc.echo, help: 'print the text' },
  { name: 'version', abbrev: 've', arg: 'none', run: misc.version, help: 'show the version' },
  { name: 'help', abbrev: 'hel', arg: 'words', run: misc.help, help: 'this list' },
  { name: '?', abbrev: '?', arg: 'words', run: misc.help, help: 'the same as help' },
  { name: 'list', abbrev: 'l', arg: 'words', run: misc.help, help: 'the same as help' },
];
