/**
 * The text protocol, byte for byte against Debian's memcached: each named stream is played to
 * memcached and to the server under test (kai by default; KAI_DIFFERENTIAL_SUBJECT=memcached plays
 * it to a second memcached, which checks the harness itself), and the replies must match once cas
 * uniques, version strings and stats values are masked.
 */
import {
  awaitReplies,
  lastCasUnique,
  namesMemcachedLacks,
  normalizeReplies,
  parseStatsReply,
  runStream,
  startMemcached,
  startSubject,
  subjectEnvironmentVariable,
  type RunningServer,
  type StreamStep,
} from './harness';
import { Namespace } from './namespace';

/** Both servers take the same item size limit: memcached -I 1m, kai --max-item-size 1048576. */
const valueBytesMax = 1024 * 1024;

interface StreamCase {
  readonly name: string;
  readonly steps: (ns: Namespace) => StreamStep[];
  /** The server closes the connection at the end (quit, over-long line). */
  readonly expectClose?: boolean;
  /** `stats`: compare the STAT-lines-then-END shape and that the subject's names exist in memcached's. */
  readonly compare?: 'replies' | 'stats';
}

const unixNow = (): number => Math.floor(Date.now() / 1000);
const set = (key: string, value: string, flags = 0, exptime: number | string = 0): string =>
  `set ${key} ${flags} ${exptime} ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`;

const basics: StreamCase[] = [
  {
    name: 'set then get',
    steps: (ns) => [set(ns.key('a'), 'hello'), `get ${ns.key('a')}\r\n`],
  },
  {
    name: 'multi-key get with misses and repeated keys',
    steps: (ns) => [
      set(ns.key('a'), 'A') + set(ns.key('b'), 'BB', 7),
      `get ${ns.key('a')} ${ns.key('missing')} ${ns.key('b')} ${ns.key('a')}\r\n`,
      `gets ${ns.key('missing')} ${ns.key('other')}\r\n`,
    ],
  },
  {
    name: 'gets cas unique stays equal until a write',
    steps: (ns) => [
      set(ns.key('c'), 'one'),
      `gets ${ns.key('c')}\r\ngets ${ns.key('c')}\r\n`,
      set(ns.key('c'), 'two'),
      `gets ${ns.key('c')}\r\n`,
    ],
  },
  {
    name: 'binary-safe value with CRLF and END inside',
    steps: (ns) => [set(ns.key('bin'), 'a\r\nEND\r\n\r\nVALUE x 0 1\r\n'), `get ${ns.key('bin')}\r\n`],
  },
  {
    name: 'every byte value round-trips',
    steps: (ns) => {
      const value = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
      return [
        Buffer.concat([Buffer.from(`set ${ns.key('bytes')} 0 0 256\r\n`), value, Buffer.from('\r\n')]),
        `get ${ns.key('bytes')}\r\n`,
      ];
    },
  },
  {
    name: 'empty value',
    steps: (ns) => [`set ${ns.key('e')} 3 0 0\r\n\r\n`, `get ${ns.key('e')}\r\n`],
  },
  {
    name: 'flags up to 2^32-1 and their wrapping',
    steps: (ns) => [
      set(ns.key('f0'), 'x', 0) + set(ns.key('f1'), 'x', 1) + set(ns.key('fmax'), 'x', 4294967295),
      `set ${ns.key('fwrap')} 4294967296 0 1\r\nx\r\nset ${ns.key('f64')} 18446744073709551615 0 1\r\nx\r\n`,
      `set ${ns.key('fplus')} +5 0 1\r\nx\r\n`,
      `get ${['f0', 'f1', 'fmax', 'fwrap', 'f64', 'fplus'].map((name) => ns.key(name)).join(' ')}\r\n`,
    ],
  },
  {
    name: 'exptime relative, absolute, past, negative and wrapped',
    steps: (ns) => [
      set(ns.key('rel'), 'r', 0, 1000),
      set(ns.key('abs'), 'a', 0, unixNow() + 1000),
      set(ns.key('past'), 'p', 0, unixNow() - 1000),
      set(ns.key('old'), 'o', 0, 1_000_000_000),
      set(ns.key('neg'), 'n', 0, -1),
      set(ns.key('wrap'), 'w', 0, '2147483648'),
      set(ns.key('wrap2'), 'w', 0, '4294967296'),
      `get ${['rel', 'abs', 'past', 'old', 'neg', 'wrap', 'wrap2'].map((name) => ns.key(name)).join(' ')}\r\n`,
    ],
  },
  {
    name: 'add and replace',
    steps: (ns) => [
      `add ${ns.key('k')} 0 0 1\r\na\r\n`,
      `add ${ns.key('k')} 0 0 1\r\nb\r\n`,
      `replace ${ns.key('k')} 5 0 1\r\nc\r\n`,
      `replace ${ns.key('none')} 0 0 1\r\nd\r\n`,
      `get ${ns.key('k')} ${ns.key('none')}\r\n`,
    ],
  },
  {
    name: 'append and prepend keep flags and refuse missing keys',
    steps: (ns) => [
      set(ns.key('k'), 'mid', 9),
      `append ${ns.key('k')} 1 0 4\r\n_end\r\n`,
      `prepend ${ns.key('k')} 2 0 6\r\nstart_\r\n`,
      `append ${ns.key('none')} 0 0 1\r\nx\r\nprepend ${ns.key('none')} 0 0 1\r\nx\r\n`,
      `get ${ns.key('k')} ${ns.key('none')}\r\n`,
    ],
  },
  {
    name: 'cas succeeds with the current unique, then EXISTS, and NOT_FOUND when missing',
    steps: (ns) => [
      set(ns.key('k'), 'v1'),
      `gets ${ns.key('k')}\r\n`,
      (replies) => `cas ${ns.key('k')} 0 0 2 ${lastCasUnique(replies)}\r\nv2\r\n`,
      (replies) => `cas ${ns.key('k')} 0 0 2 ${lastCasUnique(replies)}\r\nv3\r\n`,
      `cas ${ns.key('none')} 0 0 1 1\r\nx\r\n`,
      `gets ${ns.key('k')}\r\n`,
      (replies) => `cas ${ns.key('k')} 4 0 2 ${lastCasUnique(replies)} noreply\r\nv4\r\nget ${ns.key('k')}\r\n`,
    ],
  },
  {
    name: 'delete and its legacy forms',
    steps: (ns) => [
      set(ns.key('a'), '1') + set(ns.key('b'), '2') + set(ns.key('c'), '3'),
      `delete ${ns.key('a')}\r\ndelete ${ns.key('a')}\r\n`,
      `delete ${ns.key('b')} 0\r\ndelete ${ns.key('c')} 0 noreply\r\n`,
      `delete ${ns.key('a')} 1\r\ndelete ${ns.key('a')} x\r\ndelete ${ns.key('a')} 1 noreply\r\n`,
      `delete ${ns.key('a')} 0 noreply extra\r\n`,
      `get ${ns.key('a')} ${ns.key('b')} ${ns.key('c')}\r\n`,
    ],
  },
];

