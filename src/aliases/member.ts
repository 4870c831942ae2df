// The kinds of alias members. parse.ts writes members in a canonical form
// whose first characters say what they are (`|`, `/`, `:include:`, `\`);
// this module names that form as a type so expansion switches on a kind and
// never looks at prefixes itself. Leaf module.

export type Member =
  | { kind: 'program'; command: string }
  | { kind: 'file'; path: string }
  | { kind: 'include'; path: string }
  | { kind: 'user'; name: string } // `\user`: no aliasing, no .forward
  | { kind: 'address'; address: string };

export function classifyMember(member: string): Member {
  switch (member.charCodeAt(0)) {
    case 0x7c: // |
      return { kind: 'program', command: member.slice(1) };
    case 0x2f: // /
      return { kind: 'file', path: member };
    case 0x5c: // backslash
      return { kind: 'user', name: member.slice(1) };
    case 0x3a: // :
      if (member.startsWith(':include:')) return { kind: 'include', path: member.slice(':include:'.length) };
      break;
    default:
      break;
  }
  return { kind: 'address', address: member };
}
