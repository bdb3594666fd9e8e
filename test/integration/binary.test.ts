/**
 * One real kai node (bin/kai as a child process) driven over raw sockets with the binary protocol:
 * every opcode, quiet variants, pipelined multi-gets, cas, malformed headers and oversized bodies.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';
import {
  arithExtras,
  binaryOpcode as op,
  binaryRequest,
  endsStats,
  endsWithNoop,
  hasResponses,
  parseResponses,
  storeExtras,
  uint32Extras,
  type BinaryResponse,
  type RequestParts,
} from '../support/binary';

const valueBytesMax = 64 * 1024;
let dataDir: string;
let kai: KaiProcess;
const clients: RawClient[] = [];

async function connect(): Promise<RawClient> {
  const client = await RawClient.connect(kai.memcachePort);
  clients.push(client);
  return client;
}

/** Sends `packets` and reads until `count` responses are in. */
async function exchange(client: RawClient, packets: Buffer | Buffer[], count = 1): Promise<BinaryResponse[]> {
  client.send(Buffer.concat(Array.isArray(packets) ? packets : [packets]));
  const received = await client.readUntil((bytes) => hasResponses(bytes, count));
  const { responses, rest } = parseResponses(received);
  expect(rest.length).toBe(0);
  return responses;
}

/** Sends `packets` then a NOOP, and returns every response before the NOOP's. */
async function pipeline(client: RawClient, packets: Buffer[]): Promise<BinaryResponse[]> {
  client.send(Buffer.concat([...packets, binaryRequest(op.noop, { opaque: 0xfeed })]));
  const received = await client.readUntil(endsWithNoop);
  const { responses } = parseResponses(received);
  const noop = responses.pop();
  expect(noop?.opaque).toBe(0xfeed);
  return responses;
}

const set = (key: string, value: string, parts: RequestParts & { flags?: number; exptime?: number } = {}): Buffer =>
  binaryRequest(op.set, { key, value, extras: storeExtras(parts.flags ?? 0, parts.exptime ?? 0), ...parts });

