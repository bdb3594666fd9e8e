/**
 * The binary protocol, byte for byte against Debian's memcached: each named stream of request
 * packets is played to memcached and to the server under test (kai by default), and the responses
 * must match once cas values, the version string and stats values are masked.
 */
import {
  arithExtras,
  binaryOpcode as op,
  binaryRequest,
  parseResponses,
  storeExtras,
  uint32Extras,
  type RequestParts,
} from '../support/binary';
import {
  lastBinaryCas,
  namesMemcachedLacks,
  normalizeBinaryReplies,
  runStream,
  startMemcached,
  startSubject,
  subjectEnvironmentVariable,
  type RunningServer,
  type StreamStep,
} from './harness';

/** Both servers take the same item size limit: memcached -I 1m, kai --max-item-size 1048576. */
const valueBytesMax = 1024 * 1024;

interface StreamCase {
  readonly name: string;
  readonly steps: (key: (name: string) => string) => StreamStep[];
  readonly expectClose?: boolean;
  /** `stats`: compare the packet shape and that the subject's names exist in memcached's. */
  readonly compare?: 'replies' | 'stats';
}

const set = (key: string, value: string | Buffer, parts: RequestParts & { flags?: number; exptime?: number } = {}): Buffer =>
  binaryRequest(op.set, { key, value, extras: storeExtras(parts.flags ?? 0, parts.exptime ?? 0), ...parts });
const setq = (key: string, value: string, flags = 0): Buffer => binaryRequest(op.setq, { key, value, extras: storeExtras(flags) });
const get = (opcode: number, key: string, opaque = 0): Buffer => binaryRequest(opcode, { key, opaque });
const arith = (opcode: number, key: string, delta: bigint, initial = 0n, expiration = 0, cas = 0n): Buffer =>
  binaryRequest(opcode, { key, extras: arithExtras(delta, initial, expiration), cas, opaque: 77 });
const touchLike = (opcode: number, key: string, exptime: number, opaque = 0): Buffer =>
  binaryRequest(opcode, { key, extras: uint32Extras(exptime), opaque });
const noop = (opaque = 0): Buffer => binaryRequest(op.noop, { opaque });
const joined = (...packets: Buffer[]): Buffer => Buffer.concat(packets);
const unixNow = (): number => Math.floor(Date.now() / 1000);

const storage: StreamCase[] = [
  {
    name: 'set then get, getk, getq and getkq with flags and opaque',
    steps: (k) => [
      set(k('a'), 'hello', { flags: 0xdeadbeef, opaque: 1 }),
      joined(get(op.get, k('a'), 2), get(op.getk, k('a'), 3), get(op.getq, k('a'), 4), get(op.getkq, k('a'), 5)),
    ],
  },
  {
    name: 'misses: get and getk answer, getq and getkq stay silent',
    steps: (k) => [joined(get(op.get, k('none'), 1), get(op.getk, k('none'), 2), get(op.getq, k('none'), 3), get(op.getkq, k('none'), 4), noop(5))],
  },
  {
    name: 'every byte value and an empty value round-trip',
    steps: (k) => [
      set(k('bytes'), Buffer.from(Array.from({ length: 256 }, (_, byte) => byte))),
      set(k('empty'), '', { flags: 3 }),
      joined(get(op.get, k('bytes')), get(op.getk, k('empty'))),
    ],
  },
  {
    name: 'add and replace',
    steps: (k) => [
      binaryRequest(op.add, { key: k('k'), extras: storeExtras(1), value: 'a', opaque: 1 }),
      binaryRequest(op.add, { key: k('k'), extras: storeExtras(1), value: 'b', opaque: 2 }),
      binaryRequest(op.replace, { key: k('k'), extras: storeExtras(5), value: 'c', opaque: 3 }),
      binaryRequest(op.replace, { key: k('none'), extras: storeExtras(5), value: 'd', opaque: 4 }),
      joined(get(op.getk, k('k')), get(op.getk, k('none'))),
    ],
  },
  {
    name: 'append and prepend keep flags, and miss without a value',
    steps: (k) => [
      set(k('j'), 'mid', { flags: 9 }),
      binaryRequest(op.append, { key: k('j'), value: '>', opaque: 1 }),
      binaryRequest(op.prepend, { key: k('j'), value: '<', opaque: 2 }),
      binaryRequest(op.append, { key: k('none'), value: 'x', opaque: 3 }),
      binaryRequest(op.prepend, { key: k('none'), value: 'x', opaque: 4 }),
      get(op.get, k('j')),
    ],
  },
  {
    name: 'delete, and delete of a missing key',
    steps: (k) => [
      setq(k('d'), 'x'),
      binaryRequest(op.delete, { key: k('d'), opaque: 1 }),
      binaryRequest(op.delete, { key: k('d'), opaque: 2 }),
      get(op.get, k('d')),
    ],
  },
  {
    name: 'exptime relative, absolute and past',
    steps: (k) => [
      set(k('rel'), 'r', { exptime: 1000 }),
      set(k('abs'), 'a', { exptime: unixNow() + 1000 }),
      set(k('past'), 'p', { exptime: unixNow() - 1000 }),
      set(k('old'), 'o', { exptime: 1_000_000_000 }),
      joined(get(op.getk, k('rel')), get(op.getk, k('abs')), get(op.getk, k('past')), get(op.getk, k('old'))),
    ],
  },
];

