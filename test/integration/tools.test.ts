/**
 * Debian's memcached clients and tools against real kai nodes: libmemcached's memccapable (text and
 * binary), memcstat, memcping and memcdump, and memcached-tool's dump, keys, display and stats, on
 * one node and on a three-node cluster; and a watcher that falls behind being told what it missed.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCluster, type ClusterNode } from '../support/cluster';
import { stopGracePassedMessage } from '../../src/server/memcache-server';
import { killStartedKai, logMessages, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';
import { killByPid, spawnTracked, withTimeout } from '../support/servers';

const memcachedTool = '/usr/share/memcached/scripts/memcached-tool';
/** How long one tool run may take on a loaded machine. */
const toolTimeoutMs = 60_000;
/** memccapable's own wait for each reply, in seconds (its default of 2 is tight on a loaded machine). */
const memccapableIoTimeoutSeconds = '10';

interface ToolRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function runTool(command: string, args: readonly string[]): Promise<ToolRun> {
  const started = spawnTracked({ command, args });
  const status = await withTimeout(started.exited, toolTimeoutMs, () => {
    killByPid(started.child.pid);
    return new Error(`${command} ${args.join(' ')} still running after ${toolTimeoutMs} ms; killed`);
  });
  return { code: status.code, stdout: started.stdout(), stderr: started.stderr() };
}

/** Stores each key with its own name as value, through one connection. */
async function storeKeys(port: number, keys: readonly string[]): Promise<void> {
  const client = await RawClient.connect(port);
  try {
    for (const key of keys) expect(await client.request(`set ${key} 3 0 ${key.length}\r\n${key}\r\n`)).toBe('STORED\r\n');
  } finally {
    client.close();
  }
}

/** The keys memcdump printed, one a line. */
async function memcdumpKeys(port: number): Promise<string[]> {
  const run = await runTool('memcdump', [`--servers=127.0.0.1:${port}`]);
  expect([run.code, run.stderr]).toEqual([0, '']);
  return run.stdout.split('\n').filter((line) => line !== '');
}

/** memcached-tool's dump as `add` commands: key, flags, exptime and value of each. */
async function memcachedToolDump(port: number): Promise<Map<string, string>> {
  const run = await runTool('perl', [memcachedTool, `127.0.0.1:${port}`, 'dump']);
  expect(run.code).toBe(0);
  const items = new Map<string, string>();
  for (const match of run.stdout.matchAll(/^add (\S+) (\d+) (\d+) (\d+)\r\n/gm)) {
    const valueStart = (match.index ?? 0) + match[0].length;
    items.set(match[1], `${match[2]} ${match[3]} ${run.stdout.slice(valueStart, valueStart + Number(match[4]))}`);
  }
  return items;
}

const sorted = (keys: readonly string[]): string[] => [...keys].sort();

