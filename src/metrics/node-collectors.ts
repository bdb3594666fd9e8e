/**
 * Gauges read at scrape time from the parts of a node that `stats` does not report: the SQLite
 * file's size, the store's queue and cache, internal API connections, the member list, the ring,
 * and the node's readiness with the quorum availability behind it.
 */
import fs from 'node:fs';
import type { Registry } from 'prom-client';
import type { NodeView } from '../admin/node-view';
import type { MemberStatus } from '../membership';
import type { SqliteStoreStats } from '../storage/sqlite';
import { readGauge, readLabelled } from './collected';

export interface CollectedParts {
  readonly store: { readonly filePath: string | undefined; stats(): SqliteStoreStats };
  readonly transport: { readonly servedConnections: number; readonly openPeerConnections: number; readonly handshakingConnections: number };
  readonly members: () => readonly { readonly status: MemberStatus; readonly confirmed: boolean }[];
  readonly ring: () => { readonly version: number; readonly next: readonly string[] | null };
  readonly view: NodeView;
}

const memberStatuses: readonly MemberStatus[] = ['up', 'down', 'leaving'];

/** The file's size in bytes, 0 when it is not there (a WAL checkpointed away). */
function fileBytes(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Registers the gauges; `refresh` computes, once per scrape, the readiness they share. */
export function registerNodeCollectors(registry: Registry, parts: CollectedParts): { refresh(): void } {
  const { store, transport } = parts;
  readLabelled(
    registry,
    'gauge',
    { name: 'kai_storage_file_bytes', help: 'Size of the SQLite database file and of its write-ahead log', label: 'file' },
    () => (store.filePath === undefined ? [] : [['database', fileBytes(store.filePath)], ['wal', fileBytes(`${store.filePath}-wal`)]]),
  );
  readGauge(registry, 'kai_storage_operations_queued', 'Writes and removals accepted and not yet committed', () => store.stats().operationsQueued);
  readGauge(registry, 'kai_storage_cache_entries', 'Records held by the read cache', () => store.stats().cacheEntries);
  readGauge(registry, 'kai_storage_cache_bytes', 'Estimated bytes held by the read cache (--cache-size bounds it)', () => store.stats().cacheBytes);
  readLabelled(
    registry,
    'counter',
    { name: 'kai_storage_cache_reads_total', help: 'Reads of committed records, answered by the read cache (hit) or by SQLite (miss)', label: 'result' },
    () => {
      const stats = store.stats();
      return [['hit', stats.cacheHits], ['miss', stats.cacheMisses]];
    },
  );
  readLabelled(
    registry,
    'gauge',
    {
      name: 'kai_internal_connections',
      help: 'Internal API connections: accepted from peers, dialled to peers, and accepted ones still proving the cluster secret',
      label: 'direction',
    },
    () => [['accepted', transport.servedConnections], ['dialled', transport.openPeerConnections], ['handshaking', transport.handshakingConnections]],
  );
  readLabelled(
    registry,
    'gauge',
    { name: 'kai_members', help: 'Members this node knows, by what its failure detector says of them (this node included)', label: 'status' },
    () => {
      const members = parts.members().filter((member) => member.confirmed);
      return memberStatuses.map((status) => [status, members.filter((member) => member.status === status).length] as const);
    },
  );
  readGauge(registry, 'kai_ring_version', 'Version of the ring state this node holds', () => parts.ring().version);
  readGauge(registry, 'kai_ring_changing', '1 while a ring change (join, leave, replace) is in progress, else 0', () =>
    parts.ring().next === null ? 0 : 1,
  );
  return registerReadiness(registry, parts.view);
}

/** kai_ready and the quorum availability behind it, from one computation per scrape. */
function registerReadiness(registry: Registry, view: NodeView): { refresh(): void } {
  let availability = view.availability();
  let ready = false;
  readGauge(registry, 'kai_ready', '1 when the node can meet its quorums for the buckets it serves (what /ready answers 200 for), else 0', () =>
    ready ? 1 : 0,
  );
  readGauge(registry, 'kai_buckets_served', 'Buckets whose preference list holds this node', () => availability.bucketsServed);
  readLabelled(
    registry,
    'gauge',
    { name: 'kai_buckets_below_quorum', help: 'Buckets this node serves with fewer replicas up than R (quorum="r") or W (quorum="w")', label: 'quorum' },
    () => [['r', availability.bucketsBelowR], ['w', availability.bucketsBelowW]],
  );
  return {
    refresh() {
      availability = view.availability();
      ready = view.readiness(availability).ready;
    },
  };
}
