/** Streams for `mn` and `me`. */
import { base64Of, ms, type MetaStream } from './commands';

export const debugStreams: MetaStream[] = [
  {
    name: 'mn answers MN, whatever follows it',
    steps: () => ['mn\r\n', 'mn extra tokens\r\nmn\r\n'],
  },
  {
    name: 'me on a hit prints the item fields in order, EN on a miss',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'hello', 'T100'), `me ${a}\r\n`, `mg ${a} v\r\nme ${a}\r\n`, `me ${ns.key('missing')}\r\n`, `me ${a} unknown flags\r\n`];
    },
  },
  {
    name: 'me b: a base64 key, printed in base64 when it was stored so',
    steps: (ns) => {
      const binaryKey = base64Of(`${ns.key('bin')}\x00`);
      const plain = ns.key('plain');
      return [
        `ms ${binaryKey} 1 b\r\nx\r\n` + ms(plain, 'y'),
        `me ${binaryKey} b\r\nme ${base64Of(plain)} b\r\n`,
        `me ${base64Of(ns.key('missing'))} b\r\n`,
      ];
    },
  },
  {
    name: 'me errors: no key, a key over 250 bytes, b with a key that does not decode',
    steps: (ns) => ['me\r\n', `me ${ns.keyOfLength(251)}\r\n`, 'me !!!! b\r\nme ab= b\r\n'],
  },
];
