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
import { ringMemberIds } from '../claimant';
import { RingKeeper, ringNotePersistence, type RingStatePersistence } from '../claimant/keeper';
import { Reaper } from '../antientropy/reaper';
import type { Settings } from '../config/settings';
import { Coordinator, type QuorumWaitTimer } from '../coordinator';
import { RemoteReplica } from '../coordinator/remote-replica';
import { LocalReplica, type Replica } from '../coordinator/replica';
import { ReplicaService } from '../coordinator/replica-service';
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import { Gossip, notePersistence, type MembershipPersistence } from '../gossip';
import { Handoff } from '../handoff';
import { listClusterKeys, type RecordPage } from '../listing';
import { logCounters, setLogLevel, type Logger } from '../log';
import { logLevelForVerbosity } from '../logging/verbosity';
import { findMember, isUp, membersUnvouched, seedsAwaited } from '../membership';
import { effectiveQuorum } from '../quorum';
import { preferenceList, type Ring } from '../ring';
import { frameBytesMaxFor, frameHeadroomBytes } from '../rpc/frames';
import type { RequestRoutes } from '../rpc/router';
import type { Transport } from '../rpc/transport';
import type { SqliteStore, StorageHealth } from '../storage/sqlite';
import type { WireStorageHealth } from '../rpc/messages';
import { Transfer } from '../transfer';
import { Admission } from './admission';
import { ConnectionTable } from './connection-table';
import { KeyActivity } from './key-activity';
import { locateKey } from './locate';
import { PrefixStatistics } from './prefix-stats';
import { ReceiveBudget } from './receive-budget';
import { Dispatcher } from './dispatch';
import { ringChangeRoute } from './ring-changes';
import { generalStatistics, kaiStatistics, settingsStatistics } from './statistics';
import { NodeStats } from './stats';
import { storageWatcher } from './storage-watch';
import { KeyDumpSlots, type ConnectionTools } from './text-tools';
import { reportedVersion } from './version';
import { Watchers } from './watchers';

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
  /** Where the ring state survives a restart; the store's notes by default. */
  readonly ringPersistence?: RingStatePersistence;
  /** Called once this node has left the ring after `kai leave` and handed off what it held. */
  readonly onLeft?: () => void;
  /** The node's start time, for `stats uptime`. */
  readonly startedAtMs?: number;
  /** How long a request waits for its quorum; requestTimeoutMs by default. */
  readonly requestTimeoutMs?: number;
  /** Told how long each quorum wait took (the metrics); none when absent. */
  readonly quorumWaits?: QuorumWaitTimer;
}

export interface ComposedNode {
  readonly nodeId: string;
  /** The bound on client requests in flight over all connections. */
  readonly admission: Admission;
  readonly receiveBudget: ReceiveBudget;
  readonly gossip: Gossip;
  readonly coordinator: Coordinator;
  readonly dispatcher: Dispatcher;
  readonly stats: NodeStats;
  readonly local: LocalReplica;
  readonly handoff: Handoff;
  readonly antiEntropy: AntiEntropy;
  readonly reaper: Reaper;
  readonly keeper: RingKeeper;
  readonly transfer: Transfer;
  /** What text connections' key dumps and watch use. */
  readonly tools: ConnectionTools;
  /** The memcache port's connections, listed by `stats conns`; the memcache server fills it. */
  readonly connectionTable: ConnectionTable;
  /** The current ring. */
  ring(): Ring;
  /** Why the node refuses client requests for now (seeds not heard from, no ring yet), or undefined. */
  notReady(): string | undefined;
  /** The rows of a `stats` group ('' for memcached's general one, 'kai', ...); undefined for an unknown group. */
  statistics(group: string): ReadonlyArray<readonly [string, string]> | undefined;
  /** Starts gossip and the background shells. */
  start(): void;
  /** Stops every timer; the caller closes the transport and the store. */
  stop(): void;
}

