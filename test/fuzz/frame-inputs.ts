/**
 * Structure-aware input for the internal API: well-formed envelopes of every request and reply
 * type, and the same with one node of the message tree mutated: replaced by a value of another
 * msgpack type or an edge number, removed, joined by unknown fields, given another type tag,
 * nested deep, or replaced by raw msgpack a Packr would never write (extension types, huge
 * declared counts, reserved bytes). Frames then get length prefixes that disagree with their bodies.
 */
import { Packr } from 'msgpackr';
import type { RpcReply, RpcRequest, WireItem, WireMember, WireVersion } from '../../src/rpc/messages';
import { frameLengthBytes } from '../../src/rpc/frames';
import type { SimRandom } from '../sim/random';
import { damagedStream, edgeIntegers, mutateOneToThreeTimes, randomBytes } from './bytes';

/** Packs what a foreign peer could send, without frames.ts' checks; `int64AsType` keeps bigints exact. */
const rawPackr = new Packr({ useRecords: false });

export interface FrameInputOptions {
  /**
   * Draw only requests that leave the data of other clients and the node's membership alone:
   * no flushAll, gossip, ringChange or addSeed. A node without a cluster secret trusts its
   * internal port, so those are left to the tests of peer authentication and validation.
   */
  readonly harmlessOnly?: boolean;
  /** Every key starts with these bytes, so a node's other clients never share one. */
  readonly keyPrefix?: string;
  /**
   * Draw keys from this many only (prefix and a number), so a long run against a node stores a
   * bounded amount of data; absent, keys are random.
   */
  readonly keyCount?: number;
}

export const destructiveRequestTypes: ReadonlySet<string> = new Set(['flushAll', 'gossip', 'ringChange', 'addSeed']);

const requestTypes = [
  'replicaFetch', 'replicaStore', 'storeMany', 'fetchMany', 'digestMany', 'treeRoots', 'treeNodes', 'segmentKeys',
  'coordinate', 'flushAll', 'gossip', 'nodeInfo', 'bucketPage', 'ringChange', 'addSeed', 'probe',
] as const;
const replyTypes = [
  'versions', 'versionsMany', 'digestsMany', 'treeHashes', 'segmentKeys', 'stored', 'flushed', 'probed', 'coordinated',
  'gossip', 'bucketPage', 'nodeInfo', 'error',
] as const;

class Draw {
  constructor(
    readonly random: SimRandom,
    readonly options: FrameInputOptions,
  ) {}

  count(max = 4): number {
    return this.random.int(0, max);
  }

  list<T>(item: () => T, max = 4): T[] {
    return Array.from({ length: this.count(max) }, item);
  }

  natural(max = 1_000_000): number {
    return this.random.int(0, max);
  }

  timeMs(): number {
    return 1_700_000_000_000 + this.random.int(0, 10 ** 9);
  }

  text(lengthMax = 12): string {
    let text = '';
    const length = this.random.int(0, lengthMax);
    for (let index = 0; index < length; index++) text += String.fromCharCode(this.random.int(0x20, 0x7e));
    return text;
  }

  key(): Buffer {
    const prefix = Buffer.from(this.options.keyPrefix ?? '');
    if (this.options.keyCount !== undefined) return Buffer.concat([prefix, Buffer.from(String(this.random.int(0, this.options.keyCount - 1)))]);
    return Buffer.concat([prefix, randomBytes(this.random, this.random.int(1, 16))]);
  }

  decimal(): string {
    return this.random.pick(['0', '1', String(this.natural()), '18446744073709551615']);
  }

  version(): WireVersion {
    return {
      // Counters from 1: the shape checks' clockCounterMax bounds them above.
      clock: this.list(() => [`127.0.0.1:${this.random.int(1, 65535)}`, 1 + this.natural(), this.timeMs()] as const),
      value: randomBytes(this.random, this.random.int(0, 64)),
      flags: this.random.int(0, 0xffffffff),
      expiresAtMs: this.random.chance(0.5) ? 0 : this.timeMs(),
      tombstone: this.random.chance(0.2),
      writtenAtMs: this.timeMs(),
    };
  }

  item(): WireItem {
    return { key: this.key(), bucket: this.natural(1023), versions: this.list(() => this.version(), 2) };
  }

  member(): WireMember {
    return {
      id: `127.0.0.1:${this.random.int(1, 65535)}`,
      address: `127.0.0.1:${this.random.int(1, 65535)}`,
      zone: this.text(4),
      // Within the shape checks' bounds: above 0, at most memberWeightMax.
      weight: this.random.pick([0.5, 1, 2, 16]),
      status: this.random.pick(['up', 'down', 'leaving'] as const),
      incarnation: this.natural(),
      heartbeat: this.natural(),
    };
  }

