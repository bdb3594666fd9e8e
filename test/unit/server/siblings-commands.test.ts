// What each memcache command does on a key with two live siblings, as docs/protocol.md states it.
import { Coordinator } from '../../../src/coordinator';
import { LocalReplica } from '../../../src/coordinator/replica';
import type { Command, ItemView, Reply, StorageMode } from '../../../src/protocol/command';
import { buildRing, bucketOfKey } from '../../../src/ring';
import { Dispatcher } from '../../../src/server/dispatch';
import { NodeStats } from '../../../src/server/stats';
import type { Version } from '../../../src/storage/record';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';

const key = Buffer.from('k');
const buckets = 16;

/** A single node whose key holds two concurrent versions, written by two other nodes. */
async function nodeWithSiblings(older: string, newer: string): Promise<Dispatcher> {
  const env = new ManualEnv();
  const store = new MemoryStore();
  const ring = buildRing([{ id: 'a', weight: 1 }], { buckets });
  const replica = new LocalReplica('a', store, env, 1024);
  const nowMs = env.nowMs();
  const version = (node: string, value: string, writtenAtMs: number): Version => ({
    clock: [{ node, counter: 1, timestampMs: writtenAtMs }],
    value: Buffer.from(value),
    flags: 5,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs,
  });
  await replica.store(key, bucketOfKey(key, buckets), [version('x', older, nowMs - 2000), version('y', newer, nowMs - 1000)]);
  const coordinator = new Coordinator({
    nodeId: 'a',
    env,
    ring: () => ring,
    replicaOf: () => replica,
    quorum: { n: 1, r: 1, w: 1 },
    requestTimeoutMs: 1000,
  });
  return new Dispatcher({ coordinator, env, stats: new NodeStats(), version: 'test', flushAll: () => store.removeAll(), statistics: () => undefined });
}

const run = (dispatcher: Dispatcher, command: Command): Promise<Reply> => Promise.resolve(dispatcher.execute(command));

async function gets(dispatcher: Dispatcher): Promise<readonly ItemView[]> {
  const reply = await run(dispatcher, { op: 'get', keys: [key], withCas: true });
  if (reply.kind !== 'items') throw new Error(`not items: ${reply.kind}`);
  return reply.items;
}

const valuesOf = async (dispatcher: Dispatcher): Promise<string[]> => (await gets(dispatcher)).map((item) => item.value.toString());

function store(mode: StorageMode, value: string, casUnique = 0n): Command {
  return { op: 'store', mode, key, flags: 0, exptime: 0, value: Buffer.from(value), casUnique, noreply: false };
}

describe('commands on a key with siblings', () => {
  // get and gets answer every live sibling, newest first, all with the cas of the whole context;
  // the binary protocol's one-value get answers the sibling written last.
  test('get and gets answer every sibling with one cas', async () => {
    const node = await nodeWithSiblings('old', 'new');
    const items = await gets(node);
    expect(items.map((item) => item.value.toString())).toEqual(['new', 'old']);
    expect(new Set(items.map((item) => item.cas)).size).toBe(1);
    const binary = await run(node, { op: 'get', keys: [key], withCas: true, latestSiblingOnly: true });
    expect(binary.kind === 'items' && binary.items.map((item) => [item.value.toString(), item.cas])).toEqual([['new', items[0].cas]]);
  });

  // set, replace and a cas naming the context write one value that supersedes every sibling.
  test.each([
    ['set', 'STORED'],
    ['replace', 'STORED'],
  ] as const)('%s merges them into one value', async (mode, outcome) => {
    const node = await nodeWithSiblings('old', 'new');
    expect(await run(node, store(mode, 'one'))).toMatchObject({ kind: 'stored', outcome });
    expect(await valuesOf(node)).toEqual(['one']);
  });

  test('cas with the context merges them; with an older cas it is EXISTS and changes nothing', async () => {
    const node = await nodeWithSiblings('old', 'new');
    const [{ cas }] = await gets(node);
    expect(await run(node, store('cas', 'stale', cas + 1n))).toMatchObject({ kind: 'stored', outcome: 'EXISTS' });
    expect(await valuesOf(node)).toEqual(['new', 'old']);
    expect(await run(node, store('cas', 'one', cas))).toMatchObject({ kind: 'stored', outcome: 'STORED' });
    expect(await valuesOf(node)).toEqual(['one']);
  });

  // add refuses: a live value exists, whichever sibling it is.
  test('add refuses and leaves them', async () => {
    const node = await nodeWithSiblings('old', 'new');
    expect(await run(node, store('add', 'one'))).toMatchObject({ kind: 'stored', outcome: 'NOT_STORED' });
    expect(await valuesOf(node)).toEqual(['new', 'old']);
  });

  // append and prepend work on the sibling written last; the result supersedes all of them.
  test.each([
    ['append', 'new+'],
    ['prepend', '+new'],
  ] as const)('%s extends the newest and merges', async (mode, expected) => {
    const node = await nodeWithSiblings('old', 'new');
    expect(await run(node, store(mode, '+'))).toMatchObject({ kind: 'stored', outcome: 'STORED' });
    expect(await valuesOf(node)).toEqual([expected]);
  });

  // incr and decr count from the number written last; the counter that results has no siblings.
  test('incr counts from the newest and merges', async () => {
    const node = await nodeWithSiblings('10', '20');
    expect(await run(node, { op: 'arith', incr: true, key, delta: 1n, casUnique: 0n, noreply: false })).toMatchObject({ kind: 'arith', outcome: 'OK', value: 21n });
    expect(await valuesOf(node)).toEqual(['21']);
  });

  // touch and gat keep the newest sibling with the new expiry; the others go.
  test('touch and gat keep the newest', async () => {
    const node = await nodeWithSiblings('old', 'new');
    expect(await run(node, { op: 'touch', key, exptime: 100, noreply: false })).toEqual({ kind: 'touched', found: true });
    expect(await valuesOf(node)).toEqual(['new']);
    const other = await nodeWithSiblings('old', 'new');
    const gat = await run(other, { op: 'gat', keys: [key], exptime: 100, withCas: false });
    expect(gat.kind === 'items' && gat.items.map((item) => item.value.toString())).toEqual(['new']);
    expect(await valuesOf(other)).toEqual(['new']);
  });

  // delete removes every sibling at once.
  test('delete removes all of them', async () => {
    const node = await nodeWithSiblings('old', 'new');
    expect(await run(node, { op: 'delete', key, casUnique: 0n, noreply: false })).toEqual({ kind: 'deleted', outcome: 'DELETED' });
    expect(await valuesOf(node)).toEqual([]);
  });
});