const cas: StreamCase[] = [
  {
    name: 'set, append, delete and add with a stale cas are refused',
    steps: (k) => [
      set(k('c'), 'one'),
      (replies) => set(k('c'), 'two', { cas: lastBinaryCas(replies) + 1000n, opaque: 1 }),
      (replies) => binaryRequest(op.append, { key: k('c'), value: 'x', cas: lastBinaryCas(replies) + 1000n, opaque: 2 }),
      (replies) => binaryRequest(op.delete, { key: k('c'), cas: lastBinaryCas(replies) + 1000n, opaque: 3 }),
      (replies) => binaryRequest(op.add, { key: k('c'), extras: storeExtras(0), value: 'x', cas: lastBinaryCas(replies) + 1000n, opaque: 4 }),
      binaryRequest(op.replace, { key: k('none'), extras: storeExtras(0), value: 'x', cas: 12345n, opaque: 5 }),
      set(k('none'), 'x', { cas: 12345n, opaque: 6 }),
      get(op.getk, k('c')),
    ],
  },
  {
    name: 'set, append, incr and delete with the current cas succeed',
    steps: (k) => [
      set(k('c'), '10'),
      (replies) => set(k('c'), '20', { cas: lastBinaryCas(replies), opaque: 1 }),
      (replies) => binaryRequest(op.append, { key: k('c'), value: '0', cas: lastBinaryCas(replies), opaque: 2 }),
      (replies) => arith(op.increment, k('c'), 5n, 0n, 0, lastBinaryCas(replies)),
      (replies) => arith(op.decrement, k('c'), 5n, 0n, 0, lastBinaryCas(replies) + 1000n),
      get(op.getk, k('c')),
      (replies) => binaryRequest(op.delete, { key: k('c'), cas: lastBinaryCas(replies), opaque: 3 }),
      get(op.getk, k('c')),
    ],
  },
];

const arithmetic: StreamCase[] = [
  {
    name: 'incr and decr create with the initial value unless the expiration is 0xffffffff',
    steps: (k) => [
      arith(op.increment, k('n'), 1n, 10n, 0xffffffff),
      arith(op.decrement, k('n'), 1n, 10n, 0xffffffff),
      arith(op.increment, k('n'), 1n, 10n, 0),
      arith(op.increment, k('n'), 5n),
      arith(op.decrement, k('m'), 3n, 7n, 100),
      arith(op.decrement, k('m'), 3n),
      joined(get(op.get, k('n')), get(op.get, k('m'))),
    ],
  },
  {
    name: 'incr wraps at 2^64, decr floors at 0, shorter results are space-padded',
    steps: (k) => [
      set(k('w'), '18446744073709551615'),
      arith(op.increment, k('w'), 2n),
      set(k('f'), '100'),
      arith(op.decrement, k('f'), 95n),
      get(op.get, k('f')),
      arith(op.decrement, k('f'), 1000n),
      get(op.get, k('f')),
    ],
  },
  {
    name: 'non-numeric values are refused',
    steps: (k) => [set(k('t'), 'abc'), arith(op.increment, k('t'), 1n), set(k('neg'), '-5'), arith(op.decrement, k('neg'), 1n)],
  },
];

const touching: StreamCase[] = [
  {
    // Each key is touched once: kai's touch writes a new version, so its cas moves on (docs/protocol.md).
    name: 'touch, gat and gatk on present and missing keys',
    steps: (k) => [
      joined(setq(k('t1'), 'one', 1), setq(k('t2'), 'two', 2), setq(k('t3'), 'three', 3)),
      touchLike(op.touch, k('t1'), 1000, 1),
      touchLike(op.gat, k('t2'), 1000, 2),
      touchLike(op.gatk, k('t3'), 1000, 3),
      joined(touchLike(op.touch, k('none'), 10, 4), touchLike(op.gat, k('none'), 10, 5), touchLike(op.gatk, k('none'), 10, 6)),
    ],
  },
  {
    name: 'gat with a past exptime answers the item then expires it',
    steps: (k) => [setq(k('g'), 'gone'), touchLike(op.gat, k('g'), 1_000_000_000), get(op.get, k('g'))],
  },
];

