// Meta commands on real 3-node clusters: marks replicate and survive a restart, one client wins a recache, siblings reconcile, pipelines read their writes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { placementFrom, replicaVersions } from '../faults/replicas';
import type { WireVersion } from '../../src/rpc/messages';
import { versionMarks } from '../../src/storage/record';
import { allUp, pollStatus, restartNode, startCluster, type ClusterNode } from '../support/cluster';
import { killStartedKai } from '../support/process';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import { Pauses, writeOnBothSides } from '../support/split';

/** Fast gossip: a silent node is marked down after 5 intervals (1 s). */
const gossipIntervalMs = 200;
/** A restarted node sees every member up again within this. */
const upTimeoutMs = 20_000;
/** Bounds on polling until the cluster answers as expected. */
const pollTimeoutMs = 10_000;
const pollAttemptsMax = 100;
const pollIntervalMs = 100;
/** Per request: longer than the coordinator's own quorum timeout (5 s), so its answer arrives. */
const clientTimeoutMs = 8_000;
/** A test that waits on a restart or on views changing, which take seconds each on a loaded machine. */
const slowTestTimeoutMs = 90_000;
/** The whole pipeline of 1,200 requests answered, each write forwarded and replicated. */
const pipelineTimeoutMs = 60_000;
/** Until every node sees every member owning its buckets: a ring forms slowly on a loaded machine. */
const convergeTimeoutMs = 45_000;
/** Starting three nodes, linking them and waiting for the ring to form. */
const clusterStartTimeoutMs = 90_000;
const { stale, winTokenSent } = versionMarks;

function clusterArgs(quorum: { readonly n: number; readonly r: number; readonly w: number }): string[] {
  return [
    ...['--n', String(quorum.n), '--r', String(quorum.r), '--w', String(quorum.w)],
    ...['--gossip-interval', String(gossipIntervalMs), '--log-level', 'warn'],
  ];
}

let workDir: string;
/** Nodes stopped with SIGSTOP and not yet resumed: afterAll resumes them before killing. */
const pauses = new Pauses();

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-meta-cluster-'));
});

afterAll(async () => {
  pauses.resumeAll();
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

/** Kills a describe's nodes once it is done, so the next cluster starts on a quieter machine. */
async function stopCluster(nodes: readonly ClusterNode[] | undefined): Promise<void> {
  pauses.resumeAll();
  await Promise.all((nodes ?? []).map((node) => node.kill()));
}

/** Retries `attempt` until `accept` holds, bounded in attempts and time; a failed attempt counts as not accepted. */
async function poll<T>(attempt: () => Promise<T>, accept: (result: T) => boolean, timeoutMs = pollTimeoutMs): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempts = 0; attempts < pollAttemptsMax && Date.now() < deadlineMs; attempts++) {
    try {
      const result = await attempt();
      if (accept(result)) return result;
      lastError = new Error(`not accepted: ${JSON.stringify(result)}`);
    } catch (error) {
      lastError = error;
    }
    await delay(pollIntervalMs);
  }
  throw lastError;
}

/**
 * Where the reply starting at `at` ends, or -1 while it is incomplete: a status line, a VA line and
 * its data block, or a get's VALUE blocks up to END.
 */
function replyEnd(text: string, at: number): number {
  let cursor = at;
  for (let blocks = 0; blocks <= valueBlocksMax; blocks++) {
    const lineEnd = text.indexOf('\r\n', cursor);
    if (lineEnd < 0) return -1;
    const line = text.slice(cursor, lineEnd);
    const block = /^(?:VA (\d+)|VALUE \S+ \d+ (\d+))/.exec(line);
    if (!block) return lineEnd + 2;
    cursor = lineEnd + 2 + Number(block[1] ?? block[2]) + 2;
    if (cursor > text.length) return -1;
    // A VA reply is its one block; a get goes on to its next VALUE or its END.
    if (block[1] !== undefined) return cursor;
  }
  throw new Error(`a reply of more than ${valueBlocksMax} values`);
}

/** Values one get reply carries at most here: every key read has at most two siblings. */
const valueBlocksMax = 2;

/** The whole replies `text` starts with, each as its bytes. */
function repliesIn(text: string): string[] {
  const replies: string[] = [];
  for (let at = 0, end = replyEnd(text, 0); end > 0; at = end, end = replyEnd(text, at)) replies.push(text.slice(at, end));
  return replies;
}

const oneReply = (text: string): boolean => repliesIn(text).length > 0;

