/**
 * Three real `bin/kai` processes on 127.0.0.1, linked with `kai check-node`, driven by memjs
 * (binary protocol), the `memcached` npm client (text) and raw sockets: a key written through one
 * node reads back through the others; one node killed -9 changes nothing a client sees; two
 * killed fail writes with the unmet quorum named and acknowledge nothing; writes on both sides of
 * a split (nodes paused with SIGSTOP, W=1) come back as siblings that `gets` + `cas` merges.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Memcached from 'memcached';
import * as memjs from 'memjs';
import { pollStatus, restartNode, showsStatuses, startCluster, statuses, type ClusterNode, type StatusMember } from '../support/cluster';
import { killStartedKai } from '../support/process';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import { Pauses, writeOnBothSides } from '../support/split';

/** Fast gossip keeps the file short: a silent node is marked down after 5 intervals (1 s). */
const gossipIntervalMs = 200;
/** Down after 1 s, plus rounds for the mark to spread and a status command to run. */
const detectMsMax = 8_000;
/** Bounds on polling a client request until the cluster answers as expected. */
const pollTimeoutMs = 10_000;
const pollAttemptsMax = 100;
const pollIntervalMs = 100;
/** Per request: longer than the coordinator's own quorum timeout (5 s), so its answer arrives. */
const clientTimeoutMs = 8_000;

function quorumArgs(quorum: { readonly r: number; readonly w: number }): string[] {
  return ['--n', '3', '--r', String(quorum.r), '--w', String(quorum.w), '--gossip-interval', String(gossipIntervalMs), '--log-level', 'warn'];
}

let workDir: string;
/** Nodes stopped with SIGSTOP and not yet resumed: afterAll resumes them before killing. */
const pauses = new Pauses();
const cleanups: (() => void)[] = [];

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-cluster-'));
});

