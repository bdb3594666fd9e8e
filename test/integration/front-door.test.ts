/**
 * The client port under hostile clients, on real nodes: HTTP request lines hang up, connections
 * past the limit are closed, idle connections time out, SIGTERM does not wait for anyone, and
 * partly sent requests stay within the receive budget while other clients are served.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as memjs from 'memjs';
import { stopGracePassedMessage } from '../../src/server/memcache-server';
import { killStartedKai, logMessages, residentBytes, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

const dataDirs: string[] = [];
const nodes: KaiProcess[] = [];
const sockets: net.Socket[] = [];
const pollIntervalMs = 50;

async function startNode(args: readonly string[]): Promise<KaiProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-front-door-'));
  dataDirs.push(dataDir);
  const kai = await startKai({ dataDir, args: ['--log-level', 'warn', '--n', '1', '--r', '1', '--w', '1', ...args] });
  nodes.push(kai);
  return kai;
}

/** A node that logs at level info to a file of its own, for tests that read how it stopped. */
async function startLoggedNode(args: readonly string[]): Promise<{ node: KaiProcess; logFile: string }> {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-front-door-log-'));
  dataDirs.push(logDir);
  const logFile = path.join(logDir, 'kai.log');
  return { node: await startNode([...args, '--log-level', 'info', '--log-file', logFile]), logFile };
}

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  for (const kai of nodes) await kai.stop().catch(() => undefined);
  await killStartedKai();
  for (const dataDir of dataDirs) fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

/** Polls `condition` until it holds or `timeoutMs` passes; returns whether it held. */
async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}