/** Whether `text` holds a whole stats reply. */
const endsWithEnd = (text: string): boolean => /(?:^|\r\n)END\r\n$/.test(text);

/** Sends one request on a fresh connection and returns its complete reply. */
async function send(node: ClusterNode, request: string, complete = oneReply): Promise<string> {
  const client = await RawClient.connect(node.memcachePort);
  try {
    client.send(request);
    const reply = await client.readUntil((received) => complete(received.toString('latin1')), clientTimeoutMs);
    return reply.toString('latin1');
  } finally {
    client.close();
  }
}

function metaSet(node: ClusterNode, key: string, value: string, flags = ''): Promise<string> {
  return send(node, `ms ${key} ${Buffer.byteLength(value)}${flags}\r\n${value}\r\n`);
}

/** A node's own versions of `key` (its store, nothing gathered from peers). */
async function ownCopy(node: ClusterNode, key: string): Promise<WireVersion[]> {
  return (await replicaVersions(node, [key])).get(key) ?? [];
}

describe('the marks on a 3-node cluster, N=3 R=2 W=2', () => {
  let nodes: ClusterNode[];
  const args = clusterArgs({ n: 3, r: 2, w: 2 });

  beforeAll(async () => {
    nodes = await startCluster({ baseDir: path.join(workDir, 'marks'), size: 3, args, convergeTimeoutMs });
  }, clusterStartTimeoutMs);

  afterAll(() => stopCluster(nodes));

  test('md I through one node is seen stale by the others, and a plain ms clears it', async () => {
    // Proves the stale and claimed marks are replicated with the version: every node answers X, the first W, the rest Z.
    const [first, second, third] = nodes;
    expect(await metaSet(first, 'meta:stale', 'hello')).toBe('HD\r\n');
    const before = await send(first, 'mg meta:stale c\r\n');
    expect(before).toMatch(/^HD c\d+\r\n$/);
    // md I gives the item a new cas unique, as memcached does, without removing it (me reads without claiming).
    expect(await send(first, 'md meta:stale I\r\n')).toBe('HD\r\n');
    const invalidated = await send(first, 'me meta:stale\r\n');
    expect(invalidated).toMatch(/^ME meta:stale exp=-1 la=\d+ cas=\d+ fetch=(yes|no) cls=1 size=\d+\r\n$/);
    const won = await send(second, 'mg meta:stale v c\r\n');
    expect(won).toMatch(/^VA 5 c\d+ X W\r\nhello\r\n$/);
    const claimed = await send(third, 'mg meta:stale v c\r\n');
    expect(claimed).toMatch(/^VA 5 c\d+ Z X\r\nhello\r\n$/);
    // The winner is told the cas unique its claim left, which every node now shows.
    const casOf = (reply: string): string => /c(\d+)/.exec(reply)?.[1] ?? '';
    const debugCasOf = (reply: string): string => /cas=(\d+)/.exec(reply)?.[1] ?? '';
    expect(debugCasOf(invalidated)).not.toBe(casOf(before));
    // Unlike memcached, the claim is a new version, so it has a cas unique of its own (docs/protocol.md).
    expect(casOf(won)).not.toBe(debugCasOf(invalidated));
    expect(casOf(claimed)).toBe(casOf(won));
    expect(await send(first, 'mg meta:stale c\r\n')).toBe(`HD c${casOf(claimed)} Z X\r\n`);
    // A plain ms through the third node replaces the item: neither mark is left, through any node.
    expect(await metaSet(third, 'meta:stale', 'fresh')).toBe('HD\r\n');
    expect(await send(first, 'mg meta:stale v\r\n')).toBe('VA 5\r\nfresh\r\n');
    expect(await send(second, 'mg meta:stale v\r\n')).toBe('VA 5\r\nfresh\r\n');
  });

  test('mg N30 through one node, then another, then the third: exactly one client wins', async () => {
    // Proves the recache of a missing key is handed out once: the claim written by the first mg reaches the nodes asked after it.
    const keys = Array.from({ length: 20 }, (_, index) => `meta:vivify:${index}`);
    for (const [index, key] of keys.entries()) {
      // Each key starts on another node, so every node is the first to be asked for some key.
      const order = [0, 1, 2].map((offset) => nodes[(index + offset) % nodes.length]);
      const replies: string[] = [];
      const startedMs = Date.now();
      for (const node of order) replies.push(await send(node, `mg ${key} N30 v t\r\n`));
      // The TTL left counts down in whole seconds of the time the three round trips took, plus one for the tick.
      const ttlSecondsMin = 30 - Math.ceil((Date.now() - startedMs) / 1000) - 1;
      expect([key, replies[0]]).toEqual([key, 'VA 0 t30 W\r\n\r\n']);
      for (const reply of replies.slice(1)) {
        expect([key, reply]).toEqual([key, expect.stringMatching(/^VA 0 t\d+ Z\r\n\r\n$/)]);
        const ttlSeconds = Number(/ t(\d+) /.exec(reply)?.[1]);
        expect([key, ttlSeconds >= ttlSecondsMin && ttlSeconds <= 30]).toEqual([key, true]);
      }
    }
  });

  test('mg N30 and mg on a stale item through every node at once: exactly one client wins each', async () => {
    // Proves the recache is handed out by one node, the key's first replica, even to clients asking at the same moment.
    const keys = Array.from({ length: 20 }, (_, index) => `meta:together:${index}`);
    for (const key of keys) {
      const replies = await Promise.all(nodes.map((node) => send(node, `mg ${key} N30 v\r\n`)));
      expect([key, replies.filter((reply) => reply.includes(' W')).length]).toEqual([key, 1]);
      expect([key, replies.filter((reply) => reply.includes(' Z')).length]).toEqual([key, nodes.length - 1]);
    }
    for (const key of keys) {
      expect(await metaSet(nodes[0], key, 'value')).toBe('HD\r\n');
      expect(await send(nodes[1], `md ${key} I\r\n`)).toBe('HD\r\n');
      const replies = await Promise.all(nodes.map((node) => send(node, `mg ${key} v\r\n`)));
      expect([key, replies.filter((reply) => reply.includes(' X W')).length]).toEqual([key, 1]);
      expect([key, replies.filter((reply) => reply.includes(' Z X')).length]).toEqual([key, nodes.length - 1]);
    }
  });

  test('the marks survive a node killed -9 and restarted', async () => {
    // Proves the marks are stored with the version on disk: a restarted node's own copy still holds them.
    const [first, , third] = nodes;
    expect(await metaSet(first, 'meta:restart', 'kept')).toBe('HD\r\n');
    expect(await send(first, 'md meta:restart I\r\n')).toBe('HD\r\n');
    const isStale = (versions: WireVersion[]): boolean => versions.length === 1 && versions[0].marks === stale;
    await poll(() => ownCopy(third, 'meta:restart'), isStale);

    await third.kill();
    const restarted = await restartNode(third, args);
    nodes[2] = restarted;
    const copy = await poll(() => ownCopy(restarted, 'meta:restart'), (versions) => versions.length > 0);
    expect(copy).toEqual([expect.objectContaining({ value: Buffer.from('kept'), marks: stale, tombstone: false })]);

    // Back in the cluster, it answers from the marks as before: the first mg wins, the next sees the claim.
    const ids = nodes.map((node) => node.id);
    expect(allUp(await pollStatus(restarted.port, (members) => allUp(members, ids), upTimeoutMs, workDir), ids)).toBe(true);
    expect(await send(restarted, 'mg meta:restart v\r\n')).toBe('VA 4 X W\r\nkept\r\n');
    expect(await send(first, 'mg meta:restart v\r\n')).toBe('VA 4 Z X\r\nkept\r\n');
    await poll(() => ownCopy(restarted, 'meta:restart'), (versions) => versions.length === 1 && versions[0].marks === (stale | winTokenSent));
  }, slowTestTimeoutMs);
});

