// Proves kai status and kai locate on real processes: the local node found from kai.config.json, a memcache port named at once, each node's own health (refusals, hints held), and where a key's versions live as a replica goes down and a fallback stands in.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pollStatus, startCluster, type ClusterNode } from '../support/cluster';
import { getFreePort, killStartedKai, runKai, startKai } from '../support/process';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import { startMemcached } from '../differential/harness';

/** N=2 on three nodes, so that a key whose replica is down gets a fallback, which holds a hint for it. */
const clusterArgs = ['--n', '2', '--r', '1', '--w', '1', '--gossip-interval', '200', '--log-level', 'warn'];
/** Down after 5 silent intervals (1 s), plus rounds for the mark to spread. */
const downSeenMsMax = 15_000;
/** How long a write takes to reach its second replica, at most, on a loaded machine. */
const replicatedMsMax = 10_000;
const pollMs = 200;
/** `kai status` runs while waiting for every node to show serving; each is a process start. */
const statusAttemptsMax = 15;
const statusRetryMs = 500;
/** The memcache port is named well within the second a silent node is waited for before a probe. */
const wrongPortAnsweredMsMax = 5_000;

let workDir: string;
let nodes: ClusterNode[];

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-operator-'));
  nodes = await startCluster({ baseDir: workDir, size: 3, args: clusterArgs, convergeTimeoutMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

interface StatusJson {
  readonly members: { readonly id: string; readonly status: string }[];
  readonly asked: string;
  readonly nodes: {
    readonly id: string;
    readonly unreachable?: string;
    readonly refusing?: string;
    readonly quorum?: { readonly buckets: number; readonly bucketsBelowR: number; readonly bucketsBelowW: number };
    readonly hintsHeld?: number;
    readonly storage?: { readonly state: string };
  }[];
}

interface LocateJson {
  readonly bucket: number;
  readonly lists: { readonly primaries: string[]; readonly targets: { readonly node: string; readonly standsInFor?: string }[] }[];
  readonly replicas: { readonly node: string; readonly up: boolean; readonly versions?: unknown[]; readonly error?: string }[];
}

async function kaiJson<T>(args: readonly string[], cwd = workDir): Promise<T> {
  const run = await runKai([...args, '--json'], { cwd });
  if (run.code !== 0) throw new Error(`kai ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

async function set(port: number, key: string, value: string): Promise<void> {
  const client = await RawClient.connect(port);
  try {
    expect(await client.request(`set ${key} 0 0 ${value.length}\r\n${value}\r\n`)).toBe('STORED\r\n');
  } finally {
    client.close();
  }
}

/** Runs `read` until `accept` holds or `timeoutMs` passes; returns the last answer. */
async function pollUntil<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value) && Date.now() < deadlineMs) {
    await delay(pollMs);
    value = await read();
  }
  return value;
}

describe('kai status', () => {
  test('without --node it asks the node kai.config.json describes, and shows every member serving', async () => {
    // Proves the local lookup and the per-node health table: three members, each serving, none below R or W.
    const configDir = path.join(workDir, 'local');
    fs.mkdirSync(configDir);
    fs.writeFileSync(path.join(configDir, 'kai.config.json'), JSON.stringify({ hostname: '127.0.0.1', port: nodes[0].port }));
    const everyNodeServing = (stdout: string): boolean =>
      nodes.every((node) => new RegExp(`^${node.id} +served +\\d+ buckets +0 +0 +- +- +ok$`, 'm').test(stdout));
    // A node starved of the CPU may suspect a peer for a moment, and a bucket then counts below R or W.
    let run = await runKai(['status'], { cwd: configDir });
    for (let attempt = 1; attempt < statusAttemptsMax && !everyNodeServing(run.stdout); attempt++) {
      await delay(statusRetryMs);
      run = await runKai(['status'], { cwd: configDir });
    }
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^NODE +REQUESTS +REPLICA OF +BELOW R +BELOW W +HINTS HELD +RECEIVING +STORAGE$/m);
    for (const node of nodes) expect(run.stdout).toMatch(new RegExp(`^${node.id} +served +\\d+ buckets +0 +0 +- +- +ok$`, 'm'));
    const status = await kaiJson<StatusJson>(['status'], configDir);
    expect(status.asked).toBe(nodes[0].id);
    expect(status.nodes.map((node) => node.id).sort()).toEqual(nodes.map((node) => node.id).sort());
    // With N=2 of three nodes, each is a replica of about two thirds of the buckets.
    for (const node of status.nodes) expect(node.quorum?.buckets).toBeGreaterThan(1024 / 3);
  }, 60_000);

  test('a local node that is not running is one line naming the config file and --node', async () => {
    // Proves the message says where the address came from and how to name another node.
    const configDir = path.join(workDir, 'nobody');
    fs.mkdirSync(configDir);
    const port = await getFreePort();
    fs.writeFileSync(path.join(configDir, 'kai.config.json'), JSON.stringify({ port }));
    const run = await runKai(['status'], { cwd: configDir });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `kai: cannot reach 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} ` +
        `(the node on this machine, as ${path.join(configDir, 'kai.config.json')} describes it; name another with --node host:port)\n`,
    );
  });

  test("a node's memcache port is named at once, with the internal API port to use", async () => {
    // Proves the memcache port answers the internal API's opening, so the command need not wait out its timeout.
    const startedMs = Date.now();
    const run = await runKai(['status', '--node', `127.0.0.1:${nodes[1].memcachePort}`], { cwd: workDir });
    expect(Date.now() - startedMs).toBeLessThan(wrongPortAnsweredMsMax);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `kai: 127.0.0.1:${nodes[1].memcachePort} is the memcache port of kai node ${nodes[1].id}; ` +
        `kai commands talk to its internal API port: 127.0.0.1:${nodes[1].port}\n`,
    );
  });

  test("another memcache server's port is named as one within seconds", async () => {
    // Proves memcached, which waits for a line that never comes, is probed after a second's silence.
    const memcached = await startMemcached({ valueBytesMax: 1024 * 1024 });
    try {
      const startedMs = Date.now();
      const run = await runKai(['locate', 'k', '--node', `127.0.0.1:${memcached.port}`], { cwd: workDir });
      expect(Date.now() - startedMs).toBeLessThan(wrongPortAnsweredMsMax);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`^kai: 127\\.0\\.0\\.1:${memcached.port} speaks the memcache protocol \\(it answered "ERROR"\\), not kai's internal API`));
    } finally {
      await memcached.stop();
    }
  });

  test('a node up in every view that refuses requests says so, and why', async () => {
    // Proves the health a node reports itself: waiting for a seed it was given, it refuses every request.
    const seed = `127.0.0.1:${await getFreePort()}`;
    const lonely = await startKai({ dataDir: path.join(workDir, 'lonely'), args: ['--seed', seed, '--log-level', 'warn'] });
    try {
      const address = `127.0.0.1:${lonely.port}`;
      const status = await kaiJson<StatusJson>(['status', '--node', address]);
      expect(status.nodes).toEqual([expect.objectContaining({ id: address, refusing: `joining: waiting to hear from ${seed}` })]);
      const table = await runKai(['status', '--node', address], { cwd: workDir });
      expect(table.stdout).toMatch(new RegExp(`^${address} +REFUSED `, 'm'));
      expect(table.stdout).toContain(`${address} refuses client requests: joining: waiting to hear from ${seed}`);
    } finally {
      await lonely.stop();
    }
  });
});