const text = (buffer: Buffer): string => buffer.toString('latin1');

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-binary-'));
  kai = await startKai({ dataDir, args: ['--log-level', 'warn', '--max-item-size', String(valueBytesMax)] });
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await kai.stop();
  await killStartedKai();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('storage and retrieval', () => {
  it('sets and gets with flags, cas and echoed opaque', async () => {
    // Proves SET answers the new cas and GET/GETK return flags, key, value and that same cas.
    const client = await connect();
    const [stored] = await exchange(client, set('b:a', 'alpha', { flags: 0xcafe, opaque: 11 }));
    expect([stored.magic, stored.opcode, stored.status, stored.opaque]).toEqual([0x81, op.set, 0, 11]);
    expect(stored.cas).not.toBe(0n);
    const [get, getk] = await exchange(client, [binaryRequest(op.get, { key: 'b:a', opaque: 12 }), binaryRequest(op.getk, { key: 'b:a', opaque: 13 })], 2);
    expect([get.status, get.opaque, get.extras.readUInt32BE(0), get.key.length, text(get.value), get.cas]).toEqual([0, 12, 0xcafe, 0, 'alpha', stored.cas]);
    expect([getk.opaque, text(getk.key), text(getk.value), getk.cas]).toEqual([13, 'b:a', 'alpha', stored.cas]);
  });

  it('answers misses as not found, with the key for GETK', async () => {
    // Proves GET misses carry memcached's "Not found" body and GETK misses the key.
    const client = await connect();
    const [get, getk] = await exchange(client, [binaryRequest(op.get, { key: 'b:none' }), binaryRequest(op.getk, { key: 'b:none' })], 2);
    expect([get.status, text(get.value)]).toEqual([1, 'Not found']);
    expect([getk.status, text(getk.key), getk.value.length]).toEqual([1, 'b:none', 0]);
  });

  it('adds, replaces, appends and prepends with memcached statuses', async () => {
    // Proves ADD on a present key is 0x02, REPLACE/APPEND on a missing one 0x01/0x05, and joins work.
    const client = await connect();
    const responses = await exchange(
      client,
      [
        binaryRequest(op.add, { key: 'b:k', extras: storeExtras(5), value: 'mid' }),
        binaryRequest(op.add, { key: 'b:k', extras: storeExtras(5), value: 'again' }),
        binaryRequest(op.replace, { key: 'b:missing', extras: storeExtras(0), value: 'x' }),
        binaryRequest(op.append, { key: 'b:k', value: '>' }),
        binaryRequest(op.prepend, { key: 'b:k', value: '<' }),
        binaryRequest(op.append, { key: 'b:missing', value: 'x' }),
        binaryRequest(op.replace, { key: 'b:k', extras: storeExtras(6), value: 'new' }),
        binaryRequest(op.get, { key: 'b:k' }),
      ],
      8,
    );
    expect(responses.map((r) => r.status)).toEqual([0, 2, 1, 0, 0, 5, 0, 0]);
    expect([text(responses[1].value), text(responses[5].value)]).toEqual(['Data exists for key.', 'Not stored.']);
    expect([responses[7].extras.readUInt32BE(0), text(responses[7].value)]).toEqual([6, 'new']);
    const [appended] = await exchange(client, [binaryRequest(op.append, { key: 'b:k', value: '!' })]);
    const [read] = await exchange(client, [binaryRequest(op.get, { key: 'b:k' })]);
    expect([text(read.value), read.cas]).toEqual(['new!', appended.cas]);
  });

  it('honours cas on set, append, delete and incr', async () => {
    // Proves a stale cas is EXISTS (0x02) on every write, the current one succeeds, and a cas on a missing key is NOT_FOUND.
    const client = await connect();
    const [first] = await exchange(client, set('b:cas', '1'));
    const stale = first.cas + 1n;
    const refused = await exchange(
      client,
      [
        set('b:cas', 'x', { cas: stale }),
        binaryRequest(op.append, { key: 'b:cas', value: 'x', cas: stale }),
        binaryRequest(op.delete, { key: 'b:cas', cas: stale }),
        binaryRequest(op.increment, { key: 'b:cas', extras: arithExtras(1n), cas: stale }),
        set('b:cas-missing', 'x', { cas: stale }),
        binaryRequest(op.add, { key: 'b:cas', extras: storeExtras(0), value: 'x', cas: stale }),
      ],
      6,
    );
    expect(refused.map((r) => r.status)).toEqual([2, 2, 2, 2, 1, 2]);
    const [incremented] = await exchange(client, binaryRequest(op.increment, { key: 'b:cas', extras: arithExtras(4n), cas: first.cas }));
    expect([incremented.status, incremented.value.readBigUInt64BE(0)]).toEqual([0, 5n]);
    const [replaced] = await exchange(client, set('b:cas', 'z', { cas: incremented.cas }));
    expect(replaced.status).toBe(0);
    const [deleted] = await exchange(client, binaryRequest(op.delete, { key: 'b:cas', cas: replaced.cas }));
    expect([deleted.status, deleted.cas]).toEqual([0, 0n]);
    const [gone] = await exchange(client, binaryRequest(op.delete, { key: 'b:cas' }));
    expect(gone.status).toBe(1);
  });
});

