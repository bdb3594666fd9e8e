import { KaiError } from '../../../src/errors';
import { BinaryStatus, Opcode, headerBytes, responseMagic } from '../../../src/protocol/binary/constants';
import {
  BinaryDecoder,
  bodyBytesMaxFor,
  type BinaryEvent,
  type BinaryRequest,
} from '../../../src/protocol/binary/decoder';
import { encodeErrorResponse, encodeResponse, encodeStats } from '../../../src/protocol/binary/encoder';
import { actionOf, failurePackets, replyPackets } from '../../../src/protocol/binary/requests';
import type { Reply } from '../../../src/protocol/command';
import {
  arithExtras,
  binaryRequest,
  parseResponses,
  storeExtras,
  uint32Extras,
  type BinaryResponse,
} from '../../support/binary';

const valueBytesMax = 1024;
const limits = { valueBytesMax };
const eventsDrainedMax = 100_000;

function drain(decoder: BinaryDecoder): BinaryEvent[] {
  const events: BinaryEvent[] = [];
  for (let count = 0; count < eventsDrainedMax; count++) {
    const event = decoder.next();
    if (!event) return events;
    events.push(event);
  }
  throw new Error('decoder produced too many events');
}

function decode(chunks: readonly Buffer[]): BinaryEvent[] {
  const decoder = new BinaryDecoder(limits);
  const events: BinaryEvent[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    events.push(...drain(decoder));
  }
  return events;
}

/** An event as plain data, comparable with toEqual. */
function plain(event: BinaryEvent): unknown {
  if (event.kind === 'error') {
    return { kind: 'error', opcode: event.header?.opcode, status: event.status, close: event.close };
  }
  const { header, extras, key, value } = event.request;
  return {
    kind: event.kind,
    opcode: header.opcode,
    opaque: header.opaque,
    cas: header.cas.toString(),
    extras: extras.toString('hex'),
    key: key.toString('latin1'),
    value: value.toString('latin1'),
  };
}

function requestOf(packet: Buffer): BinaryRequest {
  const [event] = decode([packet]);
  if (event?.kind !== 'request') throw new Error(`not a request: ${JSON.stringify(event && plain(event))}`);
  return event.request;
}

function responsesOf(chunks: readonly Buffer[]): BinaryResponse[] {
  const { responses, rest } = parseResponses(Buffer.concat(chunks));
  expect(rest.length).toBe(0);
  return responses;
}

