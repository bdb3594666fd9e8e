/**
 * Membership across real `bin/kai` processes: linked with `kai check-node`, seen with `kai status`,
 * a node killed -9 is seen down and, restarted with no seed, up again from its saved member list.
 * Also the one-line errors of check-node and status when a node cannot be reached.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { adminRequest, eventually } from '../support/admin';
import { pollStatus as pollStatusIn, showsStatuses, statuses, type StatusMember } from '../support/cluster';
import { getFreePort, kaiBin, killStartedKai, runKai, startKai, type KaiProcess } from '../support/process';
import { spawnTracked } from '../support/servers';

/** Fast gossip keeps the test short: a silent node is down after 5 intervals (1 s). */
const gossipIntervalMs = 200;
/** Down after 1 s, plus rounds for the mark to spread and a status command to run. */
const detectMsMax = 8_000;
/**
 * How long new members take to own their buckets: gossip, then the plan waits a request timeout
 * (5 s) once every member holds it, then the (empty) buckets move.
 */
const ownMsMax = 25_000;

let workDir: string;
const running: KaiProcess[] = [];
/** Nodes `kai cluster` started: its own children, so the tracked-process cleanup does not see them. */
const clusterPids: number[] = [];

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-membership-'));
});

afterAll(async () => {
  await Promise.all(running.map((kai) => kai.stop().catch(() => undefined)));
  await killStartedKai();
  for (const pid of clusterPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function startNode(name: string, port: number, zone: string): Promise<KaiProcess> {
  const kai = await startKai({
    dataDir: path.join(workDir, name),
    port,
    args: ['--gossip-interval', String(gossipIntervalMs), '--zone', zone, '--log-level', 'warn'],
  });
  running.push(kai);
  return kai;
}

/** Polls `kai status` of the node at `port` until `accept` holds, for at most `timeoutMs`. */
function pollStatus(port: number, accept: (members: StatusMember[]) => boolean, timeoutMs: number, cwd = workDir): Promise<StatusMember[]> {
  return pollStatusIn(port, accept, timeoutMs, cwd);
}

describe('a cluster of three kai processes', () => {
  test('check-node links them; kill -9 is seen down; a restart rejoins without check-node', async () => {
    // Proves membership end to end: linking, status, failure detection and persisted rejoin.
    const ports = [await getFreePort(), await getFreePort(), await getFreePort()];
    const ids = ports.map((port) => `127.0.0.1:${port}`);
    const zones = ['a', 'b', 'a'];
    const nodes = await Promise.all(ports.map((port, index) => startNode(`node${index + 1}`, port, zones[index])));

    // The third is named by another host name for the same address: it must join under its own
    // id, with no second entry for the name typed here.
    const typed = [ids[1], `localhost:${ports[2]}`];
    for (const [index, other] of typed.entries()) {
      const run = await runKai(['check-node', ids[0], other], { cwd: workDir });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`knows ${ids[index + 1]} (up)`);
    }
    const allUp = (members: StatusMember[]): boolean => members.length === 3 && members.every((m) => m.status === 'up');
    const allOwners = (members: StatusMember[]): boolean => allUp(members) && members.every((m) => m.ring === 'owner');
    // The third node learns of the second by gossip alone, and the ring change gives each its buckets.
    const seen = await pollStatus(ports[2], allOwners, ownMsMax);
    expect(statuses(seen)).toEqual({ [ids[0]]: 'up', [ids[1]]: 'up', [ids[2]]: 'up' });
    expect(seen.map((m) => [m.id, m.address, m.zone])).toEqual(ids.map((id, index) => [id, id, zones[index]]).sort());
    const ownershipSum = seen.reduce((sum, m) => sum + m.ownership, 0);
    expect(ownershipSum).toBeCloseTo(1, 6);
    for (const member of seen) expect(member.ownership).toBeGreaterThan(0.1);
    // The first two must hold that ring too before the third goes: a ring change that has not reached
    // node 1 when node 3 dies leaves node 3 without buckets in node 1's view.
    for (const port of ports.slice(0, 2)) {
      const view = await pollStatus(port, (members) => allOwners(members) && members.every((m) => m.ownership > 0.1), ownMsMax);
      expect(view.map((m) => [m.id, m.ring])).toEqual(ids.map((id) => [id, 'owner']).sort());
    }

    await nodes[2].kill();
    // Waits for the whole picture: on a loaded machine a live peer can be suspected for a moment
    // while the killed one is first seen down, and is up again a round later.
    const expectedDown = { [ids[0]]: 'up', [ids[1]]: 'up', [ids[2]]: 'down' };
    const down = await pollStatus(ports[0], showsStatuses(expectedDown), detectMsMax);
    expect(statuses(down)).toEqual(expectedDown);
    // A down member keeps its share of the ring: requests route around it, data does not move.
    expect(down.find((m) => m.id === ids[2])?.ownership).toBeGreaterThan(0.1);

    // Same data dir and port, no --seed, no check-node: the saved member list is enough.
    await startNode('node3', ports[2], zones[2]);
    const back = await pollStatus(ports[0], allUp, detectMsMax);
    expect(statuses(back)).toEqual({ [ids[0]]: 'up', [ids[1]]: 'up', [ids[2]]: 'up' });
    const restartedView = await pollStatus(ports[2], allUp, detectMsMax);
    expect(restartedView).toHaveLength(3);

    // A second node that does not answer: the first keeps trying, and check-node says so.
    const nobody = `127.0.0.1:${await getFreePort()}`;
    const unreachable = await runKai(['check-node', ids[0], nobody], { cwd: workDir });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toBe(`kai: ${ids[0]} could not reach ${nobody} yet; it keeps trying\n`);
  }, 60_000);
});

describe('kai cluster', () => {
  test('starts three linked nodes in the foreground and stops them all on SIGINT', async () => {
    // Proves the one-command cluster: ports printed, every node up in every view, a clean stop.
    const baseDir = path.join(workDir, 'cluster');
    // The cluster makes its secret here; `kai status` run here reads it through this file.
    fs.mkdirSync(baseDir, { recursive: true });
    fs.writeFileSync(path.join(baseDir, 'kai.config.json'), JSON.stringify({ cluster_secret_file: 'cluster-secret' }));
    const cluster = spawnTracked({ command: process.execPath, args: [kaiBin, 'cluster', '--nodes', '3', '--base-dir', baseDir], cwd: workDir });
    // The cluster is printed once every node owns its buckets.
    const deadlineMs = Date.now() + ownMsMax;
    while (!cluster.stdout().includes('stop: Ctrl-C') && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, 50));
    const printed = cluster.stdout();
    const internalPorts = [...printed.matchAll(/internal 127\.0\.0\.1:(\d+)/g)].map((match) => Number(match[1]));
    const pids = [...printed.matchAll(/pid (\d+)/g)].map((match) => Number(match[1]));
    clusterPids.push(...pids);
    expect(printed).toMatch(/node1: memcache 127\.0\.0\.1:\d+ {2}internal/);
    expect(internalPorts).toHaveLength(3);
    const allUp = (members: StatusMember[]): boolean => members.length === 3 && members.every((m) => m.status === 'up');
    expect(printed).toContain(`--cluster-secret-file ${path.join(baseDir, 'cluster-secret')}`);
    for (const port of internalPorts) expect(allUp(await pollStatus(port, allUp, detectMsMax, baseDir))).toBe(true);
    // Each node has an admin port, and each is ready once the cluster is linked.
    const adminPorts = [...printed.matchAll(/admin http:\/\/127\.0\.0\.1:(\d+)\//g)].map((match) => Number(match[1]));
    expect(adminPorts).toHaveLength(3);
    for (const port of adminPorts) {
      expect(await eventually(async () => (await adminRequest(port, '/ready')).status === 200, detectMsMax)).toBe(true);
    }
    cluster.child.kill('SIGINT');
    expect(await cluster.exited).toEqual({ code: 0, signal: null });
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});

describe('check-node and status errors', () => {
  /** Asserts one `kai: ...` line on stderr matching `pattern`, and the exit code. */
  function expectOneLine(run: { code: number | null; stderr: string; stdout: string }, code: number, pattern: RegExp): void {
    expect(run.code).toBe(code);
    const lines = run.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^kai: /);
    expect(lines[0]).toMatch(pattern);
    expect(run.stdout).toBe('');
  }

  test('status of an unreachable node is one line and exit 1', async () => {
    // Proves a node that is not running is reported plainly, without a stack trace.
    const port = await getFreePort();
    const run = await runKai(['status', '--node', `127.0.0.1:${port}`], { cwd: workDir });
    expectOneLine(run, 1, new RegExp(`cannot reach 127\\.0\\.0\\.1:${port}`));
  });

  test('check-node to an unreachable first node is one line and exit 1', async () => {
    // Proves check-node fails plainly when the node it talks to is not running.
    const port = await getFreePort();
    const run = await runKai(['check-node', `127.0.0.1:${port}`, '127.0.0.1:1'], { cwd: workDir });
    expectOneLine(run, 1, new RegExp(`cannot reach 127\\.0\\.0\\.1:${port}`));
  });

  test('bad addresses are usage errors, exit 2', async () => {
    // Proves addresses are checked before anything is sent.
    expectOneLine(await runKai(['check-node', 'nonsense', '127.0.0.1:1'], { cwd: workDir }), 2, /<node>: must be host:port/);
    expectOneLine(await runKai(['status', '--node', '127.0.0.1:99999'], { cwd: workDir }), 2, /--node: must be host:port/);
  });
});