describe('counters, touch and gat', () => {
  it('increments and decrements, creating with the initial value unless told not to', async () => {
    // Proves incr/decr wrap and floor as memcached does, create with initial, and 0xffffffff refuses to create.
    const client = await connect();
    const responses = await exchange(
      client,
      [
        binaryRequest(op.increment, { key: 'b:n', extras: arithExtras(1n, 10n, 0xffffffff) }),
        binaryRequest(op.increment, { key: 'b:n', extras: arithExtras(1n, 10n, 0) }),
        binaryRequest(op.increment, { key: 'b:n', extras: arithExtras(5n) }),
        binaryRequest(op.decrement, { key: 'b:n', extras: arithExtras(100n) }),
        binaryRequest(op.increment, { key: 'b:n', extras: arithExtras(0xffffffffffffffffn) }),
        binaryRequest(op.increment, { key: 'b:n', extras: arithExtras(1n) }),
        binaryRequest(op.get, { key: 'b:n' }),
      ],
      7,
    );
    expect(responses[0].status).toBe(1);
    expect(responses.slice(1, 6).map((r) => r.value.readBigUInt64BE(0))).toEqual([10n, 15n, 0n, 0xffffffffffffffffn, 0n]);
    expect(text(responses[6].value).trim()).toBe('0');
    await exchange(client, set('b:text', 'abc'));
    const [nonNumeric] = await exchange(client, binaryRequest(op.decrement, { key: 'b:text', extras: arithExtras(1n) }));
    expect([nonNumeric.status, text(nonNumeric.value)]).toEqual([6, 'Non-numeric server-side value for incr or decr']);
  });

  it('touches and gets-and-touches', async () => {
    // Proves TOUCH answers flags without a value, GAT/GATK answer the item, misses are 0x01, and a past exptime expires the key.
    const client = await connect();
    await exchange(client, set('b:t', 'tv', { flags: 3 }));
    const [touch, gat, gatk, miss] = await exchange(
      client,
      [
        binaryRequest(op.touch, { key: 'b:t', extras: uint32Extras(1000) }),
        binaryRequest(op.gat, { key: 'b:t', extras: uint32Extras(1000) }),
        binaryRequest(op.gatk, { key: 'b:t', extras: uint32Extras(1000) }),
        binaryRequest(op.gat, { key: 'b:none', extras: uint32Extras(10) }),
      ],
      4,
    );
    expect([touch.status, touch.extras.readUInt32BE(0), touch.value.length, touch.cas === 0n]).toEqual([0, 3, 0, false]);
    expect([gat.status, text(gat.value)]).toEqual([0, 'tv']);
    expect([text(gatk.key), text(gatk.value)]).toEqual(['b:t', 'tv']);
    expect(miss.status).toBe(1);
    // An absolute exptime in the past expires the item at once.
    await exchange(client, binaryRequest(op.touch, { key: 'b:t', extras: uint32Extras(1_000_000_000) }));
    const [after] = await exchange(client, binaryRequest(op.get, { key: 'b:t' }));
    expect(after.status).toBe(1);
  });
});

describe('quiet variants', () => {
  it('answers quiet commands only on error, in request order', async () => {
    // Proves SETQ/ADDQ/DELETEQ/INCRQ/APPENDQ/GATQ are silent on success, answer errors with their opaque, and NOOP flushes.
    const client = await connect();
    const responses = await pipeline(client, [
      binaryRequest(op.setq, { key: 'q:a', extras: storeExtras(0), value: '1', opaque: 1 }),
      binaryRequest(op.addq, { key: 'q:a', extras: storeExtras(0), value: '2', opaque: 2 }),
      binaryRequest(op.replaceq, { key: 'q:none', extras: storeExtras(0), value: '2', opaque: 3 }),
      binaryRequest(op.appendq, { key: 'q:a', value: '0', opaque: 4 }),
      binaryRequest(op.prependq, { key: 'q:none', value: '0', opaque: 5 }),
      binaryRequest(op.incrementq, { key: 'q:a', extras: arithExtras(1n), opaque: 6 }),
      binaryRequest(op.decrementq, { key: 'q:none', extras: arithExtras(1n, 0n, 0xffffffff), opaque: 7 }),
      binaryRequest(op.gatq, { key: 'q:a', extras: uint32Extras(0), opaque: 8 }),
      binaryRequest(op.gatkq, { key: 'q:none', extras: uint32Extras(0), opaque: 9 }),
      binaryRequest(op.deleteq, { key: 'q:a', opaque: 10 }),
      binaryRequest(op.deleteq, { key: 'q:a', opaque: 11 }),
      binaryRequest(op.flushq, { opaque: 12 }),
    ]);
    expect(responses.map((r) => [r.opaque, r.status])).toEqual([
      [2, 2],
      [3, 1],
      [5, 5],
      [7, 1],
      [8, 0],
      [11, 1],
    ]);
    expect(text(responses[4].value)).toBe('11');
  });

  it('serves a GETKQ ... NOOP multi-get with only the hits', async () => {
    // Proves the classic binary multi-get: hits come back with their keys, misses are silent, NOOP ends the batch.
    const client = await connect();
    await pipeline(client, ['m:1', 'm:3', 'm:5'].map((key) => binaryRequest(op.setq, { key, extras: storeExtras(0), value: `v${key}` })));
    const keys = ['m:1', 'm:2', 'm:3', 'm:4', 'm:5'];
    const responses = await pipeline(client, keys.map((key, index) => binaryRequest(op.getkq, { key, opaque: index })));
    expect(responses.map((r) => [r.opaque, text(r.key), text(r.value)])).toEqual([
      [0, 'm:1', 'vm:1'],
      [2, 'm:3', 'vm:3'],
      [4, 'm:5', 'vm:5'],
    ]);
    const getq = await pipeline(client, keys.map((key) => binaryRequest(op.getq, { key })));
    expect(getq.map((r) => [r.key.length, text(r.value)])).toEqual([
      [0, 'vm:1'],
      [0, 'vm:3'],
      [0, 'vm:5'],
    ]);
  });

  it('closes after QUIT with a reply and after QUITQ without one', async () => {
    // Proves QUIT answers then closes, QUITQ closes silently, and nothing after either is served.
    const loud = await connect();
    const [quit] = await exchange(loud, [binaryRequest(op.quit, { opaque: 3 }), binaryRequest(op.noop)]);
    expect([quit.opcode, quit.status, quit.opaque]).toEqual([op.quit, 0, 3]);
    await loud.waitClosed();
    const quiet = await connect();
    quiet.send(Buffer.concat([binaryRequest(op.quitq), binaryRequest(op.noop)]));
    await quiet.waitClosed();
    expect(quiet.closed).toBe(true);
  });
});