/** A well-formed request for every opcode kai serves. */
const everyOpcode: ReadonlyArray<[string, Buffer]> = [
  ['get', binaryRequest(Opcode.get, { key: 'k', opaque: 1 })],
  ['getq', binaryRequest(Opcode.getq, { key: 'k', opaque: 2 })],
  ['getk', binaryRequest(Opcode.getk, { key: 'k', opaque: 3 })],
  ['getkq', binaryRequest(Opcode.getkq, { key: 'k', opaque: 4 })],
  ['set', binaryRequest(Opcode.set, { key: 'k', extras: storeExtras(7, 60), value: 'value', cas: 9n })],
  ['setq', binaryRequest(Opcode.setq, { key: 'k', extras: storeExtras(0), value: '' })],
  ['add', binaryRequest(Opcode.add, { key: 'k', extras: storeExtras(1), value: 'a' })],
  ['addq', binaryRequest(Opcode.addq, { key: 'k', extras: storeExtras(1), value: 'a' })],
  ['replace', binaryRequest(Opcode.replace, { key: 'k', extras: storeExtras(1), value: 'r' })],
  ['replaceq', binaryRequest(Opcode.replaceq, { key: 'k', extras: storeExtras(1), value: 'r' })],
  ['append', binaryRequest(Opcode.append, { key: 'k', value: 'tail' })],
  ['appendq', binaryRequest(Opcode.appendq, { key: 'k', value: 'tail' })],
  ['prepend', binaryRequest(Opcode.prepend, { key: 'k', value: 'head' })],
  ['prependq', binaryRequest(Opcode.prependq, { key: 'k', value: 'head' })],
  ['delete', binaryRequest(Opcode.delete, { key: 'k', cas: 5n })],
  ['deleteq', binaryRequest(Opcode.deleteq, { key: 'k' })],
  ['increment', binaryRequest(Opcode.increment, { key: 'n', extras: arithExtras(2n, 10n, 0) })],
  ['incrementq', binaryRequest(Opcode.incrementq, { key: 'n', extras: arithExtras(2n) })],
  ['decrement', binaryRequest(Opcode.decrement, { key: 'n', extras: arithExtras(1n, 0n, 0xffffffff) })],
  ['decrementq', binaryRequest(Opcode.decrementq, { key: 'n', extras: arithExtras(1n) })],
  ['quit', binaryRequest(Opcode.quit)],
  ['quitq', binaryRequest(Opcode.quitq)],
  ['flush', binaryRequest(Opcode.flush)],
  ['flush with delay', binaryRequest(Opcode.flush, { extras: uint32Extras(30) })],
  ['flushq', binaryRequest(Opcode.flushq)],
  ['noop', binaryRequest(Opcode.noop)],
  ['version', binaryRequest(Opcode.version)],
  ['stat', binaryRequest(Opcode.stat)],
  ['stat settings', binaryRequest(Opcode.stat, { key: 'settings' })],
  ['verbosity', binaryRequest(Opcode.verbosity, { extras: uint32Extras(1) })],
  ['touch', binaryRequest(Opcode.touch, { key: 'k', extras: uint32Extras(100) })],
  ['gat', binaryRequest(Opcode.gat, { key: 'k', extras: uint32Extras(100) })],
  ['gatq', binaryRequest(Opcode.gatq, { key: 'k', extras: uint32Extras(100) })],
  ['gatk', binaryRequest(Opcode.gatk, { key: 'k', extras: uint32Extras(100) })],
  ['gatkq', binaryRequest(Opcode.gatkq, { key: 'k', extras: uint32Extras(100) })],
  ['sasl list mechs', binaryRequest(Opcode.saslListMechs)],
  ['sasl auth', binaryRequest(Opcode.saslAuth, { key: 'PLAIN', value: '\0user\0secret' })],
  ['sasl step', binaryRequest(Opcode.saslStep, { key: 'PLAIN', value: 'more' })],
];

describe('BinaryDecoder framing', () => {
  // Each opcode's request decodes into its header, extras, key and value.
  test('every opcode decodes', () => {
    for (const [name, packet] of everyOpcode) {
      const events = decode([packet]).map(plain);
      expect([name, events.length]).toEqual([name, 1]);
      const event = events[0] as { kind: string; opcode: number };
      expect([name, event.kind, event.opcode]).toEqual([name, 'request', packet[1]]);
    }
    const set = requestOf(everyOpcode[4][1]);
    expect(plain({ kind: 'request', request: set })).toEqual({
      kind: 'request',
      opcode: Opcode.set,
      opaque: 0,
      cas: '9',
      extras: '000000070000003c',
      key: 'k',
      value: 'value',
    });
  });

  // A stream of every request split at every byte position decodes as the whole does.
  test('split at every byte position', () => {
    const stream = Buffer.concat(everyOpcode.map(([, packet]) => packet));
    const whole = decode([stream]).map(plain);
    expect(whole).toHaveLength(everyOpcode.length);
    for (let at = 0; at <= stream.length; at++) {
      expect([at, decode([stream.subarray(0, at), stream.subarray(at)]).map(plain)]).toEqual([at, whole]);
    }
  });

  // The same stream fed one byte at a time decodes as the whole does.
  test('one byte at a time', () => {
    const stream = Buffer.concat(everyOpcode.map(([, packet]) => packet));
    const bytes = Array.from(stream, (byte) => Buffer.from([byte]));
    expect(decode(bytes).map(plain)).toEqual(decode([stream]).map(plain));
  });

  // Nothing is decided before the 24 header bytes are in; a request waits for its whole body.
  test('incomplete header and body wait', () => {
    const packet = binaryRequest(Opcode.set, { key: 'k', extras: storeExtras(0), value: 'abc' });
    const decoder = new BinaryDecoder(limits);
    decoder.push(packet.subarray(0, headerBytes - 1));
    expect(decoder.next()).toBeUndefined();
    decoder.push(packet.subarray(headerBytes - 1, packet.length - 1));
    expect(decoder.next()).toBeUndefined();
    decoder.push(packet.subarray(packet.length - 1));
    expect(decoder.next()?.kind).toBe('request');
  });
});

