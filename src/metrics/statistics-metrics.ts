/**
 * The memcache `stats` counters as Prometheus metrics. There is one set of counters: the rows
 * `stats` and `stats kai` answer (src/server/statistics.ts) are read at scrape time and each
 * numeric row becomes a sample of the metric this table names, so /metrics and `stats` can
 * never disagree. memcached's command counters take memcached_exporter's shape,
 * `commands_total{command, status}`, so dashboards made for it read kai's too.
 */
import type { Registry } from 'prom-client';
import { readGauge, readLabelled, readMetric } from './collected';

export type StatisticsRows = ReadonlyArray<readonly [string, string]>;

/** The `stats` groups the metrics read: memcached's general one and kai's own. */
export const statisticsGroups = ['', 'kai'] as const;
export type StatisticsGroup = (typeof statisticsGroups)[number];

interface StatMetric {
  /** The row's name in `stats` (group ''), or in `stats kai`. */
  readonly stat: string;
  readonly group: StatisticsGroup;
  readonly metric: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly labels?: Readonly<Record<string, string>>;
}

function general(stat: string, metric: string, type: StatMetric['type'], help: string, labels?: Record<string, string>): StatMetric {
  return { stat, group: '', metric, type, help, labels };
}

function kai(stat: string, metric: string, type: StatMetric['type'], help: string, labels?: Record<string, string>): StatMetric {
  return { stat, group: 'kai', metric, type, help, labels };
}

const commandsHelp = "memcached's command counters (memcached_exporter's shape): set and flush count every command under status hit";

function command(stat: string, name: string, status: string): StatMetric {
  return general(stat, 'kai_commands_total', 'counter', commandsHelp, { command: name, status });
}

