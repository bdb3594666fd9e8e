import { Packr } from 'msgpackr';
import { KaiError } from '../../../src/errors';
import {
  FrameDecoder,
  encodeFrame,
  frameBytesMaxFor,
  frameHeadroomBytes,
  frameLengthBytes,
  type Envelope,
  type FrameEvent,
} from '../../../src/rpc/frames';
import type { RpcReply, RpcRequest, WireMember, WireVersion } from '../../../src/rpc/messages';

const frameBytesMax = 64 * 1024;
const eventsDrainedMax = 100_000;
/** Encodes test frames the way a foreign peer could, without frames.ts' checks. */
const rawPackr = new Packr({ useRecords: false });

const version: WireVersion = {
  clock: [
    ['127.0.0.1:11011', 3, 1_700_000_000_123],
    ['127.0.0.1:11012', 1, 1_700_000_000_456],
  ],
  value: Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a]),
  flags: 0xffffffff,
  expiresAtMs: 0,
  tombstone: false,
  writtenAtMs: 1_700_000_000_456,
};
const tombstone: WireVersion = { ...version, value: Buffer.alloc(0), tombstone: true, clock: [] };
const member: WireMember = {
  id: 'n1',
  address: '127.0.0.1:11011',
  zone: 'a',
  weight: 1.5,
  status: 'up',
  incarnation: 2,
  heartbeat: 99,
};

const requests: readonly RpcRequest[] = [
  { type: 'replicaFetch', key: Buffer.from('key') },
  { type: 'replicaStore', key: Buffer.from([0x00, 0xff]), bucket: 1023, versions: [version, tombstone] },
  {
    type: 'coordinate',
    key: Buffer.from('k'),
    mutation: { kind: 'store', mode: 'cas', value: Buffer.from('v'), flags: 7, expiresAtMs: 5, casUnique: '18446744073709551615' },
  },
  { type: 'coordinate', key: Buffer.from('k'), mutation: { kind: 'delete', casUnique: '0' } },
  { type: 'coordinate', key: Buffer.from('k'), mutation: { kind: 'touch', expiresAtMs: 1_700_000_100_000 } },
  { type: 'coordinate', key: Buffer.from('k'), mutation: { kind: 'arith', incr: false, delta: '3', casUnique: '0' } },
  {
    type: 'coordinate',
    key: Buffer.from('k'),
    mutation: { kind: 'arith', incr: true, delta: '1', casUnique: '0', initial: { value: '10', expiresAtMs: 0 } },
  },
  { type: 'gossip', members: [member, { ...member, id: 'n2', status: 'down' }] },
  { type: 'nodeInfo' },
];

const replies: readonly RpcReply[] = [
  { type: 'versions', versions: [version, tombstone] },
  { type: 'versions', versions: [] },
  { type: 'stored' },
  { type: 'coordinated', result: { kind: 'stored', cas: '12' }, versions: [version], written: version },
  { type: 'coordinated', result: null, versions: [], written: null },
  { type: 'gossip', members: [member] },
  { type: 'nodeInfo', id: 'n1', members: [member] },
  { type: 'error', code: 'KAI_STORAGE_FAILURE', detail: 'disk full' },
];

const envelopes: readonly Envelope[] = [
  ...requests.map((body, index): Envelope => ({ id: index, kind: 'request', body })),
  ...replies.map((body, index): Envelope => ({ id: 2 ** 40 + index, kind: 'reply', body })),
];

function frameOf(envelope: Envelope): Buffer {
  const frame = encodeFrame(envelope, frameBytesMax);
  if (frame instanceof KaiError) throw frame;
  return frame;
}

/** A frame around any msgpack value, as a careless or hostile peer might send it. */
function rawFrame(value: unknown): Buffer {
  return withLength(rawPackr.pack(value));
}

function withLength(body: Buffer): Buffer {
  const prefix = Buffer.alloc(frameLengthBytes);
  prefix.writeUInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}

function drain(decoder: FrameDecoder): FrameEvent[] {
  const events: FrameEvent[] = [];
  for (let count = 0; count < eventsDrainedMax; count++) {
    const event = decoder.next();
    if (event.kind === 'needMore') return events;
    events.push(event);
    if (event.kind === 'error') return events;
  }
  throw new Error('decoder produced too many events');
}