describe('BinaryDecoder bytes awaited', () => {
  // A header announces its body: the decoder says how many bytes it awaits before any arrive.
  test('a set announces its body; a value over the limit only its extras and key', () => {
    const decoder = new BinaryDecoder(limits);
    const packet = binaryRequest(Opcode.set, { extras: storeExtras(0, 0), key: 'k', value: Buffer.alloc(500) });
    decoder.push(packet.subarray(0, headerBytes));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.awaitedBytes()).toBe(8 + 1 + 500);
    decoder.push(packet.subarray(headerBytes));
    expect(decoder.next()?.kind).toBe('request');
    expect(decoder.awaitedBytes()).toBe(0);
    const tooLarge = binaryRequest(Opcode.set, { extras: storeExtras(0, 0), key: 'k', value: Buffer.alloc(valueBytesMax + 1) });
    decoder.push(tooLarge.subarray(0, headerBytes));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.awaitedBytes()).toBe(8 + 1);
    expect(decoder.heldBytesMax()).toBe(headerBytes + bodyBytesMaxFor(valueBytesMax));
  });
});

describe('BinaryDecoder malformed input', () => {
  // A first byte other than the request magic is not a request: no reply, the connection closes.
  test('bad magic', () => {
    const events = decode([binaryRequest(Opcode.get, { key: 'k', magic: 0x81 }), binaryRequest(Opcode.noop)]);
    expect(events).toEqual([{ kind: 'error', header: undefined, status: BinaryStatus.invalidArguments, close: true }]);
  });

  // Key and extras longer than the declared body: unknown command and close, as memcached does.
  test('key and extras beyond the body', () => {
    const packet = binaryRequest(Opcode.get, { key: 'key', bodyLength: 2 });
    expect(decode([packet, binaryRequest(Opcode.noop)]).map(plain)).toEqual([
      { kind: 'error', opcode: Opcode.get, status: BinaryStatus.unknownCommand, close: true },
    ]);
  });

  // A key over 250 bytes is invalid arguments and closes.
  test('key too long', () => {
    const packet = binaryRequest(Opcode.get, { key: 'k'.repeat(251) });
    expect(decode([packet]).map(plain)).toEqual([
      { kind: 'error', opcode: Opcode.get, status: BinaryStatus.invalidArguments, close: true },
    ]);
    expect(decode([binaryRequest(Opcode.get, { key: 'k'.repeat(250) })])[0].kind).toBe('request');
  });

  // Each opcode's extras and key rules: a violation is invalid arguments and closes.
  test('bad extras or key length per opcode', () => {
    const malformed: Array<[string, Buffer]> = [
      ['get with extras', binaryRequest(Opcode.get, { key: 'k', extras: uint32Extras(0) })],
      ['get without key', binaryRequest(Opcode.get)],
      ['get with value', binaryRequest(Opcode.get, { key: 'k', value: 'v' })],
      ['set with 4 extras', binaryRequest(Opcode.set, { key: 'k', extras: uint32Extras(0), value: 'v' })],
      ['set without key', binaryRequest(Opcode.set, { extras: storeExtras(0), value: 'v' })],
      ['append with extras', binaryRequest(Opcode.append, { key: 'k', extras: uint32Extras(0), value: 'v' })],
      ['delete with value', binaryRequest(Opcode.delete, { key: 'k', value: 'v' })],
      ['incr with 8 extras', binaryRequest(Opcode.increment, { key: 'k', extras: storeExtras(0) })],
      ['incr with value', binaryRequest(Opcode.increment, { key: 'k', extras: arithExtras(1n), value: 'v' })],
      ['noop with key', binaryRequest(Opcode.noop, { key: 'k' })],
      ['version with value', binaryRequest(Opcode.version, { value: 'v' })],
      ['quit with extras', binaryRequest(Opcode.quit, { extras: uint32Extras(0) })],
      ['flush with 8 extras', binaryRequest(Opcode.flush, { extras: storeExtras(0) })],
      ['flush with key', binaryRequest(Opcode.flush, { key: 'k' })],
      ['touch without extras', binaryRequest(Opcode.touch, { key: 'k' })],
      ['gat without key', binaryRequest(Opcode.gat, { extras: uint32Extras(0) })],
      ['stat with extras', binaryRequest(Opcode.stat, { extras: uint32Extras(0) })],
      ['verbosity without extras', binaryRequest(Opcode.verbosity)],
      ['sasl auth without mechanism', binaryRequest(Opcode.saslAuth, { value: 'x' })],
      ['sasl list with value', binaryRequest(Opcode.saslListMechs, { value: 'x' })],
    ];
    for (const [name, packet] of malformed) {
      expect([name, decode([packet, binaryRequest(Opcode.noop)]).map(plain)]).toEqual([
        name,
        [{ kind: 'error', opcode: packet[1], status: BinaryStatus.invalidArguments, close: true }],
      ]);
    }
  });

  // An unknown opcode is answered and its body skipped; the next request decodes.
  test('unknown opcode', () => {
    const unknown = binaryRequest(0x55, { key: 'kk', extras: uint32Extras(1), value: 'vvvv' });
    expect(decode([unknown, binaryRequest(Opcode.noop, { opaque: 8 })]).map(plain)).toEqual([
      { kind: 'error', opcode: 0x55, status: BinaryStatus.unknownCommand, close: false },
      { kind: 'request', opcode: Opcode.noop, opaque: 8, cas: '0', extras: '', key: '', value: '' },
    ]);
  });

  // A declared body over the cap is refused from the header alone, and nothing more is buffered.
  test('body over the cap closes before buffering', () => {
    const header = binaryRequest(Opcode.set, {
      key: 'k',
      extras: storeExtras(0),
      bodyLength: bodyBytesMaxFor(valueBytesMax) + 1,
    });
    const decoder = new BinaryDecoder(limits);
    decoder.push(header);
    expect(plain(decoder.next()!)).toEqual({
      kind: 'error',
      opcode: Opcode.set,
      status: BinaryStatus.valueTooLarge,
      close: true,
    });
    decoder.push(Buffer.alloc(4096));
    expect(decoder.bufferedBytes()).toBe(0);
    expect(decoder.next()).toBeUndefined();
    // The largest declaration is 0xffffffff bytes: refused the same way.
    const huge = binaryRequest(Opcode.get, { key: 'k', bodyLength: 0xffffffff });
    expect(decode([huge]).map(plain)).toEqual([
      { kind: 'error', opcode: Opcode.get, status: BinaryStatus.valueTooLarge, close: true },
    ]);
  });

  // A value over the limit within the cap: its extras and key are read, the value is discarded
  // as it comes, and the next request decodes.
  test('value too large is swallowed', () => {
    const big = binaryRequest(Opcode.set, { key: 'big', extras: storeExtras(0), value: Buffer.alloc(valueBytesMax + 1) });
    const next = binaryRequest(Opcode.get, { key: 'after' });
    const stream = Buffer.concat([big, next]);
    const expected = [
      { kind: 'valueTooLarge', opcode: Opcode.set, opaque: 0, cas: '0', extras: '0000000000000000', key: 'big', value: '' },
      { kind: 'request', opcode: Opcode.get, opaque: 0, cas: '0', extras: '', key: 'after', value: '' },
    ];
    expect(decode([stream]).map(plain)).toEqual(expected);
    for (const at of [1, 24, 30, 35, 500, big.length - 1, big.length, big.length + 3]) {
      expect([at, decode([stream.subarray(0, at), stream.subarray(at)]).map(plain)]).toEqual([at, expected]);
    }
    // A value exactly at the limit is accepted.
    const atLimit = binaryRequest(Opcode.append, { key: 'k', value: Buffer.alloc(valueBytesMax) });
    expect(decode([atLimit])[0].kind).toBe('request');
  });
});