/** Every numeric `stats` and `stats kai` row and the metric sample it becomes. */
export const statMetrics: readonly StatMetric[] = [
  general('curr_connections', 'kai_memcache_connections', 'gauge', 'Client connections open on the memcache port'),
  general('total_connections', 'kai_memcache_connections_total', 'counter', 'Client connections accepted on the memcache port'),
  general('rejected_connections', 'kai_memcache_connections_rejected_total', 'counter', 'Client connections refused past --max-connections'),
  command('get_hits', 'get', 'hit'),
  command('get_misses', 'get', 'miss'),
  command('cmd_set', 'set', 'hit'),
  command('cmd_flush', 'flush', 'hit'),
  command('delete_hits', 'delete', 'hit'),
  command('delete_misses', 'delete', 'miss'),
  command('incr_hits', 'incr', 'hit'),
  command('incr_misses', 'incr', 'miss'),
  command('decr_hits', 'decr', 'hit'),
  command('decr_misses', 'decr', 'miss'),
  command('cas_hits', 'cas', 'hit'),
  command('cas_misses', 'cas', 'miss'),
  command('cas_badval', 'cas', 'badval'),
  command('touch_hits', 'touch', 'hit'),
  command('touch_misses', 'touch', 'miss'),
  general('get_expired', 'kai_get_expired_total', 'counter', 'Reads that found only expired values'),
  general('store_too_large', 'kai_store_too_large_total', 'counter', 'Storage commands refused for a value over --max-item-size'),
  general('auth_cmds', 'kai_auth_commands_total', 'counter', 'Authentication attempts'),
  general('auth_errors', 'kai_auth_errors_total', 'counter', 'Authentication attempts refused'),
  general('idle_kicks', 'kai_idle_kicks_total', 'counter', 'Client connections closed for idling past --idle-timeout'),
  general('bytes_read', 'kai_memcache_read_bytes_total', 'counter', 'Bytes read from clients'),
  general('bytes_written', 'kai_memcache_written_bytes_total', 'counter', 'Bytes written to clients'),
  general('curr_items', 'kai_items', 'gauge', 'Keys this node holds, committed'),
  general('bytes', 'kai_items_bytes', 'gauge', 'Bytes of the values this node holds, committed'),
  general('total_items', 'kai_items_stored_total', 'counter', 'Items stored (memcached total_items)'),
  general('log_watchers', 'kai_watchers', 'gauge', 'Connections watching the node (watch)'),
  general('log_watcher_sent', 'kai_watcher_lines_sent_total', 'counter', 'Lines written to watchers'),
  general('log_watcher_skipped', 'kai_watcher_lines_skipped_total', 'counter', 'Lines dropped because a watcher was behind'),
  kai('siblings_dropped', 'kai_siblings_dropped_total', 'counter', 'Siblings dropped past --siblings-max'),
  kai('reads_with_siblings', 'kai_reads_with_siblings_total', 'counter', 'Reads that answered more than one sibling'),
  kai('writes_forwarded', 'kai_writes_forwarded_total', 'counter', 'Writes forwarded to a node of the preference list of their key'),
  kai('writes_coordinated_for_peers', 'kai_writes_coordinated_for_peers_total', 'counter', 'Writes this node coordinated for a peer'),
  kai('context_reads', 'kai_context_reads_total', 'counter', 'Writes that first read the other replicas'),
  kai('read_quorum_unmet', 'kai_quorum_unmet_total', 'counter', 'Requests that failed for want of their quorum', { kind: 'read' }),
  kai('write_quorum_unmet', 'kai_quorum_unmet_total', 'counter', 'Requests that failed for want of their quorum', { kind: 'write' }),
  kai('digest_mismatches', 'kai_digest_mismatches_total', 'counter', 'Digest reads whose replica held a version the values lacked'),
  kai('read_repairs', 'kai_read_repairs_total', 'counter', 'Stale replicas repaired by reads', { outcome: 'repaired' }),
  kai('read_repairs_skipped', 'kai_read_repairs_total', 'counter', 'Stale replicas repaired by reads', { outcome: 'skipped' }),
  kai('read_repairs_failed', 'kai_read_repairs_total', 'counter', 'Stale replicas repaired by reads', { outcome: 'failed' }),
  kai('hints_pending', 'kai_hints_pending', 'gauge', 'Hinted copies held for down nodes, waiting for handoff'),
  kai('hints_pending_bytes', 'kai_hints_pending_bytes', 'gauge', 'Bytes of hinted copies held for down nodes'),
  kai('hints_delivered', 'kai_hints_delivered_total', 'counter', 'Hinted copies handed to their returning node'),
  kai('hints_refused', 'kai_hints_refused_total', 'counter', 'Hinted writes refused past the hints per target bounds'),
  kai('handoff_copies_dropped', 'kai_handoff_copies_dropped_total', 'counter', 'Fallback copies dropped once delivered'),
  kai('handoff_failures', 'kai_handoff_failures_total', 'counter', 'Handoff batches that failed'),
  kai('handoff_strays_released', 'kai_handoff_strays_released_total', 'counter', 'Copies of buckets this node no longer owns, handed on and dropped'),
  kai('transfer_buckets_received', 'kai_transfer_buckets_received_total', 'counter', 'Buckets received in full during ring changes'),
  kai('transfer_buckets_pending', 'kai_transfer_buckets_pending', 'gauge', 'Buckets this node still has to receive under the ring change in progress'),
  kai('transfer_keys_moved', 'kai_transfer_keys_total', 'counter', 'Keys received during ring changes'),
  kai('transfer_bytes_moved', 'kai_transfer_bytes_total', 'counter', 'Bytes received during ring changes'),
  kai('transfer_page_failures', 'kai_transfer_page_failures_total', 'counter', 'Transfer pages that failed and will be tried again'),
  kai('anti_entropy_exchanges', 'kai_anti_entropy_exchanges_total', 'counter', 'Merkle tree exchanges with peers'),
  kai('anti_entropy_failures', 'kai_anti_entropy_failures_total', 'counter', 'Merkle tree exchanges that failed'),
  kai('anti_entropy_buckets_differing', 'kai_anti_entropy_buckets_differing_total', 'counter', 'Buckets found differing by exchanges'),
  kai('anti_entropy_keys_fetched', 'kai_anti_entropy_keys_total', 'counter', 'Keys reconciled by exchanges', { direction: 'fetched' }),
  kai('anti_entropy_keys_pushed', 'kai_anti_entropy_keys_total', 'counter', 'Keys reconciled by exchanges', { direction: 'pushed' }),
  kai('reaped', 'kai_reaped_total', 'counter', 'Dead records removed by the reaper'),
  kai('reaps_deferred', 'kai_reaps_deferred_total', 'counter', 'Reaps held back because a replica did not answer'),
  kai('requests_in_flight', 'kai_requests_in_flight', 'gauge', 'Client requests being served'),
  kai('request_value_bytes_in_flight', 'kai_request_value_bytes_in_flight', 'gauge', 'Value bytes of the client requests being served'),
  kai('admission_waits', 'kai_admission_waits_total', 'counter', 'Times a connection waited for the requests in flight on the node to fall'),
  kai('storage_commit_failures', 'kai_storage_commit_failures_total', 'counter', 'Commits that failed'),
  kai('storage_operations_failed', 'kai_storage_operations_failed_total', 'counter', 'Writes and removals failed by those commits'),
  kai('storage_disk_full_failures', 'kai_storage_disk_full_failures_total', 'counter', 'Commits that failed on a full disk'),
  kai('storage_workers_lost', 'kai_storage_workers_lost_total', 'counter', 'Commit worker threads lost'),
  kai('storage_worker_restarts', 'kai_storage_worker_restarts_total', 'counter', 'Commit worker threads started in place of a lost one'),
  kai('log_lines_dropped', 'kai_log_lines_dropped_total', 'counter', 'Log lines dropped because the log could not keep up'),
  kai('log_write_failures', 'kai_log_write_failures_total', 'counter', 'Writes to the log that failed'),
  kai('log_lines_suppressed', 'kai_log_lines_suppressed_total', 'counter', 'Log lines held back by rate limits'),
  kai('receive_buffer_bytes', 'kai_receive_buffer_bytes', 'gauge', 'Bytes of partly received client requests held'),
  kai('receive_buffer_waits', 'kai_receive_buffer_waits_total', 'counter', 'Times a connection stopped reading for the receive budget'),
];