describe('server commands', () => {
  it('answers NOOP, VERSION, VERBOSITY and FLUSH', async () => {
    // Proves the commands without keys: version string, verbosity and flush succeed, flush empties the node.
    const client = await connect();
    await exchange(client, set('f:a', 'x'));
    const [noop, version, verbosity, flush, get] = await exchange(
      client,
      [
        binaryRequest(op.noop, { opaque: 1 }),
        binaryRequest(op.version, { opaque: 2 }),
        binaryRequest(op.verbosity, { extras: uint32Extras(1), opaque: 3 }),
        binaryRequest(op.flush, { opaque: 4 }),
        binaryRequest(op.get, { key: 'f:a' }),
      ],
      5,
    );
    expect([noop.status, noop.opaque, noop.value.length]).toEqual([0, 1, 0]);
    expect(text(version.value)).toMatch(/^\d+\.\d+\.\d+/);
    expect([verbosity.status, flush.status, flush.opaque, get.status]).toEqual([0, 0, 4, 1]);
  });

  it('answers STAT with one packet per statistic, ended by an empty one', async () => {
    // Proves STAT, STAT settings and STAT reset packets, and 0x01 for a group kai does not keep.
    const client = await connect();
    client.send(binaryRequest(op.stat, { opaque: 21 }));
    const general = parseResponses(await client.readUntil(endsStats)).responses;
    const names = general.map((r) => text(r.key));
    expect(names).toEqual(expect.arrayContaining(['pid', 'uptime', 'version', 'curr_connections', 'cmd_get', 'get_hits']));
    expect(names.at(-1)).toBe('');
    expect(general.every((r) => r.opaque === 21 && r.status === 0 && r.opcode === op.stat)).toBe(true);
    expect(text(general.find((r) => text(r.key) === 'pid')!.value)).toBe(String(kai.pid));
    client.send(binaryRequest(op.stat, { key: 'settings' }));
    const settings = parseResponses(await client.readUntil(endsStats)).responses;
    expect(settings.map((r) => text(r.key))).toEqual(expect.arrayContaining(['maxconns', 'item_size_max']));
    const [reset] = await exchange(client, binaryRequest(op.stat, { key: 'reset' }));
    expect([reset.status, reset.key.length, reset.value.length]).toEqual([0, 0, 0]);
    const [unknown] = await exchange(client, binaryRequest(op.stat, { key: 'nonsense' }));
    expect([unknown.status, text(unknown.value)]).toEqual([1, 'Not found']);
  });

  it('answers SASL commands as unknown when no auth file is set', async () => {
    // Proves kai without --auth-file behaves as memcached without -S: SASL opcodes are 0x81 and the connection stays open.
    const client = await connect();
    const responses = await exchange(
      client,
      [
        binaryRequest(op.saslListMechs),
        binaryRequest(op.saslAuth, { key: 'PLAIN', value: '\0user\0pass' }),
        binaryRequest(op.saslStep, { key: 'PLAIN', value: 'x' }),
        binaryRequest(op.noop),
      ],
      4,
    );
    expect(responses.map((r) => r.status)).toEqual([0x81, 0x81, 0x81, 0]);
  });
});

