/** Streams for `md`: hits and misses, cas, invalidation (stale items and recache tokens), q, k, O, b. */
import { lastMetaCas } from '../meta-replies';
import { base64Of, ms, opaqueOfLength, unissuedCas, type MetaStream } from './commands';

export const deleteStreams: MetaStream[] = [
  {
    name: 'md: HD on a hit, NF on a miss, with k and O in request order',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x'), `md ${a} k Oo1\r\n`, `md ${a} Oo2 k\r\n`, `mg ${a} v\r\nmd ${a}\r\n`];
    },
  },
  {
    name: 'md C: a matching cas deletes, another answers EX and keeps the item; a miss is NF',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x', 'c'),
        `md ${a} C${unissuedCas} k\r\nmg ${a} v\r\n`,
        (replies) => `md ${a} C${lastMetaCas(replies)}\r\n`,
        `mg ${a} v\r\nmd ${a} C${unissuedCas}\r\n`,
      ];
    },
  },
  {
    name: 'md I marks the item stale with a new cas: mg shows X and W once, then Z',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x', 'c T0'),
        `md ${a} I\r\n`,
        `mg ${a} v c t\r\n`,
        `mg ${a} c\r\nmg ${a} v\r\n`,
        `md ${a} I\r\nmg ${a} c\r\nmg ${a}\r\n`,
        ms(a, 'fresh') + `mg ${a} v\r\n`,
        `md ${ns.key('missing')} I\r\n`,
      ];
    },
  },
  {
    name: 'md I T sets the TTL of the stale item; T without I deletes',
    steps: (ns) => {
      const a = ns.key('a');
      const b = ns.key('b');
      return [ms(a, 'x', 'T0') + `md ${a} I T30\r\nmg ${a} t v\r\n`, ms(b, 'y', 'T0') + `md ${b} T30\r\nmg ${b} v\r\n`];
    },
  },
  {
    name: 'md I with C: marks stale only when the cas matches',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x', 'c'), `md ${a} I C${unissuedCas}\r\nmg ${a}\r\n`, (replies) => `md ${a} C${lastMetaCas(replies)} I\r\n`, `mg ${a} v\r\n`];
    },
  },
  {
    name: 'md after md I deletes the stale item',
    steps: (ns) => [ms(ns.key('a'), 'x') + `md ${ns.key('a')} I\r\nmd ${ns.key('a')}\r\nmg ${ns.key('a')}\r\n`],
  },
  {
    name: 'md q: HD suppressed, NF and EX sent',
    steps: (ns) => {
      const a = ns.key('a');
      const b = ns.key('b');
      return [
        ms(a, 'x') + ms(b, 'y'),
        `md ${a} q\r\nmd ${a} q\r\nmd ${a} q k Oo\r\n`,
        `md ${b} q C${unissuedCas}\r\nmd ${b} I q\r\nmn\r\n`,
        `mg ${b} v\r\n`,
      ];
    },
  },
  {
    name: 'md b: a base64 key, echoed in base64 with b',
    steps: (ns) => {
      const key = base64Of(`${ns.key('bin')}\x00`);
      return [`ms ${key} 1 b\r\nx\r\n`, `md ${key} b k\r\n`, `md ${key} k b Oo\r\n`];
    },
  },
  {
    name: 'md errors: unknown and repeated flags, bad tokens, a long opaque',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x'), `md ${a} x\r\nmd ${a} q q\r\nmd ${a} Cx\r\nmd ${a} Tx\r\n`, `md ${a} ${opaqueOfLength(33)}\r\n`, `mg ${a} v\r\n`];
    },
  },
];
