/**
 * One kai node's parts, composed around what the outside world gives it: an Env (clock, timers,
 * randomness), a Transport to reach peers, a store, settings and a logger. The real node
 * (node.ts) passes the TCP transport, a SQLite file and the real clock; the simulation (test/sim)
 * passes simulated ones, so a whole cluster of these same nodes runs in one process.
 *
 * The parts: gossip membership and the ring it keeps current; the coordinator with this node's
 * replica and remote replicas; the dispatcher memcache connections talk to; the replica service,
 * hinted handoff, anti-entropy and the reaper, which answer peers and heal replicas.
 */
import { AntiEntropy, isTreeRequest } from '../antientropy';
import { Reaper } from '../antientropy/reaper';
import type { Settings } from '../config/settings';
import { Coordinator } from '../coordinator';
import { RemoteReplica } from '../coordinator/remote-replica';
import { LocalReplica, type Replica } from '../coordinator/replica';
import { ReplicaService } from '../coordinator/replica-service';
import type { Env } from '../env';
import { KaiError } from '../errors';
import { Gossip, notePersistence, type MembershipPersistence } from '../gossip';
import { Handoff } from '../handoff';
import type { Logger } from '../log';
import { findMember, isUp, ringMembers, seedsAwaited, type MembershipState } from '../membership';
import { effectiveQuorum } from '../quorum';
import { buildRing, preferenceList, type Ring } from '../ring';
import { frameBytesMaxFor, frameHeadroomBytes } from '../rpc/frames';
import type { RequestRoutes } from '../rpc/router';
import type { Transport } from '../rpc/transport';
import type { SqliteStore } from '../storage/sqlite';
import { Dispatcher } from './dispatch';
import { generalStatistics, kaiStatistics, settingsStatistics } from './statistics';
import { NodeStats } from './stats';
import { kaiVersion } from './version';

/** A request waits this long for its quorum before failing. */
export const requestTimeoutMs = 5_000;
/** Replies of batches (fetches, key lists) stay within this, and well within a frame. */
const replyBytesMaxCap = 4 * 1024 * 1024;

export interface NodeParts {
  readonly settings: Settings;
  readonly nodeId: string;
  readonly env: Env;
  readonly log: Logger;
  readonly transport: Pick<Transport, 'request'>;
  readonly store: SqliteStore;
  /** Filled in here: the internal API's handler for each request type. */
  readonly routes: RequestRoutes;
  /** Where the member list survives a restart; the store's notes by default. */
  readonly persistence?: MembershipPersistence;
  /** The node's start time, for `stats uptime`. */
  readonly startedAtMs?: number;
  /** How long a request waits for its quorum; requestTimeoutMs by default. */
  readonly requestTimeoutMs?: number;
}

export interface ComposedNode {
  readonly nodeId: string;
  readonly gossip: Gossip;
  readonly coordinator: Coordinator;
  readonly dispatcher: Dispatcher;
  readonly stats: NodeStats;
  readonly local: LocalReplica;
  readonly handoff: Handoff;
  readonly antiEntropy: AntiEntropy;
  readonly reaper: Reaper;
  /** The current ring. */
  ring(): Ring;
  /** Starts gossip and the background shells. */
  start(): void;
  /** Stops every timer; the caller closes the transport and the store. */
  stop(): void;
}

function ringOf(state: MembershipState, settings: Settings): Ring {
  return buildRing(ringMembers(state), { buckets: settings.buckets, vnodesPerNode: settings.vnodes });
}

/** Identifies a ring's membership, so an event that leaves it unchanged does not rebuild it. */
function ringKey(state: MembershipState): string {
  return JSON.stringify(ringMembers(state));
}

/**
 * Keeps the node's ring current: rebuilt whenever gossip changes the members that own positions.
 * As in Dynamo, a member that is down keeps its positions (see ringMembers); requests route
 * around it through the preference list.
 */
function liveRing(gossip: Gossip, settings: Settings, log: Logger): () => Ring {
  let ring = ringOf(gossip.membership, settings);
  let key = ringKey(gossip.membership);
  gossip.onChange((state) => {
    const next = ringKey(state);
    if (next === key) return;
    key = next;
    ring = ringOf(state, settings);
    log.info({ members: ring.members.map((m) => m.id) }, 'ring rebuilt');
  });
  return () => ring;
}

