/** Streams for `ma`: deltas, modes, autovivify, TTLs, cas, q, k, O, b, wrapping and bad values. */
import { lastMetaCas } from '../meta-replies';
import { base64Of, ms, opaqueOfLength, unissuedCas, type MetaStream } from './commands';

export const arithmeticStreams: MetaStream[] = [
  {
    name: 'ma increments by one by default: HD on a hit, NF on a miss',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, '5'), `ma ${a}\r\nmg ${a} v\r\n`, `ma ${ns.key('missing')}\r\nmg ${ns.key('missing')} v\r\n`];
    },
  },
  {
    name: 'ma D applies a delta; v returns the new number',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, '5'), `ma ${a} D10 v\r\nma ${a} v D0\r\nma ${a} D18446744073709551615 v\r\n`];
    },
  },
  {
    name: 'ma M modes: I and + increment, D and - decrement; others refused',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, '10'),
        `ma ${a} MI v\r\nma ${a} M+ D2 v\r\nma ${a} MD D3 v\r\nma ${a} M- v\r\n`,
        `ma ${a} Mx v\r\nma ${a} Mi v\r\nma ${a} Md v\r\nma ${a} MDD v\r\nma ${a} M v\r\n`,
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'ma decrements stop at 0; a shorter number keeps the length, padded with spaces',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, '100'), `ma ${a} MD v\r\nmg ${a} v s\r\n`, `ma ${a} MD D1000 v\r\nmg ${a} v\r\nget ${a}\r\n`, `ma ${a} D7 v\r\nmg ${a} v\r\n`];
    },
  },
  {
    name: 'ma increments wrap at 2^64',
    steps: (ns) => [
      ms(ns.key('a'), '18446744073709551615') + ms(ns.key('b'), '18446744073709551610'),
      `ma ${ns.key('a')} v\r\nma ${ns.key('b')} D10 v\r\n`,
    ],
  },
  {
    name: 'ma N vivifies a miss with J as the value, the delta not applied; J alone is ignored',
    steps: (ns) => [
      `ma ${ns.key('a')} N0 J10 v\r\nma ${ns.key('a')} N0 J10 v\r\n`,
      `ma ${ns.key('b')} J5 v\r\nma ${ns.key('c')} N0 v\r\nma ${ns.key('d')} N0 J18446744073709551615 MD v\r\n`,
      `mg ${ns.key('a')} v f\r\nmg ${ns.key('b')} v\r\n`,
    ],
  },
  {
    name: 'ma N sets the TTL of the new item; t reports it in request order',
    steps: (ns) => [
      `ma ${ns.key('a')} N100 t v\r\nma ${ns.key('b')} t N100 v\r\nmg ${ns.key('b')} t\r\nma ${ns.key('a')} N5 t\r\n`,
    ],
  },
  {
    name: 'ma T sets the TTL on success; t reports it in request order',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, '1', 'T0') + `ma ${a} t T100 v\r\nma ${a} t v\r\nma ${a} T0 t\r\nma ${ns.key('missing')} T100 t\r\n`];
    },
  },
  {
    name: 'ma T-1 expires the item at once',
    steps: (ns) => [ms(ns.key('a'), '1') + `ma ${ns.key('a')} T-1 v\r\n`, `mg ${ns.key('a')} v\r\n`],
  },
  {
    name: 'ma keeps the client flags of the item',
    steps: (ns) => [ms(ns.key('a'), '1', 'F7') + `ma ${ns.key('a')}\r\nmg ${ns.key('a')} f v\r\nget ${ns.key('a')}\r\n`],
  },
  {
    name: 'ma c returns the new cas; C compares it; a miss with N ignores C',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, '1', 'c'),
        `ma ${a} c v\r\nmg ${a} c\r\n`,
        (replies) => `ma ${a} C${lastMetaCas(replies)} c v\r\n`,
        `ma ${a} C${unissuedCas} v\r\nma ${ns.key('missing')} C${unissuedCas}\r\nma ${ns.key('viv')} N0 C${unissuedCas} v\r\n`,
        `mg ${a} v c\r\n`,
      ];
    },
  },
  {
    name: 'ma q: HD and VA suppressed; NF, EX and errors sent',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, '1') + ms(ns.key('text'), 'abc'),
        `ma ${a} q\r\nma ${a} q v\r\nma ${ns.key('missing')} q\r\nma ${a} q C${unissuedCas}\r\n`,
        `ma ${ns.key('text')} q\r\nma ${a} q Mx\r\nma ${ns.key('new')} q N0 v\r\nmn\r\n`,
        `mg ${a} v\r\nmg ${ns.key('new')} v\r\n`,
      ];
    },
  },
  {
    name: 'ma on values that are not numbers: text, empty, spaces around digits, over 2^64',
    steps: (ns) => {
      const names = ['text', 'empty', 'spaced', 'huge', 'negative'];
      return [
        ms(ns.key('text'), 'abc') + ms(ns.key('empty'), '') + ms(ns.key('spaced'), ' 12 ') + ms(ns.key('huge'), '18446744073709551616') + ms(ns.key('negative'), '-1'),
        names.map((name) => `ma ${ns.key(name)} v\r\n`).join(''),
        `ma ${ns.key('text')} MD k Oo\r\nmg ${ns.key('spaced')} v\r\n`,
      ];
    },
  },
  {
    name: 'ma k and O on a hit and a miss; b with a base64 key',
    steps: (ns) => {
      const key = base64Of(`${ns.key('bin')}\x00`);
      return [
        ms(ns.key('a'), '1'),
        `ma ${ns.key('a')} k Oo1 v\r\nma ${ns.key('missing')} Oo2 k\r\n`,
        `ma ${key} b k N0 v\r\nma ${key} b k\r\nma ${key} b v\r\n`,
      ];
    },
  },
  {
    name: 'ma errors: bad delta, initial, TTL and cas tokens, unknown or repeated flags, a long opaque',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, '1'),
        `ma ${a} Dx\r\nma ${a} D-1\r\nma ${a} D18446744073709551616\r\nma ${a} D\r\n`,
        `ma ${a} N0 Jx\r\nma ${a} Nx\r\nma ${a} Tx\r\nma ${a} Cx\r\n`,
        `ma ${a} v v\r\nma ${a} z\r\n`,
        // Only on a miss: on a hit memcached applies the delta before it checks the opaque.
        `ma ${ns.key('missing')} ${opaqueOfLength(33)}\r\n`,
        `mg ${a} v\r\n`,
      ];
    },
  },
];