/**
 * Rows that are no metric of their own, and why: text, settings, or what another metric says
 * already. Every other row must be in statMetrics; a test holds the two lists to the rows.
 */
export const statsWithoutMetric: Readonly<Record<string, string>> = {
  pid: 'process metrics',
  uptime: 'process_start_time_seconds',
  time: 'the scrape time',
  version: 'text',
  kai_version: 'kai_info',
  pointer_size: 'constant',
  rusage_user: 'process_cpu_user_seconds_total',
  rusage_system: 'process_cpu_system_seconds_total',
  max_connections: 'a setting',
  cmd_get: 'get hits plus misses',
  cmd_touch: 'touch hits plus misses',
  limit_maxbytes: 'a setting',
  threads: 'constant',
  evictions: 'always 0',
  conflict_resolution: 'a setting',
  siblings_max: 'a setting',
  storage_state: 'kai_storage_failed',
};

/** `hints_pending:<target>` rows: count and bytes held for one target, as one gauge each by target. */
const hintsByTargetPrefix = 'hints_pending:';

interface Scraped {
  readonly rows: ReadonlyMap<string, string>;
  readonly hintsByTarget: readonly { readonly target: string; readonly count: number; readonly bytes: number }[];
  readonly kaiVersion: string;
  readonly storageFailed: boolean;
}

/**
 * Registers every metric of statMetrics, and kai_info, kai_storage_failed and the hints by target,
 * on `registry`; they read the rows `refresh` last took from `statistics`.
 */
export function registerStatisticsMetrics(registry: Registry, statistics: (group: StatisticsGroup) => StatisticsRows): { refresh(): void } {
  let scraped: Scraped = { rows: new Map(), hintsByTarget: [], kaiVersion: '', storageFailed: false };
  const byMetric = new Map<string, StatMetric[]>();
  for (const entry of statMetrics) byMetric.set(entry.metric, [...(byMetric.get(entry.metric) ?? []), entry]);
  for (const [name, entries] of byMetric) {
    const description = { name, help: entries[0].help, labelNames: Object.keys(entries[0].labels ?? {}) };
    readMetric(registry, entries[0].type, description, () =>
      entries.flatMap((entry) => {
        const text = scraped.rows.get(`${entry.group}:${entry.stat}`);
        const value = text === undefined ? NaN : Number(text);
        return Number.isFinite(value) ? [{ labels: entry.labels ?? {}, value }] : [];
      }),
    );
  }
  readLabelled(registry, 'gauge', { name: 'kai_hints_pending_by_target', help: 'Hinted copies held for each down node', label: 'target' }, () =>
    scraped.hintsByTarget.map((hint) => [hint.target, hint.count] as const),
  );
  readLabelled(
    registry,
    'gauge',
    { name: 'kai_hints_pending_bytes_by_target', help: 'Bytes of hinted copies held for each down node', label: 'target' },
    () => scraped.hintsByTarget.map((hint) => [hint.target, hint.bytes] as const),
  );
  readLabelled(registry, 'gauge', { name: 'kai_info', help: "kai's release, as a label; always 1", label: 'version' }, () => [[scraped.kaiVersion, 1]]);
  readGauge(registry, 'kai_storage_failed', '1 once the store can no longer commit and refuses every write (restart the node), else 0', () =>
    scraped.storageFailed ? 1 : 0,
  );
  return {
    refresh() {
      scraped = scrape(statistics);
    },
  };
}

function scrape(statistics: (group: StatisticsGroup) => StatisticsRows): Scraped {
  const rows = new Map<string, string>();
  const hintsByTarget: { target: string; count: number; bytes: number }[] = [];
  for (const group of statisticsGroups) {
    for (const [name, value] of statistics(group)) {
      if (group === 'kai' && name.startsWith(hintsByTargetPrefix)) {
        const [count, bytes] = value.split(' ').map(Number);
        hintsByTarget.push({ target: name.slice(hintsByTargetPrefix.length), count, bytes });
      } else {
        rows.set(`${group}:${name}`, value);
      }
    }
  }
  return { rows, hintsByTarget, kaiVersion: rows.get('kai:kai_version') ?? '', storageFailed: rows.get('kai:storage_state') === 'failed' };
}