const quiet: StreamCase[] = [
  {
    name: 'quiet variants answer only errors, in order',
    steps: (k) => [
      joined(
        binaryRequest(op.setq, { key: k('a'), extras: storeExtras(0), value: '1', opaque: 1 }),
        binaryRequest(op.addq, { key: k('a'), extras: storeExtras(0), value: '2', opaque: 2 }),
        binaryRequest(op.replaceq, { key: k('none'), extras: storeExtras(0), value: '2', opaque: 3 }),
        binaryRequest(op.appendq, { key: k('a'), value: '0', opaque: 4 }),
        binaryRequest(op.prependq, { key: k('none'), value: '0', opaque: 5 }),
        binaryRequest(op.incrementq, { key: k('a'), extras: arithExtras(1n), opaque: 6 }),
        binaryRequest(op.decrementq, { key: k('none'), extras: arithExtras(1n, 0n, 0xffffffff), opaque: 7 }),
        binaryRequest(op.gatkq, { key: k('none'), extras: uint32Extras(0), opaque: 9 }),
        binaryRequest(op.getq, { key: k('a'), opaque: 10 }),
        binaryRequest(op.deleteq, { key: k('a'), opaque: 11 }),
        binaryRequest(op.deleteq, { key: k('a'), opaque: 12 }),
        noop(13),
      ),
    ],
  },
  {
    name: 'a GETKQ ... NOOP multi-get',
    // Sets in separate steps: kai's cas names a key's version context, so two keys written in
    // the same millisecond may share one, which the masking would number differently.
    steps: (k) => [
      setq(k('1'), 'v1'),
      setq(k('3'), 'v3', 3),
      setq(k('5'), 'v5'),
      joined(...['1', '2', '3', '4', '5'].map((name, index) => get(op.getkq, k(name), index)), noop(99)),
    ],
  },
  {
    name: 'flush and flushq empty the cache',
    steps: (k) => [
      setq(k('f'), 'x'),
      binaryRequest(op.flush, { opaque: 1 }),
      get(op.get, k('f')),
      setq(k('g'), 'y'),
      joined(binaryRequest(op.flushq, { opaque: 2 }), get(op.getk, k('g'), 3)),
    ],
  },
  {
    name: 'flush with a delay past what a timer holds, or a later unix time, leaves items; a past one flushes',
    steps: (k) => {
      const flushIn = (delay: number, opaque: number): Buffer => {
        const extras = Buffer.alloc(4);
        extras.writeUInt32BE(delay);
        return binaryRequest(op.flush, { extras, opaque });
      };
      return [
        setq(k('f'), 'x'),
        joined(flushIn(2_147_484, 1), get(op.getk, k('f'), 2)),
        joined(flushIn(2_592_000, 3), get(op.getk, k('f'), 4)),
        joined(flushIn(unixNow() + 100, 5), get(op.getk, k('f'), 6)),
        joined(flushIn(unixNow() - 1, 7), get(op.getk, k('f'), 8)),
      ];
    },
  },
];

const server: StreamCase[] = [
  { name: 'noop and version', steps: () => [joined(noop(1), binaryRequest(op.version, { opaque: 2 }))] },
  {
    name: 'SASL commands without authentication configured are unknown',
    steps: () => [
      binaryRequest(op.saslListMechs, { opaque: 1 }),
      binaryRequest(op.saslAuth, { key: 'PLAIN', value: '\0user\0pass', opaque: 2 }),
      binaryRequest(op.saslStep, { key: 'PLAIN', value: 'more', opaque: 3 }),
    ],
  },
  { name: 'stat', steps: () => [binaryRequest(op.stat, { opaque: 5 })], compare: 'stats' },
  { name: 'stat settings', steps: () => [binaryRequest(op.stat, { key: 'settings' })], compare: 'stats' },
  { name: 'stat reset', steps: () => [binaryRequest(op.stat, { key: 'reset', opaque: 6 })] },
  { name: 'stat with an unknown group', steps: () => [binaryRequest(op.stat, { key: 'nosuchgroup' })] },
  {
    // A bare `detail` is left out: memcached 1.6.18 reads its word past the key, from whatever the
    // buffer held before (after `detail off` it finds ` off` there).
    name: 'stat detail on, dump, off, and with another word',
    steps: () => [
      binaryRequest(op.stat, { key: 'detail on', opaque: 1 }),
      binaryRequest(op.stat, { key: 'detail dump', opaque: 2 }),
      binaryRequest(op.stat, { key: 'detail off', opaque: 3 }),
      binaryRequest(op.stat, { key: 'detail bogus', opaque: 4 }),
    ],
  },
  { name: 'quit answers then closes', steps: () => [joined(binaryRequest(op.quit, { opaque: 4 }), noop())], expectClose: true },
  { name: 'quitq closes silently', steps: () => [joined(binaryRequest(op.quitq, { opaque: 4 }), noop())], expectClose: true },
];