const arithmetic: StreamCase[] = [
  {
    name: 'incr and decr basics',
    steps: (ns) => [
      set(ns.key('n'), '10', 3),
      `incr ${ns.key('n')} 5\r\ndecr ${ns.key('n')} 3\r\nincr ${ns.key('n')} 0\r\n`,
      `get ${ns.key('n')}\r\n`,
    ],
  },
  {
    name: 'incr wraps at 2^64',
    steps: (ns) => [
      set(ns.key('n'), '18446744073709551615'),
      `incr ${ns.key('n')} 2\r\nget ${ns.key('n')}\r\n`,
      set(ns.key('m'), '1'),
      `incr ${ns.key('m')} 18446744073709551615\r\n`,
    ],
  },
  {
    name: 'decr floors at 0',
    steps: (ns) => [set(ns.key('n'), '5'), `decr ${ns.key('n')} 100\r\ndecr ${ns.key('n')} 1\r\nget ${ns.key('n')}\r\n`],
  },
  {
    name: 'a shorter incr or decr result is padded with spaces to the old length',
    steps: (ns) => [
      set(ns.key('n'), '100'),
      `decr ${ns.key('n')} 91\r\nget ${ns.key('n')}\r\n`,
      `incr ${ns.key('n')} 1\r\nget ${ns.key('n')}\r\n`,
    ],
  },
  {
    name: 'a longer incr result grows the value',
    steps: (ns) => [set(ns.key('n'), '99'), `incr ${ns.key('n')} 1\r\nget ${ns.key('n')}\r\n`],
  },
  {
    name: 'incr on non-numeric values',
    steps: (ns) => [
      set(ns.key('word'), 'abc') + set(ns.key('mixed'), '12a') + set(ns.key('negative'), '-12'),
      set(ns.key('empty'), '') + set(ns.key('huge'), '18446744073709551616'),
      `incr ${ns.key('word')} 1\r\nincr ${ns.key('mixed')} 1\r\nincr ${ns.key('negative')} 1\r\n`,
      `decr ${ns.key('empty')} 1\r\nincr ${ns.key('huge')} 1\r\n`,
      `get ${ns.key('huge')}\r\n`,
    ],
  },
  {
    name: 'incr reads numbers as strtoull does, with white space around them',
    steps: (ns) => [
      set(ns.key('lead'), ' 12') + set(ns.key('trail'), '12 '),
      `incr ${ns.key('lead')} 2\r\nincr ${ns.key('trail')} 2\r\n`,
      `get ${ns.key('lead')} ${ns.key('trail')}\r\n`,
    ],
  },
  {
    name: 'incr and decr on missing keys',
    steps: (ns) => [`incr ${ns.key('none')} 1\r\ndecr ${ns.key('none')} 1\r\n`],
  },
  {
    name: 'incr with invalid deltas',
    steps: (ns) => [
      set(ns.key('n'), '1'),
      `incr ${ns.key('n')} -1\r\nincr ${ns.key('n')} x\r\nincr ${ns.key('n')} 18446744073709551616\r\n`,
      `decr ${ns.key('n')} 1x\r\nincr ${ns.key('n')} x noreply\r\nget ${ns.key('n')}\r\n`,
    ],
  },
];