  request(type: (typeof requestTypes)[number]): RpcRequest {
    switch (type) {
      case 'replicaFetch':
        return { type, key: this.key() };
      case 'replicaStore':
        return { type, key: this.key(), bucket: this.natural(1023), versions: this.list(() => this.version(), 3) };
      case 'storeMany':
        return { type, items: this.list(() => this.item()), ifHeld: this.random.chance(0.5) };
      case 'fetchMany':
      case 'digestMany':
        return { type, keys: this.list(() => this.key(), 8) };
      case 'treeRoots':
        return { type, buckets: this.list(() => this.natural(1023), 8) };
      case 'treeNodes':
        return { type, bucket: this.natural(1023), level: this.natural(8), indexes: this.list(() => this.natural(4096), 8) };
      case 'segmentKeys':
        return { type, bucket: this.natural(1023), segments: this.list(() => this.natural(4096), 8) };
      case 'coordinate':
        return { type, key: this.key(), mutation: this.mutation() };
      case 'flushAll':
        return { type, deadlineMs: this.random.chance(0.5) ? 0 : this.timeMs() };
      case 'gossip':
        return { type, members: this.list(() => this.member()), layout: { buckets: this.natural(4096) } };
      case 'nodeInfo':
      case 'probe':
        return { type };
      case 'bucketPage':
        return { type, bucket: this.natural(1023), afterKey: this.key(), limit: this.natural(1000) };
      case 'ringChange':
        return { type, change: this.random.pick([{ kind: 'leave' as const }, { kind: 'remove' as const, member: this.text() }]) };
      case 'addSeed':
        return { type, address: `127.0.0.1:${this.random.int(1, 65535)}` };
    }
  }

  mutation(): Extract<RpcRequest, { type: 'coordinate' }>['mutation'] {
    switch (this.random.int(0, 3)) {
      case 0:
        return {
          kind: 'store',
          mode: this.random.pick(['set', 'add', 'replace', 'append', 'prepend', 'cas'] as const),
          value: randomBytes(this.random, this.random.int(0, 64)),
          flags: this.random.int(0, 0xffffffff),
          expiresAtMs: 0,
          casUnique: this.decimal(),
        };
      case 1:
        return { kind: 'delete', casUnique: this.decimal() };
      case 2:
        return { kind: 'touch', expiresAtMs: this.timeMs() };
      default:
        return {
          kind: 'arith',
          incr: this.random.chance(0.5),
          delta: this.decimal(),
          casUnique: '0',
          initial: { value: this.decimal(), expiresAtMs: 0 },
        };
    }
  }

  reply(type: (typeof replyTypes)[number]): RpcReply {
    switch (type) {
      case 'versions':
        return { type, versions: this.list(() => this.version(), 3) };
      case 'versionsMany':
        return { type, items: this.list(() => this.list(() => this.version(), 2)) };
      case 'digestsMany':
        return { type, items: this.list(() => this.list(() => ({ clock: this.version().clock, writtenAtMs: this.timeMs() }), 2)) };
      case 'treeHashes':
        return { type, hashes: this.list(() => this.random.nextUint32(), 8) };
      case 'segmentKeys':
        return {
          type,
          segments: this.list(() => this.natural(4096)),
          keys: this.list(() => this.key()),
          hashes: this.list(() => this.random.nextUint32()),
        };
      case 'stored':
      case 'flushed':
      case 'probed':
        return { type };
      case 'coordinated':
        return {
          type,
          result: { kind: 'stored' },
          versions: this.list(() => this.version(), 2),
          written: this.random.chance(0.5) ? this.version() : null,
        };
      case 'gossip':
        return { type, members: this.list(() => this.member()) };
      case 'bucketPage':
        return { type, items: this.list(() => this.item()), more: this.random.chance(0.5) };
      case 'nodeInfo':
        return {
          type,
          id: this.member().id,
          members: this.list(() => this.member()),
          buckets: this.natural(4096),
          seeds: this.list(() => this.text()),
        };
      case 'error':
        return { type, code: this.random.pick(['KAI_INTERNAL', 'KAI_QUORUM_UNMET', this.text()]), detail: this.text(40) };
    }
  }
}

/** What an envelope is before it is packed: a plain tree the mutations edit in place. */
export type EnvelopeTree = { id: unknown; kind: unknown; body: unknown } & Record<string, unknown>;

