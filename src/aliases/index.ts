// The aliases module's public face: the aliases(5) parser, the compiler that
// newaliases runs, lookups for delivery, and recipient expansion through
// aliases, :include: files and ~/.forward (read through a ListReader, as the
// user they belong to). Other modules import only this file.
// Only this module reads or writes alias_file and alias_db (and the virtual
// alias table's compiled form).

export { parseAliases, parseMembers, type AliasEntry, type ParseError, type ParseResult } from './parse.ts';
export { compileAliases, AliasFileError, type CompileOptions, type CompileResult } from './compile.ts';
export { openAliases, type AliasTable } from './table.ts';
export { expandRecipient, forwardFiles, MAX_DEPTH, type ExpandContext } from './expand.ts';
export { inProcessLists, readListFile, type ListFile, type ListKind, type ListReader } from './list-file.ts';
export { compileVirtualAliases, virtualAliasDb, type VirtualCompileResult } from './virtual-table.ts';
export type { Destination } from './types.ts';