describe('binary requests to commands', () => {
  // Storage opcodes carry flags, expiration and the header's cas; quiet ones are noreply.
  test('store, delete and arith commands', () => {
    expect(actionOf(requestOf(binaryRequest(Opcode.addq, { key: 'k', extras: storeExtras(3, 9), value: 'v', cas: 4n })))).toEqual({
      kind: 'command',
      command: { op: 'store', mode: 'add', key: Buffer.from('k'), flags: 3, exptime: 9, value: Buffer.from('v'), casUnique: 4n, noreply: true },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.prepend, { key: 'k', value: 'v', cas: 2n })))).toEqual({
      kind: 'command',
      command: { op: 'store', mode: 'prepend', key: Buffer.from('k'), flags: 0, exptime: 0, value: Buffer.from('v'), casUnique: 2n, noreply: false },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.deleteq, { key: 'k', cas: 6n })))).toEqual({
      kind: 'command',
      command: { op: 'delete', key: Buffer.from('k'), casUnique: 6n, noreply: true },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.decrement, { key: 'n', extras: arithExtras(3n, 50n, 10) })))).toEqual({
      kind: 'command',
      command: { op: 'arith', incr: false, key: Buffer.from('n'), delta: 3n, casUnique: 0n, initial: { value: 50n, exptime: 10 }, noreply: false },
    });
    const noCreate = actionOf(requestOf(binaryRequest(Opcode.incrementq, { key: 'n', extras: arithExtras(1n, 5n, 0xffffffff) })));
    expect(noCreate).toMatchObject({ command: { op: 'arith', incr: true, initial: undefined, noreply: true } });
  });

  // Reads ask for one item with its cas; touch and gat carry the expiration.
  test('reads, and the protocol-level actions', () => {
    expect(actionOf(requestOf(binaryRequest(Opcode.getkq, { key: 'k' })))).toEqual({
      kind: 'command',
      command: { op: 'get', keys: [Buffer.from('k')], withCas: true, latestSiblingOnly: true },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.touch, { key: 'k', extras: uint32Extras(77) })))).toEqual({
      kind: 'command',
      command: { op: 'gat', keys: [Buffer.from('k')], exptime: 77, withCas: true },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.flushq, { extras: uint32Extras(5) })))).toEqual({
      kind: 'command',
      command: { op: 'flush_all', delaySeconds: 5, noreply: true },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.stat, { key: 'settings' })))).toEqual({
      kind: 'command',
      command: { op: 'stats', group: 'settings' },
    });
    expect(actionOf(requestOf(binaryRequest(Opcode.noop))).kind).toBe('noop');
    expect(actionOf(requestOf(binaryRequest(Opcode.quitq))).kind).toBe('quit');
    expect(actionOf(requestOf(binaryRequest(Opcode.saslListMechs))).kind).toBe('saslListMechanisms');
    expect(actionOf(requestOf(binaryRequest(Opcode.saslStep, { key: 'PLAIN', value: 'x' }))).kind).toBe('saslStep');
    expect(actionOf(requestOf(binaryRequest(Opcode.saslAuth, { key: 'PLAIN', value: '\0u\0p' })))).toEqual({
      kind: 'saslAuth',
      mechanism: 'PLAIN',
      message: Buffer.from('\0u\0p'),
    });
  });
});