export function composeNode(parts: NodeParts): ComposedNode {
  const { settings, nodeId, env, log, transport, store, routes } = parts;
  const timeoutMs = parts.requestTimeoutMs ?? requestTimeoutMs;
  const startedAtMs = parts.startedAtMs ?? env.nowMs();
  const gossip = new Gossip({
    self: { id: nodeId, address: nodeId, zone: settings.zone, weight: settings.weight },
    env,
    transport,
    log: log.child({ component: 'gossip' }),
    persistence: parts.persistence ?? notePersistence(store),
    seeds: settings.seeds,
    intervalMs: settings.gossipIntervalMs,
    ringLayout: { buckets: settings.buckets, vnodes: settings.vnodes },
  });
  const ring = liveRing(gossip, settings, log);
  const siblings = { conflictResolution: settings.conflictResolution, siblingsMax: settings.siblingsMax };
  const local = new LocalReplica(nodeId, store, env, settings.maxItemSize, siblings, settings.reapGraceMs);
  const remoteReplicas = new Map<string, RemoteReplica>();
  const remoteOf = (memberId: string): RemoteReplica => {
    // The member's address can change (a restart on another port), so the cache follows it.
    const address = findMember(gossip.membership, memberId)?.address ?? memberId;
    let replica = remoteReplicas.get(memberId);
    if (replica === undefined || replica.address !== address) {
      replica = new RemoteReplica(memberId, address, transport, { requestTimeoutMs: timeoutMs, valueBytesMax: settings.maxItemSize });
      remoteReplicas.set(memberId, replica);
    }
    return replica;
  };
  const replicaOf = (memberId: string): Replica => (memberId === nodeId ? local : remoteOf(memberId));
  // Preference lists skip the members the failure detector holds down.
  const memberIsUp = (memberId: string): boolean => isUp(gossip.membership, memberId);
  // Seeds not yet heard from count: until they answer, this node cannot meet N on its own.
  const clusterSize = (): number => gossip.membership.members.filter((member) => member.status !== 'leaving').length;
  const replicas = (): number => effectiveQuorum(settings, Math.max(ring().members.length, clusterSize())).n;
  const ready = (): boolean => seedsAwaited(gossip.membership).length === 0;
  const primariesOf = (bucket: number): readonly string[] => preferenceList(ring(), bucket, replicas());
  const coordinator = new Coordinator({
    nodeId,
    env,
    ring,
    isUp: memberIsUp,
    replicaOf,
    quorum: settings,
    requestTimeoutMs: timeoutMs,
    siblings,
    clusterSize,
    notReady: () => (ready() ? undefined : `joining: waiting to hear from ${seedsAwaited(gossip.membership).join(', ')}`),
    readRepairsPerSecond: settings.readRepairsPerSecond,
  });
  const frameBytesMax = frameBytesMaxFor(settings.maxItemSize, settings.siblingsMax + 1);
  const replyBytesMax = Math.min(replyBytesMaxCap, frameBytesMax - frameHeadroomBytes);
  const handoff = new Handoff({
    env,
    store,
    log: log.child({ component: 'handoff' }),
    isUp: memberIsUp,
    peerOf: remoteOf,
    nodeId,
    primariesOf,
    ready,
    keysPerSecond: settings.handoffKeysPerSecond,
    bytesPerSecond: settings.handoffBytesPerSecond,
    requestTimeoutMs: timeoutMs,
  });
  const antiEntropy = new AntiEntropy({
    env,
    nodeId,
    store,
    local,
    log: log.child({ component: 'antientropy' }),
    ring,
    replicas,
    isUp: memberIsUp,
    peerOf: remoteOf,
    intervalMs: settings.antiEntropyIntervalMs,
    keysPerSecond: settings.antiEntropyKeysPerSecond,
    bytesPerSecond: settings.antiEntropyBytesPerSecond,
    requestTimeoutMs: timeoutMs,
    replyBytesMax,
    ready,
  });
  const reaper = new Reaper({
    env,
    nodeId,
    store,
    log: log.child({ component: 'reaper' }),
    ring,
    replicas,
    isUp: memberIsUp,
    peerOf: remoteOf,
    reapGraceMs: settings.reapGraceMs,
    requestTimeoutMs: timeoutMs,
    ready,
  });
  // A member seen up again (back from a crash or a partition) is what handoff and anti-entropy
  // wait for: its hints go at once, and an exchange with it starts as soon as one may.
  gossip.onChange((_state, events) => {
    let membersCameUp = false;
    for (const event of events) {
      if (event.kind !== 'up' && event.kind !== 'joined') continue;
      membersCameUp = true;
      antiEntropy.exchangeSoon(event.id);
    }
    if (membersCameUp) handoff.deliverDue();
  });
  const stats = new NodeStats();
  const dispatcher: Dispatcher = new Dispatcher({
    coordinator,
    env,
    stats,
    version: kaiVersion,
    flushAll: () => store.removeAll(),
    broadcastFlush: (deadlineMs) => broadcastFlush(gossip, nodeId, transport, deadlineMs, timeoutMs, log),
    statistics: (group) => {
      if (group === '') return generalStatistics(stats, settings, store.counts(), startedAtMs, env.nowMs());
      if (group === 'settings') return settingsStatistics(settings, dispatcher.verbosity);
      if (group === 'kai') return kaiStatistics(coordinator, { store, handoff, antiEntropy, reaper });
      return undefined;
    },
  });
  const replicaService = new ReplicaService({
    coordinator,
    local,
    flushUntil: (deadlineMs) => dispatcher.flushUntil(deadlineMs),
    replyBatchBytesMax: replyBytesMax,
    buckets: settings.buckets,
  });
  routes.gossip = (request) => gossip.handle(request);
  routes.nodeInfo = () => {
    const info = gossip.nodeInfo();
    return info.type === 'nodeInfo' ? { ...info, hints: store.hintCounts() } : info;
  };
  routes.addSeed = (request) => gossip.handle(request);
  const replicaRoute = (request: Parameters<ReplicaService['handleReplicaRequest']>[0]) => replicaService.handleReplicaRequest(request);
  routes.replicaFetch = replicaRoute;
  routes.replicaStore = replicaRoute;
  routes.storeMany = replicaRoute;
  routes.fetchMany = replicaRoute;
  routes.coordinate = replicaRoute;
  routes.flushAll = replicaRoute;
  const treeRoute = (request: Parameters<AntiEntropy['handle']>[0]) => {
    if (!isTreeRequest(request)) throw new KaiError('KAI_INTERNAL', `anti-entropy does not answer ${String(request)}`);
    return antiEntropy.handle(request);
  };
  routes.treeRoots = treeRoute;
  routes.treeNodes = treeRoute;
  routes.segmentKeys = treeRoute;
  return {
    nodeId,
    gossip,
    coordinator,
    dispatcher,
    stats,
    local,
    handoff,
    antiEntropy,
    reaper,
    ring,
    start() {
      gossip.start();
      handoff.start();
      antiEntropy.start();
      reaper.start();
    },
    stop() {
      gossip.stop();
      handoff.stop();
      antiEntropy.stop();
      reaper.stop();
      dispatcher.cancelTimers();
    },
  };
}

/**
 * Tells every other member that is up about a flush_all, so the whole cluster empties; resolves
 * once each has answered or failed, never rejects. A member that is down misses it (see
 * docs/protocol.md).
 */
async function broadcastFlush(
  gossip: Gossip,
  nodeId: string,
  transport: Pick<Transport, 'request'>,
  deadlineMs: number,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  const peers = gossip.membership.members.filter((member) => member.id !== nodeId && member.status === 'up');
  const outcomes = await Promise.allSettled(
    peers.map((peer) => transport.request(peer.address, { type: 'flushAll', deadlineMs }, timeoutMs)),
  );
  outcomes.forEach((outcome, index) => {
    if (outcome.status === 'rejected') log.warn({ peer: peers[index].id, err: outcome.reason }, 'flush_all not delivered');
  });
}