describe('siblings on a 3-node cluster, N=3 R=3 W=1', () => {
  // W=1 lets each side of a split accept a write alone; R=3 makes every read ask all three replicas.
  let nodes: ClusterNode[];

  beforeAll(async () => {
    nodes = await startCluster({ baseDir: path.join(workDir, 'siblings'), size: 3, args: clusterArgs({ n: 3, r: 3, w: 1 }), convergeTimeoutMs });
  }, clusterStartTimeoutMs);

  afterAll(() => stopCluster(nodes));

  test('mg answers the sibling written last, and ms C with its cas supersedes every sibling', async () => {
    // Proves mg's one item and its cas name the whole context, so one ms reconciles concurrent writes.
    const [, b, c] = nodes;
    await writeOnBothSides(
      nodes,
      pauses,
      workDir,
      async (sideA) => expect(await metaSet(sideA, 'split:meta', 'side-a')).toBe('HD\r\n'),
      async (sideC) => expect(await metaSet(sideC, 'split:meta', 'side-c')).toBe('HD\r\n'),
    );

    // Healed: get answers both siblings; gets gives both the cas of the whole context.
    const bothSiblings = /^VALUE split:meta 0 6 (\d+)\r\nside-.\r\nVALUE split:meta 0 6 \1\r\nside-.\r\nEND\r\n$/;
    const gets = await poll(() => send(b, 'gets split:meta\r\n'), (reply) => bothSiblings.test(reply));
    const context = bothSiblings.exec(gets)?.[1];
    // mg answers one item, the sibling written last, with that same cas, through every node.
    for (const node of nodes) expect(await send(node, 'mg split:meta v c\r\n')).toBe(`VA 6 c${context}\r\nside-c\r\n`);

    // ms with that cas, through the node that did not write either sibling, supersedes both.
    expect(await metaSet(b, 'split:meta', 'merged', ` C${context}`)).toBe('HD\r\n');
    for (const node of nodes) {
      expect(await send(node, 'gets split:meta\r\n')).toMatch(/^VALUE split:meta 0 6 \d+\r\nmerged\r\nEND\r\n$/);
    }
    // The old context has moved on.
    expect(await metaSet(c, 'split:meta', 'stale!', ` C${context}`)).toBe('EX\r\n');
  }, slowTestTimeoutMs);
});