/** A well-formed envelope: a request of any type (only harmless ones if asked), or a reply. */
export function validEnvelope(random: SimRandom, options: FrameInputOptions = {}): EnvelopeTree {
  const draw = new Draw(random, options);
  const id = random.pick([0, 1, random.int(0, 2 ** 31), Number.MAX_SAFE_INTEGER]);
  if (random.chance(0.3)) {
    // A gossip reply read as a request (a mutation may swap the kind) would be a gossip request.
    const replies = replyTypes.filter((type) => !(options.harmlessOnly && destructiveRequestTypes.has(type)));
    return { id, kind: 'reply', body: draw.reply(random.pick(replies)) };
  }
  const types = requestTypes.filter((type) => !(options.harmlessOnly && destructiveRequestTypes.has(type)));
  return { id, kind: 'request', body: draw.request(random.pick(types)) };
}

/** Raw msgpack values no Packr here would write; each is one whole value, or a broken one. */
const rawValues: readonly Buffer[] = [
  'c1', // never used
  'ca7fc00000', // float32 NaN
  'cb7ff0000000000000', // float64 infinity
  'cbfff0000000000000', // float64 -infinity
  'cb8000000000000000', // float64 -0
  'cb4340000000000000', // 2^53 as a float
  'cfffffffffffffffff', // uint64 max
  'd38000000000000000', // int64 min
  'd3ffffffffffffffff', // int64 -1
  'd6ff00000000', // timestamp 32: a Date
  'd7ff0000000000000000', // timestamp 64
  'c70cff000000000000000000000000', // timestamp 96
  'd4ff00', // timestamp of a length no timestamp has
  'd40000', // extension type 0
  'c70072', // ext 8 of length 0, type 'r' (records)
  'd47200', // fixext 1, type 'r'
  'd46500', // fixext 1, type 'e' (errors in structured clone)
  'd47800', // fixext 1, type 'x' (regular expressions)
  'd47300', // fixext 1, type 's' (sets)
  'd47400', // fixext 1, type 't' (typed arrays)
  'd46900', // fixext 1, type 'i' (references)
  'd47000', // fixext 1, type 'p' (pointers)
  'c9ffffffff01', // ext 32 declaring 4 GiB
  'c6ffffffff', // bin 32 declaring 4 GiB
  'dbffffffff', // str 32 declaring 4 GiB
  'ddffffffff', // array 32 declaring 4 billion items
  'dfffffffff', // map 32 declaring 4 billion pairs
  'dc0400', // array 16 of 1024 items, none present
  '82a15fc0a15fc0', // a map with a repeated key
  '81a95f5f70726f746f5f5f81a178c3', // { __proto__: { x: true } }
  '81ab636f6e7374727563746f72c0', // { constructor: nil }
  'a4ff fe80 c0'.replace(/ /g, ''), // a string that is not UTF-8
].map((hex) => Buffer.from(hex, 'hex'));

/** Every node of the tree with the container holding it, for a mutation to pick from. */
function nodesOf(root: unknown): { container: Record<string, unknown> | unknown[]; field: string | number }[] {
  const found: { container: Record<string, unknown> | unknown[]; field: string | number }[] = [];
  const visit = (value: unknown): void => {
    if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        found.push({ container: value, field: index });
        visit(item);
      });
      return;
    }
    for (const [field, item] of Object.entries(value)) {
      found.push({ container: value as Record<string, unknown>, field });
      visit(item);
    }
  };
  visit(root);
  return found;
}

/** A placeholder the packed bytes are searched for, to splice raw msgpack in its place. */
const rawMarker = '\u0001kai-fuzz-raw\u0001';

function deepNesting(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
}

function otherValue(random: SimRandom, draw: Draw): unknown {
  switch (random.int(0, 12)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick(edgeIntegers) * random.pick([1, -1]);
    case 3:
      return random.pick([2 ** 53 - 1, 2 ** 53, -(2 ** 53), 2 ** 64, 1.5, -0, 1e308]);
    case 4:
      return random.pick([NaN, Infinity, -Infinity]);
    case 5:
      return random.pick([2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n + 1n]);
    case 6:
      return draw.text(random.pick([0, 1, 12, 300]));
    case 7:
      return randomBytes(random, random.int(0, 32));
    case 8:
      return [];
    case 9:
      return {};
    case 10:
      return draw.random.chance(0.5) ? draw.version() : draw.member();
    default:
      return rawMarker;
  }
}

