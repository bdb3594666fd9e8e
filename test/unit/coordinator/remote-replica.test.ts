import { Coordinator } from '../../../src/coordinator';
import { RemoteReplica } from '../../../src/coordinator/remote-replica';
import { LocalReplica } from '../../../src/coordinator/replica';
import { isReplicaRequest, ReplicaService, writeTimeAheadMsMax } from '../../../src/coordinator/replica-service';
import { arithSpec, storeSpec, touchSpec } from '../../../src/coordinator/specs';
import { versionToWire } from '../../../src/coordinator/wire';
import { KaiError } from '../../../src/errors';
import { bucketOfKey, buildRing } from '../../../src/ring';
import { newerFirst, type Version } from '../../../src/storage/record';
import { SimWorld } from '../../sim';
import { MemoryStore } from '../../support/memory-store';

const server = 'server:7001';
const client = 'client:7002';
const timeoutMs = 200;
const valueBytesMax = 1024;
const key = Buffer.from('key');

interface Setup {
  readonly world: SimWorld;
  readonly remote: RemoteReplica;
  readonly local: LocalReplica;
  readonly flushed: number[];
}

/** A server node (one-member ring) answering replica requests, and a RemoteReplica to it from a client host. */
function setup(): Setup {
  const world = new SimWorld({ seed: 7, network: { delayMsMin: 1, delayMsMax: 5 } });
  const serverHost = world.host(server);
  const clientHost = world.host(client);
  const local = new LocalReplica(server, new MemoryStore(), serverHost.env, valueBytesMax);
  const ring = buildRing([{ id: server, weight: 1 }], { buckets: 8 });
  const coordinator = new Coordinator({
    nodeId: server,
    env: serverHost.env,
    ring: () => ring,
    replicaOf: () => local,
    quorum: { n: 1, r: 1, w: 1 },
    requestTimeoutMs: timeoutMs,
  });
  const flushed: number[] = [];
  const service = new ReplicaService({
    coordinator,
    local,
    flushUntil: (deadlineMs) => {
      flushed.push(deadlineMs);
      return Promise.resolve();
    },
    buckets: ring.config.buckets,
    env: serverHost.env,
  });
  void serverHost.transport.serve((request) => {
    if (!isReplicaRequest(request)) throw new KaiError('KAI_INTERNAL', 'not a replica request');
    return service.handleReplicaRequest(request);
  });
  const remote = new RemoteReplica(server, server, clientHost.transport, { requestTimeoutMs: timeoutMs, valueBytesMax, env: clientHost.env });
  return { world, remote, local, flushed };
}

/** Runs the simulation until the promise settles, then returns its outcome. */
async function drive<T>(world: SimWorld, promise: Promise<T>): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  tracked.catch(() => undefined);
  await world.runUntil(() => settled, 10_000);
  return tracked;
}

function version(value: string, node: string, counter: number): Version {
  return {
    clock: [{ node, counter, timestampMs: 1 }],
    value: Buffer.from(value),
    flags: 3,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: counter,
  };
}

describe('RemoteReplica over the simulated transport', () => {
  // Versions stored through the remote replica are held by the peer's store and fetched back equal.
  test('store and fetch round trip', async () => {
    const { world, remote, local } = setup();
    // In the canonical order a replica keeps them in (newest first, then by clock).
    const versions = [version('left', 'x', 1), version('right', 'y', 1)].sort(newerFirst);
    await drive(world, remote.store(key, bucketOfKey(key, 8), versions));
    expect(local.fetchNow(key)).toEqual(versions);
    expect(await drive(world, remote.fetch(key))).toEqual(versions);
  });

  // A forwarded write is coordinated on the peer: its result, versions and written version come back typed.
  test('coordinate round trip', async () => {
    const { world, remote, local } = setup();
    const stored = await drive(
      world,
      remote.coordinate(key, storeSpec({ mode: 'set', value: Buffer.from('41'), flags: 9, expiresAtMs: 0, casUnique: 0n }), timeoutMs),
    );
    expect(stored.result).toEqual({ result: 'STORED', lookup: { expired: false, previousValueBytes: -1 } });
    expect(stored.written?.clock.map((entry) => entry.node.split('~')[0])).toEqual([server]);
    expect(stored.versions).toEqual(local.fetchNow(key));
    const incremented = await drive(world, remote.coordinate(key, arithSpec({ incr: true, delta: 1n }), timeoutMs));
    expect(incremented.result?.result).toMatchObject({ outcome: 'OK', value: 42n, created: false });
    const touched = await drive(world, remote.coordinate(key, touchSpec(0), timeoutMs));
    expect(touched.result?.result).toEqual({ flags: 9, value: Buffer.from('42') });
  });

  // An operating error decided on the peer reaches the caller as the same KaiError.
  test('a decision error comes back as its KaiError', async () => {
    const { world, remote } = setup();
    await drive(world, remote.coordinate(key, storeSpec({ mode: 'set', value: Buffer.from('abc'), flags: 0, expiresAtMs: 0, casUnique: 0n }), timeoutMs));
    await expect(drive(world, remote.coordinate(key, arithSpec({ incr: true, delta: 1n }), timeoutMs))).rejects.toMatchObject({
      code: 'KAI_NON_NUMERIC_VALUE',
    });
  });

  // A bad version from a peer is refused at the boundary and never stored.
  test('a malformed stored version is refused', async () => {
    const { world, local } = setup();
    const clientTransport = world.at(client).transport;
    // Each entry passes the shape checks; twice the same writer breaks a clock's invariant.
    const bad = { ...versionToWire(version('v', 'x', 1)), clock: [['x', 1, 1], ['x', 2, 1]] as const };
    const reply = await drive(world, clientTransport.request(server, { type: 'replicaStore', key, bucket: 0, versions: [bad] }, timeoutMs));
    expect(reply).toMatchObject({ type: 'error', code: 'KAI_BAD_FRAME' });
    expect(local.fetchNow(key)).toEqual([]);
  });

  // A write time far ahead of the replica would outlive every flush and drag later writes with it.
  test('a version written over writeTimeAheadMsMax ahead is refused', async () => {
    const { world, local } = setup();
    const clientTransport = world.at(client).transport;
    const nowMs = world.at(server).env.nowMs();
    const store = (writtenAtMs: number) =>
      drive(world, clientTransport.request(server, { type: 'replicaStore', key, bucket: bucketOfKey(key, 8), versions: [{ ...versionToWire(version('v', 'x', 1)), writtenAtMs }] }, timeoutMs));
    expect(await store(nowMs + writeTimeAheadMsMax + 1_000)).toMatchObject({ type: 'error', code: 'KAI_BAD_FRAME' });
    expect(local.fetchNow(key)).toEqual([]);
    expect(await store(nowMs + 1_000)).toEqual({ type: 'stored' });
    expect(local.fetchNow(key)).toHaveLength(1);
  });

  // A flush_all from another node reaches the service's flush hook with its deadline.
  test('flushAll reaches the flush hook', async () => {
    const { world, flushed } = setup();
    const reply = await drive(world, world.at(client).transport.request(server, { type: 'flushAll', deadlineMs: 123 }, timeoutMs));
    expect(reply).toEqual({ type: 'flushed' });
    expect(flushed).toEqual([123]);
  });

  // A crashed peer makes calls fail with KAI_PEER_UNREACHABLE after the timeout.
  test('an unreachable peer rejects', async () => {
    const { world, remote } = setup();
    world.crash(server);
    await expect(drive(world, remote.fetch(key))).rejects.toMatchObject({ code: 'KAI_PEER_UNREACHABLE' });
  });
});