const noreplyAndExpiry: StreamCase[] = [
  {
    name: 'noreply on every command that takes it',
    steps: (ns) => [
      `set ${ns.key('a')} 0 0 1 noreply\r\n1\r\nadd ${ns.key('a')} 0 0 1 noreply\r\n2\r\n`,
      `add ${ns.key('b')} 0 0 1 noreply\r\n3\r\nreplace ${ns.key('b')} 0 0 1 noreply\r\n4\r\n`,
      `append ${ns.key('b')} 0 0 1 noreply\r\n5\r\nprepend ${ns.key('b')} 0 0 1 noreply\r\n6\r\n`,
      `cas ${ns.key('b')} 0 0 1 1 noreply\r\n7\r\ncas ${ns.key('none')} 0 0 1 1 noreply\r\n8\r\n`,
      `incr ${ns.key('a')} 5 noreply\r\ndecr ${ns.key('a')} 1 noreply\r\nincr ${ns.key('none')} 1 noreply\r\n`,
      `touch ${ns.key('a')} 1000 noreply\r\ntouch ${ns.key('none')} 1000 noreply\r\n`,
      `delete ${ns.key('none')} noreply\r\nverbosity 0 noreply\r\n`,
      `get ${ns.key('a')} ${ns.key('b')}\r\n`,
      `delete ${ns.key('a')} noreply\r\nget ${ns.key('a')}\r\n`,
    ],
  },
  {
    name: 'noreply silences errors after it but not arity errors',
    steps: (ns) => [
      `set ${ns.key('a')} 0 0 noreply\r\nx\r\n`,
      `set ${ns.key('a')} 0 0 -1 noreply\r\nx\r\n`,
      `set ${ns.key('a')} noreply 0 1\r\nx\r\n`,
      `set ${ns.key('a')} 0 0 1 noreply\r\nxyz\r\n`,
      `touch ${ns.key('a')} x noreply\r\nverbosity noreply\r\nflush_all x noreply\r\n`,
      `set ${ns.key('a')} 0 0 1 noreply extra\r\nx\r\n`,
      `get ${ns.key('a')}\r\n`,
    ],
  },
  {
    name: 'touch, gat and gats',
    steps: (ns) => [
      set(ns.key('k'), 'v', 2),
      `touch ${ns.key('k')} 1000\r\ntouch ${ns.key('none')} 1000\r\n`,
      `gat 1000 ${ns.key('k')} ${ns.key('none')}\r\n`,
      `gats 0 ${ns.key('k')}\r\ngets ${ns.key('k')}\r\n`,
      `gat 1000 ${ns.key('none')}\r\n`,
      `touch ${ns.key('k')} 1000 extra\r\n`,
    ],
  },
  {
    name: 'touch and gat with a negative exptime expire the item',
    steps: (ns) => [
      set(ns.key('t'), 'v') + set(ns.key('g'), 'v'),
      `touch ${ns.key('t')} -1\r\nget ${ns.key('t')}\r\n`,
      `gat -1 ${ns.key('g')}\r\nget ${ns.key('g')}\r\n`,
    ],
  },
  {
    name: 'gat with only an exptime answers END',
    steps: () => ['gat 10\r\n', 'gats 10\r\n'],
  },
  {
    name: 'flush_all now',
    steps: (ns) => [set(ns.key('a'), '1') + set(ns.key('b'), '2'), 'flush_all\r\n', `get ${ns.key('a')} ${ns.key('b')}\r\n`],
  },
  {
    name: 'flush_all with a delay leaves items until then, and a later flush_all replaces it',
    steps: (ns) => [
      set(ns.key('a'), '1'),
      'flush_all 1000\r\n',
      `get ${ns.key('a')}\r\n`,
      'flush_all 0\r\n',
      `get ${ns.key('a')}\r\n`,
      set(ns.key('b'), '2'),
      `get ${ns.key('b')}\r\n`,
    ],
  },
  {
    name: 'flush_all with a delay past what a timer holds (24.8 days) leaves items until then',
    steps: (ns) => [
      set(ns.key('fa'), 'x'),
      'flush_all 2147484\r\n',
      `get ${ns.key('fa')}\r\n`,
      'flush_all 2592000\r\n',
      `get ${ns.key('fa')}\r\n`,
    ],
  },
  {
    name: 'flush_all with a unix time flushes at that time: later leaves items, past flushes now',
    steps: (ns) => [
      set(ns.key('fa'), 'x'),
      `flush_all ${unixNow() + 100}\r\n`,
      `get ${ns.key('fa')}\r\n`,
      `flush_all ${unixNow() - 1}\r\n`,
      `get ${ns.key('fa')}\r\n`,
      set(ns.key('fb'), 'y'),
      `get ${ns.key('fb')}\r\n`,
    ],
  },
  {
    name: 'flush_all forms',
    steps: (ns) => [
      set(ns.key('a'), '1'),
      'flush_all -1\r\n',
      `get ${ns.key('a')}\r\n`,
      'flush_all noreply\r\nflush_all 1000 noreply\r\nflush_all 10 20\r\n',
      'flush_all x\r\nflush_all noreply 5\r\nflush_all 1 2 3\r\n',
      'flush_all\r\n',
    ],
  },
  {
    name: 'verbosity and version',
    steps: () => [
      'verbosity 1\r\nverbosity 0 noreply\r\nverbosity 1 2\r\n',
      'verbosity\r\nverbosity x\r\nverbosity 1 2 3\r\nverbosity 0\r\n',
      'version\r\nversion with words\r\n',
    ],
  },
];

