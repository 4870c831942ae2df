// What a parsed Sieve script means: each command and test is looked up in one
// table (its extension, its tags and what they take, its positional
// arguments), the script's require lines are held against the extensions it
// uses (RFC 5228 3.2), and the result is a compiled tree the interpreter reads
// without checking again: tags by name, positional arguments in order. Every
// mistake is a SieveError with the line, found before any message is touched.

import { type Arg, type Command, SieveError, type Test, parseScript } from './parse.ts';

/** The extensions mailtk implements (the capability list ManageSieve shows). */
export const EXTENSIONS = [
  'fileinto', 'reject', 'ereject', 'envelope', 'body', 'relational', 'imap4flags', 'copy', 'vacation', 'regex',
  'comparator-i;ascii-numeric',
] as const;

type ArgKind = 'none' | 'string' | 'strings' | 'number';
type Value = true | string | string[] | number;

interface Spec {
  ext?: string;
  tags?: Record<string, ArgKind>;
  /** Tags of the same group exclude each other (match type, address part, body transform). */
  groups?: Record<string, string[]>;
  pos: ArgKind[];
  /** For tests: how many subtests (0, 1 or any). */
  tests?: 0 | 1 | 'many';
  block?: boolean;
}

const MATCH = { is: 'none', contains: 'none', matches: 'none', regex: 'none', count: 'string', value: 'string', comparator: 'string' } as const;
const PARTS = { all: 'none', localpart: 'none', domain: 'none' } as const;
const MATCH_GROUPS = { match: ['is', 'contains', 'matches', 'regex', 'count', 'value'] };
const PART_GROUPS = { ...MATCH_GROUPS, part: ['all', 'localpart', 'domain'] };

const COMMANDS: Record<string, Spec> = {
  if: { pos: [], tests: 1, block: true },
  elsif: { pos: [], tests: 1, block: true },
  else: { pos: [], block: true },
  stop: { pos: [] },
  keep: { pos: [], tags: { flags: 'strings' } },
  discard: { pos: [] },
  redirect: { pos: ['string'], tags: { copy: 'none' } },
  fileinto: { ext: 'fileinto', pos: ['string'], tags: { copy: 'none', flags: 'strings' } },
  reject: { ext: 'reject', pos: ['string'] },
  ereject: { ext: 'ereject', pos: ['string'] },
  vacation: {
    ext: 'vacation',
    pos: ['string'],
    tags: { days: 'number', subject: 'string', from: 'string', addresses: 'strings', mime: 'none', handle: 'string' },
  },
  setflag: { ext: 'imap4flags', pos: ['strings'] },
  addflag: { ext: 'imap4flags', pos: ['strings'] },
  removeflag: { ext: 'imap4flags', pos: ['strings'] },
};

const TESTS: Record<string, Spec> = {
  address: { pos: ['strings', 'strings'], tags: { ...MATCH, ...PARTS }, groups: PART_GROUPS },
  envelope: { ext: 'envelope', pos: ['strings', 'strings'], tags: { ...MATCH, ...PARTS }, groups: PART_GROUPS },
  header: { pos: ['strings', 'strings'], tags: MATCH, groups: MATCH_GROUPS },
  exists: { pos: ['strings'] },
  size: { pos: [], tags: { over: 'number', under: 'number' }, groups: { size: ['over', 'under'] } },
  true: { pos: [] },
  false: { pos: [] },
  not: { pos: [], tests: 1 },
  allof: { pos: [], tests: 'many' },
  anyof: { pos: [], tests: 'many' },
  body: { ext: 'body', pos: ['strings'], tags: { ...MATCH, raw: 'none', text: 'none', content: 'strings' }, groups: { ...MATCH_GROUPS, transform: ['raw', 'text', 'content'] } },
  hasflag: { ext: 'imap4flags', pos: ['strings'], tags: MATCH, groups: MATCH_GROUPS },
};

/** Which extension a tag needs beyond its command's. */
const TAG_EXT: Record<string, string> = { copy: 'copy', flags: 'imap4flags', regex: 'regex', count: 'relational', value: 'relational' };
const RELATIONS = ['gt', 'ge', 'lt', 'le', 'eq', 'ne'];
const COMPARATORS: Record<string, string | undefined> = { 'i;ascii-casemap': undefined, 'i;octet': undefined, 'i;ascii-numeric': 'comparator-i;ascii-numeric' };

export interface Node {
  name: string;
  tags: Map<string, Value>;
  pos: Value[];
  tests: Node[];
  block?: Node[];
  line: number;
}

/** Parse and check a script: its compiled commands, or a SieveError. */
export function compileScript(src: string): Node[] {
  const cmds = parseScript(src);
  const required = new Set<string>();
  let i = 0;
  for (; i < cmds.length && cmds[i].name === 'require'; i++) {
    const c = cmds[i];
    if (c.args.length !== 1 || c.args[0].kind !== 'strings' || c.tests.length || c.block) throw new SieveError('require takes one string list', c.line);
    for (const ext of c.args[0].value) {
      if (!(EXTENSIONS as readonly string[]).includes(ext.toLowerCase())) throw new SieveError(`unsupported extension "${ext}"`, c.line);
      required.add(ext.toLowerCase());
    }
  }
  return commandList(cmds.slice(i), required);
}