describe('kai locate, and health as a replica goes down', () => {
  test("a key's replicas hold its version; with one down, its fallback holds the write and a hint, and status shows it", async () => {
    const [first, , third] = nodes;
    const located = (key: string): Promise<LocateJson> => kaiJson<LocateJson>(['locate', key, '--node', first.id]);
    // A key the third node is a replica of, and one it is not.
    let onThird: string | undefined;
    for (let index = 0; onThird === undefined; index++) {
      const key = `locate-${index}`;
      if ((await located(key)).lists[0].primaries.includes(third.id)) onThird = key;
    }
    await set(first.memcachePort, onThird, 'before');
    const bothHold = (answer: LocateJson): boolean => answer.replicas.length === 2 && answer.replicas.every((replica) => replica.versions?.length === 1);
    const before = await pollUntil(() => located(onThird!), bothHold, replicatedMsMax);
    expect(before.replicas.map((replica) => replica.node).sort()).toEqual([...before.lists[0].primaries].sort());
    expect(bothHold(before)).toBe(true);
    const table = await runKai(['locate', onThird, '--node', first.id], { cwd: workDir });
    expect(table.stdout).toContain(`key ${onThird}: bucket ${before.bucket} of 1024, N=2 R=1 W=1, as ${first.id} routes it`);
    expect(table.stdout).toMatch(/^v1 +written \S+ +6 B, flags 0 +no expiry +clock: /m);
    expect(table.stdout).toContain('the replicas asked hold the same versions');

    await third.kill();
    await pollStatus(first.port, (members) => members.find((member) => member.id === third.id)?.status === 'down', downSeenMsMax, workDir);
    await set(first.memcachePort, onThird, 'during');
    // With W=1 the write is acknowledged by its coordinator; the fallback's copy may come a moment later.
    const standInOf = (answer: LocateJson) => answer.lists[0].targets.find((target) => target.standsInFor === third.id);
    const standInHolds = (answer: LocateJson): boolean =>
      answer.replicas.find((replica) => replica.node === standInOf(answer)?.node)?.versions?.length === 1;
    const during = await pollUntil(() => located(onThird!), standInHolds, replicatedMsMax);
    const standIn = standInOf(during);
    expect(standIn).toBeDefined();
    expect(during.replicas.find((replica) => replica.node === third.id)).toEqual({ node: third.id, up: false, error: 'down: not asked' });
    expect(during.replicas.find((replica) => replica.node === standIn!.node)?.versions).toHaveLength(1);
    const duringTable = await runKai(['locate', onThird, '--node', first.id], { cwd: workDir });
    expect(duringTable.stdout).toMatch(new RegExp(`^\\d +${third.id} +down +${standIn!.node} \\(fallback\\)$`, 'm'));
    expect(duringTable.stdout).toMatch(new RegExp(`^${standIn!.node} +fallback for ${third.id} +v1$`, 'm'));

    const hintHeld = (answer: StatusJson): boolean => (answer.nodes.find((node) => node.id === standIn!.node)?.hintsHeld ?? 0) >= 1;
    const status = await pollUntil(() => kaiJson<StatusJson>(['status', '--node', first.id]), hintHeld, replicatedMsMax);
    expect(status.nodes.find((node) => node.id === third.id)).toEqual({ id: third.id, unreachable: `down in the view of ${first.id}; not asked` });
    expect(hintHeld(status)).toBe(true);
  }, 90_000);
});