describe('binary responses', () => {
  const item = { key: Buffer.from('k'), flags: 0xdeadbeef, value: Buffer.from('value'), cas: 77n };
  const hit: Reply = { kind: 'items', items: [item], withCas: true };
  const miss: Reply = { kind: 'items', items: [], withCas: true };
  const answer = (packet: Buffer, reply: Reply): BinaryResponse[] => responsesOf(replyPackets(requestOf(packet), reply));

  // The header: response magic, the request's opcode and opaque, lengths, status and cas.
  test('header fields', () => {
    const chunks = encodeResponse({ opcode: Opcode.getk, opaque: 0x01020304, cas: 0xffffffffffffffffn, extras: Buffer.from([1, 2, 3, 4]), key: Buffer.from('key'), value: Buffer.from('vv') });
    const packet = Buffer.concat(chunks);
    expect(packet.subarray(0, headerBytes).toString('hex')).toBe('810c0003040000000000000901020304ffffffffffffffff');
    expect(packet.subarray(headerBytes).toString('latin1')).toBe('\x01\x02\x03\x04keyvv');
    expect(packet[0]).toBe(responseMagic);
  });

  // Errors carry memcached's words as their body.
  test('error bodies', () => {
    const [notFound] = responsesOf(encodeErrorResponse(Opcode.get, 5, BinaryStatus.keyNotFound));
    expect([notFound.status, notFound.opaque, notFound.value.toString()]).toEqual([1, 5, 'Not found']);
    const statuses: Array<[number, string]> = [
      [BinaryStatus.keyExists, 'Data exists for key.'],
      [BinaryStatus.valueTooLarge, 'Too large.'],
      [BinaryStatus.invalidArguments, 'Invalid arguments'],
      [BinaryStatus.itemNotStored, 'Not stored.'],
      [BinaryStatus.nonNumericValue, 'Non-numeric server-side value for incr or decr'],
      [BinaryStatus.authenticationError, 'Auth failure.'],
      [BinaryStatus.unknownCommand, 'Unknown command'],
    ];
    for (const [status, text] of statuses) {
      expect(responsesOf(encodeErrorResponse(Opcode.set, 0, status))[0].value.toString()).toBe(text);
    }
  });

  // Gets answer flags, value and cas; the K variants the key; a miss is not found or silent.
  test('get family', () => {
    const [get] = answer(binaryRequest(Opcode.get, { key: 'k', opaque: 9 }), hit);
    expect([get.status, get.opaque, get.cas, get.extras.readUInt32BE(0), get.key.length, get.value.toString()]).toEqual([0, 9, 77n, 0xdeadbeef, 0, 'value']);
    const [getk] = answer(binaryRequest(Opcode.getk, { key: 'k' }), hit);
    expect([getk.key.toString(), getk.value.toString()]).toEqual(['k', 'value']);
    expect(answer(binaryRequest(Opcode.getq, { key: 'k' }), hit)).toHaveLength(1);
    expect(answer(binaryRequest(Opcode.getq, { key: 'k' }), miss)).toHaveLength(0);
    expect(answer(binaryRequest(Opcode.getkq, { key: 'k' }), miss)).toHaveLength(0);
    const [getMiss] = answer(binaryRequest(Opcode.get, { key: 'k' }), miss);
    expect([getMiss.status, getMiss.value.toString(), getMiss.key.length]).toEqual([1, 'Not found', 0]);
    const [getkMiss] = answer(binaryRequest(Opcode.getk, { key: 'k' }), miss);
    expect([getkMiss.status, getkMiss.key.toString(), getkMiss.value.length]).toEqual([1, 'k', 0]);
    const [touch] = answer(binaryRequest(Opcode.touch, { key: 'k', extras: uint32Extras(1) }), hit);
    expect([touch.extras.length, touch.key.length, touch.value.length, touch.cas]).toEqual([4, 0, 0, 77n]);
    const [gatk] = answer(binaryRequest(Opcode.gatk, { key: 'k', extras: uint32Extras(1) }), hit);
    expect([gatk.key.toString(), gatk.value.toString()]).toEqual(['k', 'value']);
    expect(answer(binaryRequest(Opcode.gatq, { key: 'k', extras: uint32Extras(1) }), miss)).toHaveLength(0);
  });

  // Store outcomes map to memcached's statuses; quiet variants are silent on success only.
  test('store outcomes', () => {
    const set = binaryRequest(Opcode.set, { key: 'k', extras: storeExtras(0), value: 'v' });
    const setq = binaryRequest(Opcode.setq, { key: 'k', extras: storeExtras(0), value: 'v' });
    const add = binaryRequest(Opcode.add, { key: 'k', extras: storeExtras(0), value: 'v' });
    const replace = binaryRequest(Opcode.replaceq, { key: 'k', extras: storeExtras(0), value: 'v' });
    const append = binaryRequest(Opcode.append, { key: 'k', value: 'v' });
    const stored = (outcome: 'STORED' | 'NOT_STORED' | 'EXISTS' | 'NOT_FOUND'): Reply => ({ kind: 'stored', outcome, cas: outcome === 'STORED' ? 12n : 0n });
    expect(answer(set, stored('STORED')).map((r) => [r.status, r.cas])).toEqual([[0, 12n]]);
    expect(answer(setq, stored('STORED'))).toEqual([]);
    expect(answer(setq, stored('EXISTS')).map((r) => r.status)).toEqual([BinaryStatus.keyExists]);
    expect(answer(set, stored('NOT_FOUND')).map((r) => r.status)).toEqual([BinaryStatus.keyNotFound]);
    expect(answer(add, stored('NOT_STORED')).map((r) => r.status)).toEqual([BinaryStatus.keyExists]);
    expect(answer(replace, stored('NOT_STORED')).map((r) => r.status)).toEqual([BinaryStatus.keyNotFound]);
    expect(answer(append, stored('NOT_STORED')).map((r) => r.status)).toEqual([BinaryStatus.itemNotStored]);
  });

  // Delete and arith outcomes; arith answers the counter as 8 bytes with its cas.
  test('delete and arith outcomes', () => {
    const del = binaryRequest(Opcode.delete, { key: 'k' });
    expect(answer(del, { kind: 'deleted', outcome: 'DELETED' }).map((r) => [r.status, r.cas, r.value.length])).toEqual([[0, 0n, 0]]);
    expect(answer(binaryRequest(Opcode.deleteq, { key: 'k' }), { kind: 'deleted', outcome: 'DELETED' })).toEqual([]);
    expect(answer(del, { kind: 'deleted', outcome: 'EXISTS' }).map((r) => r.status)).toEqual([2]);
    expect(answer(del, { kind: 'deleted', outcome: 'NOT_FOUND' }).map((r) => r.status)).toEqual([1]);
    const incr = binaryRequest(Opcode.increment, { key: 'n', extras: arithExtras(1n) });
    const [ok] = answer(incr, { kind: 'arith', outcome: 'OK', value: 0xfffffffffffffffen, cas: 3n });
    expect([ok.status, ok.cas, ok.value.readBigUInt64BE(0), ok.value.length]).toEqual([0, 3n, 0xfffffffffffffffen, 8]);
    expect(answer(incr, { kind: 'arith', outcome: 'EXISTS', value: 0n, cas: 0n })[0].status).toBe(2);
    const nonNumeric = responsesOf(failurePackets(requestOf(incr), new KaiError('KAI_NON_NUMERIC_VALUE')));
    expect(nonNumeric.map((r) => r.status)).toEqual([BinaryStatus.nonNumericValue]);
  });

  // Stats: a packet per statistic, then an empty one; an unknown group is not found.
  test('stats', () => {
    const packets = responsesOf(encodeStats(Opcode.stat, 4, [['pid', '12'], ['version', '1.0']]));
    expect(packets.map((p) => [p.key.toString(), p.value.toString(), p.opaque])).toEqual([
      ['pid', '12', 4],
      ['version', '1.0', 4],
      ['', '', 4],
    ]);
    const stat = requestOf(binaryRequest(Opcode.stat, { key: 'nope' }));
    expect(responsesOf(failurePackets(stat, new KaiError('KAI_UNKNOWN_COMMAND'))).map((r) => r.status)).toEqual([1]);
    expect(responsesOf(replyPackets(stat, { kind: 'reset' }))).toHaveLength(1);
  });
});
