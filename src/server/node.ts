/**
 * One kai node composed from its parts: storage, ring, coordinator, dispatcher and the memcache
 * front end, plus the background purge of expired items.
 */
import * as os from 'node:os';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings';
import { noAuthentication } from '../auth';
import { FileAuthenticator, type ReloadOutcome } from '../auth/auth-file';
import { Coordinator } from '../coordinator';
import { LocalReplica } from '../coordinator/replica';
import { realEnv, type Env, type TimerHandle } from '../env';
import { buildRing, type Ring } from '../ring';
import type { ReplicaStore } from '../storage';
import { openSqliteStore } from '../storage/sqlite';
import { Dispatcher } from './dispatch';
import { MemcacheServer } from './memcache-server';
import { NodeStats } from './stats';
import { kaiVersion } from './version';

/** A started node: where clients reach it, and how to stop it. */
export interface RunningNode {
  readonly memcachePort: number;
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

export function nodeIdOf(settings: Settings): string {
  return `${settings.hostname}:${settings.port}`;
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

function singleNodeCoordinator(nodeId: string, settings: Settings, store: ReplicaStore, env: Env): Coordinator {
  const ring: Ring = buildRing([{ id: nodeId, weight: 1 }], {
    buckets: settings.buckets,
    vnodesPerNode: settings.vnodes,
  });
  const local = new LocalReplica(nodeId, store, env, settings.maxItemSize);
  return new Coordinator({ nodeId, env, ring: () => ring, replicaOf: () => local, quorum: settings, requestTimeoutMs });
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

export async function startNode(settings: Settings, log: Logger, env: Env = realEnv): Promise<RunningNode> {
  const startedAtMs = env.nowMs();
  const nodeId = nodeIdOf(settings);
  // Read before storage opens, so a bad auth file leaves nothing to close.
  const fileAuthenticator = settings.authFile === undefined ? undefined : new FileAuthenticator(settings.authFile);
  const store = openSqliteStore({ dataDir: settings.dataDir, cacheBytesMax: settings.cacheSize });
  const stats = new NodeStats();
  const dispatcher: Dispatcher = new Dispatcher({
    coordinator: singleNodeCoordinator(nodeId, settings, store, env),
    env,
    stats,
    version: kaiVersion,
    flushAll: () => store.removeAll(),
    statistics: (group) => {
      if (group === '') return generalStatistics(stats, settings, store.counts(), startedAtMs, env.nowMs());
      if (group === 'settings') return settingsStatistics(settings, dispatcher.verbosity);
      return undefined;
    },
  });
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
    await store.close();
    throw error;
  }
  return {
    memcachePort,
    reloadAuthentication: () => fileAuthenticator && reloadAuthFile(fileAuthenticator, log),
    async stop() {
      purgeTimer.cancel();
      dispatcher.cancelTimers();
      await server.stop();
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