describe('pipelines through a node outside the replicas of their keys, N=2 R=1 W=2', () => {
  let nodes: ClusterNode[];
  const n = 2;

  beforeAll(async () => {
    nodes = await startCluster({ baseDir: path.join(workDir, 'pipeline'), size: 3, args: clusterArgs({ n, r: 1, w: 2 }), convergeTimeoutMs });
  }, clusterStartTimeoutMs);

  afterAll(() => stopCluster(nodes));

  /** Keys whose replicas do not include `outsider`, so it forwards their writes and asks others for their reads. */
  async function keysOutside(outsider: ClusterNode, count: number): Promise<string[]> {
    const placement = await placementFrom(outsider, nodes.map((node) => node.id), n);
    const keys: string[] = [];
    for (let index = 0; keys.length < count && index < count * 20; index++) {
      const key = `pipe:${index}`;
      if (!placement.primariesOf(key).includes(outsider.id)) keys.push(key);
    }
    expect(keys).toHaveLength(count);
    return keys;
  }

  /** `stats kai`'s writes_forwarded of `node`. */
  async function writesForwarded(node: ClusterNode): Promise<number> {
    const stats = await send(node, 'stats kai\r\n', endsWithEnd);
    return Number(/STAT writes_forwarded (\d+)/.exec(stats)?.[1]);
  }

  test('ms then mg, set then get, append then get, 200 keys in one pipeline, each read sees its write', async () => {
    // Proves a connection's requests on a key run in the order sent, even when each is forwarded to another node.
    const outsider = nodes[0];
    const keys = await keysOutside(outsider, 200);
    const forwardedBefore = await writesForwarded(outsider);
    let request = '';
    const expected: string[] = [];
    keys.forEach((key, index) => {
      const meta = `meta-${index}`;
      const classic = `set-${index}`;
      const appended = `-app${index}`;
      request += `ms ${key} ${meta.length}\r\n${meta}\r\nmg ${key} v\r\n`;
      expected.push('HD\r\n', `VA ${meta.length}\r\n${meta}\r\n`);
      request += `set ${key} 0 0 ${classic.length}\r\n${classic}\r\nget ${key}\r\n`;
      expected.push('STORED\r\n', `VALUE ${key} 0 ${classic.length}\r\n${classic}\r\nEND\r\n`);
      request += `append ${key} 0 0 ${appended.length}\r\n${appended}\r\nget ${key}\r\n`;
      const whole = classic + appended;
      expected.push('STORED\r\n', `VALUE ${key} 0 ${whole.length}\r\n${whole}\r\nEND\r\n`);
    });
    const client = await RawClient.connect(outsider.memcachePort);
    let replies: string[];
    try {
      client.send(request);
      const received = await client.readUntil((bytes) => repliesIn(bytes.toString('latin1')).length >= expected.length, pipelineTimeoutMs);
      replies = repliesIn(received.toString('latin1'));
    } finally {
      client.close();
    }
    // Each reply checked, and the wrong ones named with the request they answer.
    const wrong = expected.flatMap((reply, index) => (replies[index] === reply ? [] : [{ index, expected: reply, received: replies[index] }]));
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(replies).toHaveLength(expected.length);
    // Every write went to another node to be coordinated.
    expect((await writesForwarded(outsider)) - forwardedBefore).toBe(keys.length * 3);
  }, slowTestTimeoutMs);
});
