/**
 * Commands that read before they write give memcached's answers on a cluster of real `bin/kai`
 * processes (N=3 R=2 W=2), however stale the node the client talks to: a counter incremented
 * while a node was down goes on from the right number through that node once it is back; delete
 * and add through a node that missed the key's writes answer DELETED and NOT_STORED and leave the
 * key gone (or as it was) through every node; deleting keys after nodes joined deletes them all.
 * Anti-entropy and handoff run at one key per second here, so returning and joining nodes stay
 * stale while the commands run: the answers come from each write's context read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemcacheConnection, readAll } from '../faults/memcache-client';
import { liveValues, replicaVersions } from '../faults/replicas';
import { writeAll } from '../faults/workload';
import { allUp, linkCluster, pollStatus, restartNode, startCluster, startNode, type ClusterNode } from '../support/cluster';
import { killStartedKai } from '../support/process';
import { delay, loopbackHost } from '../support/servers';

const gossipIntervalMs = 200;
/** A restarted node is seen up by every member within this. */
const upTimeoutMs = 20_000;
const args = [
  '--n', '3', '--r', '2', '--w', '2',
  '--gossip-interval', String(gossipIntervalMs),
  '--log-level', 'warn',
  // Healing in the background this slow leaves returning and joining nodes stale while the
  // commands run, so the answers are the context read's doing.
  '--anti-entropy-interval', '0',
  '--anti-entropy-keys-per-second', '1',
  '--handoff-keys-per-second', '1',
];
/** A command that meets a quorum still forming (a view not yet settled) is tried again, at most this often. */
const attemptsMax = 10;
const retryDelayMs = 300;

let workDir: string;

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-rmw-'));
});

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

const reachable = (node: ClusterNode): { id: string; address: string; memcachePort: number } => ({ id: node.id, address: loopbackHost, memcachePort: node.memcachePort });

function connect(node: ClusterNode): MemcacheConnection {
  return new MemcacheConnection(reachable(node));
}

/**
 * Runs `command` until it answers, at most attemptsMax times; `retried` says whether an earlier
 * attempt failed (and so may have landed), which the caller weighs in what it accepts.
 */
async function withRetries<T>(command: () => Promise<T>): Promise<{ readonly answer: T; readonly retried: boolean }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    if (attempt > 0) await delay(retryDelayMs);
    try {
      return { answer: await command(), retried: attempt > 0 };
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`no answer in ${attemptsMax} attempts: ${String(lastError)}`);
}

/** Waits until every node's view lists exactly `nodes`, all up. */
async function waitAllUp(nodes: readonly ClusterNode[]): Promise<void> {
  const ids = nodes.map((node) => node.id);
  for (const node of nodes) {
    const view = await pollStatus(node.port, (members) => allUp(members, ids), upTimeoutMs, workDir);
    if (!allUp(view, ids)) throw new Error(`${node.id} sees ${JSON.stringify(view)}`);
  }
}

/** How many of `keys` the node itself holds a live value of (replicaFetch, which repairs nothing). */
async function liveHeld(node: ClusterNode, keys: readonly string[]): Promise<number> {
  const held = await replicaVersions({ id: node.id }, keys);
  return keys.filter((key) => liveValues(held.get(key) ?? [], Date.now()).length > 0).length;
}

/** Every key's values read through every node. */
async function readEverywhere(nodes: readonly ClusterNode[], keys: readonly string[]): Promise<Map<string, Map<string, string[]>>> {
  const byNode = new Map<string, Map<string, string[]>>();
  for (const node of nodes) byNode.set(node.id, await readAll(reachable(node), keys));
  return byNode;
}

function report(line: string): void {
  console.log(`[read-modify-write] ${line}`);
}