function openDescriptors(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function statValue(reply: string, name: string): number {
  const match = new RegExp(`STAT ${name} (\\d+)`).exec(reply);
  if (!match) throw new Error(`no ${name} in ${reply}`);
  return Number(match[1]);
}

/** A raw socket that never closes its side of its own accord (so only the server can end it). */
function connectHalfOpen(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(socket);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((done) => socket.on('end', () => done()));
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

describe('HTTP request lines', () => {
  let kai: KaiProcess;
  beforeAll(async () => {
    kai = await startNode([]);
  });

  it('closes on a POST line and does not run a set smuggled in its body', async () => {
    // Proves the cross-protocol guard: the body of a browser's POST never reaches the decoder.
    const body = 'set smuggled 0 0 8\r\nTAMPERED\r\n';
    const attacker = await RawClient.connect(kai.memcachePort);
    attacker.send(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await attacker.waitClosed();
    const reader = await RawClient.connect(kai.memcachePort);
    expect(await reader.request('get smuggled\r\n', 'END\r\n')).toBe('END\r\n');
    const stats = await reader.request('stats\r\n', 'END\r\n');
    expect(statValue(stats, 'cmd_set')).toBe(0);
    reader.close();
  });

  it('closes on a GET line after answering what came before it, and nothing after', async () => {
    // Proves the hang-up comes in order: earlier commands are answered, later ones never run.
    const client = await RawClient.connect(kai.memcachePort);
    client.send('version\r\nGET /index.html HTTP/1.0\r\nset after 0 0 1\r\nx\r\n');
    await client.waitClosed();
    const reader = await RawClient.connect(kai.memcachePort);
    expect(await reader.request('get after\r\n', 'END\r\n')).toBe('END\r\n');
    reader.close();
  });
});

describe('connections past --max-connections', () => {
  const connectionsMax = 16;
  let kai: KaiProcess;
  beforeAll(async () => {
    kai = await startNode(['--max-connections', String(connectionsMax)]);
  });

  it('answers and closes each extra connection, so descriptors stay bounded', async () => {
    // Proves refused sockets are closed by the server, as memcached closes them, not held open.
    const before = openDescriptors(kai.pid);
    const held: RawClient[] = [];
    for (let index = 0; index < connectionsMax; index++) held.push(await RawClient.connect(kai.memcachePort));
    await Promise.all(held.map((client) => client.request('version\r\n')));
    const extraCount = 300;
    const extras = await Promise.all(Array.from({ length: extraCount }, () => connectHalfOpen(kai.memcachePort)));
    // Each extra client keeps its side open: only the server's close can end these connections.
    await Promise.all(extras.map((extra) => extra.closed));
    for (const extra of extras) expect(extra.received()).toBe('ERROR Too many open connections\r\n');
    // The refused descriptors are gone: the node holds its held connections and little more.
    expect(await eventually(() => openDescriptors(kai.pid) <= before + connectionsMax + 4, 5_000)).toBe(true);
    const stats = await held[0].request('stats\r\n', 'END\r\n');
    expect(statValue(stats, 'rejected_connections')).toBeGreaterThanOrEqual(extraCount);
    expect(statValue(stats, 'curr_connections')).toBe(connectionsMax);
    for (const client of held) client.close();
  });

  it('stops promptly on SIGTERM with a refused and an idle client that never close', async () => {
    // Proves neither an idle client nor a refused one holds up a node's stop.
    const { node, logFile } = await startLoggedNode(['--max-connections', '1']);
    // The readiness probe's connection may not be gone yet: try until this one takes the place.
    let idle = await connectHalfOpen(node.memcachePort);
    const served = await eventually(async () => {
      idle.socket.write('version\r\n');
      await eventually(() => idle.received().length > 0, 5_000);
      if (idle.received().startsWith('VERSION')) return true;
      idle.socket.destroy();
      idle = await connectHalfOpen(node.memcachePort);
      return false;
    }, 5_000);
    expect(served).toBe(true);
    const refused = await connectHalfOpen(node.memcachePort);
    expect(await eventually(() => refused.received().length > 0, 5_000)).toBe(true);
    expect((await node.stop('SIGTERM', 30_000)).code).toBe(0);
    // Nothing was in flight, so the node did not wait out its grace: it says so when it does.
    const messages = logMessages(logFile);
    expect(messages[messages.length - 1]).toBe('stopped');
    expect(messages).not.toContain(stopGracePassedMessage);
  });

  it('waits out its grace for a client that reads none of its replies, then closes it, exits 0 and says so', async () => {
    // Proves a client that never reads holds a stop up for the grace and no longer, and that the log tells such a stop apart.
    const { node, logFile } = await startLoggedNode([]);
    const valueBytes = 512 * 1024;
    const setter = await RawClient.connect(node.memcachePort);
    expect(await setter.request(`set big 0 0 ${valueBytes}\r\n${'v'.repeat(valueBytes)}\r\n`)).toBe('STORED\r\n');
    // 32 MiB of replies: far more than the socket buffers of both ends hold.
    const stalled = await connectHalfOpen(node.memcachePort);
    stalled.socket.pause();
    stalled.socket.write('get big\r\n'.repeat(64));
    const hits = async (): Promise<number> => statValue(await setter.request('stats\r\n', 'END\r\n'), 'get_hits');
    expect(await eventually(async () => (await hits()) >= 1, 10_000)).toBe(true);
    setter.close();
    expect((await node.stop('SIGTERM', 60_000)).code).toBe(0);
    const messages = logMessages(logFile);
    expect(messages).toContain(stopGracePassedMessage);
    expect(messages[messages.length - 1]).toBe('stopped');
    stalled.socket.destroy();
  });
});

describe('--idle-timeout', () => {
  // Long enough that a busy client's commands, a timeout/8 apart, keep it open through a stall of
  // most of the timeout on a loaded machine.
  const idleTimeoutMs = 2_000;
  let kai: KaiProcess;
  beforeAll(async () => {
    kai = await startNode(['--idle-timeout', String(idleTimeoutMs)]);
  });

  it('closes a connection that sends nothing, or stops part way through a line, and counts them', async () => {
    // Proves memcached's idle_timeout: silent clients and half-sent lines are closed without a word.
    const silentStartedMs = Date.now();
    const silent = await connectHalfOpen(kai.memcachePort);
    const partial = await connectHalfOpen(kai.memcachePort);
    partial.socket.write('get some');
    await Promise.all([silent.closed, partial.closed]);
    expect(Date.now() - silentStartedMs).toBeGreaterThanOrEqual(idleTimeoutMs - 50);
    expect(silent.received()).toBe('');
    expect(partial.received()).toBe('');
    const client = await RawClient.connect(kai.memcachePort);
    const stats = await client.request('stats\r\n', 'END\r\n');
    expect(statValue(stats, 'idle_kicks')).toBeGreaterThanOrEqual(2);
    expect(statValue(await client.request('stats settings\r\n', 'END\r\n'), 'idle_timeout')).toBe(idleTimeoutMs / 1000);
    client.close();
  });

  it('closes a connection stalled part way through a value, and frees what it held', async () => {
    // Proves a client cannot pin a buffer by stopping in the middle of a value.
    const stalled = await connectHalfOpen(kai.memcachePort);
    stalled.socket.write(`set stalled 0 0 100000\r\n${'x'.repeat(50_000)}`);
    await stalled.closed;
    const client = await RawClient.connect(kai.memcachePort);
    expect(await client.request('get stalled\r\n', 'END\r\n')).toBe('END\r\n');
    expect(statValue(await client.request('stats kai\r\n', 'END\r\n'), 'receive_buffer_bytes')).toBe(0);
    client.close();
  });

  it('keeps a client that sends commands more often than the timeout, and memjs reconnects after one', async () => {
    // Proves only idleness closes: a busy client stays, and a real client carries on after a close.
    const busy = await RawClient.connect(kai.memcachePort);
    // Twelve commands a timeout/8 apart: the connection lives through one and a half timeouts.
    const rounds = 12;
    for (let round = 0; round < rounds; round++) {
      expect(await busy.request('version\r\n')).toMatch(/^VERSION /);
      await new Promise((resolve) => setTimeout(resolve, idleTimeoutMs / 8));
    }
    expect(busy.closed).toBe(false);
    busy.close();
    const client = memjs.Client.create(`127.0.0.1:${kai.memcachePort}`, { retries: 2, timeout: 5, logger: { log: () => undefined } });
    try {
      expect(await client.set('idle:a', 'alpha', { expires: 0 })).toBe(true);
      // Wait until the node has closed memjs's idle connection (the probe's own stays busy), then use the client again.
      const probe = await RawClient.connect(kai.memcachePort);
      const before = statValue(await probe.request('stats\r\n', 'END\r\n'), 'idle_kicks');
      const kicked = await eventually(async () => statValue(await probe.request('stats\r\n', 'END\r\n'), 'idle_kicks') > before, 10_000);
      probe.close();
      expect(kicked).toBe(true);
      expect((await client.get('idle:a')).value?.toString()).toBe('alpha');
    } finally {
      client.close();
    }
  });
});

describe('partly sent requests and the receive budget', () => {
  const budgetBytes = 8 * 1024 * 1024;
  const valueBytes = 1024 * 1024;
  let kai: KaiProcess;
  beforeAll(async () => {
    kai = await startNode(['--max-connections', '400', '--receive-buffer-bytes-max', String(budgetBytes)]);
  });

  it('holds 200 clients each a byte short of a 1 MiB value within the budget, serves others, and gives all back', async () => {
    // Proves partial values are bounded node-wide before they are read, and released on close.
    const observer = await RawClient.connect(kai.memcachePort);
    const kaiStats = async (): Promise<string> => observer.request('stats kai\r\n', 'END\r\n');
    const residentBefore = residentBytes(kai.pid);
    const holders: net.Socket[] = [];
    const textHolders = 150;
    const binaryHolders = 50;
    for (let index = 0; index < textHolders + binaryHolders; index++) {
      const socket = net.connect({ port: kai.memcachePort, host: '127.0.0.1' });
      sockets.push(socket);
      holders.push(socket);
      socket.on('error', () => undefined);
      socket.write(index < textHolders ? textSetHead(`held${index}`, valueBytes) : binarySetHead(`held${index}`, valueBytes));
      socket.write(Buffer.alloc(valueBytes - 1, 0x61));
    }
    // Most of them are held back, asking for bytes the budget does not have.
    expect(await eventually(async () => statValue(await kaiStats(), 'receive_buffer_waits') >= 150, 30_000)).toBe(true);
    // Let what was in flight land, then look: the figure stays near the budget, not 200 MiB.
    await eventually(async () => {
      const first = statValue(await kaiStats(), 'receive_buffer_bytes');
      await new Promise((resolve) => setTimeout(resolve, 300));
      return statValue(await kaiStats(), 'receive_buffer_bytes') === first;
    }, 10_000);
    const heldBytes = statValue(await kaiStats(), 'receive_buffer_bytes');
    // The budget, a value that went alone, and one read (64 KiB) and the 16 KiB allowance per client.
    expect(heldBytes).toBeLessThanOrEqual(budgetBytes + valueBytes + 200 * 80 * 1024);
    expect(residentBytes(kai.pid) - residentBefore).toBeLessThan(120 * 1024 * 1024);
    // Another client is served meanwhile, small sets included.
    const other = await RawClient.connect(kai.memcachePort);
    expect(await other.request('set other 0 0 5\r\nhello\r\n')).toBe('STORED\r\n');
    expect(await other.request('get other\r\n', 'END\r\n')).toBe('VALUE other 0 5\r\nhello\r\nEND\r\n');
    other.close();
    for (const socket of holders) socket.destroy();
    expect(await eventually(async () => statValue(await kaiStats(), 'receive_buffer_bytes') === 0, 10_000)).toBe(true);
    observer.close();
  }, 90_000);
});

function textSetHead(key: string, bytes: number): Buffer {
  return Buffer.from(`set ${key} 0 0 ${bytes}\r\n`);
}

/** A binary SET header with its extras and key; the value follows. */
function binarySetHead(key: string, valueBytes: number): Buffer {
  const extras = Buffer.alloc(8);
  const header = Buffer.alloc(24);
  header[0] = 0x80;
  header[1] = 0x01;
  header.writeUInt16BE(key.length, 2);
  header[4] = extras.length;
  header.writeUInt32BE(extras.length + key.length + valueBytes, 8);
  return Buffer.concat([header, extras, Buffer.from(key)]);
}
