/**
 * A real node under hostile or careless clients: half-closed connections, resets on refused
 * connections, huge multigets, and clients that never read their replies.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

let dataDir: string;
let kai: KaiProcess;

function residentBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error('no VmRSS in /proc status');
  return Number(match[1]) * 1024;
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-robust-'));
  kai = await startKai({ dataDir, args: ['--log-level', 'warn', '--max-connections', '8'] });
});

afterAll(async () => {
  await kai.stop();
  await killStartedKai();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

it('answers every request of a client that half-closes after sending', async () => {
  // Proves a FIN from the client does not drop the replies it is owed, as with memcached.
  const socket = net.connect({ port: kai.memcachePort, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.end('set half 0 0 2\r\nhi\r\nget half\r\nincr half 1\r\n');
  await closed;
  expect(Buffer.concat(chunks).toString()).toBe(
    'STORED\r\nVALUE half 0 2\r\nhi\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n',
  );
});

it('survives clients that reset connections refused past --max-connections', async () => {
  // Proves a reset on a refused connection is handled, not an unhandled error that kills the node.
  const held: RawClient[] = [];
  for (let index = 0; index < 8; index++) held.push(await RawClient.connect(kai.memcachePort));
  await Promise.all(held.map((client) => client.request('version\r\n')));
  for (let round = 0; round < 20; round++) {
    const socket = net.connect({ port: kai.memcachePort, host: '127.0.0.1' });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.resetAndDestroy();
  }
  for (const client of held) client.close();
  // The node frees the places once it sees the closes; until then a new client is refused too,
  // so each attempt uses a fresh connection.
  const deadline = Date.now() + 5_000;
  let reply = '';
  while (Date.now() < deadline && !reply.startsWith('VERSION')) {
    const fresh = await RawClient.connect(kai.memcachePort);
    reply = await fresh.request('version\r\n').catch(() => '');
    fresh.close();
  }
  expect(reply).toMatch(/^VERSION /);
});

it('answers a multiget of 400,000 keys in one line', async () => {
  // Proves a reply with more chunks than a function call takes arguments is written, not a crash.
  const client = await RawClient.connect(kai.memcachePort);
  await client.request('set m 0 0 1\r\nx\r\n');
  const keyCount = 400_000;
  const reply = await client.request(`get${' m'.repeat(keyCount)}\r\n`, 'END\r\n', 30_000);
  expect(reply.length).toBe('VALUE m 0 1\r\nx\r\n'.length * keyCount + 'END\r\n'.length);
  client.close();
});

it('stops reading a client that does not read its replies, keeping memory bounded', async () => {
  // Proves replies are not buffered without bound: a client asking for a 1 MB value thousands of
  // times without reading gets its socket paused, and the node keeps serving others.
  const loader = await RawClient.connect(kai.memcachePort);
  const big = Buffer.alloc(1_000_000, 0x62);
  await loader.request(Buffer.concat([Buffer.from(`set big 0 0 ${big.length}\r\n`), big, Buffer.from('\r\n')]));
  loader.close();
  const other = await RawClient.connect(kai.memcachePort);
  const getsServed = async (): Promise<number> => {
    const stats = await other.request('stats\r\n', 'END\r\n');
    return Number(/STAT cmd_get (\d+)/.exec(stats)?.[1]);
  };
  const getsBefore = await getsServed();
  const before = residentBytes(kai.pid);
  const greedy = net.connect({ port: kai.memcachePort, host: '127.0.0.1' });
  await new Promise<void>((resolve) => greedy.once('connect', () => resolve()));
  greedy.pause();
  greedy.write('get big\r\n'.repeat(3_000));
  // Wait until the node has stopped taking the greedy client's gets: cmd_get holds still.
  let previous = -1;
  let current = await getsServed();
  const deadline = Date.now() + 10_000;
  while (current !== previous && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    previous = current;
    current = await getsServed();
  }
  expect(current).toBe(previous);
  expect(current - getsBefore).toBeLessThan(3_000);
  // 3,000 replies of 1 MB would be 3 GB; paused reading keeps the node within a few buffers.
  expect(residentBytes(kai.pid) - before).toBeLessThan(300 * 1024 * 1024);
  greedy.destroy();
  other.close();
});
