/**
 * What `stats` answers, group by group: memcached's general and settings groups, and kai's own
 * (`stats kai`), gathered from the parts of the node that keep each counter.
 */
import type { Settings } from '../config/settings';
import type { AntiEntropy } from '../antientropy';
import type { Reaper } from '../antientropy/reaper';
import type { Coordinator } from '../coordinator';
import type { Handoff } from '../handoff';
import type { LogCounters } from '../log';
import type { SqliteStore, StorageHealth } from '../storage/sqlite';
import type { Transfer } from '../transfer';
import type { Admission } from './admission';
import type { ReceiveBudget } from './receive-budget';
import type { NodeStats } from './stats';
import { kaiVersion, reportedVersion } from './version';

type Rows = [string, string][];

function rowsOf(rows: readonly (readonly [string, number | string])[]): Rows {
  return rows.map(([name, value]) => [name, String(value)]);
}

function cpuSeconds(microseconds: number): string {
  return (microseconds / 1e6).toFixed(6);
}

export function generalStatistics(
  stats: NodeStats,
  settings: Settings,
  counts: { items: number; bytes: number },
  startedAtMs: number,
  nowMs: number,
  watchers: number,
): Rows {
  const usage = process.resourceUsage();
  return rowsOf([
    ['pid', process.pid],
    ['uptime', Math.floor((nowMs - startedAtMs) / 1000)],
    ['time', Math.floor(nowMs / 1000)],
    ['version', reportedVersion],
    // kai's own release, which `version` carries only after memcached's protocol version.
    ['kai_version', kaiVersion],
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
    // memcached lists idle_kicks only when an idle timeout is set.
    ...(settings.idleTimeoutMs > 0 ? [['idle_kicks', stats.idleKicks] as const] : []),
    ['bytes_read', stats.bytesRead],
    ['bytes_written', stats.bytesWritten],
    // memcached's memory limit (-m); kai's nearest is the read cache's bound (--cache-size).
    ['limit_maxbytes', settings.cacheSize],
    ['threads', 1],
    ['bytes', counts.bytes],
    ['curr_items', counts.items],
    ['total_items', stats.totalItems],
    ['evictions', 0],
    ['log_watcher_skipped', stats.logWatcherSkipped],
    ['log_watcher_sent', stats.logWatcherSent],
    ['log_watchers', watchers],
  ]);
}

/** What `stats settings` shows that commands change while the node runs. */
export interface RuntimeSettings {
  /** memcached's verbosity level, as `verbosity` last set it. */
  readonly verbosity: number;
  /** Whether `stats detail on` is in force. */
  readonly detailEnabled: boolean;
}

export function settingsStatistics(settings: Settings, runtime: RuntimeSettings): Rows {
  return rowsOf([
    ['maxbytes', settings.cacheSize],
    ['maxconns', settings.maxConnections],
    ['tcpport', settings.memcachePort],
    ['udpport', 0],
    ['inter', settings.hostname],
    ['verbosity', runtime.verbosity],
    ['evictions', 'off'],
    ['item_size_max', settings.maxItemSize],
    ['cas_enabled', 'yes'],
    ['num_threads', 1],
    ['binding_protocol', 'ascii'],
    // memcached names the ascii auth file here, or says no.
    ['auth_enabled_sasl', settings.authFile === undefined ? 'no' : 'yes'],
    ['auth_enabled_ascii', settings.authFile ?? 'no'],
    // memcached counts its idle timeout in whole seconds; kai's is in ms.
    ['idle_timeout', Math.ceil(settings.idleTimeoutMs / 1000)],
    ['detail_enabled', runtime.detailEnabled ? 'yes' : 'no'],
  ]);
}

export interface HealingParts {
  readonly store: SqliteStore;
  readonly handoff: Handoff;
  readonly antiEntropy: AntiEntropy;
  readonly reaper: Reaper;
  readonly transfer: Transfer;
  readonly admission: Admission;
  /** What logging lost or held back. */
  readonly log: LogCounters;
  readonly receiveBudget: ReceiveBudget;
}

/** The store's health: `storage_state` is `ok`, or `failed` once it refuses every write. */
function storageRows(health: StorageHealth): (readonly [string, number | string])[] {
  return [
    ['storage_state', health.state],
    ['storage_commit_failures', health.commitFailures],
    ['storage_operations_failed', health.operationsFailed],
    ['storage_disk_full_failures', health.diskFullFailures],
    ['storage_workers_lost', health.workersLost],
    ['storage_worker_restarts', health.workerRestarts],
  ];
}

/**
 * `stats kai`: the coordinator's counters, then hinted handoff (hints pending in all, and per
 * target as `hints_pending:<node>` with the count and bytes), bucket transfers, anti-entropy and reaping,
 * then the store's health and what logging dropped or suppressed.
 */
export function kaiStatistics(coordinator: Coordinator, healing: HealingParts): ReadonlyArray<readonly [string, string]> {
  const { store, handoff, antiEntropy, reaper, transfer } = healing;
  const transferProgress = transfer.progress();
  const hintCounts = store.hintCounts().sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  const pending = hintCounts.reduce((sum, hint) => sum + hint.count, 0);
  const pendingBytes = hintCounts.reduce((sum, hint) => sum + hint.bytes, 0);
  return [
    ['kai_version', kaiVersion],
    ...coordinator.statistics(),
    ...rowsOf([
      ['hints_pending', pending],
      ['hints_pending_bytes', pendingBytes],
      ...hintCounts.map((hint): [string, string] => [`hints_pending:${hint.target}`, `${hint.count} ${hint.bytes}`]),
      ['hints_delivered', handoff.counters.hintsDelivered],
      ['hints_refused', store.hintsRefused],
      ['handoff_copies_dropped', store.copiesDropped],
      ['handoff_failures', handoff.counters.deliveryFailures],
      ['handoff_strays_released', handoff.counters.straysReleased],
      ['transfer_buckets_received', transfer.counters.bucketsReceived],
      ['transfer_buckets_pending', transferProgress.bucketsToReceive - transferProgress.bucketsReceived],
      ['transfer_keys_moved', transfer.counters.keysMoved],
      ['transfer_bytes_moved', transfer.counters.bytesMoved],
      ['transfer_page_failures', transfer.counters.pageFailures],
      ['anti_entropy_exchanges', antiEntropy.counters.exchanges],
      ['anti_entropy_failures', antiEntropy.counters.exchangeFailures],
      ['anti_entropy_buckets_differing', antiEntropy.counters.bucketsDiffering],
      ['anti_entropy_keys_fetched', antiEntropy.counters.keysFetched],
      ['anti_entropy_keys_pushed', antiEntropy.counters.keysPushed],
      ['reaped', reaper.counters.reaped],
      ['reaps_deferred', reaper.counters.reapsDeferred],
      ['requests_in_flight', healing.admission.requestsInFlight],
      ['request_value_bytes_in_flight', healing.admission.valueBytesInFlight],
      ['admission_waits', healing.admission.waits],
      ...storageRows(store.health()),
      ['log_lines_dropped', healing.log.linesDropped],
      ['log_write_failures', healing.log.writeFailures],
      ['log_lines_suppressed', healing.log.linesSuppressed],
      ['receive_buffer_bytes', healing.receiveBudget.bytesHeld],
      ['receive_buffer_waits', healing.receiveBudget.waits],
    ]),
  ];
}