export function composeNode(parts: NodeParts): ComposedNode {
  const { settings, nodeId, env, log, transport, store, routes } = parts;
  const timeoutMs = parts.requestTimeoutMs ?? requestTimeoutMs;
  const startedAtMs = parts.startedAtMs ?? env.nowMs();
  // Gossip carries the ring state; the keeper reads the membership gossip keeps, so it comes second.
  let keeper: RingKeeper | undefined;
  const gossip = new Gossip({
    self: { id: nodeId, address: nodeId, zone: settings.zone, weight: settings.weight },
    env,
    transport,
    log: log.child({ component: 'gossip' }),
    persistence: parts.persistence ?? notePersistence(store),
    seeds: settings.seeds,
    intervalMs: settings.gossipIntervalMs,
    ringLayout: { buckets: settings.buckets },
    companion: { toWire: () => keeper?.toWire(), merge: (value, from) => keeper?.merge(value, from) },
  });
  const ringKeeper = new RingKeeper({
    selfId: nodeId,
    env,
    log: log.child({ component: 'claimant' }),
    buckets: settings.buckets,
    replicas: settings.n,
    membership: () => gossip.membership,
    persistence: parts.ringPersistence ?? ringNotePersistence(store),
    intervalMs: settings.gossipIntervalMs,
    seedsHeard: () => gossip.membership.members.every((member) => member.confirmed),
  });
  keeper = ringKeeper;
  const ring = (): Ring => ringKeeper.ring();
  const siblings = { conflictResolution: settings.conflictResolution, siblingsMax: settings.siblingsMax };
  const local = new LocalReplica(nodeId, store, env, settings.maxItemSize, siblings, settings.reapGraceMs);
  const remoteReplicas = new Map<string, RemoteReplica>();
  const remoteOf = (memberId: string): RemoteReplica => {
    // The member's address can change (a restart on another port), so the cache follows it.
    const address = findMember(gossip.membership, memberId)?.address ?? memberId;
    let replica = remoteReplicas.get(memberId);
    if (replica === undefined || replica.address !== address) {
      replica = new RemoteReplica(memberId, address, transport, { requestTimeoutMs: timeoutMs, valueBytesMax: settings.maxItemSize, env });
      remoteReplicas.set(memberId, replica);
    }
    return replica;
  };
  const replicaOf = (memberId: string): Replica => (memberId === nodeId ? local : remoteOf(memberId));
  // Preference lists skip the members the failure detector holds down.
  const memberIsUp = (memberId: string): boolean => isUp(gossip.membership, memberId);
  const replicas = (): number => effectiveQuorum(settings, ring().members.length).n;
  /**
   * Seeds this node waits for: those not yet heard from and not yet timed out; and, while it has
   * never held a ring other than its own first one, every seed never heard from. A new node whose
   * seeds are cut off would otherwise serve alone, as a cluster of one, keys the cluster holds.
   * `kai remove` forgets a mistyped seed.
   */
  const awaitedSeeds = (): string[] => {
    const awaited = seedsAwaited(gossip.membership);
    const state = ringKeeper.state;
    if (awaited.length > 0 || state.version > 0 || state.owners.some((owner) => owner !== nodeId)) return awaited;
    return gossip.membership.members.filter((member) => !member.confirmed).map((member) => member.address);
  };
  const ready = (): boolean => awaitedSeeds().length === 0;
  /** Why the node refuses client requests for now, or undefined once it serves. */
  const notReady = (): string | undefined => {
    if (!ready()) return `joining: waiting to hear from ${awaitedSeeds().join(', ')}`;
    // Linked to other nodes before any founded a ring: the one that founds it is about to.
    if (ringKeeper.state.claimant === '' && ringKeeper.view().alone !== true) return 'joining: waiting for the first ring';
    return undefined;
  };
  // While a bucket moves, its old replicas and its new ones all keep their copies.
  const primariesOf = (bucket: number): readonly string[] => {
    const move = ringKeeper.moveOf(bucket);
    if (move === undefined) return preferenceList(ring(), bucket, replicas());
    return [...new Set([...move.from, ...move.to])];
  };
  const moving = (bucket: number) => {
    const move = ringKeeper.moveOf(bucket);
    const transition = ringKeeper.transition();
    if (move === undefined || transition === undefined) return undefined;
    return { next: transition.next, switched: ringKeeper.switched(move) };
  };
  const coordinator = new Coordinator({
    nodeId,
    env,
    ring,
    moving,
    isUp: memberIsUp,
    localServes: () => store.serving,
    replicaOf,
    quorum: settings,
    requestTimeoutMs: timeoutMs,
    siblings,
    notReady,
    readRepairsPerSecond: settings.readRepairsPerSecond,
    quorumWaits: parts.quorumWaits,
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
    // Copies of buckets this node does not own go only once every member routes by this ring.
    releaseReady: () => ringKeeper.state.next === null && ringKeeper.settled(timeoutMs),
    isRingMember: (memberId) => ringMemberIds(ringKeeper.state).includes(memberId),
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
    // A tombstone is not reaped while its bucket may be on its way to a replica that lacks it.
    ready: () => ready() && ringKeeper.state.next === null,
  });
  const transfer = new Transfer({
    env,
    log: log.child({ component: 'transfer' }),
    nodeId,
    keeper: ringKeeper,
    store,
    storeLocally: (items) => local.storeMany(items),
    peerOf: remoteOf,
    isUp: memberIsUp,
    keysPerSecond: settings.handoffKeysPerSecond,
    bytesPerSecond: settings.handoffBytesPerSecond,
    requestTimeoutMs: timeoutMs,
    replyBytesMax,
  });
  // A membership change may let the claimant plan (a joiner heard of, a member back up).
  gossip.onChange(() => ringKeeper.stepSoon());
  ringKeeper.onChange((state, previous) => {
    if (state.version !== previous.version) transfer.pump();
  });
  const leaveWatch = watchLeave(ringKeeper, gossip, timeoutMs, env, parts.onLeft);
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
  store.onStorageEvent(storageWatcher(log.child({ component: 'storage' }), gossip));
  const stats = new NodeStats();
  const admission = new Admission();
  const receiveBudget = new ReceiveBudget(settings.receiveBufferBytesMax);
  const watchers = new Watchers(() => env.nowMs(), stats);
  const activity = new KeyActivity(new PrefixStatistics(), watchers);
  const connectionTable = new ConnectionTable();
  /** A bucket's replicas that may be asked for its keys: this node first when it is one. */
  const listingSourcesOf = (bucket: number): string[] => {
    const replicasUp = primariesOf(bucket).filter((memberId) => memberId === nodeId || memberIsUp(memberId));
    return replicasUp.includes(nodeId) ? [nodeId, ...replicasUp.filter((memberId) => memberId !== nodeId)] : replicasUp;
  };
  const readListingPage = async (memberId: string, bucket: number, afterKey: Buffer, limit: number): Promise<RecordPage> => {
    // A peer answers within the internal API's reply bytes; this node's own pages keep the same bound.
    if (memberId !== nodeId) return remoteOf(memberId).bucketPage(bucket, afterKey, limit);
    const page = store.bucketPage(bucket, afterKey, limit, replyBytesMax);
    return { items: page.records, more: page.more };
  };
  const tools: ConnectionTools = {
    watchers,
    keyDumps: new KeyDumpSlots(),
    listKeys: () =>
      listClusterKeys({
        buckets: settings.buckets,
        sourcesOf: listingSourcesOf,
        readPage: readListingPage,
        visible: (versions, nowMs) => coordinator.flushDeadline.visible(versions, nowMs),
        nowMs: () => env.nowMs(),
        notReady,
      }),
  };
  const statistics = (group: string): ReadonlyArray<readonly [string, string]> | undefined => {
    if (group === '') return generalStatistics(stats, settings, store.counts(), startedAtMs, env.nowMs(), watchers.count);
    if (group === 'settings') return settingsStatistics(settings, { verbosity: dispatcher.verbosity, detailEnabled: dispatcher.detailEnabled });
    if (group === 'conns') return connectionTable.statistics(env.nowMs());
    if (group === 'kai') return kaiStatistics(coordinator, { store, handoff, antiEntropy, reaper, transfer, admission, receiveBudget, log: logCounters(log) });
    return undefined;
  };
  const dispatcher: Dispatcher = new Dispatcher({
    coordinator,
    env,
    stats,
    version: reportedVersion,
    activity,
    onVerbosity: (level) => setLogLevel(log, logLevelForVerbosity(settings.logLevel, level)),
    flushAll: () => store.removeAll(),
    broadcastFlush: (deadlineMs) => broadcastFlush(gossip, nodeId, transport, deadlineMs, timeoutMs, log),
    statistics: (group) => statistics(group),
  });
  const replicaService = new ReplicaService({
    coordinator,
    local,
    flushUntil: (deadlineMs) => dispatcher.flushUntil(deadlineMs),
    replyBatchBytesMax: replyBytesMax,
    buckets: settings.buckets,
    env,
  });
  routes.gossip = (request) => gossip.handle(request);
  routes.nodeInfo = () => {
    const info = gossip.nodeInfo();
    if (info.type !== 'nodeInfo') return info;
    const refusing = notReady();
    return {
      ...info,
      hints: store.hintCounts(),
      ring: ringKeeper.toWire(),
      transfers: transfer.progress(),
      seeds: seedsAwaited(gossip.membership),
      unvouched: membersUnvouched(gossip.membership),
      quorum: { n: settings.n, r: settings.r, w: settings.w },
      storage: wireStorageHealth(store.health()),
      ...(refusing === undefined ? {} : { refusing }),
    };
  };
  routes.addSeed = (request) => {
    // check-node / kai join asks this node to be in the cluster, even one that left it before.
    ringKeeper.joinAsked();
    return gossip.handle(request);
  };
  routes.bucketPage = (request) => transfer.page(request.bucket, request.afterKey, request.limit);
  routes.locate = (request) =>
    locateKey(request.key, { nodeId, quorum: settings, ring, moving, isUp: memberIsUp, localServes: () => store.serving, replicaOf, notReady });
  routes.ringChange = ringChangeRoute(gossip, ringKeeper, () => routes.nodeInfo!({ type: 'nodeInfo' }));
  const replicaRoute = (request: Parameters<ReplicaService['handleReplicaRequest']>[0]) => replicaService.handleReplicaRequest(request);
  routes.replicaFetch = replicaRoute;
  routes.replicaStore = replicaRoute;
  routes.storeMany = replicaRoute;
  routes.fetchMany = replicaRoute;
  routes.digestMany = replicaRoute;
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
    admission,
    receiveBudget,
    gossip,
    coordinator,
    dispatcher,
    stats,
    local,
    handoff,
    antiEntropy,
    reaper,
    keeper: ringKeeper,
    transfer,
    tools,
    connectionTable,
    ring,
    notReady,
    statistics,
    start() {
      gossip.start();
      ringKeeper.start();
      transfer.start();
      handoff.start();
      antiEntropy.start();
      reaper.start();
    },
    stop() {
      gossip.stop();
      ringKeeper.stop();
      transfer.stop();
      leaveWatch.cancel();
      handoff.stop();
      antiEntropy.stop();
      reaper.stop();
      dispatcher.cancelTimers();
    },
  };
}

/**
 * After `kai leave`: once the ring no longer holds this node and every member routes by that ring,
 * the node tells the cluster it is gone (a leaving status no restart of its old incarnation can
 * undo) and calls `onLeft`, once.
 */
function watchLeave(keeper: RingKeeper, gossip: Gossip, timeoutMs: number, env: Env, onLeft: (() => void) | undefined): TimerHandle {
  let left = false;
  const check = (): void => {
    if (left) return;
    const state = keeper.state;
    if ((state.leaving[gossip.selfId] ?? 0) % 2 === 0) return;
    if (ringMemberIds(state).includes(gossip.selfId) || !keeper.settled(timeoutMs)) return;
    left = true;
    gossip.leaveCluster();
    onLeft?.();
  };
  keeper.onChange(check);
  return env.every(1000, check);
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

function wireStorageHealth(health: StorageHealth): WireStorageHealth {
  return {
    state: health.state,
    reason: health.reason ?? '',
    commitFailures: health.commitFailures,
    operationsFailed: health.operationsFailed,
    diskFullFailures: health.diskFullFailures,
    workerRestarts: health.workerRestarts,
    lastError: health.lastError ?? '',
  };
}