describe('one node', () => {
  let dataDir: string;
  let kai: KaiProcess;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tools-'));
    // Four buckets, so a bucket holds many pages of keys and the dump pages through each.
    kai = await startKai({ dataDir, args: ['--log-level', 'warn', '--buckets', '4'] });
  }, 60_000);

  afterAll(async () => {
    await kai?.stop();
    await killStartedKai();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  test.each([
    ['text', '-a'],
    ['binary', '-b'],
  ])('memccapable passes every %s test', async (_protocol, flag) => {
    // Proves the version string and every command memccapable checks are what libmemcached accepts.
    const run = await runTool('memccapable', [flag, '-t', memccapableIoTimeoutSeconds, '-h', '127.0.0.1', '-p', String(kai.memcachePort)]);
    expect(run.stdout).toContain('All tests passed');
    expect(run.stdout).not.toContain('[FAIL]');
    expect(run.code).toBe(0);
  }, 120_000);

  test('memcping and memcstat reach the node; memcstat shows both versions', async () => {
    // Proves libmemcached connects and parses kai's version and statistics.
    const ping = await runTool('memcping', [`--servers=127.0.0.1:${kai.memcachePort}`]);
    expect(ping.code).toBe(0);
    const stat = await runTool('memcstat', [`--servers=127.0.0.1:${kai.memcachePort}`]);
    expect(stat.code).toBe(0);
    expect(stat.stdout).toMatch(/^\s*version: 1\.6\.18-kai-\d+\.\d+\.\d+$/m);
    expect(stat.stdout).toMatch(/^\s*kai_version: \d+\.\d+\.\d+$/m);
  }, 60_000);

  test('memcdump and memcached-tool dump list every stored key once', async () => {
    // Proves the key dumps walk every page of every bucket and list each live key exactly once.
    const keys = Array.from({ length: 1500 }, (_, index) => `tools:one:${index}`);
    await storeKeys(kai.memcachePort, keys);
    await storeKeys(kai.memcachePort, ['tools:gone']);
    const client = await RawClient.connect(kai.memcachePort);
    expect(await client.request('delete tools:gone\r\n')).toBe('DELETED\r\n');
    client.close();
    const listed = (await memcdumpKeys(kai.memcachePort)).filter((key) => key.startsWith('tools:'));
    expect(sorted(listed)).toEqual(sorted(keys));
    const dumped = await memcachedToolDump(kai.memcachePort);
    const ours = [...dumped].filter(([key]) => key.startsWith('tools:'));
    expect(ours).toHaveLength(keys.length);
    for (const [key, item] of ours) expect(item).toBe(`3 0 ${key}`);
  }, 120_000);

  test('memcached-tool keys, display and stats', async () => {
    // Proves the other memcached-tool modes read kai's answers: the key lines, the (empty) slab table and the stats.
    await storeKeys(kai.memcachePort, ['tools:keys:a']);
    const keys = await runTool('perl', [memcachedTool, `127.0.0.1:${kai.memcachePort}`, 'keys']);
    expect(keys.code).toBe(0);
    expect(keys.stdout).toMatch(/^key=tools%3Akeys%3Aa exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=\d+$/m);
    const display = await runTool('perl', [memcachedTool, `127.0.0.1:${kai.memcachePort}`, 'display']);
    expect(display.code).toBe(0);
    expect(display.stdout).toContain('Item_Size');
    const stats = await runTool('perl', [memcachedTool, `127.0.0.1:${kai.memcachePort}`, 'stats']);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(/^\s+version\s+1\.6\.18-kai-/m);
    expect(stats.stdout).toMatch(/^\s+limit_maxbytes\s+67108864$/m);
  }, 60_000);

  test('a watcher that stops reading is told how many lines it missed', async () => {
    // Proves a slow watcher never holds the node: its lines are dropped past its buffer, counted, and announced by skipped=N.
    const watcher = net.connect(kai.memcachePort, '127.0.0.1');
    let received = '';
    watcher.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    watcher.on('error', () => undefined);
    const client = await RawClient.connect(kai.memcachePort);
    try {
      watcher.write('watch fetchers\r\n');
      for (let attempt = 0; attempt < 200 && !received.startsWith('OK\r\n'); attempt++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(received.startsWith('OK\r\n')).toBe(true);
      watcher.pause();
      // Long keys make long lines; every missing key of a get is one line.
      const getLine = `get ${Array.from({ length: 200 }, (_, index) => `${'w'.repeat(230)}${index}`).join(' ')}\r\n`;
      let skipped = 0;
      for (let round = 0; round < 400 && skipped === 0; round++) {
        await client.request(getLine, 'END\r\n');
        const stats = await client.request('stats\r\n', 'END\r\n');
        skipped = Number(/STAT log_watcher_skipped (\d+)/.exec(stats)?.[1] ?? 0);
      }
      expect(skipped).toBeGreaterThan(0);
      // One more line after the buffer drained carries the notice before it.
      watcher.resume();
      const notice = /\nskipped=(\d+)\n/;
      for (let round = 0; round < 400 && !notice.test(received); round++) {
        await client.request(`get ${'w'.repeat(230)}tail\r\n`, 'END\r\n');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(Number(notice.exec(received)?.[1])).toBeGreaterThan(0);
      const lines = received.slice('OK\r\n'.length).split('\n').filter((line) => line !== '');
      for (const line of lines) expect(line).toMatch(/^(ts=\d+\.\d+ gid=\d+ type=item_get key=w+\w* status=not_found clsid=0 cfd=0 size=0|skipped=\d+)$/);
    } finally {
      watcher.destroy();
      client.close();
    }
  }, 120_000);
});

describe('a three-node cluster of two replicas per key', () => {
  let baseDir: string;
  let nodes: ClusterNode[] = [];

  beforeAll(async () => {
    baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tools-cluster-'));
    // With two replicas of three nodes, each node holds only part of the buckets: the dump must ask the others.
    nodes = await startCluster({ baseDir, size: 3, args: ['--n', '2', '--r', '1', '--w', '2', '--buckets', '16', '--log-level', 'warn'] });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await killStartedKai();
    fs.rmSync(baseDir, { recursive: true, force: true });
  }, 60_000);

  test('memcdump and memcached-tool dump on any node list the cluster keys, each once', async () => {
    // Proves a dump walks the ring, reading each bucket from one replica (this node or another), so every key shows once.
    const keys = Array.from({ length: 400 }, (_, index) => `tools:cluster:${index}`);
    await storeKeys(nodes[0].memcachePort, keys);
    for (const node of nodes.slice(1)) {
      // The node holds only its replicas' share, so a full listing had to come partly from its peers.
      const client = await RawClient.connect(node.memcachePort);
      const heldHere = Number(/STAT curr_items (\d+)/.exec(await client.request('stats\r\n', 'END\r\n'))?.[1]);
      client.close();
      expect(heldHere).toBeLessThan(keys.length);
      const listed = await memcdumpKeys(node.memcachePort);
      expect(sorted(listed)).toEqual(sorted(keys));
    }
    const dumped = await memcachedToolDump(nodes[2].memcachePort);
    expect(sorted([...dumped.keys()])).toEqual(sorted(keys));
    for (const [key, item] of dumped) expect(item).toBe(`3 0 ${key}`);
  }, 180_000);
});

describe('stopping a node', () => {
  test('ends its watchers at once rather than waiting out the shutdown grace', async () => {
    // Proves a watch, a reply without an end, does not hold a stopping node: the watcher's connection closes and the node exits.
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tools-stop-'));
    try {
      const logFile = path.join(dataDir, 'kai.log');
      const kai = await startKai({ dataDir, args: ['--log-level', 'info', '--log-file', logFile] });
      const watcher = await RawClient.connect(kai.memcachePort);
      expect(await watcher.request('watch\r\n', 'OK\r\n')).toBe('OK\r\n');
      expect((await kai.stop('SIGTERM', 30_000)).code).toBe(0);
      await watcher.waitClosed();
      // The node says when its grace for requests in flight ran out with clients still connected.
      const messages = logMessages(logFile);
      expect(messages[messages.length - 1]).toBe('stopped');
      expect(messages).not.toContain(stopGracePassedMessage);
    } finally {
      await killStartedKai();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