function packetStream(ns: Namespace): string {
  return (
    set(ns.key('p1'), 'one') +
    set(ns.key('p2'), 'two\r\n2', 5) +
    `get ${ns.key('p1')} ${ns.key('p2')}\r\n` +
    `incr ${ns.key('p1')} 1\r\nappend ${ns.key('p1')} 0 0 1\r\n!\r\n` +
    `delete ${ns.key('p2')}\r\nbogus line\r\ngets ${ns.key('p1')} ${ns.key('p2')}\r\n`
  );
}

/** Splits `text` into pieces of `size` bytes. */
function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length; at += size) out.push(text.slice(at, at + size));
  return out;
}

const framing: StreamCase[] = [
  {
    name: 'many commands in one packet',
    steps: (ns) => [packetStream(ns)],
  },
  {
    name: 'commands split across packets every 7 bytes',
    steps: (ns) => pieces(packetStream(ns), 7),
  },
  {
    name: 'a set split inside its header, its data and its CRLF, one byte per packet',
    steps: (ns) => pieces(`${set(ns.key('s'), 'ab\r\ncd')}get ${ns.key('s')}\r\n`, 1),
  },
  {
    name: 'bare newline line endings',
    steps: (ns) => [
      `set ${ns.key('n')} 0 0 1\nx\r\nget ${ns.key('n')}\n`,
      `incr ${ns.key('n')} 1\ndelete ${ns.key('n')}\nversion\n`,
    ],
  },
  {
    name: 'only one CR is dropped before the newline',
    steps: (ns) => [`set ${ns.key('r')} 0 0 1\r\r\nx\r\nget ${ns.key('r')}\r\r\nget ${ns.key('r')}\r\n`],
  },
  {
    name: 'a NUL ends the command line',
    steps: (ns) => [set(ns.key('z'), 'z'), `get ${ns.key('z')}\0 ${ns.key('z')}\r\n`, `set ${ns.key('q')} 0 0 1\0junk\r\nq\r\nget ${ns.key('q')}\r\n`],
  },
  {
    name: 'tabs and control bytes are key bytes, spaces separate',
    steps: (ns) => [
      set(`${ns.key('t')}\tb`, 'tab') + set(`${ns.key('c')}\x01\x7f`, 'ctl'),
      `get ${ns.key('t')}\tb ${ns.key('c')}\x01\x7f\r\n`,
      `  get   ${ns.key('c')}\x01\x7f   \r\n`,
      `set ${ns.key('s')} 0 0 1\t\r\nx\r\nget\t${ns.key('s')}\r\n`,
    ],
  },
];

