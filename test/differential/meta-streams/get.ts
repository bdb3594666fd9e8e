/** Streams for `mg`: every flag, hit and miss, vivify and recache tokens, q and pipelining. */
import { base64Of, ms, opaqueOfLength, set, type MetaStream } from './commands';

export const getStreams: MetaStream[] = [
  {
    name: 'mg with no flags: HD on a hit, EN on a miss',
    steps: (ns) => [ms(ns.key('a'), 'hello'), `mg ${ns.key('a')}\r\nmg ${ns.key('missing')}\r\n`],
  },
  {
    name: 'mg v f s k O return value, client flags, size, key and opaque in request order',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'hello', 'F42'),
        `mg ${a} v f s k Oone\r\n`,
        `mg ${a} Otwo k s f v\r\n`,
        `mg ${a} s v\r\nmg ${a} f\r\nmg ${a} k\r\n`,
      ];
    },
  },
  {
    name: 'mg v on an empty value and on a value holding reply lines',
    steps: (ns) => [
      ms(ns.key('empty'), '') + ms(ns.key('tricky'), 'VA 3\r\nEN\r\nHD c1\r\n'),
      `mg ${ns.key('empty')} v s\r\nmg ${ns.key('tricky')} v s\r\n`,
    ],
  },
  {
    name: 'mg c returns the cas that ms c and gets return, until the next write',
    steps: (ns) => {
      const a = ns.key('a');
      return [`ms ${a} 2 c\r\nhi\r\n`, `mg ${a} c\r\ngets ${a}\r\nmg ${a} c v\r\n`, ms(a, 'ho', 'c'), `mg ${a} c\r\n`];
    },
  },
  {
    name: 'mg t: -1 without expiry, the seconds left with one',
    steps: (ns) => [
      ms(ns.key('never'), 'x', 'T0') + ms(ns.key('soon'), 'x', 'T100') + ms(ns.key('month'), 'x', 'T2592000') +
        `mg ${ns.key('never')} t\r\nmg ${ns.key('soon')} t v\r\nmg ${ns.key('month')} t\r\n`,
    ],
  },
  {
    name: 'mg h and l: not hit before, then hit; last access 0 right after one',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x') + `mg ${a} h l\r\n`, `mg ${a} h l\r\n`, `mg ${a} l h v\r\n`];
    },
  },
  {
    name: 'mg u neither marks the item hit nor moves it; a plain mg does',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x'), `mg ${a} u h\r\n`, `mg ${a} h u\r\n`, `mg ${a}\r\n`, `mg ${a} h\r\n`];
    },
  },
  {
    name: 'a classic get marks the item hit; a new ms clears the mark',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x'), `get ${a}\r\nmg ${a} h\r\n`, ms(a, 'y'), `mg ${a} h\r\n`, `mg ${a} h\r\n`];
    },
  },
  {
    name: 'mg T touches a hit: t reports the TTL before or after it in request order',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x', 'T100') + `mg ${a} t T30\r\nmg ${a} t\r\n`,
        `mg ${a} T200 t v\r\nmg ${a} T0 t\r\n`,
        `mg ${ns.key('missing')} T30 t\r\n`,
      ];
    },
  },
  {
    name: 'mg T-1 expires the item at once',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x'), `mg ${a} T-1\r\n`, `mg ${a} v\r\n`];
    },
  },
  {
    name: 'mg N vivifies on a miss: an empty value, W for the first client, Z for the next',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        `mg ${a} N30 v t s c f\r\n`,
        `mg ${a} N30 v t\r\n`,
        `mg ${a} v\r\nget ${a}\r\n`,
        ms(a, 'filled'),
        `mg ${a} v N30\r\n`,
      ];
    },
  },
  {
    name: 'mg N: a t before N reports the TTL of the item as first made',
    steps: (ns) => [`mg ${ns.key('a')} t N30\r\nmg ${ns.key('a')} t\r\n`, `mg ${ns.key('b')} k N0 t s\r\n`],
  },
  {
    name: 'mg N on a hit changes nothing',
    steps: (ns) => [ms(ns.key('a'), 'x', 'T0') + `mg ${ns.key('a')} N30 t v\r\nmg ${ns.key('a')} t\r\n`],
  },
  {
    name: 'mg N with q still answers the win',
    steps: (ns) => [`mg ${ns.key('a')} q N30\r\n`, `mg ${ns.key('a')} q N30\r\n`, `mg ${ns.key('a')} q\r\nmn\r\n`],
  },
  {
    name: 'mg R wins a recache once when the TTL left is under its token',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x', 'T100') + ms(ns.key('forever'), 'y', 'T0'),
        `mg ${a} R30 v\r\n`,
        `mg ${a} R200 v\r\n`,
        `mg ${a} R200 v\r\nmg ${a}\r\n`,
        `mg ${ns.key('forever')} R200\r\n`,
        ms(a, 'z', 'T100') + `mg ${a} R200\r\n`,
      ];
    },
  },
  {
    name: 'mg q: EN suppressed, even with k and O; HD and VA still sent',
    steps: (ns) => {
      const a = ns.key('a');
      const missing = ns.key('missing');
      return [ms(a, 'x'), `mg ${missing} q\r\nmg ${missing} q k Oo1\r\n`, `mg ${a} q\r\nmg ${a} q v\r\nmg ${a} k q\r\n`, 'mn\r\n'];
    },
  },
  {
    name: 'pipelined mg q in one packet, ended by mn',
    steps: (ns) => [
      set(ns.key('a'), 'A') + set(ns.key('b'), 'BB'),
      `mg ${ns.key('a')} q v k\r\nmg ${ns.key('m1')} q v k\r\nmg ${ns.key('b')} q v Ob\r\nmg ${ns.key('m2')} q\r\nmn\r\n`,
    ],
  },
  {
    name: 'mg misses carry k and O',
    steps: (ns) => [`mg ${ns.key('missing')} k Oo1 v\r\nmg ${ns.key('missing')} Oo2 c t k\r\n`],
  },
  {
    name: 'mg O: 32 bytes with its O are echoed, 33 refused on a hit and on a miss',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x'),
        `mg ${a} ${opaqueOfLength(32)} v\r\nmg ${a} O\r\n`,
        `mg ${a} ${opaqueOfLength(33)} v\r\n`,
        `mg ${ns.key('missing')} ${opaqueOfLength(33)}\r\n`,
        `mg ${ns.key('missing')} q ${opaqueOfLength(33)}\r\n`,
      ];
    },
  },
  {
    name: 'mg b: a binary key in base64, echoed in base64 with a b after it',
    steps: (ns) => {
      const binaryKey = base64Of(Buffer.concat([Buffer.from(ns.key('bin')), Buffer.from([0, 32, 13, 10, 255])]));
      const missing = base64Of(ns.key('missing'));
      return [
        `ms ${binaryKey} 3 b\r\nabc\r\n`,
        `mg ${binaryKey} b k v\r\nmg ${binaryKey} v b\r\n`,
        `mg ${binaryKey} b k q Oo1\r\n`,
        `mg ${missing} b k Oo2\r\nmg ${missing} b k q\r\nmn\r\n`,
      ];
    },
  },
  {
    name: 'mg b finds a key stored by name, and a name finds a key stored in base64',
    steps: (ns) => {
      const plain = ns.key('plain');
      const stored = ns.key('stored');
      return [
        ms(plain, 'p') + `ms ${base64Of(stored)} 1 b\r\ns\r\n`,
        `mg ${base64Of(plain)} b k v\r\n`,
        `mg ${stored} k v\r\n`,
      ];
    },
  },
  {
    name: 'mg flags in other orders and mixed with every return flag',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'abc', 'F7 T0'),
        `mg ${a} c f h k l Oall s t v\r\n`,
        `mg ${a} v t s Oall l k h f c\r\n`,
        `mg ${a} u k s\r\nmg ${a} s k u\r\n`,
      ];
    },
  },
  {
    name: 'mg accepts the flags of the other meta commands and ignores them',
    steps: (ns) => [ms(ns.key('a'), 'x'), `mg ${ns.key('a')} C123 D4 J5 ME I F6 P L v\r\n`, `mg ${ns.key('missing')} F1 I\r\n`],
  },
];