/** One random edit of the tree, in place. */
function mutateTree(random: SimRandom, envelope: EnvelopeTree, options: FrameInputOptions): void {
  const draw = new Draw(random, options);
  const nodes = nodesOf(envelope);
  const { container, field } = random.pick(nodes);
  const set = (value: unknown): void => {
    (container as Record<string | number, unknown>)[field] = value;
  };
  switch (random.int(0, 6)) {
    case 0:
    case 1:
      set(otherValue(random, draw));
      return;
    case 2:
      if (Array.isArray(container)) container.splice(Number(field), 1);
      else delete container[field as string];
      return;
    case 3:
      // An own field, even when named __proto__: assigning that name would change the prototype.
      if (!Array.isArray(container)) {
        Object.defineProperty(container, random.pick(['extra', '__proto__', 'constructor', 'type', 'kind', '']), {
          value: otherValue(random, draw),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      else container.push(...Array.from({ length: random.int(1, 64) }, () => container[0]));
      return;
    case 4: {
      // Another type tag: the fields of one message read as another's.
      const tags = options.harmlessOnly ? requestTypes.filter((type) => !destructiveRequestTypes.has(type)) : [...requestTypes, ...replyTypes];
      const body = envelope.body;
      if (body && typeof body === 'object' && !Array.isArray(body)) (body as Record<string, unknown>).type = random.pick(tags);
      if (random.chance(0.3)) envelope.kind = random.pick(['request', 'reply']);
      return;
    }
    case 5:
      set(rawMarker);
      return;
    default:
      set(Array.from({ length: random.int(100, 2000) }, () => 0));
      return;
  }
}

/** Packs the tree, splicing a raw value or a deep nesting where each marker is. */
function pack(random: SimRandom, envelope: unknown): Buffer {
  const packed = rawPackr.pack(envelope);
  const marker = rawPackr.pack(rawMarker);
  const parts: Buffer[] = [];
  let offset = 0;
  for (let found = packed.indexOf(marker); found >= 0; found = packed.indexOf(marker, offset)) {
    parts.push(packed.subarray(offset, found));
    parts.push(random.chance(0.3) ? deepNesting(random.pick([64, 1000, 20_000])) : random.pick(rawValues));
    offset = found + marker.length;
  }
  parts.push(packed.subarray(offset));
  return Buffer.concat(parts);
}

/** A length prefix and a body; the prefix may lie about the body's length. */
function frame(random: SimRandom, body: Buffer, frameBytesMax: number): Buffer {
  const prefix = Buffer.allocUnsafe(frameLengthBytes);
  let declared = body.length;
  if (random.chance(0.1)) declared = random.pick([0, 1, body.length - 1, body.length + 1, frameBytesMax, frameBytesMax + 1, 0xffffffff]);
  prefix.writeUInt32BE(Math.max(0, Math.min(0xffffffff, declared)), 0);
  return Buffer.concat([prefix, body]);
}

export function encodeEnvelopeFrame(envelope: unknown): Buffer {
  const body = rawPackr.pack(envelope);
  const prefix = Buffer.allocUnsafe(frameLengthBytes);
  prefix.writeUInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}

/** One frame: a valid envelope, or one with one to three mutations of its tree and possibly a lying prefix. */
export function fuzzFrame(random: SimRandom, frameBytesMax: number, options: FrameInputOptions = {}): Buffer {
  const envelope = validEnvelope(random, options);
  if (random.chance(0.4)) return frame(random, rawPackr.pack(envelope), frameBytesMax);
  mutateOneToThreeTimes(random, () => mutateTree(random, envelope, options));
  return frame(random, pack(random, envelope), frameBytesMax);
}

/**
 * Valid frames only, then possibly one fuzzed frame: a node closes a connection at its first bad
 * frame, so this is how requests of every type reach its handlers, and in numbers.
 */
export function validFrameStream(random: SimRandom, frameBytesMax: number, options: FrameInputOptions = {}, framesMax = 12): Buffer {
  const frames = Array.from({ length: random.int(1, framesMax) }, () => encodeEnvelopeFrame(validEnvelope(random, options)));
  if (random.chance(0.5)) frames.push(fuzzFrame(random, frameBytesMax, options));
  return Buffer.concat(frames);
}

/** A stream of frames, then possibly truncated or garbled as a whole. */
export function frameStream(random: SimRandom, frameBytesMax: number, options: FrameInputOptions = {}, framesMax = 6): Buffer {
  const frames = Array.from({ length: random.int(1, framesMax) }, () => fuzzFrame(random, frameBytesMax, options));
  return damagedStream(random, Buffer.concat(frames));
}
