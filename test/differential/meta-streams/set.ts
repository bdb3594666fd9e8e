/** Streams for `ms`: flags, TTLs, cas, modes, q, base64 keys, size limits and bad data blocks. */
import { awaitReplies } from '../harness';
import { firstMetaCas, lastMetaCas } from '../meta-replies';
import { base64Of, ms, opaqueOfLength, unissuedCas, unixNow, valueBytesMax, type MetaStream } from './commands';

export const setStreams: MetaStream[] = [
  {
    name: 'ms stores what mg and get read back, empty values included',
    steps: (ns) => [
      ms(ns.key('a'), 'hello') + ms(ns.key('e'), ''),
      `mg ${ns.key('a')} v\r\nmg ${ns.key('e')} v\r\nget ${ns.key('a')} ${ns.key('e')}\r\n`,
    ],
  },
  {
    name: 'ms F sets client flags up to 2^32-1; 2^32 wraps to 0; without F they are 0',
    steps: (ns) => {
      const names = ['none', 'f1', 'max', 'wrap'];
      return [
        ms(ns.key('none'), 'x') + ms(ns.key('f1'), 'x', 'F1') + ms(ns.key('max'), 'x', 'F4294967295') + ms(ns.key('wrap'), 'x', 'F4294967296'),
        names.map((name) => `mg ${ns.key(name)} f\r\n`).join(''),
        `get ${names.map((name) => ns.key(name)).join(' ')}\r\n`,
      ];
    },
  },
  {
    name: 'ms c returns the new cas; k and O come back in request order',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'x', 'c k Oo1'), ms(a, 'y', 'Oo2 k c'), ms(a, 'z', 'k'), `mg ${a} c v\r\n`];
    },
  },
  {
    name: 'ms C stores on a matching cas, answers EX on another and NF on a missing key',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x', 'c'),
        (replies) => ms(a, 'y', `C${lastMetaCas(replies)} c`),
        ms(a, 'z', `C${unissuedCas} c`),
        ms(ns.key('missing'), 'z', `C${unissuedCas} c`),
        `mg ${a} v c\r\nmg ${ns.key('missing')} v\r\n`,
      ];
    },
  },
  {
    name: 'ms I with an older C stores the value as stale; with the current C it stores it plainly',
    steps: (ns) => {
      const a = ns.key('a');
      const b = ns.key('b');
      return [
        ms(a, 'first', 'c'),
        ms(a, 'second', 'c'),
        (replies) => ms(a, 'stale', `I C${firstMetaCas(replies)} c`),
        // No c here: winning the recache is a write in kai, which gives the key a new cas unique
        // (docs/protocol.md, Meta commands); memcached keeps the old one.
        `mg ${a} v\r\n`,
        `mg ${a} v\r\n`,
        ms(b, 'one', 'c'),
        (replies) => ms(b, 'two', `C${lastMetaCas(replies)} I`),
        `mg ${b} v\r\n`,
        ms(b, 'three', 'I') + `mg ${b} v\r\n`,
      ];
    },
  },
  {
    name: 'ms q: HD suppressed; NS, EX, NF and errors still sent',
    steps: (ns) => {
      const a = ns.key('a');
      const missing = ns.key('missing');
      return [
        ms(a, 'x', 'q'),
        ms(a, 'y', 'q ME') + ms(a, 'y', `q C${unissuedCas}`),
        ms(missing, 'z', `q C${unissuedCas}`) + ms(missing, 'z', 'q MR'),
        ms(a, 'w', 'q MX') + ms(a, 'v', 'q c k'),
        `mn\r\nmg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'ms modes: E add, A append, P prepend, R replace, S set',
    steps: (ns) => {
      const a = ns.key('a');
      const b = ns.key('b');
      return [
        ms(a, 'one', 'ME c') + ms(a, 'two', 'ME c'),
        ms(a, '>', 'MA') + ms(a, '<', 'MP') + `mg ${a} v\r\n`,
        ms(b, 'x', 'MR') + ms(b, 'x', 'MA') + ms(b, 'x', 'MP') + `mg ${b} v\r\n`,
        ms(a, 'new', 'MR') + `mg ${a} v\r\n`,
        ms(a, 'set', 'MS c') + ms(b, 'set', 'MS') + `mg ${a} v\r\nmg ${b} v\r\n`,
      ];
    },
  },
  {
    name: 'ms append and prepend keep the flags and TTL of the item',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'mid', 'F5 T100') + ms(a, '>', 'MA F9 T0') + ms(a, '<', 'MP F9 T0') + `mg ${a} v f t\r\n`];
    },
  },
  {
    name: 'ms modes with cas: add ignores it, append, prepend and replace compare it',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'x', 'c'),
        ms(a, 'e', `ME C${unissuedCas}`) + ms(a, 'a', `MA C${unissuedCas}`) + ms(a, 'p', `MP C${unissuedCas}`) + ms(a, 'r', `MR C${unissuedCas}`),
        (replies) => ms(a, '>', `MA C${lastMetaCas(replies)} c`),
        (replies) => ms(a, 'r', `MR C${lastMetaCas(replies)}`),
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'ms refuses a mode in lower case, an unknown one and one not one character long',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'kept'),
        ms(a, 'x', 'Ms') + ms(a, 'x', 'Ma') + ms(a, 'x', 'MX') + ms(a, 'x', 'M') + ms(a, 'x', 'MSS'),
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'ms N does not vivify: append to a missing key is not stored',
    steps: (ns) => [ms(ns.key('a'), 'x', 'MA N30') + ms(ns.key('a'), 'x', 'MP N30') + `mg ${ns.key('a')} v\r\n`],
  },
  {
    name: 'ms b stores under the decoded key; k echoes it in base64 with b',
    steps: (ns) => {
      const key = base64Of(`${ns.key('bin')}\x00\x01`);
      return [`ms ${key} 2 b k c Oo\r\nhi\r\n`, `ms ${key} 2 k b\r\nho\r\n`, `mg ${key} b v\r\n`];
    },
  },
  {
    name: 'ms over the size limit: refused once its block has arrived, the old value removed even in add mode',
    steps: (ns) => {
      const a = ns.key('a');
      const b = ns.key('b');
      return [
        ms(a, 'old') + ms(b, 'old'),
        // The marks wait out a server that answers too early; the replies due are waited for.
        awaitReplies,
        `ms ${a} ${valueBytesMax + 1} T0\r\n`,
        { mark: '<header sent>' },
        'v'.repeat(valueBytesMax),
        { mark: '<all but the last bytes sent>' },
        'v\r\n',
        awaitReplies,
        { mark: '<block sent>', waitMs: 0 },
        `ms ${b} ${valueBytesMax + 1} ME q\r\n${'v'.repeat(valueBytesMax + 1)}\r\n`,
        `mg ${a} v\r\nmg ${b} v\r\nmn\r\n`,
      ];
    },
  },
  {
    name: 'a value well under the size limit round-trips',
    steps: (ns) => [ms(ns.key('big'), 'v'.repeat(500_000), 'c'), `mg ${ns.key('big')} s v\r\n`],
  },
  {
    name: 'ms with a bad data chunk: the declared length is read, then parsing resumes',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'old'),
        `ms ${a} 1\r\nxyz\r\nmg ${a} v\r\n`,
        `ms ${a} 1 q\r\nxyz\r\nmg ${a} v\r\n`,
        `ms ${a} 3\r\nx\r\nmg ${a} v\r\n`,
        `ms ${a} 1\nx\nmg ${a} v\n`,
      ];
    },
  },
  {
    name: 'ms with a missing, negative, garbage or huge length: refused and the block read as a command',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        `ms ${a}\r\n`,
        `ms ${a} -1\r\nx\r\n`,
        `ms ${a} abc\r\nx\r\n`,
        `ms ${a} 1x\r\nx\r\n`,
        `ms ${a} T0\r\nx\r\n`,
        `ms ${a} 2147483646\r\nx\r\n`,
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'ms flag errors are answered after the data block is read and dropped',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'kept'),
        ms(a, 'abc', 'Zq') + ms(a, 'abc', 'v v') + ms(a, 'abc', 'Tx') + ms(a, 'abc', 'Fx') + ms(a, 'abc', 'Cx'),
        ms(a, 'abc', opaqueOfLength(33)) + ms('!!!!', 'abc', 'b') + ms(a, 'abc', 'q Zq') + ms(a, 'abc', 'S3'),
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'ms T: negative expires at once, 0 never, up to 30 days relative, beyond that a unix time',
    steps: (ns) => {
      const names = ['negative', 'zero', 'month', 'epoch', 'future', 'past'];
      return [
        () =>
          ms(ns.key('negative'), 'x', 'T-1') +
          ms(ns.key('zero'), 'x', 'T0') +
          ms(ns.key('month'), 'x', 'T2592000') +
          ms(ns.key('epoch'), 'x', 'T2592001') +
          ms(ns.key('future'), 'x', `T${unixNow() + 1000}`) +
          ms(ns.key('past'), 'x', `T${unixNow() - 10}`) +
          names.map((name) => `mg ${ns.key(name)} t v\r\n`).join(''),
      ];
    },
  },
];
