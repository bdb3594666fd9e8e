/**
 * One real kai node (bin/kai as a child process) driven by the `memcached` npm client and by raw
 * sockets: commands, pipelining, expiry, connection limits and robustness against bad input.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Memcached from 'memcached';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

let dataDir: string;
let kai: KaiProcess;
const clients: RawClient[] = [];

async function connect(): Promise<RawClient> {
  const client = await RawClient.connect(kai.memcachePort);
  clients.push(client);
  return client;
}

function promisify<T>(call: (callback: (error: unknown, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((error, result) => (error ? reject(error) : resolve(result))));
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-node-'));
  kai = await startKai({ dataDir, args: ['--log-level', 'warn', '--max-connections', '20'] });
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await kai.stop();
  await killStartedKai();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the memcached npm client', () => {
  let client: Memcached;
  beforeAll(() => {
    client = new Memcached(`127.0.0.1:${kai.memcachePort}`, { retries: 0, timeout: 5000 });
  });
  afterAll(() => client.end());

  it('stores, reads, mutates and deletes as against memcached', async () => {
    // Proves the common client operations round-trip through kai with memcached's results.
    await promisify((cb) => client.set('npm:a', 'alpha', 0, cb));
    expect(await promisify((cb) => client.get('npm:a', cb))).toBe('alpha');
    expect(await promisify((cb) => client.add('npm:a', 'again', 0, cb)).catch(() => 'not stored')).toBe('not stored');
    await promisify((cb) => client.replace('npm:a', 'beta', 0, cb));
    await promisify((cb) => client.append('npm:a', '-end', cb));
    await promisify((cb) => client.prepend('npm:a', 'start-', cb));
    expect(await promisify((cb) => client.get('npm:a', cb))).toBe('start-beta-end');
    await promisify((cb) => client.set('npm:n', '10', 0, cb));
    expect(await promisify((cb) => client.incr('npm:n', 5, cb))).toBe(15);
    expect(await promisify((cb) => client.decr('npm:n', 20, cb))).toBe(0);
    const multi = await promisify<Record<string, unknown>>((cb) => client.getMulti(['npm:a', 'npm:n', 'npm:none'], cb));
    // memcached rewrites a shorter counter in place, padded with spaces: "15" becomes "0 ".
    expect(multi).toEqual({ 'npm:a': 'start-beta-end', 'npm:n': '0 ' });
    await promisify((cb) => client.del('npm:a', cb));
    expect(await promisify((cb) => client.get('npm:a', cb))).toBeUndefined();
  });

  it('supports gets and cas', async () => {
    // Proves a cas with the unique from gets succeeds once, and a stale one is refused.
    await promisify((cb) => client.set('npm:cas', 'one', 0, cb));
    const seen = await promisify<{ cas: string }>((cb) => client.gets('npm:cas', cb));
    expect(await promisify((cb) => client.cas('npm:cas', 'two', seen.cas, 0, cb))).toBe(true);
    expect(await promisify((cb) => client.cas('npm:cas', 'three', seen.cas, 0, cb))).toBe(false);
    expect(await promisify((cb) => client.get('npm:cas', cb))).toBe('two');
  });
});

describe('raw sockets', () => {
  it('answers many commands sent in one packet, in order', async () => {
    // Proves pipelined requests are answered in request order.
    const raw = await connect();
    const reply = await raw.request(
      'set p1 1 0 1\r\na\r\nset p2 2 0 2\r\nbb\r\nget p1 p2 p3\r\nincr p1 1\r\ndelete p2\r\nversion\r\n',
      '\r\nVERSION 1.6.18-kai-0.1.0\r\n',
    );
    expect(reply).toBe(
      'STORED\r\nSTORED\r\nVALUE p1 1 1\r\na\r\nVALUE p2 2 2\r\nbb\r\nEND\r\n' +
        'CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\nVERSION 1.6.18-kai-0.1.0\r\n',
    );
  });

  it('decodes a command sent one byte at a time', async () => {
    // Proves a request split at every byte is decoded the same as one sent whole.
    const raw = await connect();
    const request = Buffer.from('set split 0 0 5\r\nx\r\ny!\r\nget split\r\n');
    for (const byte of request) raw.send(Buffer.from([byte]));
    const reply = await raw.readUntil((received) => received.toString().endsWith('END\r\n'));
    expect(reply.toString()).toBe('STORED\r\nVALUE split 0 5\r\nx\r\ny!\r\nEND\r\n');
  });

  it('expires items by exptime', async () => {
    // Proves a relative exptime makes an item disappear after it passes, and 0 keeps it.
    const raw = await connect();
    expect(await raw.request('set soon 0 1 1\r\nx\r\nset never 0 0 1\r\ny\r\n', 'STORED\r\nSTORED\r\n')).toBe(
      'STORED\r\nSTORED\r\n',
    );
    const deadline = Date.now() + 5_000;
    let reply = '';
    while (Date.now() < deadline) {
      reply = await raw.request('get soon never\r\n', 'END\r\n');
      if (!reply.includes('VALUE soon')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(reply).toBe('VALUE never 0 1\r\ny\r\nEND\r\n');
  });

  it('keeps serving other connections while one sends garbage', async () => {
    // Proves malformed and hostile input never crashes the node or disturbs another connection.
    const good = await connect();
    const bad = await connect();
    await good.request('set steady 0 0 2\r\nok\r\n');
    const garbage = Buffer.alloc(64 * 1024);
    for (let index = 0; index < garbage.length; index++) garbage[index] = (index * 7919) % 256;
    bad.send(garbage);
    bad.send('set x 0 0 99999999999\r\n');
    bad.send(Buffer.alloc(8192, 0x61));
    for (let round = 0; round < 20; round++) {
      expect(await good.request('get steady\r\n', 'END\r\n')).toBe('VALUE steady 0 2\r\nok\r\nEND\r\n');
    }
    const fresh = await connect();
    expect(await fresh.request('version\r\n')).toBe('VERSION 1.6.18-kai-0.1.0\r\n');
  });

  it('refuses connections past --max-connections with memcached words', async () => {
    // Proves the connection limit holds and that closing a connection frees its place.
    const open: RawClient[] = [];
    for (let index = 0; index < 25; index++) open.push(await connect());
    const replies = await Promise.all(
      open.map((client) =>
        client.request('version\r\n').catch((error: unknown) => (error instanceof Error ? error.message : 'error')),
      ),
    );
    const refused = replies.filter((reply) => reply.includes('ERROR Too many open connections'));
    expect(refused.length).toBeGreaterThan(0);
    expect(replies.filter((reply) => reply === 'VERSION 1.6.18-kai-0.1.0\r\n').length).toBeLessThanOrEqual(20);
  });
});