function decode(chunks: readonly Buffer[]): FrameEvent[] {
  const decoder = new FrameDecoder({ frameBytesMax });
  const events: FrameEvent[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    events.push(...drain(decoder));
  }
  return events;
}

function decodedEnvelopes(chunks: readonly Buffer[]): Envelope[] {
  return decode(chunks).map((event) => {
    if (event.kind !== 'envelope') throw new Error(`expected an envelope, got ${JSON.stringify(event)}`);
    return event.envelope;
  });
}

function expectBadFrame(chunks: readonly Buffer[], detail: RegExp): void {
  const events = decode(chunks);
  const last = events[events.length - 1];
  expect(last?.kind).toBe('error');
  if (last?.kind !== 'error') return;
  expect(last.error.code).toBe('KAI_BAD_FRAME');
  expect(last.error.detail).toMatch(detail);
}

const stream = Buffer.concat(envelopes.map(frameOf));

it('round-trips every request and reply type, with Buffers as Node Buffers', () => {
  // Proves encode then decode gives back each message as it was, binary fields included.
  const decoded = decodedEnvelopes([stream]);
  expect(decoded).toEqual(envelopes);
  const store = decoded[1].body as Extract<RpcRequest, { type: 'replicaStore' }>;
  expect(Buffer.isBuffer(store.key)).toBe(true);
  expect(Buffer.isBuffer(store.versions[0].value)).toBe(true);
  expect(store.versions[0].value.equals(version.value)).toBe(true);
  expect(Buffer.isBuffer(store.versions[1].value)).toBe(true);
  expect(store.versions[0].clock[0][2]).toBe(1_700_000_000_123);
});

it('decodes the same messages whatever byte the stream is split at', () => {
  // Proves the push decoder keeps its place across chunk boundaries at every position.
  // Compared re-encoded, byte for byte: a deep comparison per split point would be slow.
  for (let split = 0; split <= stream.length; split++) {
    const decoded = decodedEnvelopes([stream.subarray(0, split), stream.subarray(split)]);
    if (!Buffer.concat(decoded.map(frameOf)).equals(stream)) throw new Error(`split at ${split} decodes differently`);
  }
});

it('decodes the same messages when the stream arrives one byte at a time', () => {
  // Proves a frame trickling in byte by byte is decoded once it is complete, and not before.
  const bytes = [...stream].map((byte) => Buffer.from([byte]));
  expect(decodedEnvelopes(bytes)).toEqual(envelopes);
});

it('refuses a declared length over the cap as soon as the prefix arrives, buffering nothing', () => {
  // Proves the cap is checked on the 4-byte prefix, before any body byte is kept.
  const decoder = new FrameDecoder({ frameBytesMax });
  const prefix = Buffer.alloc(frameLengthBytes);
  prefix.writeUInt32BE(frameBytesMax + 1, 0);
  decoder.push(prefix);
  const event = decoder.next();
  expect(event.kind).toBe('error');
  if (event.kind === 'error') expect(event.error.detail).toMatch(/over the frame cap/);
  decoder.push(Buffer.alloc(1000));
  expect(decoder.bufferedBytes).toBe(0);
  expect(decoder.next().kind).toBe('error');
});

it('accepts a declared length exactly at the cap and waits for its body', () => {
  // Proves the cap is inclusive: a frame of frameBytesMax body bytes is allowed.
  const decoder = new FrameDecoder({ frameBytesMax });
  const prefix = Buffer.alloc(frameLengthBytes);
  prefix.writeUInt32BE(frameBytesMax, 0);
  decoder.push(prefix);
  expect(decoder.next().kind).toBe('needMore');
});

it('rejects bodies that are not msgpack', () => {
  // Proves truncated msgpack and bytes left over after the value are bad frames, not crashes.
  expectBadFrame([withLength(Buffer.from([0x83, 0xa2]))], /not msgpack/);
  expectBadFrame([withLength(Buffer.concat([rawPackr.pack({ id: 1, kind: 'request', body: { type: 'nodeInfo' } }), Buffer.from([1])]))], /not msgpack/);
  expectBadFrame([withLength(Buffer.alloc(0))], /not msgpack/);
  expectBadFrame([withLength(Buffer.alloc(100_000, 0x91).subarray(0, frameBytesMax))], /not msgpack|not a map/);
});

