import { Coordinator } from '../../../src/coordinator';
import { LocalReplica } from '../../../src/coordinator/replica';
import { KaiError } from '../../../src/errors';
import type { Command, Reply } from '../../../src/protocol/command';
import { buildRing } from '../../../src/ring';
import { Dispatcher, timerDelayMsMax } from '../../../src/server/dispatch';
import { NodeStats } from '../../../src/server/stats';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';

const valueBytesMax = 1024;
const dayMs = 24 * 60 * 60 * 1000;

class FlakyStore extends MemoryStore {
  failRemoveAll = false;

  override removeAll(): Promise<void> {
    if (this.failRemoveAll) return Promise.reject(new KaiError('KAI_STORAGE_FAILURE', 'disk full'));
    return super.removeAll();
  }
}

interface Node {
  readonly env: ManualEnv;
  readonly store: FlakyStore;
  readonly stats: NodeStats;
  readonly dispatcher: Dispatcher;
}

function node(): Node {
  const env = new ManualEnv();
  const store = new FlakyStore();
  const ring = buildRing([{ id: 'a', weight: 1 }], { buckets: 16 });
  const replica = new LocalReplica('a', store, env, valueBytesMax);
  const coordinator = new Coordinator({
    nodeId: 'a',
    env,
    ring: () => ring,
    replicaOf: () => replica,
    quorum: { n: 1, r: 1, w: 1 },
    requestTimeoutMs: 1000,
  });
  const stats = new NodeStats();
  const dispatcher = new Dispatcher({
    coordinator,
    env,
    stats,
    version: 'test',
    flushAll: () => store.removeAll(),
    statistics: () => undefined,
  });
  return { env, store, stats, dispatcher };
}

const run = (dispatcher: Dispatcher, command: Command): Promise<Reply> => Promise.resolve(dispatcher.execute(command));

async function set(dispatcher: Dispatcher, key: string, value: string): Promise<void> {
  const reply = await run(dispatcher, {
    op: 'store',
    mode: 'set',
    key: Buffer.from(key),
    flags: 0,
    exptime: 0,
    value: Buffer.from(value),
    casUnique: 0n,
    noreply: false,
  });
  expect(reply).toMatchObject({ kind: 'stored', outcome: 'STORED' });
}

async function valuesOf(dispatcher: Dispatcher, ...keys: string[]): Promise<string[]> {
  const reply = await run(dispatcher, { op: 'get', keys: keys.map((key) => Buffer.from(key)), withCas: false });
  if (reply.kind !== 'items') throw new Error(`not items: ${reply.kind}`);
  return reply.items.map((item) => item.value.toString());
}

const flushAll = (delaySeconds: number): Command => ({ op: 'flush_all', delaySeconds, noreply: false });

describe('flush_all with a delay', () => {
  test('a delay past what one timer holds flushes at its deadline, not before', async () => {
    // Proves a 30-day delay waits in re-armed steps instead of overflowing setTimeout.
    const { env, store, dispatcher } = node();
    await set(dispatcher, 'k', 'v');
    expect(await run(dispatcher, flushAll(30 * 24 * 60 * 60))).toEqual({ kind: 'ok' });
    env.advance(timerDelayMsMax + 1);
    expect(await valuesOf(dispatcher, 'k')).toEqual(['v']);
    expect(env.pendingTimers).toBe(1);
    env.advance(30 * dayMs - timerDelayMsMax - 2);
    expect(await valuesOf(dispatcher, 'k')).toEqual(['v']);
    env.advance(1);
    expect(await valuesOf(dispatcher, 'k')).toEqual([]);
    expect(store.records.size).toBe(0);
    expect(env.pendingTimers).toBe(0);
  });

  test('a delay over 30 days is a unix time', async () => {
    // Proves memcached's reading of the delay: absolute past 30 days, and a past time flushes now.
    const { env, dispatcher } = node();
    await set(dispatcher, 'k', 'v');
    const inOneHourSeconds = Math.floor(env.nowMs() / 1000) + 3600;
    await run(dispatcher, flushAll(inOneHourSeconds));
    env.advance(3600 * 1000 - 1000);
    expect(await valuesOf(dispatcher, 'k')).toEqual(['v']);
    env.advance(1000);
    expect(await valuesOf(dispatcher, 'k')).toEqual([]);

    await set(dispatcher, 'k', 'again');
    await run(dispatcher, flushAll(Math.floor(env.nowMs() / 1000) - 10));
    expect(await valuesOf(dispatcher, 'k')).toEqual([]);
  });

  test('versions written before the deadline stay hidden when the removal fails, later ones show', async () => {
    // Proves the deadline, compared with each version's write time, decides what reads see.
    const { env, store, dispatcher } = node();
    await set(dispatcher, 'old', 'v');
    await run(dispatcher, flushAll(60));
    store.failRemoveAll = true;
    env.advance(60_000);
    await Promise.resolve();
    expect(store.records.size).toBe(1);
    expect(await valuesOf(dispatcher, 'old')).toEqual([]);
    await set(dispatcher, 'new', 'w');
    expect(await valuesOf(dispatcher, 'old', 'new')).toEqual(['w']);
    // A mutation sees the flushed key as missing too.
    const added = await run(dispatcher, {
      op: 'store',
      mode: 'add',
      key: Buffer.from('old'),
      flags: 0,
      exptime: 0,
      value: Buffer.from('added'),
      casUnique: 0n,
      noreply: false,
    });
    expect(added).toMatchObject({ outcome: 'STORED' });
  });

  test('a later flush_all replaces a pending one', async () => {
    // Proves memcached's single deadline: flush_all 0 flushes now and cancels the delayed one.
    const { env, dispatcher } = node();
    await run(dispatcher, flushAll(60));
    await run(dispatcher, flushAll(0));
    await set(dispatcher, 'k', 'v');
    env.advance(120_000);
    expect(await valuesOf(dispatcher, 'k')).toEqual(['v']);
    expect(env.pendingTimers).toBe(0);
  });
});

describe('counters', () => {
  test('a refused over-size set removes the old value and counts store_too_large, not a delete', async () => {
    // Proves the removal memcached does for a refused set is not a client delete.
    const { stats, dispatcher } = node();
    await set(dispatcher, 'k', 'v');
    expect(await run(dispatcher, { op: 'refuse_store', key: Buffer.from('k'), removeOld: true, noreply: true })).toEqual({
      kind: 'ok',
    });
    expect(await valuesOf(dispatcher, 'k')).toEqual([]);
    expect([stats.storeTooLarge, stats.deleteHits, stats.deleteMisses, stats.cmdSet]).toEqual([1, 0, 0, 1]);
  });

  test('gat counts touches only, and lookups of expired keys count get_expired', async () => {
    // Proves memcached's counting: gat is no get, and an expired key found is get_expired.
    const { stats, dispatcher } = node();
    await set(dispatcher, 'k', 'v');
    await run(dispatcher, { op: 'gat', keys: [Buffer.from('k'), Buffer.from('missing')], exptime: -1, withCas: false });
    expect([stats.cmdGet, stats.getHits, stats.getMisses]).toEqual([0, 0, 0]);
    expect([stats.cmdTouch, stats.touchHits, stats.touchMisses]).toEqual([2, 1, 1]);
    expect(await valuesOf(dispatcher, 'k')).toEqual([]);
    await run(dispatcher, { op: 'delete', key: Buffer.from('k'), casUnique: 0n, noreply: false });
    expect([stats.getExpired, stats.getMisses, stats.deleteMisses]).toEqual([2, 1, 1]);
  });
});
