// The Sieve language's grammar (RFC 5228 8): a lexer and a parser that turn a
// script into a tree of commands and tests with their arguments, each with its
// line, and nothing more. What the names mean, which extensions a script must
// require and which tags each command takes are checked by check.ts; this file
// knows only the syntax: quoted strings with \" and \\, multi-line text: ...
// with dot-unstuffing, numbers with K/M/G, string lists, test lists, blocks,
// and both kinds of comments. Errors are SieveErrors naming the line.

export class SieveError extends Error {
  constructor(
    readonly detail: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${detail}`);
  }
}

export type Arg =
  | { kind: 'tag'; name: string; line: number }
  | { kind: 'number'; value: number; line: number }
  | { kind: 'strings'; value: string[]; list: boolean; line: number };

export interface Test {
  name: string;
  args: Arg[];
  tests: Test[];
  line: number;
}

export interface Command {
  name: string;
  args: Arg[];
  tests: Test[];
  block?: Command[];
  line: number;
}

type Token =
  | { t: 'id'; v: string; line: number }
  | { t: 'tag'; v: string; line: number }
  | { t: 'num'; v: number; line: number }
  | { t: 'str'; v: string; line: number }
  | { t: 'sym'; v: string; line: number }
  | { t: 'end'; line: number };

const MULTIPLIER: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** RFC 5228 8.1: the tokens of a script, comments and white space dropped. */
export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const fail = (why: string): never => {
    throw new SieveError(why, line);
  };
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated /* comment');
      for (let k = i; k < end; k++) if (src[k] === '\n') line++;
      i = end + 2;
    } else if (c === '"') {
      const start = line;
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new SieveError('unterminated string', start);
        const ch = src[i];
        if (ch === '"') break;
        if (ch === '\\' && i + 1 < src.length) {
          i++;
          v += src[i];
        } else v += ch;
        if (src[i] === '\n') line++;
        i++;
      }
      i++;
      out.push({ t: 'str', v: v.replace(/\r?\n/g, '\r\n'), line: start });
    } else if (/[0-9]/.test(c)) {
      let j = i;
      while (j < src.length && /[0-9]/.test(src[j])) j++;
      let v = Number(src.slice(i, j));
      const m = MULTIPLIER[src[j]?.toUpperCase()];
      if (m) {
        v *= m;
        j++;
      }
      out.push({ t: 'num', v, line });
      i = j;
    } else if (/[A-Za-z_:]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j])) j++;
      const word = src.slice(i, j);
      if (c === ':') {
        if (word.length < 2) fail('":" without a tag name');
        out.push({ t: 'tag', v: word.slice(1).toLowerCase(), line });
        i = j;
      } else if (word.toLowerCase() === 'text' && src[j] === ':') {
        const r = multiLine(src, j + 1, line);
        out.push({ t: 'str', v: r.value, line });
        line = r.line;
        i = r.next;
      } else {
        out.push({ t: 'id', v: word.toLowerCase(), line });
        i = j;
      }
    } else if ('[](),;{}'.includes(c)) {
      out.push({ t: 'sym', v: c, line });
      i++;
    } else {
      fail(`unexpected character "${c}"`);
    }
  }
  out.push({ t: 'end', line });
  return out;
}

/** text: to a line holding only ".", lines starting ".." losing one dot. */
function multiLine(src: string, at: number, line: number): { value: string; next: number; line: number } {
  const start = line;
  let i = at;
  // The rest of the text: line may hold only white space or a hash comment.
  const eol = src.indexOf('\n', i);
  if (eol < 0) throw new SieveError('text: without its lines', start);
  if (!/^[ \t]*(#.*)?\r?$/.test(src.slice(i, eol))) throw new SieveError('text: must end its line', start);
  i = eol + 1;
  line++;
  const lines: string[] = [];
  for (;;) {
    if (i >= src.length) throw new SieveError('text: not ended by a line with a single "."', start);
    let end = src.indexOf('\n', i);
    if (end < 0) end = src.length;
    const l = src.slice(i, end).replace(/\r$/, '');
    i = end + 1;
    line++;
    if (l === '.') break;
    lines.push(l.startsWith('..') ? l.slice(1) : l);
  }
  return { value: lines.map((l) => l + '\r\n').join(''), next: i, line };
}

/** RFC 5228 8.2: the script's commands. */
export function parseScript(src: string): Command[] {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const isSym = (v: string) => peek().t === 'sym' && (peek() as { v: string }).v === v;
  const expect = (v: string, what: string) => {
    if (!isSym(v)) throw new SieveError(`expected ${what}, found ${describe(peek())}`, peek().line);
    p++;
  };

  function stringList(): Arg {
    const line = peek().line;
    p++; // [
    const value: string[] = [];
    for (;;) {
      const t = peek();
      if (t.t !== 'str') throw new SieveError(`expected a string in the list, found ${describe(t)}`, t.line);
      value.push(t.v);
      p++;
      if (isSym(',')) {
        p++;
        continue;
      }
      expect(']', '"," or "]"');
      return { kind: 'strings', value, list: true, line };
    }
  }

  function args(): { args: Arg[]; tests: Test[] } {
    const out: Arg[] = [];
    for (;;) {
      const t = peek();
      if (t.t === 'tag') out.push({ kind: 'tag', name: t.v, line: t.line });
      else if (t.t === 'num') out.push({ kind: 'number', value: t.v, line: t.line });
      else if (t.t === 'str') out.push({ kind: 'strings', value: [t.v], list: false, line: t.line });
      else if (isSym('[')) {
        out.push(stringList());
        continue;
      } else break;
      p++;
    }
    if (isSym('(')) {
      p++;
      const tests = [test()];
      while (isSym(',')) {
        p++;
        tests.push(test());
      }
      expect(')', '"," or ")"');
      return { args: out, tests };
    }
    if (peek().t === 'id') return { args: out, tests: [test()] };
    return { args: out, tests: [] };
  }

  function test(): Test {
    const t = peek();
    if (t.t !== 'id') throw new SieveError(`expected a test, found ${describe(t)}`, t.line);
    p++;
    return { name: t.v, ...args(), line: t.line };
  }

  function commands(inBlock: boolean): Command[] {
    const out: Command[] = [];
    for (;;) {
      const t = peek();
      if (t.t === 'end') {
        if (inBlock) throw new SieveError('missing "}" at the end of the script', t.line);
        return out;
      }
      if (inBlock && isSym('}')) {
        p++;
        return out;
      }
      if (t.t !== 'id') throw new SieveError(`expected a command, found ${describe(t)}`, t.line);
      p++;
      const a = args();
      if (isSym('{')) {
        p++;
        out.push({ name: t.v, ...a, block: commands(true), line: t.line });
      } else {
        expect(';', `";" after ${t.v}`);
        out.push({ name: t.v, ...a, line: t.line });
      }
    }
  }
  return commands(false);
}

function describe(t: Token): string {
  switch (t.t) {
    case 'end':
      return 'the end of the script';
    case 'str':
      return 'a string';
    case 'num':
      return `the number ${t.v}`;
    case 'tag':
      return `":${t.v}"`;
    default:
      return `"${t.v}"`;
  }
}
