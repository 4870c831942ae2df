// The parameters of a MIME field (RFC 2045 5.1: `type/sub; name=value; ...`)
// with RFC 2231's continuations joined: `name*0*=..; name*1=..` is one
// parameter again, `name*` when any section was charset-encoded (its value
// then stays in the `charset'lang'%XX` form a client decodes) and `name`
// when none was. The order is the one IMAP servers give (Dovecot's): plain
// parameters as written, then the RFC 2231 ones sorted by name. A family
// with a missing section is passed through as written, since its value
// cannot be recovered. Names are upper-cased, as BODYSTRUCTURE shows them.
// decodeExtended turns a joined `charset'lang'%XX` value into text (IMAP4rev2
// BODYSTRUCTURE, RFC 9051 7.5.2; paramValue).

export type MimeParam = [name: string, value: string];

interface Section { name: string; index: number; extended: boolean; value: string }

const PARAM = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/g;
const SECTION = /^([^*]+)\*(?:(\d+)(\*)?)?$/;

/** The "; name=value" list after a field's first word. */
export function parseParams(v: string): MimeParam[] {
  const plain: MimeParam[] = [];
  const sections: Section[] = [];
  for (const m of v.matchAll(PARAM)) {
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
    const s = SECTION.exec(m[1]);
    if (!s) plain.push([m[1].toUpperCase(), value]);
    else sections.push({ name: s[1], index: s[2] === undefined ? 0 : Number(s[2]), extended: s[2] === undefined || s[3] === '*', value });
  }
  if (!sections.length) return plain;
  sections.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index));
  for (let i = 0; i < sections.length;) {
    const name = sections[i].name.toLowerCase();
    let j = i;
    while (j < sections.length && sections[j].name.toLowerCase() === name) j++;
    plain.push(...joinSections(sections.slice(i, j)));
    i = j;
  }
  return plain;
}

function joinSections(family: Section[]): MimeParam[] {
  const name = family[0].name.toUpperCase();
  const whole = family.every((s, i) => s.index === i);
  if (!whole) return family.map((s) => [`${name}*${s.index}${s.extended ? '*' : ''}`, s.value]);
  const extended = family.some((s) => s.extended);
  // An unencoded section inside an encoded value is literal text: its % must not read as an escape.
  const text = family.map((s) => (extended && !s.extended ? s.value.replaceAll('%', '%25') : s.value)).join('');
  return [[extended ? `${name}*` : name, extended && !family[0].extended ? `''${text}` : text]];
}

/** A parameter's value as text: an RFC 2231 `charset'lang'%XX` value decoded (a charset not known here read as Latin-1). */
export function paramValue(params: MimeParam[], name: string): string | undefined {
  const upper = name.toUpperCase();
  const plain = params.find(([k]) => k === upper);
  if (plain) return plain[1];
  const encoded = params.find(([k]) => k === `${upper}*`)?.[1];
  if (encoded === undefined) return undefined;
  const m = EXTENDED.exec(encoded);
  if (!m) return encoded;
  return decodeExtended(encoded) ?? percentDecode(m[2]).toString('latin1');
}

const EXTENDED = /^([^']*)'[^']*'(.*)$/s;
/** RFC 2978 names of US-ASCII that TextDecoder does not know (it reads ASCII labels as windows-1252, which is ASCII's superset). */
const ASCII = /^(?:us-?ascii|ascii|ansi[-_]x3\.4-1968|iso646-us|us)$/i;

/**
 * An RFC 2231 extended value (`charset'lang'%XX...`, as parseParams gives a
 * `NAME*` parameter) as text; undefined when it is not one, its charset is
 * not known here, or its bytes are not text in that charset.
 */
export function decodeExtended(value: string): string | undefined {
  const m = EXTENDED.exec(value);
  if (!m) return undefined;
  const bytes = percentDecode(m[2]);
  const charset = m[1].trim() || 'us-ascii';
  if (ASCII.test(charset)) return bytes.every((b) => b < 0x80) ? bytes.toString('latin1') : undefined;
  try {
    return new TextDecoder(charset, { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** %XX escapes to their bytes, the text between them as UTF-8 (what the header held). */
function percentDecode(text: string): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(/%([0-9a-fA-F]{2})/g)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(Buffer.from(text.slice(last, at), 'utf8'));
    parts.push(Buffer.from([parseInt(m[1], 16)]));
    last = at + 3;
  }
  if (last < text.length) parts.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(parts);
}

/** Content-Language (RFC 3282): its comma-separated language tags. */
export function languageTags(v: string): string[] {
  return v.replace(/\([^)]*\)/g, '').split(',').map((t) => t.trim()).filter(Boolean);
}