describe('malformed and oversized requests', () => {
  it('answers an unknown opcode 0x81 and keeps serving', async () => {
    // Proves an unknown opcode is answered with its body skipped, and the next request is served.
    const response = await exchange(await connect(), [binaryRequest(0x55, { key: 'kk', value: 'body', opaque: 5 }), binaryRequest(op.noop, { opaque: 6 })], 2);
    expect(response.map((r) => [r.opcode, r.status, r.opaque])).toEqual([
      [0x55, 0x81, 5],
      [op.noop, 0, 6],
    ]);
  });

  it('answers bad extras or key lengths 0x04 and closes', async () => {
    // Proves a request breaking its opcode's length rules gets invalid arguments and the connection closes.
    for (const packet of [
      binaryRequest(op.get, { key: 'k', extras: uint32Extras(1) }),
      binaryRequest(op.set, { key: 'k', extras: uint32Extras(1), value: 'v' }),
      binaryRequest(op.get, { key: 'k'.repeat(251) }),
      binaryRequest(op.increment, { key: 'k', extras: storeExtras(1) }),
    ]) {
      const client = await connect();
      const [response] = await exchange(client, [packet, binaryRequest(op.noop)]);
      expect([response.opcode, response.status, text(response.value)]).toEqual([packet[1], 4, 'Invalid arguments']);
      await client.waitClosed();
    }
  });

  it('closes on a bad magic byte after the first request', async () => {
    // Proves a packet that is not a request closes the connection without a reply, after earlier replies.
    const client = await connect();
    client.send(Buffer.concat([binaryRequest(op.noop, { opaque: 1 }), binaryRequest(op.noop, { magic: 0x81 }), binaryRequest(op.noop)]));
    const { responses, rest } = parseResponses(await client.readUntil((bytes) => hasResponses(bytes, 1)));
    expect([responses.map((r) => r.opaque), rest.length]).toEqual([[1], 0]);
    await client.waitClosed();
  });

  it('refuses a value over the limit, swallows it and drops the old value', async () => {
    // Proves a value over --max-item-size is 0x03 with its body discarded, and a refused SET removes the old value.
    const client = await connect();
    await exchange(client, set('big:k', 'old'));
    const big = Buffer.alloc(valueBytesMax + 1, 0x61);
    const [tooLarge, after] = await exchange(client, [set('big:k', text(big)), binaryRequest(op.get, { key: 'big:k' })], 2);
    expect([tooLarge.status, text(tooLarge.value)]).toEqual([3, 'Too large.']);
    expect(after.status).toBe(1);
    const [atLimit] = await exchange(client, set('big:k', text(Buffer.alloc(valueBytesMax, 0x62))));
    expect(atLimit.status).toBe(0);
  });

  it('closes without buffering on a declared body over the cap', async () => {
    // Proves a header declaring a huge body is answered and closed at once, before the body is sent.
    const client = await connect();
    const header = binaryRequest(op.set, { key: 'k', extras: storeExtras(0), bodyLength: 0xfffffff0 });
    const [response] = await exchange(client, header);
    expect(response.status).toBe(3);
    await client.waitClosed();
  });

  it('decodes requests that arrive one byte at a time', async () => {
    // Proves the server reassembles requests split at every byte over the socket.
    const client = await connect();
    const stream = Buffer.concat([set('split:a', 'one'), binaryRequest(op.getk, { key: 'split:a', opaque: 2 }), binaryRequest(op.noop, { opaque: 3 })]);
    for (const byte of stream) {
      client.send(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { responses } = parseResponses(await client.readUntil(endsWithNoop));
    expect(responses.map((r) => [r.opcode, r.status, r.opaque])).toEqual([
      [op.set, 0, 0],
      [op.getk, 0, 2],
      [op.noop, 0, 3],
    ]);
  });

  it('serves text and binary clients side by side on one port', async () => {
    // Proves the first byte picks the protocol per connection and both see the same data.
    const binary = await connect();
    await exchange(binary, set('both:k', 'shared'));
    const textClient = await connect();
    expect(await textClient.request('get both:k\r\n', 'END\r\n')).toBe('VALUE both:k 0 6\r\nshared\r\nEND\r\n');
  });
});
