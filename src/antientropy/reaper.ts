/**
 * Reaping that never resurrects. A record that holds nothing live (tombstones, expired values) still
 * supersedes older versions that another replica may hold; removed too early, it lets such a
 * version come back through a read, a repair, an exchange or a hint's delivery. So a dead record
 * is removed only when
 *
 *   1. it has been dead for the grace period (`reapGraceMs`), and
 *   2. every node that could hold a copy of its key has committed it, or something that supersedes
 *      it, or holds nothing at all for the key (then it holds nothing it could bring back). Those
 *      nodes are the key's primaries, and the nodes after them in the bucket's preference order,
 *      which are the ones that stand in for primaries that are down (fallbacks, with hinted copies).
 *
 * The reaper establishes (2) the way anti-entropy repairs a key: it sends the record to each of
 * those nodes with `storeMany`, which merges it into the copy the node holds and answers once
 * committed. A fallback's hinted copy then carries the record too, so its later delivery brings
 * nothing older back. A node that holds nothing for the key takes nothing (`ifHeld`): it holds
 * nothing the record supersedes, and reaping must not re-create what others have reaped. When every node has answered, the record is
 * removed, if it has not changed meanwhile; when one is down or does not answer, the record is held
 * back for `reapRetryMs` and tried again. A node alone in its ring reaps a record as soon as it is
 * dead. The worst case (docs/architecture.md): a copy outside those nodes, such as a replica
 * restored from an old backup, that surfaces after the record was reaped.
 */
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import type { Logger } from '../log';
import type { StoreItem } from '../coordinator/replica';
import { batchesOf } from '../coordinator/wire';
import { preferenceList, type Ring } from '../ring';
import type { HashedRecord, KeyAtHash } from '../storage/sqlite';

/** What the reaper needs from the node's store. */
export interface ReapStore {
  reapCandidates(deadBeforeMs: number, nowMs: number, limit: number): HashedRecord[];
  reap(items: readonly KeyAtHash[]): Promise<number>;
  deferReap(items: readonly KeyAtHash[], untilMs: number): Promise<number>;
}

export interface ReapPeer {
  storeMany(items: readonly StoreItem[], timeoutMs?: number, ifHeld?: boolean): Promise<void>;
}

export interface ReaperOptions {
  readonly env: Env;
  readonly nodeId: string;
  readonly store: ReapStore;
  readonly log: Logger;
  readonly ring: () => Ring;
  readonly replicas: () => number;
  readonly isUp: (nodeId: string) => boolean;
  readonly peerOf: (nodeId: string) => ReapPeer;
  /** Whether this node knows the whole ring (it is not waiting for a seed): nothing runs until then. */
  readonly ready?: () => boolean;
  readonly reapGraceMs: number;
  readonly requestTimeoutMs: number;
  readonly intervalMs?: number;
  readonly reapRetryMs?: number;
}

export const reapIntervalMsDefault = 1000;
/** Records looked at per pass: a pass's reads and messages stay bounded. */
export const reapCandidatesPerPassMax = 500;
/** Bytes of versions one confirmation batch carries at most (a larger record goes alone). */
export const reapBatchBytesMax = 4 * 1024 * 1024;
/** How long a record waits after a reap attempt that could not reach every replica. */
export const reapRetryMsDefault = 60_000;

export interface ReaperCounters {
  /** Dead records removed. */
  reaped: number;
  /** Reap attempts held back: a replica was down or did not answer. */
  reapsDeferred: number;
}

export class Reaper {
  readonly counters: ReaperCounters = { reaped: 0, reapsDeferred: 0 };
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = false;

  constructor(private readonly options: ReaperOptions) {}

  start(): void {
    this.timer = this.options.env.every(this.options.intervalMs ?? reapIntervalMsDefault, () => void this.pass());
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** One pass over the oldest candidates; a pass still running makes this one a no-op. */
  async pass(): Promise<void> {
    if (this.running || this.stopped || this.options.ready?.() === false) return;
    this.running = true;
    try {
      await this.reapSome();
    } catch (error) {
      const detail = error instanceof KaiError ? error.message : String(error);
      this.options.log.warn({ detail }, 'reaping failed');
    } finally {
      this.running = false;
    }
  }

  private async reapSome(): Promise<void> {
    const { options } = this;
    const nowMs = options.env.nowMs();
    const ring = options.ring();
    const n = options.replicas();
    // A node alone in its ring holds the only copy of everything: nothing can come back.
    const graceMs = ring.members.length <= 1 ? 0 : options.reapGraceMs;
    const candidates = options.store.reapCandidates(nowMs - graceMs, nowMs, reapCandidatesPerPassMax);
    if (candidates.length === 0) return;
    const othersOf = new Map<HashedRecord, string[]>();
    const byPeer = new Map<string, HashedRecord[]>();
    const blocked = new Set<HashedRecord>();
    for (const record of candidates) {
      const primaries = preferenceList(ring, record.bucket, n);
      // Every member the bucket's preference order names: the primaries and their stand-ins.
      const others = ring.successors[record.bucket].filter((node) => node !== options.nodeId);
      othersOf.set(record, others);
      // A copy of a key this node is not a primary of is handoff's to move to the primaries.
      if (!primaries.includes(options.nodeId) || others.some((node) => !options.isUp(node))) {
        blocked.add(record);
        continue;
      }
      for (const node of others) {
        const records = byPeer.get(node);
        if (records === undefined) byPeer.set(node, [record]);
        else records.push(record);
      }
    }
    const confirmedBy = new Map<HashedRecord, number>();
    await Promise.all(
      [...byPeer].map(async ([node, records]) => {
        for (const batch of batchesOf(records, reapBatchBytesMax, records.length)) {
          try {
            await options.peerOf(node).storeMany(batch, options.requestTimeoutMs, true);
            for (const record of batch) confirmedBy.set(record, (confirmedBy.get(record) ?? 0) + 1);
          } catch {
            // Those records stay unconfirmed and are held back below.
          }
        }
      }),
    );
    const reapable: KeyAtHash[] = [];
    const deferred: KeyAtHash[] = [];
    for (const record of candidates) {
      const item = { key: record.key, expectedHash: record.hash };
      const confirmed = !blocked.has(record) && (confirmedBy.get(record) ?? 0) === othersOf.get(record)!.length;
      (confirmed ? reapable : deferred).push(item);
    }
    this.counters.reaped += await options.store.reap(reapable);
    this.counters.reapsDeferred += await options.store.deferReap(deferred, nowMs + (options.reapRetryMs ?? reapRetryMsDefault));
  }
}