function commandList(cmds: Command[], required: Set<string>): Node[] {
  return cmds.map((c, k) => {
    if (c.name === 'require') throw new SieveError('require must come before any other command', c.line);
    const spec = COMMANDS[c.name];
    if (!spec) throw new SieveError(`unknown command "${c.name}"`, c.line);
    if ((c.name === 'elsif' || c.name === 'else') && !['if', 'elsif'].includes(cmds[k - 1]?.name)) throw new SieveError(`${c.name} without if`, c.line);
    if (spec.block && !c.block) throw new SieveError(`${c.name} needs a block`, c.line);
    if (!spec.block && c.block) throw new SieveError(`${c.name} takes no block`, c.line);
    const node = compile(c.name, spec, c.args, c.tests, c.line, required);
    if (c.block) node.block = commandList(c.block, required);
    return node;
  });
}

function compileTest(t: Test, required: Set<string>): Node {
  const spec = TESTS[t.name];
  if (!spec) throw new SieveError(`unknown test "${t.name}"`, t.line);
  return compile(t.name, spec, t.args, t.tests, t.line, required);
}

function compile(name: string, spec: Spec, args: Arg[], tests: Test[], line: number, required: Set<string>): Node {
  const need = (ext: string | undefined, what: string) => {
    if (ext && !required.has(ext)) throw new SieveError(`${what} needs require "${ext}"`, line);
  };
  need(spec.ext, name);
  const tags = new Map<string, Value>();
  const pos: Value[] = [];
  for (let k = 0; k < args.length; k++) {
    const a = args[k];
    if (a.kind !== 'tag') {
      pos.push(a.kind === 'number' ? a.value : spec.pos[pos.length] === 'string' ? single(a, name) : a.value);
      continue;
    }
    const kind = spec.tags?.[a.name];
    if (!kind) throw new SieveError(`${name} has no tag ":${a.name}"`, a.line);
    if (tags.has(a.name)) throw new SieveError(`":${a.name}" given twice`, a.line);
    need(TAG_EXT[a.name], `:${a.name}`);
    for (const group of Object.values(spec.groups ?? {})) {
      if (group.includes(a.name) && group.some((g) => tags.has(g))) throw new SieveError(`":${a.name}" conflicts with an earlier tag`, a.line);
    }
    if (kind === 'none') {
      tags.set(a.name, true);
      continue;
    }
    const v = args[++k];
    if (!v || v.kind === 'tag' || (kind === 'number') !== (v.kind === 'number')) throw new SieveError(`":${a.name}" needs a ${kind === 'number' ? 'number' : 'string'}`, a.line);
    tags.set(a.name, v.kind === 'number' ? v.value : kind === 'string' ? single(v, `:${a.name}`) : v.value);
  }
  if (name === 'size' && !tags.has('over') && !tags.has('under')) throw new SieveError('size needs :over or :under', line);
  checkPositional(name, spec, pos, line);
  checkTagValues(tags, line, required);
  const wanted = spec.tests ?? 0;
  if (wanted === 0 && tests.length) throw new SieveError(`${name} takes no test`, line);
  if (wanted === 1 && tests.length !== 1) throw new SieveError(`${name} needs one test`, line);
  if (wanted === 'many' && tests.length === 0) throw new SieveError(`${name} needs a list of tests`, line);
  return { name, tags, pos, tests: tests.map((t) => compileTest(t, required)), line };
}

function single(a: Arg, what: string): string {
  if (a.kind !== 'strings' || a.value.length !== 1 || a.list) throw new SieveError(`${what} takes a single string, not a list`, a.line);
  return a.value[0];
}

function checkPositional(name: string, spec: Spec, pos: Value[], line: number): void {
  if (pos.length !== spec.pos.length) throw new SieveError(`${name} takes ${spec.pos.length} argument${spec.pos.length === 1 ? '' : 's'}, found ${pos.length}`, line);
  spec.pos.forEach((kind, k) => {
    if ((kind === 'number') !== (typeof pos[k] === 'number')) throw new SieveError(`argument ${k + 1} of ${name} must be a ${kind === 'number' ? 'number' : 'string'}`, line);
  });
}

function checkTagValues(tags: Map<string, Value>, line: number, required: Set<string>): void {
  const comparator = tags.get('comparator') as string | undefined;
  if (comparator !== undefined) {
    const c = comparator.toLowerCase();
    if (!(c in COMPARATORS)) throw new SieveError(`unknown comparator "${comparator}"`, line);
    const ext = COMPARATORS[c];
    if (ext && !required.has(ext)) throw new SieveError(`comparator "${comparator}" needs require "${ext}"`, line);
  }
  for (const rel of ['count', 'value']) {
    const v = tags.get(rel) as string | undefined;
    if (v !== undefined && !RELATIONS.includes(v.toLowerCase())) throw new SieveError(`unknown relation "${v}"`, line);
  }
}
