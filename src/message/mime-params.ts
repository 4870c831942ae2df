// The parameters of a MIME field (RFC 2045 5.1: `type/sub; name=value; ...`)
// with RFC 2231's continuations joined: `name*0*=..; name*1=..` is one
// parameter again, `name*` when any section was charset-encoded (its value
// then stays in the `charset'lang'%XX` form a client decodes) and `name`
// when none was. The order is the one IMAP servers give (Dovecot's): plain
// parameters as written, then the RFC 2231 ones sorted by name. A family
// with a missing section is passed through as written, since its value
// cannot be recovered. Names are upper-cased, as BODYSTRUCTURE shows them.

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

/** A parameter's value as text: an RFC 2231 `charset'lang'%XX` value decoded (UTF-8 and ASCII; others as Latin-1). */
export function paramValue(params: MimeParam[], name: string): string | undefined {
  const upper = name.toUpperCase();
  const plain = params.find(([k]) => k === upper);
  if (plain) return plain[1];
  const encoded = params.find(([k]) => k === `${upper}*`)?.[1];
  if (encoded === undefined) return undefined;
  const m = /^([^']*)'[^']*'(.*)$/s.exec(encoded);
  if (!m) return encoded;
  const bytes = Buffer.from(m[2].replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return /^utf-?8$/i.test(m[1]) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/** Content-Language (RFC 3282): its comma-separated language tags. */
export function languageTags(v: string): string[] {
  return v.replace(/\([^)]*\)/g, '').split(',').map((t) => t.trim()).filter(Boolean);
}
