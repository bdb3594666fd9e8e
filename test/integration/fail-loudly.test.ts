// Real bin/kai processes never half-alive: a full log disk, a refused client at SIGTERM, a killed commit worker and one that cannot come back.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { logRateLimitDefault } from '../../src/log';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { fillDisk, mountTmpfs, type Tmpfs } from '../support/tmpfs';

/** With it, SIGUSR2 ends the commit worker of a node (src/cli/main.ts). */
const faultInjection = { KAI_FAULT_INJECTION: '1' };

jest.setTimeout(90_000);

let workDir: string;
let disk: Tmpfs | undefined;
const clients: RawClient[] = [];

beforeEach(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-fail-loudly-'));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await killStartedKai();
  disk?.unmount();
  disk = undefined;
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function connect(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
}

/** `stats kai` of the node, as name to value. */
async function kaiStats(kai: KaiProcess): Promise<Map<string, string>> {
  const client = await connect(kai.memcachePort);
  const reply = await client.request('stats kai\r\n', 'END\r\n');
  client.close();
  return new Map([...reply.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((match) => [match[1], match[2]]));
}

/** Polls `stats kai` until `accept` holds, every 100 ms for `timeoutMs` at most; returns the last. */
async function pollStats(kai: KaiProcess, accept: (stats: Map<string, string>) => boolean, timeoutMs = 20_000): Promise<Map<string, string>> {
  const deadlineMs = Date.now() + timeoutMs;
  let stats = await kaiStats(kai);
  while (!accept(stats) && Date.now() < deadlineMs) {
    await delay(100);
    stats = await kaiStats(kai);
  }
  return stats;
}

function counter(stats: Map<string, string>, name: string): number {
  const value = stats.get(name);
  if (value === undefined) throw new Error(`stats kai has no ${name}`);
  return Number(value);
}

/** Polls the log file until it holds a line matching `pattern`, for `timeoutMs` at most. */
async function waitForLogLine(file: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const deadlineMs = Date.now() + timeoutMs;
  for (;;) {
    const line = (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').find((text) => pattern.test(text));
    if (line !== undefined) return line;
    if (Date.now() > deadlineMs) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms`);
    await delay(100);
  }
}

const singleNode = ['--n', '1', '--r', '1', '--w', '1'];

test('with its log on a full disk a node answers, counts the lines it drops, stops on SIGTERM, and starts again on that disk', async () => {
  // Regression: the node ignored SIGTERM (the log's exit hook retried ENOSPC for ever) and a restart hung alike.
  disk = mountTmpfs(128 * 1024);
  const logFile = path.join(disk.dir, 'kai.log');
  fs.writeFileSync(logFile, '');
  fillDisk(disk.dir);
  const dataDir = path.join(workDir, 'data');
  const args = [...singleNode, '--log-file', logFile];
  const kai = await startKai({ dataDir, args });
  const client = await connect(kai.memcachePort);
  expect(await client.request('set k 0 0 1\r\nv\r\n')).toBe('STORED\r\n');
  // The startup lines were refused by the disk: dropped and counted.
  const stats = await pollStats(kai, (current) => counter(current, 'log_lines_dropped') > 0);
  expect(counter(stats, 'log_lines_dropped')).toBeGreaterThan(0);
  expect(counter(stats, 'log_write_failures')).toBeGreaterThan(0);
  expect(await client.request('get k\r\n', 'END\r\n')).toBe('VALUE k 0 1\r\nv\r\nEND\r\n');
  const stopStartedAtMs = Date.now();
  expect(await kai.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
  expect(Date.now() - stopStartedAtMs).toBeLessThan(10_000);
  const again = await startKai({ dataDir, args, port: kai.port, memcachePort: kai.memcachePort });
  const secondClient = await connect(again.memcachePort);
  expect(await secondClient.request('get k\r\n', 'END\r\n')).toBe('VALUE k 0 1\r\nv\r\nEND\r\n');
  expect(await again.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
});

test('SIGTERM ends the process within --stop-timeout even while a refused client keeps its connection open', async () => {
  // Proves the stop deadline: whatever holds the stop up, the process exits, and says so when it had to cut it short.
  const logFile = path.join(workDir, 'kai.log');
  const kai = await startKai({
    dataDir: path.join(workDir, 'data'),
    args: [...singleNode, '--max-connections', '1', '--stop-timeout', '2000', '--log-file', logFile],
  });
  // The readiness probe's connection may not be closed on the node's side yet: until it is, this one is refused too.
  let accepted = false;
  for (let attempt = 0; attempt < 100 && !accepted; attempt++) {
    const client = await connect(kai.memcachePort);
    accepted = /^VERSION /.test(await client.request('version\r\n'));
    if (!accepted) await delay(50);
  }
  expect(accepted).toBe(true);
  const refused = await connect(kai.memcachePort);
  expect(await refused.request('', '\r\n')).toBe('ERROR Too many open connections\r\n');
  const stopStartedAtMs = Date.now();
  const status = await kai.stop('SIGTERM', 20_000);
  const stopMs = Date.now() - stopStartedAtMs;
  // 2 s of deadline, and half a second to flush the log after it, with room for a loaded machine.
  expect(stopMs).toBeLessThan(6_000);
  if (status.code !== 0) {
    expect(status).toEqual({ code: 1, signal: null });
    await waitForLogLine(logFile, /"msg":"stop deadline passed; exiting without a clean stop"/, 1000);
  }
});

test('a commit worker killed in a running node is replaced: writes are stored again and stats kai counts it', async () => {
  // Regression: a dead commit worker left the node up, gossiping itself healthy, failing every write for ever.
  const logFile = path.join(workDir, 'kai.log');
  const kai = await startKai({ dataDir: path.join(workDir, 'data'), args: [...singleNode, '--log-file', logFile], env: faultInjection });
  const client = await connect(kai.memcachePort);
  expect(await client.request('set before 0 0 1\r\nv\r\n')).toBe('STORED\r\n');
  process.kill(kai.pid, 'SIGUSR2');
  const stats = await pollStats(kai, (current) => counter(current, 'storage_worker_restarts') >= 1);
  expect(stats.get('storage_state')).toBe('ok');
  expect(counter(stats, 'storage_workers_lost')).toBe(1);
  expect(counter(stats, 'storage_worker_restarts')).toBe(1);
  expect(await client.request('set after 0 0 1\r\nw\r\n')).toBe('STORED\r\n');
  expect(await client.request('get before after\r\n', 'END\r\n')).toBe('VALUE before 0 1\r\nv\r\nVALUE after 0 1\r\nw\r\nEND\r\n');
  await waitForLogLine(logFile, /"msg":"commit worker lost; starting another"/);
  expect(await kai.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
  // What it stored after the restart survived.
  const again = await startKai({ dataDir: path.join(workDir, 'data'), args: singleNode, port: kai.port, memcachePort: kai.memcachePort });
  const secondClient = await connect(again.memcachePort);
  expect(await secondClient.request('get after\r\n', 'END\r\n')).toBe('VALUE after 0 1\r\nw\r\nEND\r\n');
});

test('a commit worker that cannot come back fails the node loudly: writes refused, storage_state failed, a fatal line and the node declared down', async () => {
  // Proves a store that cannot commit stops the node from storing and says so, instead of failing each write quietly.
  const dataDir = path.join(workDir, 'data');
  const logFile = path.join(workDir, 'kai.log');
  const kai = await startKai({ dataDir, args: [...singleNode, '--log-file', logFile], env: faultInjection });
  const client = await connect(kai.memcachePort);
  expect(await client.request('set before 0 0 1\r\nv\r\n')).toBe('STORED\r\n');
  // A directory where the database file was: every new worker fails to open it.
  const databaseFile = path.join(dataDir, 'kai.sqlite3');
  fs.renameSync(databaseFile, `${databaseFile}.moved`);
  fs.mkdirSync(databaseFile);
  process.kill(kai.pid, 'SIGUSR2');
  const stats = await pollStats(kai, (current) => current.get('storage_state') === 'failed');
  expect(stats.get('storage_state')).toBe('failed');
  expect(counter(stats, 'storage_workers_lost')).toBe(6);
  expect(counter(stats, 'storage_worker_restarts')).toBe(5);
  expect(await client.request('set after 0 0 1\r\nw\r\n')).toMatch(/^SERVER_ERROR /);
  await waitForLogLine(logFile, /"level":60,.*"msg":"storage failed: this node refuses every write and is down until restarted"/);
  await waitForLogLine(logFile, /"msg":"this node declared itself down"/);
  expect(await kai.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
});

/** Connects to the internal port, sends `bytes`, and resolves once the node has closed the connection. */
function sendAndAwaitClose(port: number, bytes: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the internal port did not close a connection sent garbage within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test('a flood of bad internal frames costs a few warnings and a count of the rest, not a line each', async () => {
  // Regression: a random-frame fuzzer made the node write one warning per bad frame (1,979 lines in two minutes).
  const logFile = path.join(workDir, 'kai.log');
  const kai = await startKai({ dataDir: path.join(workDir, 'data'), args: [...singleNode, '--log-file', logFile] });
  // A frame of five bytes, each a byte msgpack never uses.
  const garbage = Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
  const frames = 300;
  const floodStartedAtMs = Date.now();
  for (let index = 0; index < frames; index++) await sendAndAwaitClose(kai.port, garbage, 5000);
  const stats = await pollStats(kai, (current) => counter(current, 'log_lines_suppressed') > 0);
  const suppressed = counter(stats, 'log_lines_suppressed');
  expect(suppressed).toBeGreaterThan(frames / 2);
  expect(await kai.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
  // Each message is written ten times per interval of 10 s at most (logRateLimitDefault), then summarized.
  const intervals = Math.ceil((Date.now() - floodStartedAtMs) / logRateLimitDefault.intervalMs) + 1;
  const warnings = fs
    .readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((text) => JSON.parse(text) as { level: number; msg: string; suppressed?: number })
    .filter((line) => line.level >= 40);
  const perMessage = new Map<string, number>();
  for (const line of warnings) if (line.suppressed === undefined) perMessage.set(line.msg, (perMessage.get(line.msg) ?? 0) + 1);
  for (const count of perMessage.values()) expect(count).toBeLessThanOrEqual(logRateLimitDefault.linesPerInterval * intervals);
  const summarized = warnings.reduce((sum, line) => sum + (line.suppressed ?? 0), 0);
  expect(summarized).toBe(suppressed);
});
