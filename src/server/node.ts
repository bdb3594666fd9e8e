/**
 * One kai node composed from its parts: the internal API (a TcpTransport routing requests by
 * type), gossip membership and the ring it keeps current, storage, coordinator, dispatcher and
 * the memcache front end, plus the background purge of expired items.
 */
import * as os from 'node:os';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings';
import { noAuthentication } from '../auth';
import { FileAuthenticator, type ReloadOutcome } from '../auth/auth-file';
import { Coordinator } from '../coordinator';
import { LocalReplica, type Replica } from '../coordinator/replica';
import { realEnv, type Env, type TimerHandle } from '../env';
import { RemoteReplica } from '../coordinator/remote-replica';
import { ReplicaService } from '../coordinator/replica-service';
import { Gossip, notePersistence } from '../gossip';
import { findMember, isUp, ringMembers, type MembershipState } from '../membership';
import { buildRing, type Ring } from '../ring';
import { frameBytesMaxFor } from '../rpc/frames';
import { routeRequests, type RequestRoutes } from '../rpc/router';
import { TcpTransport } from '../rpc/tcp-transport';
import type { ReplicaStore } from '../storage';
import { openSqliteStore, type SqliteStore } from '../storage/sqlite';
import { Dispatcher } from './dispatch';
import { MemcacheServer } from './memcache-server';
import { NodeStats } from './stats';
import { kaiVersion } from './version';

/** A started node: where clients reach it, and how to stop it. */
export interface RunningNode {
  /** `hostname:port`, with the port actually bound. */
  readonly nodeId: string;
  readonly memcachePort: number;
  /** The internal API port actually bound. */
  readonly port: number;
  /**
   * Reads the auth file again (on SIGHUP) and logs the outcome. A bad file leaves the credentials
   * in force; undefined when the node has no auth file.
   */
  reloadAuthentication(): ReloadOutcome | undefined;
  /** Stops accepting, finishes in-flight requests and closes storage. */
  stop(): Promise<void>;
}

/** How often expired records are purged, and how many at most per pass (a pass blocks the loop). */
export const purgeIntervalMs = 1_000;
export const purgedPerPassMax = 1_000;
/** A request waits this long for its quorum before failing. */
export const requestTimeoutMs = 5_000;

/** The node id for an internal API port: with port 0 it is known only once the port is bound. */
export function nodeIdOf(settings: Settings, boundPort = settings.port): string {
  return `${settings.hostname}:${boundPort}`;
}

function cpuSeconds(microseconds: number): string {
  return (microseconds / 1e6).toFixed(6);
}

function generalStatistics(
  stats: NodeStats,
  settings: Settings,
  counts: { items: number; bytes: number },
  startedAtMs: number,
  nowMs: number,
): [string, string][] {
  const usage = process.resourceUsage();
  const rows: [string, number | string][] = [
    ['pid', process.pid],
    ['uptime', Math.floor((nowMs - startedAtMs) / 1000)],
    ['time', Math.floor(nowMs / 1000)],
    ['version', kaiVersion],
    ['pointer_size', 64],
    ['rusage_user', cpuSeconds(usage.userCPUTime)],
    ['rusage_system', cpuSeconds(usage.systemCPUTime)],
    ['max_connections', settings.maxConnections],
    ['curr_connections', stats.currConnections],
    ['total_connections', stats.totalConnections],
    ['rejected_connections', stats.rejectedConnections],
    ['cmd_get', stats.cmdGet],
    ['cmd_set', stats.cmdSet],
    ['cmd_flush', stats.cmdFlush],
    ['cmd_touch', stats.cmdTouch],
    ['get_hits', stats.getHits],
    ['get_misses', stats.getMisses],
    ['get_expired', stats.getExpired],
    ['delete_misses', stats.deleteMisses],
    ['delete_hits', stats.deleteHits],
    ['incr_misses', stats.incrMisses],
    ['incr_hits', stats.incrHits],
    ['decr_misses', stats.decrMisses],
    ['decr_hits', stats.decrHits],
    ['cas_misses', stats.casMisses],
    ['cas_hits', stats.casHits],
    ['cas_badval', stats.casBadval],
    ['touch_hits', stats.touchHits],
    ['touch_misses', stats.touchMisses],
    ['store_too_large', stats.storeTooLarge],
    ['auth_cmds', stats.authCmds],
    ['auth_errors', stats.authErrors],
    ['bytes_read', stats.bytesRead],
    ['bytes_written', stats.bytesWritten],
    ['limit_maxbytes', os.totalmem()],
    ['threads', 1],
    ['bytes', counts.bytes],
    ['curr_items', counts.items],
    ['total_items', stats.totalItems],
    ['evictions', 0],
  ];
  return rows.map(([name, value]) => [name, String(value)]);
}