const malformed: StreamCase[] = [
  {
    name: 'unknown commands and empty lines',
    steps: () => ['\r\n', '\n', 'bogus\r\n', 'GET x\r\n', 'g\r\n', 'get\r\n', 'get \r\n', 'gets\r\n', 'gat\r\n'],
  },
  {
    name: 'wrong token counts; the data line is then read as a command',
    steps: (ns) => [
      `set ${ns.key('a')} 0 0\r\nx\r\n`,
      `set ${ns.key('a')} 0 0 1 noreply extra\r\nx\r\n`,
      `cas ${ns.key('a')} 0 0 1\r\nx\r\n`,
      `cas ${ns.key('a')} 0 0 1 1 noreply x\r\nx\r\n`,
      `incr\r\nincr ${ns.key('a')}\r\nincr ${ns.key('a')} 1 2 3\r\ntouch ${ns.key('a')}\r\ndelete\r\n`,
      `set ${ns.key('a')} 0 0 1 stray\r\nx\r\nget ${ns.key('a')}\r\n`,
    ],
  },
  {
    name: 'too many tokens',
    steps: (ns) => [
      `set ${ns.key('a')} 0 0 1 ${'t '.repeat(25)}\r\nx\r\n`,
      `delete ${ns.key('a')} ${'t '.repeat(25)}\r\n`,
      `get ${Array.from({ length: 60 }, (_, index) => ns.key(`m${index % 3}`)).join(' ')}\r\n`,
    ],
  },
  {
    name: 'bad numbers in storage headers',
    steps: (ns) => [
      `set ${ns.key('a')} x 0 1\r\nx\r\nset ${ns.key('a')} -1 0 1\r\nx\r\nset ${ns.key('a')} 0 x 1\r\nx\r\n`,
      `set ${ns.key('a')} 0 99999999999999999999 1\r\nx\r\nset ${ns.key('a')} 0 0 -1\r\nx\r\n`,
      `set ${ns.key('a')} 0 0 1x\r\nx\r\nset ${ns.key('a')} 0 0 2147483648\r\nx\r\n`,
      `set ${ns.key('a')} 0 0 2147483646\r\nx\r\nset ${ns.key('a')} 0 0 4294967297\r\nx\r\n`,
      `cas ${ns.key('a')} 0 0 1 x\r\nx\r\ncas ${ns.key('a')} 0 0 1 -1\r\nx\r\n`,
      `cas ${ns.key('a')} 0 0 1 18446744073709551616\r\nx\r\n`,
      `get ${ns.key('a')}\r\n`,
    ],
  },
  {
    name: 'bad data chunks and where parsing resumes',
    steps: (ns) => [
      set(ns.key('a'), 'old'),
      `set ${ns.key('a')} 0 0 1\r\nxy\r\nget ${ns.key('a')}\r\n`,
      `set ${ns.key('a')} 0 0 3\r\nx\r\nget ${ns.key('a')}\r\n`,
      `set ${ns.key('a')} 0 0 1\r\nxyzget ${ns.key('a')}\r\n`,
      `set ${ns.key('a')} 0 0 1\nx\nget ${ns.key('a')}\n`,
      `set ${ns.key('a')} 0 0 1 noreply\r\nxyz\r\nget ${ns.key('a')}\r\n`,
    ],
  },
  {
    name: 'keys of 250 and 251 bytes',
    steps: (ns) => {
      const ok = ns.keyOfLength(250);
      const long = ns.keyOfLength(251);
      return [
        set(ok, 'fits'),
        `get ${ok}\r\ngets ${ok}\r\n`,
        `set ${long} 0 0 1\r\nx\r\n`,
        // Each after every earlier reply has left: memcached drops every reply still unsent on the
        // connection when a get names a key that is too long, so pipelined, their replies are lost.
        awaitReplies,
        `get ${long}\r\n`,
        awaitReplies,
        `get ${ok} ${long}\r\n`,
        awaitReplies,
        `gat 0 ${long}\r\n`,
        awaitReplies,
        `delete ${long}\r\nincr ${long} 1\r\ntouch ${long} 0\r\n`,
        `delete ${long} noreply\r\nincr ${long} 1 noreply\r\n`,
        `delete ${ok}\r\n`,
      ];
    },
  },
  {
    name: 'a long complete non-get line is read and rejected',
    steps: (ns) => [`set ${ns.keyOfLength(3000)} 0 0 1\r\nx\r\nversion\r\n`],
  },
];

