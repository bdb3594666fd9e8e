/**
 * The gossip shell's edges on one node: what it does with a bad saved list, a failing disk, a bad
 * seed address, and the request router's answer to a type nobody serves.
 */
import pino from 'pino';
import { isUp, ringMembers } from '../../../src/membership';
import { KaiError } from '../../../src/errors';
import { Gossip, lateRoundsSkippedMax, memoryPersistence, type MembershipPersistence } from '../../../src/gossip';
import type { RpcReply, RpcRequest } from '../../../src/rpc/messages';
import { routeRequests } from '../../../src/rpc/router';
import type { Transport } from '../../../src/rpc/transport';
import { ManualEnv } from '../../support/manual-env';

const self = { id: 'n1:7001', address: 'n1:7001', zone: '', weight: 1 };
const silentLog = pino({ level: 'silent' });

/** A transport whose every peer is unreachable. */
const nowhere: Pick<Transport, 'request'> = {
  request: (address) => Promise.reject(new KaiError('KAI_PEER_UNREACHABLE', `${address}: refused`)),
};

function shell(persistence: MembershipPersistence, seeds: readonly string[] = []): Gossip {
  return new Gossip({ self, env: new ManualEnv(), transport: nowhere, log: silentLog, persistence, seeds, intervalMs: 100 });
}

describe('gossip shell on one node', () => {
  test('an invalid saved list is ignored and replaced by a fresh one', () => {
    // Proves a damaged list cannot stop a node from starting, and is overwritten with a valid one.
    const persistence: MembershipPersistence & { saved: unknown } = {
      saved: [{ id: 'x' }],
      load: () => persistence.saved,
      save: (members) => {
        persistence.saved = members;
      },
      loadSelfId: () => undefined,
      saveSelfId: () => undefined,
    };
    const gossip = shell(persistence);
    expect(gossip.members.map((m) => m.id)).toEqual([self.id]);
    expect(persistence.saved).toEqual(gossip.members);
  });

  test('a restored list raises the incarnation and keeps the other members', () => {
    // Proves restart semantics: the saved members come back, and the new incarnation is saved at once.
    const persistence = memoryPersistence();
    persistence.save([
      { ...self, status: 'up', incarnation: 3, heartbeat: 40 },
      { id: 'n2:7002', address: 'n2:7002', zone: 'b', weight: 2, status: 'up', incarnation: 1, heartbeat: 9 },
    ]);
    const gossip = shell(persistence);
    expect(gossip.members.map((m) => [m.id, m.incarnation])).toEqual([
      [self.id, 4],
      ['n2:7002', 1],
    ]);
    expect(persistence.saved?.find((m) => m.id === self.id)?.incarnation).toBe(4);
  });

  test('a node restarted under another id announces its old id as leaving', () => {
    // Proves a new port for the same data does not leave a ghost member in the ring.
    const persistence = memoryPersistence();
    const oldId = 'n1:6999';
    persistence.save([
      { id: oldId, address: oldId, zone: 'a', weight: 1, status: 'up', incarnation: 2, heartbeat: 40 },
      { id: 'n2:7002', address: 'n2:7002', zone: 'b', weight: 1, status: 'up', incarnation: 1, heartbeat: 9 },
    ]);
    persistence.saveSelfId(oldId);
    const gossip = shell(persistence);
    const old = gossip.membership.members.find((m) => m.id === oldId);
    expect(old?.status).toBe('leaving');
    expect(old?.incarnation).toBe(3);
    expect(ringMembers(gossip.membership).map((m) => m.id).sort()).toEqual(['n2:7002', self.id].sort());
    expect(persistence.selfId).toBe(self.id);
  });

  test('refuses to gossip with a peer that cuts its ring differently', async () => {
    // Proves nodes with different --buckets never merge views and place keys apart, whichever side asks.
    const layout = { buckets: 1024 };
    const peer = { id: 'n2:7002', address: 'n2:7002', zone: '', weight: 1, status: 'up' as const, incarnation: 0, heartbeat: 5 };
    let answeredLayout = layout;
    const transport: Pick<Transport, 'request'> = {
      request: () => Promise.resolve<RpcReply>({ type: 'gossip', members: [peer], layout: answeredLayout }),
    };
    const gossip = new Gossip({ self, env: new ManualEnv(), transport, log: silentLog, persistence: memoryPersistence(), intervalMs: 100, ringLayout: layout });
    const request = (buckets: number): RpcRequest => ({ type: 'gossip', members: [peer], layout: { buckets } });
    expect(() => gossip.handle(request(512))).toThrow(
      expect.objectContaining({ code: 'KAI_RING_LAYOUT_MISMATCH', detail: 'peer has 512 buckets, this node 1024' }),
    );
    expect(gossip.members.map((m) => m.id)).toEqual([self.id]);
    answeredLayout = { buckets: 2048 };
    await gossip.handle({ type: 'addSeed', address: peer.address });
    expect(gossip.membership.members.find((m) => m.id === peer.id)?.confirmed ?? false).toBe(false);
    gossip.handle(request(1024));
    expect(gossip.members.map((m) => m.id)).toEqual([self.id, peer.id]);
  });

  test('a disk that refuses writes does not stop rounds', () => {
    // Proves persistence failures are logged, not thrown into the gossip timer.
    const persistence: MembershipPersistence = {
      load: () => undefined,
      save: () => {
        throw new KaiError('KAI_STORAGE_FAILURE', 'disk full');
      },
      loadSelfId: () => undefined,
      saveSelfId: () => undefined,
    };
    const gossip = shell(persistence, ['n2:7002']);
    expect(() => gossip.round()).not.toThrow();
    expect(gossip.membership.members.find((m) => m.id === self.id)?.heartbeat).toBe(1);
  });

  test('addSeed refuses an address that is not host:port', async () => {
    // Proves a peer's bad seed address is an operating error, not an assertion failure.
    const gossip = shell(memoryPersistence());
    await expect(Promise.resolve(gossip.handle({ type: 'addSeed', address: 'no-port' }))).rejects.toThrow(
      'seed no-port: address is not host:port',
    );
  });

  test('addSeed of an unreachable node answers with the list, without it', async () => {
    // Proves check-node gets an answer even when the other node is down.
    const gossip = shell(memoryPersistence());
    const reply = await gossip.handle({ type: 'addSeed', address: 'n9:7009' });
    expect(reply).toEqual({ type: 'nodeInfo', id: self.id, members: gossip.members });
    expect(gossip.membership.members.map((m) => m.id)).toContain('n9:7009');
  });
});