const goodRequest = { type: 'replicaStore', key: Buffer.from('k'), bucket: 1, versions: [version] };
const malformed: readonly [label: string, value: unknown, detail: RegExp][] = [
  ['an array', [1, 'request', {}], /envelope is not a map/],
  ['a string', 'hello', /envelope is not a map/],
  ['a negative id', { id: -1, kind: 'request', body: { type: 'nodeInfo' } }, /envelope.id/],
  ['a fractional id', { id: 1.5, kind: 'request', body: { type: 'nodeInfo' } }, /envelope.id/],
  ['a string id', { id: '1', kind: 'request', body: { type: 'nodeInfo' } }, /envelope.id/],
  ['an unknown kind', { id: 1, kind: 'push', body: { type: 'nodeInfo' } }, /envelope.kind/],
  ['an unknown request type', { id: 1, kind: 'request', body: { type: 'explode' } }, /request.type explode/],
  ['a reply type as a request', { id: 1, kind: 'request', body: { type: 'stored' } }, /request.type stored/],
  ['a request type as a reply', { id: 1, kind: 'reply', body: { type: 'replicaFetch', key: Buffer.from('k') } }, /reply.type/],
  ['a missing key', { id: 1, kind: 'request', body: { type: 'replicaFetch' } }, /request.key is not a key/],
  ['a text key', { id: 1, kind: 'request', body: { type: 'replicaFetch', key: 'k' } }, /request.key is not a key/],
  ['flags over 32 bits', { id: 1, kind: 'request', body: { ...goodRequest, versions: [{ ...version, flags: 2 ** 32 }] } }, /flags/],
  ['a clock entry of two fields', { id: 1, kind: 'request', body: { ...goodRequest, versions: [{ ...version, clock: [['n', 1]]}] } }, /clock\[0\]/],
  ['a text tombstone marker', { id: 1, kind: 'request', body: { ...goodRequest, versions: [{ ...version, tombstone: 'no' }] } }, /tombstone/],
  ['an unknown mutation', { id: 1, kind: 'request', body: { type: 'coordinate', key: Buffer.from('k'), mutation: { kind: 'explode' } } }, /mutation.kind/],
  ['a numeric cas unique', { id: 1, kind: 'request', body: { type: 'coordinate', key: Buffer.from('k'), mutation: { kind: 'delete', casUnique: 5 } } }, /casUnique/],
  ['an unknown member status', { id: 1, kind: 'request', body: { type: 'gossip', members: [{ ...member, status: 'gone' }] } }, /status/],
  ['an error reply without a code', { id: 1, kind: 'reply', body: { type: 'error', detail: 'x' } }, /reply.code/],
];

it.each(malformed)('rejects an envelope with %s', (_label, value, detail) => {
  // Proves every decoded frame is checked against the message types before it is handed on.
  expectBadFrame([rawFrame(value)], detail);
});

it('stays failed after a bad frame, ignoring what follows', () => {
  // Proves a stream is not re-read after a malformed frame: the connection must close.
  const decoder = new FrameDecoder({ frameBytesMax });
  decoder.push(rawFrame('garbage'));
  expect(decoder.next().kind).toBe('error');
  decoder.push(stream);
  expect(decoder.bufferedBytes).toBe(0);
  expect(decoder.next().kind).toBe('error');
});

it('refuses to encode a frame over the cap or an envelope that is not well formed', () => {
  // Proves a sender never puts on the wire what its peer would refuse.
  const big = { id: 1, kind: 'request', body: { ...goodRequest, versions: [{ ...version, value: Buffer.alloc(frameBytesMax) }] } } as Envelope;
  const oversize = encodeFrame(big, frameBytesMax);
  expect(oversize).toBeInstanceOf(KaiError);
  expect((oversize as KaiError).detail).toMatch(/over the frame cap/);
  const bad = encodeFrame({ id: 1, kind: 'request', body: { type: 'replicaFetch', key: 'text' } } as unknown as Envelope, frameBytesMax);
  expect((bad as KaiError).code).toBe('KAI_BAD_FRAME');
});

it('sizes the frame cap for every sibling at the value limit plus headroom', () => {
  // Proves the cap leaves room for the largest legal message a node can send.
  expect(frameBytesMaxFor(1024 * 1024, 4)).toBe(4 * 1024 * 1024 + frameHeadroomBytes);
  expect(frameBytesMaxFor(1000, 0)).toBe(1000 + frameHeadroomBytes);
});