const limits: StreamCase[] = [
  {
    name: 'value well under the item size limit',
    steps: (ns) => [set(ns.key('big'), 'v'.repeat(1_000_000)), `get ${ns.key('big')}\r\n`],
  },
  {
    name: 'value over the item size limit is refused and its block swallowed',
    steps: (ns) => [
      `set ${ns.key('huge')} 0 0 ${valueBytesMax + 1}\r\n`,
      `${'v'.repeat(valueBytesMax + 1)}XX`,
      `get ${ns.key('huge')}\r\n`,
    ],
  },
  {
    name: 'a value over the limit is answered only once its whole block has arrived',
    steps: (ns) => [
      set(ns.key('s'), 'old'),
      // The marks wait out a server that answers too early; the replies due are waited for.
      awaitReplies,
      `set ${ns.key('s')} 0 0 ${valueBytesMax + 1}\r\n`,
      { mark: '<header sent>' },
      'v'.repeat(valueBytesMax),
      { mark: '<all but the last bytes sent>' },
      'v\r\n',
      awaitReplies,
      { mark: '<block sent>', waitMs: 0 },
      `get ${ns.key('s')}\r\n`,
    ],
  },
  {
    name: 'a refused set removes the old value, a refused add does not',
    steps: (ns) => [
      set(ns.key('s'), 'old') + set(ns.key('a'), 'old'),
      `set ${ns.key('s')} 0 0 ${valueBytesMax + 10}\r\n${'v'.repeat(valueBytesMax + 10)}\r\n`,
      `add ${ns.key('a')} 0 0 ${valueBytesMax + 10}\r\n${'v'.repeat(valueBytesMax + 10)}\r\n`,
      `get ${ns.key('s')} ${ns.key('a')}\r\n`,
    ],
  },
  {
    name: 'a refused set with noreply is silent',
    steps: (ns) => [
      `set ${ns.key('s')} 0 0 ${valueBytesMax + 1} noreply\r\n${'v'.repeat(valueBytesMax + 1)}\r\n`,
      `get ${ns.key('s')}\r\n`,
    ],
  },
  {
    name: 'a long multiget line may arrive in pieces',
    steps: (ns) => {
      const keys = Array.from({ length: 400 }, (_, index) => ns.key(`g${index}`)).join(' ');
      const line = `get ${ns.key('g1')} ${keys}\r\n`;
      return [set(ns.key('g1'), 'one'), line.slice(0, 2500), line.slice(2500, 5000), line.slice(5000)];
    },
  },
];