describe('on a node that missed writes while it was down', () => {
  let nodes: ClusterNode[];
  const keyCount = 200;
  const deleted = Array.from({ length: keyCount }, (_, i) => `stale:del:${i}`);
  const added = Array.from({ length: keyCount }, (_, i) => `stale:add:${i}`);

  beforeAll(async () => {
    nodes = await startCluster({ baseDir: path.join(workDir, 'return'), size: 3, args });
  }, 120_000);

  test('a counter goes on from the count the others hold: 101, through every node', async () => {
    // Proves incr decides on the quorum's counter, not the returning node's stale copy.
    const [first, , third] = nodes;
    const client = connect(first);
    try {
      expect(await client.set('ctr', '5')).toBe('STORED');
      await third.kill();
      for (let expected = 6n; expected <= 100n; expected++) {
        expect((await withRetries(() => client.arith('ctr', 1))).answer).toBe(expected);
      }
      // The other keys' writes, for the next test, are made while the third node is down too.
      const writes = await writeAll([reachable(first)], [...deleted, ...added].map((key) => ({ key, value: `v-${key}` })));
      expect(writes.failed).toEqual([]);

      nodes[2] = await restartNode(third, args);
      await waitAllUp(nodes);
      const staleCounter = (await replicaVersions({ id: nodes[2].id }, ['ctr'])).get('ctr')?.map((version) => version.value.toString());
      report(`the returned node held ctr = ${JSON.stringify(staleCounter)} before its incr`);

      const returned = connect(nodes[2]);
      try {
        expect((await withRetries(() => returned.arith('ctr', 1))).answer).toBe(101n);
      } finally {
        returned.close();
      }
      for (const [id, found] of await readEverywhere(nodes, ['ctr'])) expect([id, found.get('ctr')]).toEqual([id, ['101']]);
      expect((await withRetries(() => client.arith('ctr', 1))).answer).toBe(102n);
    } finally {
      client.close();
    }
  }, 120_000);

  test('delete answers DELETED and the key is gone everywhere; add answers NOT_STORED and changes nothing', async () => {
    // Proves delete and add decide on what the key's replicas hold, not on the coordinating node's copy.
    const third = nodes[2];
    report(`the returned node held ${await liveHeld(third, deleted)} of ${keyCount} keys to delete and ${await liveHeld(third, added)} of ${keyCount} to add`);
    const client = connect(third);
    const answers = { DELETED: 0, NOT_FOUND: 0, STORED: 0, NOT_STORED: 0 };
    try {
      for (const key of deleted) {
        const { answer, retried } = await withRetries(() => client.delete(key));
        // A retried delete may follow an attempt that landed; only then is NOT_FOUND right.
        if (!(retried && answer === 'NOT_FOUND')) answers[answer]++;
      }
      for (const key of added) {
        const { answer, retried } = await withRetries(() => client.add(key, 'second'));
        if (!(retried && answer === 'STORED')) answers[answer]++;
      }
    } finally {
      client.close();
    }
    report(`answers through the returned node: ${JSON.stringify(answers)}`);
    expect(answers).toEqual({ DELETED: keyCount, NOT_FOUND: 0, STORED: 0, NOT_STORED: keyCount });
    for (const [id, found] of await readEverywhere(nodes, [...deleted, ...added])) {
      expect([id, deleted.filter((key) => found.has(key))]).toEqual([id, []]);
      expect([id, added.filter((key) => JSON.stringify(found.get(key)) !== JSON.stringify([`v-${key}`]))]).toEqual([id, []]);
    }
  }, 120_000);
});

describe('after nodes joined', () => {
  // Proves the new nodes receive their buckets when they join, and deletes through any node then find every key.
  test('deleting 3,000 keys answers DELETED for each, and none stays readable', async () => {
    const keyCount = 3_000;
    const keys = Array.from({ length: keyCount }, (_, i) => `joined:${i}`);
    const baseDir = path.join(workDir, 'join');
    // Buckets move at the handoff rate: the default here, so the join completes within the wait.
    const joinArgs = args.filter((arg, i) => arg !== '--handoff-keys-per-second' && args[i - 1] !== '--handoff-keys-per-second');
    const nodes = await startCluster({ baseDir, size: 3, args: joinArgs });
    const writes = await writeAll(nodes.map(reachable), keys.map((key) => ({ key, value: `v-${key}` })));
    expect(writes.failed).toEqual([]);

    const joined = await Promise.all([4, 5].map((index) => startNode({ dataDir: path.join(baseDir, `node${index}`), args: joinArgs })));
    const all = [...nodes, ...joined];
    await linkCluster(all, baseDir, upTimeoutMs);
    const newHeld = await Promise.all(joined.map((node) => liveHeld(node, keys)));
    report(`after the join the new nodes held ${newHeld.join(' and ')} of ${keyCount} keys`);
    // Each new node is a replica of about 3/5 of the keys, and received them before owning them.
    for (const held of newHeld) expect(held).toBeGreaterThan(keyCount * 0.3);

    const answers = { DELETED: 0, NOT_FOUND: 0 };
    let next = 0;
    await Promise.all(
      all.flatMap((node) => [0, 1].map(() => connect(node))).map(async (client) => {
        try {
          while (next < keys.length) {
            const key = keys[next++];
            const { answer, retried } = await withRetries(() => client.delete(key));
            if (!(retried && answer === 'NOT_FOUND')) answers[answer]++;
          }
        } finally {
          client.close();
        }
      }),
    );
    report(`deletes through all five nodes: ${JSON.stringify(answers)}`);
    expect(answers).toEqual({ DELETED: keyCount, NOT_FOUND: 0 });
    for (const [id, found] of await readEverywhere(all, keys)) {
      expect([id, keys.filter((key) => found.has(key)).slice(0, 10)]).toEqual([id, []]);
    }
  }, 180_000);
});