const malformed: StreamCase[] = [
  { name: 'an unknown opcode is answered and the connection kept', steps: () => [binaryRequest(0x55, { opaque: 1 }), noop(2)] },
  {
    name: 'a value over the limit is too large, swallowed, and the old value dropped',
    steps: (k) => [
      set(k('big'), 'old'),
      set(k('big'), Buffer.alloc(valueBytesMax + 1, 0x61), { opaque: 1 }),
      binaryRequest(op.append, { key: k('big'), value: Buffer.alloc(valueBytesMax + 1, 0x62), opaque: 2 }),
      get(op.getk, k('big')),
    ],
  },
  {
    name: 'get with extras is invalid and closes',
    steps: (k) => [joined(binaryRequest(op.get, { key: k('x'), extras: uint32Extras(1) }), noop())],
    expectClose: true,
  },
  {
    name: 'set with short extras is invalid and closes',
    steps: (k) => [joined(binaryRequest(op.set, { key: k('x'), extras: uint32Extras(1), value: 'v' }), noop())],
    expectClose: true,
  },
  {
    name: 'incr with a value is invalid and closes',
    steps: (k) => [joined(binaryRequest(op.increment, { key: k('x'), extras: arithExtras(1n), value: 'v' }), noop())],
    expectClose: true,
  },
  {
    name: 'a key over 250 bytes is invalid and closes',
    steps: () => [joined(binaryRequest(op.get, { key: 'k'.repeat(251) }), noop())],
    expectClose: true,
  },
  {
    name: 'key and extras longer than the body is unknown and closes',
    steps: (k) => [joined(binaryRequest(op.get, { key: k('abc'), bodyLength: 1 }), Buffer.alloc(k('abc').length), noop())],
    expectClose: true,
  },
  {
    name: 'a bad magic byte closes without a reply',
    steps: () => [joined(noop(1), binaryRequest(op.noop, { magic: 0x00 }), noop(2))],
    expectClose: true,
  },
];

const streams: StreamCase[] = [...storage, ...cas, ...arithmetic, ...touching, ...quiet, ...server, ...malformed];

/** STAT packets' names, if the reply is packets ending with the empty one; else why it is not. */
function statNames(bytes: Buffer): { readonly names: string[] } | { readonly problem: string } {
  const { responses, rest } = parseResponses(bytes);
  const last = responses.pop();
  if (rest.length > 0 || !last || last.key.length > 0 || last.value.length > 0) {
    return { problem: `not STAT packets ending with an empty one: ${normalizeBinaryReplies(bytes).slice(-400)}` };
  }
  return { names: responses.map((response) => response.key.toString('latin1')) };
}

describe(`binary protocol: ${process.env[subjectEnvironmentVariable] ?? 'kai'} against memcached`, () => {
  let reference: RunningServer;
  let subject: RunningServer;

  beforeAll(async () => {
    reference = await startMemcached({ valueBytesMax });
    subject = await startSubject({ valueBytesMax });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([reference?.stop(), subject?.stop()]);
  }, 30_000);

  // Each stream, on its own connection and keys, gets the same responses from both servers.
  test.each(streams.map((stream, index) => [stream.name, stream, index] as const))(
    '%s',
    async (_name, stream, index) => {
      const prefix = `b${index}_${Date.now().toString(36)}_`;
      const steps = stream.steps((name) => `${prefix}${name}`);
      const options = { expectClose: stream.expectClose, protocol: 'binary' as const };
      const expected = await runStream(reference.port, steps, options);
      const actual = await runStream(subject.port, steps, options);
      expect(actual.closed).toBe(expected.closed);
      if (stream.compare === 'stats') {
        const expectedShape = statNames(expected.bytes);
        const actualShape = statNames(actual.bytes);
        expect(actualShape).toHaveProperty('names');
        if (!('names' in expectedShape) || !('names' in actualShape)) return;
        expect(namesMemcachedLacks(actualShape.names, expectedShape.names)).toEqual([]);
        expect(actualShape.names.length).toBeGreaterThan(0);
      } else {
        expect(normalizeBinaryReplies(actual.bytes)).toEqual(normalizeBinaryReplies(expected.bytes));
      }
    },
    60_000,
  );
});