function settingsStatistics(settings: Settings, verbosity: number): [string, string][] {
  const rows: [string, number | string][] = [
    ['maxbytes', os.totalmem()],
    ['maxconns', settings.maxConnections],
    ['tcpport', settings.memcachePort],
    ['udpport', 0],
    ['inter', settings.hostname],
    ['verbosity', verbosity],
    ['evictions', 'off'],
    ['item_size_max', settings.maxItemSize],
    ['cas_enabled', 'yes'],
    ['num_threads', 1],
    ['binding_protocol', 'ascii'],
    // memcached names the ascii auth file here, or says no.
    ['auth_enabled_sasl', settings.authFile === undefined ? 'no' : 'yes'],
    ['auth_enabled_ascii', settings.authFile ?? 'no'],
  ];
  return rows.map(([name, value]) => [name, String(value)]);
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

/**
 * Tells every other member that is up about a flush_all, so the whole cluster empties; resolves
 * once each has answered or failed, never rejects. A member that is down misses it (see
 * docs/protocol.md).
 */
async function broadcastFlush(gossip: Gossip, nodeId: string, transport: TcpTransport, deadlineMs: number, log: Logger): Promise<void> {
  const peers = gossip.membership.members.filter((member) => member.id !== nodeId && member.status === 'up');
  const outcomes = await Promise.allSettled(
    peers.map((peer) => transport.request(peer.address, { type: 'flushAll', deadlineMs }, requestTimeoutMs)),
  );
  outcomes.forEach((outcome, index) => {
    if (outcome.status === 'rejected') log.warn({ peer: peers[index].id, err: outcome.reason }, 'flush_all not delivered');
  });
}

/** Purges expired records every purgeIntervalMs, one pass at a time. */
function startPurging(store: ReplicaStore, env: Env, log: Logger): TimerHandle {
  let purging = false;
  return env.every(purgeIntervalMs, () => {
    if (purging) return;
    purging = true;
    store
      .purgeExpired(env.nowMs(), purgedPerPassMax)
      .catch((error: unknown) => log.warn({ err: error }, 'purge of expired items failed'))
      .finally(() => {
        purging = false;
      });
  });
}

/** Opens the internal API listener; requests are answered through `routes`, filled in later. */
async function openInternalApi(settings: Settings, log: Logger, env: Env, routes: RequestRoutes): Promise<TcpTransport> {
  const transport = new TcpTransport({
    host: settings.hostname,
    port: settings.port,
    env,
    // A frame holds every sibling of a key at the largest value size, plus the one being written.
    frameBytesMax: frameBytesMaxFor(settings.maxItemSize, settings.siblingsMax + 1),
    log,
  });
  try {
    await transport.serve(routeRequests(routes));
  } catch (error) {
    await transport.close();
    throw error;
  }
  return transport;
}

function startGossip(settings: Settings, nodeId: string, transport: TcpTransport, store: SqliteStore, log: Logger, env: Env): Gossip {
  return new Gossip({
    self: { id: nodeId, address: nodeId, zone: settings.zone, weight: settings.weight },
    env,
    transport,
    log: log.child({ component: 'gossip' }),
    persistence: notePersistence(store),
    seeds: settings.seeds,
    intervalMs: settings.gossipIntervalMs,
    ringLayout: { buckets: settings.buckets, vnodes: settings.vnodes },
  });
}

export async function startNode(settings: Settings, log: Logger, env: Env = realEnv): Promise<RunningNode> {
  const startedAtMs = env.nowMs();
  // Read before anything opens, so a bad auth file leaves nothing to close.
  const fileAuthenticator = settings.authFile === undefined ? undefined : new FileAuthenticator(settings.authFile);
  /**
   * The internal API by request type. Gossip answers membership requests; the replica handler
   * answers `replicaFetch`, `replicaStore` and `coordinate` once it is composed here.
   */
  const routes: RequestRoutes = {};
  const transport = await openInternalApi(settings, log, env, routes);
  const nodeId = nodeIdOf(settings, transport.port);
  let store: SqliteStore;
  try {
    store = openSqliteStore({ dataDir: settings.dataDir, cacheBytesMax: settings.cacheSize });
  } catch (error) {
    await transport.close();
    throw error;
  }
  const gossip = startGossip(settings, nodeId, transport, store, log, env);
  routes.gossip = (request) => gossip.handle(request);
  routes.nodeInfo = (request) => gossip.handle(request);
  routes.addSeed = (request) => gossip.handle(request);
  const ring = liveRing(gossip, settings, log);
  const siblings = { conflictResolution: settings.conflictResolution, siblingsMax: settings.siblingsMax };
  const local = new LocalReplica(nodeId, store, env, settings.maxItemSize, siblings);
  const remoteReplicas = new Map<string, RemoteReplica>();
  const replicaOf = (memberId: string): Replica => {
    if (memberId === nodeId) return local;
    // The member's address can change (a restart on another port), so the cache follows it.
    const address = findMember(gossip.membership, memberId)?.address ?? memberId;
    let replica = remoteReplicas.get(memberId);
    if (replica === undefined || replica.address !== address) {
      replica = new RemoteReplica(memberId, address, transport, { requestTimeoutMs, valueBytesMax: settings.maxItemSize });
      remoteReplicas.set(memberId, replica);
    }
    return replica;
  };
  // Preference lists skip the members the failure detector holds down.
  const memberIsUp = (memberId: string): boolean => isUp(gossip.membership, memberId);
  const coordinator = new Coordinator({
    nodeId,
    env,
    ring,
    isUp: memberIsUp,
    replicaOf,
    quorum: settings,
    requestTimeoutMs,
    siblings,
    // Seeds not yet heard from count: until they answer, this node cannot meet N on its own.
    clusterSize: () => gossip.membership.members.filter((member) => member.status !== 'leaving').length,
  });
  const stats = new NodeStats();
  const dispatcher: Dispatcher = new Dispatcher({
    coordinator,
    env,
    stats,
    version: kaiVersion,
    flushAll: () => store.removeAll(),
    broadcastFlush: (deadlineMs) => broadcastFlush(gossip, nodeId, transport, deadlineMs, log),
    statistics: (group) => {
      if (group === '') return generalStatistics(stats, settings, store.counts(), startedAtMs, env.nowMs());
      if (group === 'settings') return settingsStatistics(settings, dispatcher.verbosity);
      return undefined;
    },
  });
  const replicaService = new ReplicaService({ coordinator, local, flushUntil: (deadlineMs) => dispatcher.flushUntil(deadlineMs) });
  routes.replicaFetch = (request) => replicaService.handleReplicaRequest(request);
  routes.replicaStore = (request) => replicaService.handleReplicaRequest(request);
  routes.coordinate = (request) => replicaService.handleReplicaRequest(request);
  routes.flushAll = (request) => replicaService.handleReplicaRequest(request);
  const server = new MemcacheServer({
    dispatcher,
    stats,
    log,
    env,
    valueBytesMax: settings.maxItemSize,
    connectionsMax: settings.maxConnections,
    authenticator: fileAuthenticator ?? noAuthentication,
  });
  const purgeTimer = startPurging(store, env, log);
  let memcachePort: number;
  try {
    memcachePort = await server.listen(settings.memcachePort, settings.hostname);
  } catch (error) {
    purgeTimer.cancel();
    await transport.close();
    await store.close();
    throw error;
  }
  gossip.start();
  log.info({ nodeId, seeds: settings.seeds, members: gossip.members.length }, 'gossip started');
  return {
    nodeId,
    memcachePort,
    port: transport.port,
    reloadAuthentication: () => fileAuthenticator && reloadAuthFile(fileAuthenticator, log),
    async stop() {
      gossip.stop();
      purgeTimer.cancel();
      dispatcher.cancelTimers();
      await server.stop();
      await transport.close();
      await store.close();
      log.info({ nodeId }, 'node stopped');
    },
  };
}

function reloadAuthFile(authenticator: FileAuthenticator, log: Logger): ReloadOutcome {
  const outcome = authenticator.reload();
  if (outcome.ok) log.info({ authFile: authenticator.file, entries: outcome.entries }, 'auth file reloaded');
  else log.error({ authFile: authenticator.file, reason: outcome.reason }, 'auth file reload failed; the previous credentials stay in force');
  return outcome;
}