const closing: StreamCase[] = [
  {
    name: 'quit closes after the earlier replies',
    steps: (ns) => [set(ns.key('q'), 'q') + `get ${ns.key('q')}\r\nquit\r\nget ${ns.key('q')}\r\n`],
    expectClose: true,
  },
  {
    name: 'quit with arguments still quits',
    steps: () => ['quit now\r\n'],
    expectClose: true,
  },
  {
    name: 'a non-get line past 2048 bytes without newline closes the connection silently',
    steps: (ns) => [`set ${ns.keyOfLength(3000)}`],
    expectClose: true,
  },
  {
    name: 'a GET request line closes the connection unanswered',
    steps: (ns) => [`get ${ns.key('h')}\r\n`, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    expectClose: true,
  },
  {
    name: 'a POST request line closes before its body is read',
    steps: (ns) => [`POST /x HTTP/1.0\r\nContent-Length: 23\r\n\r\n${set(ns.key('p'), 'smuggled')}`],
    expectClose: true,
  },
  {
    name: 'a lone HTTP version token closes too',
    steps: () => ['HTTP/1.0\r\n'],
    expectClose: true,
  },
  {
    name: 'lines memcached dispatches by their first letter are answered ERROR though they end in HTTP/',
    steps: () => ['gx / HTTP/1.0\r\nmx / HTTP/1.0\r\nFOO HTTP/1.0 tail\r\nG / HTTP/1.0\r\n'],
  },
];

const statistics: StreamCase[] = [
  { name: 'stats', steps: () => ['stats\r\n'], compare: 'stats' },
  { name: 'stats settings', steps: () => ['stats settings\r\n'], compare: 'stats' },
  { name: 'stats with an unknown group', steps: () => ['stats nosuchgroup\r\n'] },
  { name: 'stats reset', steps: () => ['stats reset\r\n'] },
];

const streams: StreamCase[] = [
  ...basics,
  ...arithmetic,
  ...noreplyAndExpiry,
  ...framing,
  ...malformed,
  ...limits,
  ...closing,
  ...statistics,
];

describe(`text protocol: ${process.env[subjectEnvironmentVariable] ?? 'kai'} against memcached`, () => {
  let reference: RunningServer;
  let subject: RunningServer;

  beforeAll(async () => {
    reference = await startMemcached({ valueBytesMax });
    subject = await startSubject({ valueBytesMax });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([reference?.stop(), subject?.stop()]);
  }, 30_000);

  // Each stream, on its own connection and keys, gets the same replies from both servers.
  test.each(streams.map((stream, index) => [stream.name, stream, index] as const))(
    '%s',
    async (_name, stream, index) => {
      const ns = new Namespace(`d${index}_${Date.now().toString(36)}_`);
      const steps = stream.steps(ns);
      const options = { expectClose: stream.expectClose };
      const expected = await runStream(reference.port, steps, options);
      const actual = await runStream(subject.port, steps, options);
      expect(actual.closed).toBe(expected.closed);
      if (stream.compare === 'stats') {
        const expectedShape = parseStatsReply(expected.bytes);
        const actualShape = parseStatsReply(actual.bytes);
        expect(actualShape).toHaveProperty('names');
        if (!('names' in expectedShape) || !('names' in actualShape)) return;
        expect(namesMemcachedLacks(actualShape.names, expectedShape.names)).toEqual([]);
        expect(actualShape.names.length).toBeGreaterThan(0);
      } else {
        expect(normalizeReplies(actual.bytes)).toEqual(normalizeReplies(expected.bytes));
      }
    },
    60_000,
  );
});

/** The counters kai and memcached both keep, compared by value after a known stream. */
const comparedCounters = [
  'cmd_get',
  'cmd_set',
  'cmd_touch',
  'get_hits',
  'get_misses',
  'get_expired',
  'delete_misses',
  'delete_hits',
  'incr_misses',
  'incr_hits',
  'decr_misses',
  'decr_hits',
  'cas_misses',
  'cas_hits',
  'cas_badval',
  'touch_hits',
  'touch_misses',
  'store_too_large',
  'total_items',
] as const;

/** Each `STAT` block of a transcript (up to its END), as the values of `names`. */
function statBlocks(bytes: Buffer, names: readonly string[]): Record<string, string>[] {
  const blocks: Record<string, string>[] = [];
  let current: Record<string, string> | undefined;
  for (const line of bytes.toString('latin1').split('\r\n')) {
    const match = /^STAT (\S+) (.*)$/.exec(line);
    if (match) {
      current ??= {};
      if (names.includes(match[1])) current[match[1]] = match[2];
    } else if (current) {
      blocks.push(current);
      current = undefined;
    }
  }
  return blocks;
}

const bytesOf = (length: number): string => 'v'.repeat(length);

/**
 * Every counter-moving command once, then a `stats`; then keys that expired before any access
 * (each touched once, in the step that stores it, as memcached forgets an expired item on its
 * first access while kai keeps it until the purge), then a second `stats`.
 */
const counterStream = (ns: Namespace): StreamStep[] => {
  const k = (name: string): string => ns.key(name);
  return [
    'stats reset\r\n',
    set(k('a'), '1') + set(k('b'), 'bb') + set(k('c'), 'cc'),
    `get ${k('a')} ${k('b')} ${k('missing')}\r\ngets ${k('a')}\r\n`,
    `add ${k('a')} 0 0 1\r\nx\r\nreplace ${k('missing')} 0 0 1\r\nx\r\n`,
    `append ${k('b')} 0 0 1\r\nc\r\nprepend ${k('b')} 0 0 1\r\nd\r\nappend ${k('missing')} 0 0 1\r\nx\r\n`,
    `delete ${k('b')}\r\ndelete ${k('missing')}\r\n`,
    `incr ${k('a')} 5\r\nincr ${k('a')} 500\r\ndecr ${k('a')} 1\r\nincr ${k('missing')} 1\r\ndecr ${k('missing')} 1\r\n`,
    `touch ${k('a')} 100\r\ntouch ${k('missing')} 100\r\n`,
    `gat 100 ${k('a')} ${k('missing')}\r\ngats 100 ${k('a')}\r\n`,
    `gets ${k('a')}\r\n`,
    (replies) => `cas ${k('a')} 0 0 1 ${lastCasUnique(replies)}\r\n7\r\n`,
    `cas ${k('a')} 0 0 1 1\r\n8\r\ncas ${k('missing')} 0 0 1 1\r\n9\r\n`,
    `set ${k('c')} 0 0 ${valueBytesMax + 1}\r\n${bytesOf(valueBytesMax + 1)}\r\n`,
    `add ${k('a')} 0 0 ${valueBytesMax + 1} noreply\r\n${bytesOf(valueBytesMax + 1)}\r\n`,
    'stats\r\n',
    set(k('e1'), 'x', 0, -1) + `get ${k('e1')}\r\n`,
    set(k('e2'), 'x', 0, -1) + `touch ${k('e2')} 10\r\n`,
    set(k('e3'), 'x', 0, -1) + `delete ${k('e3')}\r\n`,
    set(k('e4'), '1', 0, -1) + `incr ${k('e4')} 1\r\n`,
    set(k('e5'), 'x', 0, -1) + `gat 10 ${k('e5')}\r\n`,
    set(k('e6'), 'x', 0, -1) + set(k('e6'), 'y'),
    'stats\r\n',
  ];
};

describe(`statistics values: ${process.env[subjectEnvironmentVariable] ?? 'kai'} against memcached`, () => {
  let reference: RunningServer;
  let subject: RunningServer;

  // Fresh servers: curr_items and the allocator groups depend on everything stored before.
  beforeAll(async () => {
    reference = await startMemcached({ valueBytesMax });
    subject = await startSubject({ valueBytesMax });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([reference?.stop(), subject?.stop()]);
  }, 30_000);

  // On a server holding nothing, `stats items`, `stats slabs` and `stats sizes` answer alike.
  test('allocator groups of an empty server', async () => {
    const steps = ['stats items\r\nstats slabs\r\nstats sizes\r\n'];
    const expected = await runStream(reference.port, steps);
    const actual = await runStream(subject.port, steps);
    expect(actual.bytes.toString('latin1')).toBe(expected.bytes.toString('latin1'));
  });

  // A known stream moves every counter both servers keep to the same values.
  test('counters after a known stream', async () => {
    const steps = counterStream(new Namespace(`s_${Date.now().toString(36)}_`));
    const expected = await runStream(reference.port, steps);
    const actual = await runStream(subject.port, steps);
    const withoutStatLines = (bytes: Buffer): string[] =>
      normalizeReplies(bytes)
        .split('\n')
        .filter((line) => !line.startsWith('STAT '));
    expect(withoutStatLines(actual.bytes)).toEqual(withoutStatLines(expected.bytes));
    const names = [...comparedCounters, 'curr_items'];
    const [expectedLive, expectedExpired] = statBlocks(expected.bytes, names);
    const [actualLive, actualExpired] = statBlocks(actual.bytes, names);
    expect(Object.keys(expectedLive)).toHaveLength(names.length);
    expect(actualLive).toEqual(expectedLive);
    // memcached drops an expired item at its first access; kai keeps it until the purge.
    const { curr_items: expectedItems, ...expectedCounters } = expectedExpired;
    const { curr_items: actualItems, ...actualCounters } = actualExpired;
    expect([expectedItems, actualItems].every((items) => items !== undefined)).toBe(true);
    expect(actualCounters).toEqual(expectedCounters);
  }, 60_000);
});