describe('failure detection after this node stalled', () => {
  const peer = { id: 'n2:7002', address: 'n2:7002', zone: '', weight: 1, status: 'up' as const, incarnation: 0 };
  const intervalMs = 100;
  const downAfterMs = 5 * intervalMs;

  /** A node that has heard the peer every round for ten rounds; `hear` delivers one more of its gossip requests. */
  function stalledNode(): { env: ManualEnv; gossip: Gossip; hear: () => void; peerUp: () => boolean } {
    const env = new ManualEnv();
    let heartbeat = 0;
    // The peer never answers an exchange: all news of it comes through `hear`, as its requests.
    const transport: Pick<Transport, 'request'> = { request: () => new Promise<RpcReply>(() => undefined) };
    const gossip = new Gossip({ self, env, transport, log: silentLog, persistence: memoryPersistence(), intervalMs });
    const hear = (): void => {
      heartbeat++;
      gossip.handle({ type: 'gossip', members: [{ ...peer, heartbeat }] });
    };
    gossip.start();
    for (let round = 0; round < 10; round++) {
      hear();
      env.advance(intervalMs);
    }
    return { env, gossip, hear, peerUp: () => isUp(gossip.membership, peer.id) };
  }

  test('a round that runs late judges no peer: what they sent meanwhile is read first', () => {
    // Proves a node paused longer than the detector's timeout does not mark a live peer down for its
    // own silence: its overdue round fires before the peer's queued gossip is read.
    const { env, hear, peerUp } = stalledNode();
    expect(peerUp()).toBe(true);
    env.stall(downAfterMs * 3);
    env.advance(0);
    expect(peerUp()).toBe(true);
    hear();
    for (let round = 0; round < 3; round++) {
      env.advance(intervalMs);
      hear();
      expect(peerUp()).toBe(true);
    }
  });

  test('a peer that stays silent after the stall is still marked down', () => {
    // Proves the skipped round only defers judgement: with no news after the pause, the peer goes down at the next round.
    const { env, peerUp } = stalledNode();
    env.stall(downAfterMs * 3);
    env.advance(0);
    expect(peerUp()).toBe(true);
    env.advance(intervalMs);
    expect(peerUp()).toBe(false);
  });

  test('a node late round after round still judges its peers', () => {
    // Proves a node that stays starved keeps a working failure detector, only later.
    const { env, peerUp } = stalledNode();
    for (let stall = 0; stall < lateRoundsSkippedMax; stall++) {
      env.stall(downAfterMs);
      env.advance(0);
      expect(peerUp()).toBe(true);
    }
    env.stall(downAfterMs);
    env.advance(0);
    expect(peerUp()).toBe(false);
  });
});

