// Types for libqp (nodemailer's quoted-printable codec), which ships none:
// only the three functions mime-out.ts uses, as libqp's source defines them.
// encode() leaves line breaks as they are; wrap() adds soft breaks as =\r\n.
declare module 'libqp' {
  export function encode(data: Buffer | string): string;
  export function decode(data: Buffer | string): Buffer;
  export function wrap(str: string, lineLength?: number): string;
  const libqp: { encode: typeof encode; decode: typeof decode; wrap: typeof wrap };
  export default libqp;
}
