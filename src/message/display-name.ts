// Writing a person's name into an address header: `Full Name <addr>`.
// Guarantees the name is one harmless phrase whatever it holds: control
// characters (CR, LF, NUL...) become spaces, specials get a quoted-string
// (RFC 5322 3.2.4), non-ASCII text becomes RFC 2047 encoded-words (B
// encoding, UTF-8, at most 75 characters each, never splitting a
// character). sendmail quotes gecos names the same way before $x goes in.

const ATEXT_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$/;
const MAX_WORD = 75; // RFC 2047 2: an encoded-word is at most 75 characters
const WORD_OVERHEAD = '=?UTF-8?B??='.length;
const MAX_BYTES = Math.floor((MAX_WORD - WORD_OVERHEAD) / 4) * 3; // 45 octets -> 60 base64 characters

/** Control characters out, runs of white space to one space, trimmed. */
export function cleanName(name: string): string {
  return name.replace(/[\x00-\x1f\x7f]/g, ' ').replace(/\s+/g, ' ').trim();
}

/** RFC 2047 B-encoded words for text, separated by single spaces. */
export function encodeWords(text: string): string {
  const words: string[] = [];
  let chunk = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > MAX_BYTES) {
      words.push(chunk);
      chunk = '';
      bytes = 0;
    }
    chunk += ch;
    bytes += n;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

/**
 * A display name as a phrase: as is when it is plain words, quoted when it
 * holds specials (or "=?", so that it is not read as an encoded-word),
 * encoded when it holds non-ASCII.
 */
export function formatPhrase(name: string): string {
  const clean = cleanName(name);
  if (/[^\x20-\x7e]/.test(clean)) return encodeWords(clean);
  if (ATEXT_PHRASE.test(clean) && !clean.includes('=?')) return clean;
  return `"${clean.replace(/["\\]/g, '\\$&')}"`;
}

/** `Name <address>`, or the bare address when there is no name left after cleaning. */
export function formatMailbox(name: string | undefined, address: string): string {
  const phrase = name === undefined ? '' : formatPhrase(name);
  return phrase ? `${phrase} <${address}>` : address;
}