describe('a peer left of three', () => {
  const intervalMs = 100;
  const partner = { id: 'n2:7002', address: 'n2:7002', zone: '', weight: 1, status: 'up' as const, incarnation: 0 };
  const gone = { ...partner, id: 'n3:7003', address: 'n3:7003' };

  /** Lets the replies of exchanges started so far be merged, before the clock moves on. */
  async function settleReplies(): Promise<void> {
    for (let turn = 0; turn < 5; turn++) await Promise.resolve();
  }

  /** Rounds of a node that has just lost `gone`, drawing from `seed`; whether the partner stayed up throughout. */
  async function partnerStaysUp(seed: number, rounds: number): Promise<{ partnerUp: boolean; goneDown: boolean }> {
    const env = new ManualEnv(1_700_000_000_000, seed);
    let partnerHeartbeat = 0;
    // The partner answers every exchange, and only exchanges: it never opens one itself here.
    const transport: Pick<Transport, 'request'> = {
      request: (address, _request, timeoutMs) =>
        address === partner.address
          ? Promise.resolve<RpcReply>({ type: 'gossip', members: [{ ...partner, heartbeat: ++partnerHeartbeat }] })
          : new Promise<RpcReply>((_resolve, reject) => env.after(timeoutMs, () => reject(new KaiError('KAI_PEER_UNREACHABLE', `${address}: timed out`)))),
    };
    const gossip = new Gossip({ self, env, transport, log: silentLog, persistence: memoryPersistence(), intervalMs });
    gossip.handle({ type: 'gossip', members: [{ ...partner, heartbeat: 0 }, { ...gone, heartbeat: 0 }] });
    await settleReplies();
    // Marked down even for a moment, the partner would fail the requests this node coordinates.
    let partnerUp = true;
    gossip.onChange((_state, events) => {
      if (events.some((event) => event.kind === 'down' && event.id === partner.id)) partnerUp = false;
    });
    gossip.start();
    for (let round = 0; round < rounds; round++) {
      env.advance(intervalMs);
      await settleReplies();
    }
    gossip.stop();
    return { partnerUp, goneDown: !isUp(gossip.membership, gone.id) };
  }

  test('is asked directly once quiet, and never marked down while it answers', async () => {
    // Proves two nodes left of three keep each other up: drawn at random alone, a round picks the
    // unreachable third half the time, and a run of such draws marked the live partner down.
    const outcomes = [];
    // Seeds spread over 32 bits: xorshift's first draws from small seeds are all near 0.
    for (let run = 1; run <= 100; run++) outcomes.push(await partnerStaysUp(Math.imul(run, 0x9e3779b1) >>> 0, 20));
    expect(outcomes.filter((outcome) => !outcome.partnerUp)).toEqual([]);
    expect(outcomes.every((outcome) => outcome.goneDown)).toBe(true);
  });
});

describe('routeRequests', () => {
  test('routes by type and refuses a type without a route', async () => {
    // Proves the internal API answers every request: by its route, or with an operating error.
    const handler = routeRequests({ nodeInfo: (): RpcReply => ({ type: 'nodeInfo', id: 'a:1', members: [] }) });
    expect(await handler({ type: 'nodeInfo' })).toEqual({ type: 'nodeInfo', id: 'a:1', members: [] });
    const fetch: RpcRequest = { type: 'replicaFetch', key: Buffer.from('k') };
    expect(() => handler(fetch)).toThrow('does not answer replicaFetch requests');
  });
});