afterAll(async () => {
  pauses.resumeAll();
  for (const cleanup of cleanups.splice(0)) cleanup();
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

/** Retries `attempt` until `accept` holds, at most pollAttemptsMax times and pollTimeoutMs; returns the last result. */
async function poll<T>(attempt: () => Promise<T>, accept: (result: T) => boolean): Promise<T> {
  const deadlineMs = Date.now() + pollTimeoutMs;
  let result = await attempt();
  for (let attempts = 1; !accept(result) && attempts < pollAttemptsMax && Date.now() < deadlineMs; attempts++) {
    await delay(pollIntervalMs);
    result = await attempt();
  }
  return result;
}

// ---- Raw sockets: exact bytes.

const finalLine = /(?:^|\r\n)(END|STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|ERROR|SERVER_ERROR [^\r\n]*|CLIENT_ERROR [^\r\n]*)\r\n$/;

/** Sends one request on a fresh connection and returns the complete reply. */
async function raw(node: ClusterNode, request: string): Promise<string> {
  const client = await RawClient.connect(node.memcachePort);
  try {
    client.send(request);
    const reply = await client.readUntil((received) => finalLine.test(received.toString('latin1')), clientTimeoutMs);
    return reply.toString('latin1');
  } finally {
    client.close();
  }
}

function rawSet(node: ClusterNode, key: string, value: string): Promise<string> {
  return raw(node, `set ${key} 0 0 ${Buffer.byteLength(value)}\r\n${value}\r\n`);
}

interface ValueLine {
  readonly data: string;
  readonly cas: string | undefined;
}

/** The VALUE entries of a get/gets reply (values are ASCII here), in reply order. */
function valuesOf(reply: string): ValueLine[] {
  const values: ValueLine[] = [];
  const header = /VALUE \S+ \d+ (\d+)(?: (\d+))?\r\n/g;
  for (let match = header.exec(reply); match !== null; match = header.exec(reply)) {
    const start = match.index + match[0].length;
    values.push({ data: reply.slice(start, start + Number(match[1])), cas: match[2] });
    header.lastIndex = start + Number(match[1]) + 2;
  }
  return values;
}

async function rawGet(node: ClusterNode, key: string, command = 'get'): Promise<string> {
  return raw(node, `${command} ${key}\r\n`);
}

// ---- The two client libraries, one client per node.

const quietLogger = { log: (): void => undefined };

function memjsClient(node: ClusterNode): memjs.Client {
  const client = memjs.Client.create(`127.0.0.1:${node.memcachePort}`, {
    retries: 0,
    timeout: clientTimeoutMs / 1000,
    logger: quietLogger,
  });
  cleanups.push(() => client.close());
  return client;
}

/**
 * The client takes a SERVER_ERROR reply as a server issue and arms timers (`retry`, 30 s, and
 * `failuresTimeout`, 5 minutes, by default) that end() does not clear; short ones let jest exit.
 */
const textClientIssueTimersMs = 100;

/** `failuresTimeout` is a client option its type declarations leave out. */
const textClientOptions: Memcached.options & { readonly failuresTimeout: number } = {
  retries: 0,
  retry: textClientIssueTimersMs,
  failuresTimeout: textClientIssueTimersMs,
  timeout: clientTimeoutMs,
};

function textClient(node: ClusterNode): Memcached {
  const client = new Memcached(`127.0.0.1:${node.memcachePort}`, textClientOptions);
  cleanups.push(() => client.end());
  return client;
}

function callback<T>(call: (done: (error: unknown, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((error, result) => (error ? reject(error) : resolve(result))));
}

const textSet = (client: Memcached, key: string, value: string): Promise<boolean> =>
  callback((done) => client.set(key, value, 0, done));
/**
 * A key with several VALUE lines comes back as an array, which the client empties as soon as the
 * callback returns: it is copied inside the callback.
 */
const textGet = (client: Memcached, key: string): Promise<unknown> =>
  callback((done) => client.get(key, (error, data: unknown) => done(error, Array.isArray(data) ? [...data] : data)));

async function memjsGet(client: memjs.Client, key: string): Promise<string | undefined> {
  return (await client.get(key)).value?.toString();
}

describe('a 3-node cluster, N=3 R=2 W=2', () => {
  let nodes: ClusterNode[];
  const args = quorumArgs({ r: 2, w: 2 });

  beforeAll(async () => {
    nodes = await startCluster({ baseDir: path.join(workDir, 'quorum'), size: 3, args });
  }, 120_000);

  test('a key set through one node reads back through each other node, with every client', async () => {
    // Proves any node serves any key: writes and reads are routed to the key's replicas.
    expect(await rawSet(nodes[0], 'raw:k', 'through-one')).toBe('STORED\r\n');
    for (const reader of [nodes[1], nodes[2]]) {
      expect(await rawGet(reader, 'raw:k')).toBe('VALUE raw:k 0 11\r\nthrough-one\r\nEND\r\n');
    }

    const memjsClients = nodes.map(memjsClient);
    expect(await memjsClients[1].set('memjs:k', 'through-two', {})).toBe(true);
    expect(await memjsGet(memjsClients[0], 'memjs:k')).toBe('through-two');
    expect(await memjsGet(memjsClients[2], 'memjs:k')).toBe('through-two');

    const textClients = nodes.map(textClient);
    expect(await textSet(textClients[2], 'text:k', 'through-three')).toBe(true);
    expect(await textGet(textClients[0], 'text:k')).toBe('through-three');
    expect(await textGet(textClients[1], 'text:k')).toBe('through-three');
  });

  test('one node killed -9: reads and writes still succeed through the others', async () => {
    // Proves W=2 and R=2 of 3 are met by the two survivors, before and after the kill is noticed.
    const [first, second, third] = nodes;
    await third.kill();
    const memjsSecond = memjsClient(second);
    const textFirst = textClient(first);
    // Written through the killed node before it died, read through the survivors.
    expect(await rawGet(first, 'text:k')).toBe('VALUE text:k 0 13\r\nthrough-three\r\nEND\r\n');
    expect(await memjsGet(memjsSecond, 'raw:k')).toBe('through-one');

    const attempt = async (key: string, value: string): Promise<string> => {
      const stored = await rawSet(first, key, value);
      return stored === 'STORED\r\n' ? rawGet(second, key) : stored;
    };
    // Before the failure detector notices, the write still asks the dead node and must not wait on it.
    const early = await poll(() => attempt('raw:after-kill', 'early'), (reply) => reply.startsWith('VALUE'));
    expect(early).toBe('VALUE raw:after-kill 0 5\r\nearly\r\nEND\r\n');

    const expectedView = { [first.id]: 'up', [second.id]: 'up', [third.id]: 'down' };
    const view = await pollStatus(first.port, showsStatuses(expectedView), detectMsMax, workDir);
    expect(statuses(view)).toEqual(expectedView);
    expect(await attempt('raw:after-kill', 'noticed')).toBe('VALUE raw:after-kill 0 7\r\nnoticed\r\nEND\r\n');
    expect(await memjsSecond.set('memjs:after-kill', 'two-left', {})).toBe(true);
    expect(await textGet(textFirst, 'memjs:after-kill')).toBe('two-left');
    expect(await textSet(textFirst, 'text:after-kill', 'still-here')).toBe(true);
    expect(await memjsGet(memjsSecond, 'text:after-kill')).toBe('still-here');
  });

  test('two killed: writes fail naming the unmet quorum and are not acknowledged, nor applied', async () => {
    // Proves a write that cannot reach W replicas answers SERVER_ERROR (binary: an error status), never STORED.
    const [first, second, third] = nodes;
    await second.kill();
    const bothDown = (members: StatusMember[]): boolean =>
      statuses(members)[second.id] === 'down' && statuses(members)[third.id] === 'down';
    expect(bothDown(await pollStatus(first.port, bothDown, detectMsMax, workDir))).toBe(true);

    // Once both are seen down the coordinator refuses before writing anything (docs/operations.md).
    expect(await rawSet(first, 'raw:after-kill', 'refused')).toBe('SERVER_ERROR quorum not met (write 2 of 3: 1 up)\r\n');
    const memjsFirst = memjsClient(first);
    await expect(memjsFirst.set('raw:after-kill', 'refused-binary', {})).rejects.toThrow('MemJS SET: Temporary failure');
    // The text client answers false (not stored) to a SERVER_ERROR, and treats the server as failing.
    expect(await textSet(textClient(first), 'raw:after-kill', 'refused-text')).toBe(false);
    // Reads need R=2 as well: one node alone says so rather than answer from its own replica.
    expect(await rawGet(first, 'raw:after-kill')).toBe('SERVER_ERROR quorum not met (read 2 of 3: 1 up)\r\n');
    await expect(memjsFirst.get('raw:after-kill')).rejects.toThrow('MemJS GET: Temporary failure');

    // With a second node back, reads are served again and show the last acknowledged value.
    const restarted = await restartNode(second, args);
    const reply = await poll(() => rawGet(first, 'raw:after-kill'), (answer) => answer.startsWith('VALUE'));
    expect(reply).toBe('VALUE raw:after-kill 0 7\r\nnoticed\r\nEND\r\n');
    expect(await rawGet(restarted, 'raw:after-kill')).toBe('VALUE raw:after-kill 0 7\r\nnoticed\r\nEND\r\n');
  });
});

describe('writes on both sides of a split, N=3 R=3 W=1', () => {
  // W=1 lets each side of the split accept a write alone. R=3 makes every read ask all three
  // replicas, so it sees both sides' writes whichever replicas the background copies reached.
  let nodes: ClusterNode[];

  beforeAll(async () => {
    nodes = await startCluster({ baseDir: path.join(workDir, 'split'), size: 3, args: quorumArgs({ r: 3, w: 1 }) });
  }, 120_000);

  test('come back as siblings from get, and gets + cas through another node merges them', async () => {
    // Proves concurrent writes are both kept (no lost update) and a client's cas reconciles them.
    const [a, b, c] = nodes;
    await writeOnBothSides(
      nodes,
      pauses,
      workDir,
      async (sideA) => expect(await rawSet(sideA, 'split:k', 'side-a')).toBe('STORED\r\n'),
      async (sideC) => expect(await rawSet(sideC, 'split:k', 'side-c')).toBe('STORED\r\n'),
    );

    // Healed: a read through any node gathers all three replicas and answers both values.
    const twoValues = (reply: string): boolean => valuesOf(reply).length === 2;
    for (const node of nodes) {
      const reply = await poll(() => rawGet(node, 'split:k'), twoValues);
      expect(valuesOf(reply).map((value) => value.data).sort()).toEqual(['side-a', 'side-c']);
      expect(reply).toMatch(/^VALUE split:k 0 6\r\nside-.\r\nVALUE split:k 0 6\r\nside-.\r\nEND\r\n$/);
    }
    // The text client hands over both values; memjs, binary, gets the sibling written last (docs/protocol.md).
    expect(((await textGet(textClient(b), 'split:k')) as string[]).sort()).toEqual(['side-a', 'side-c']);
    expect(await memjsGet(memjsClient(b), 'split:k')).toBe('side-c');

    // gets names the whole context with one cas unique; cas through another node supersedes both.
    const context = valuesOf(await rawGet(a, 'split:k', 'gets'));
    expect(context).toHaveLength(2);
    expect(context[0].cas).toMatch(/^\d+$/);
    expect(context[1].cas).toBe(context[0].cas);
    expect(await raw(b, `cas split:k 0 0 6 ${context[0].cas}\r\nmerged\r\n`)).toBe('STORED\r\n');
    for (const node of nodes) expect(await rawGet(node, 'split:k')).toBe('VALUE split:k 0 6\r\nmerged\r\nEND\r\n');
    // The old context has moved on.
    expect(await raw(c, `cas split:k 0 0 5 ${context[0].cas}\r\nstale\r\n`)).toBe('EXISTS\r\n');
    expect(await memjsGet(memjsClient(c), 'split:k')).toBe('merged');
  });
});
