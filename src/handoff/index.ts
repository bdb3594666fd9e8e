/**
 * Hinted handoff: a fallback that took writes for a primary that was down keeps each copy with a
 * hint naming that primary (written in the same transaction as the copy, storage/sqlite.ts). This
 * shell delivers them: every interval, and when membership changes, for each target with hints
 * that the membership holds up, it reads the hinted copies in key order, in batches bounded by
 * keys and bytes and paced by a keys-per-second and a bytes-per-second budget, and sends each
 * batch with `storeMany`. The primary answers once it has committed the batch; only then are the
 * hints removed, each only if its copy did not change meanwhile (a newer write is delivered
 * again), and the fallback's copy is dropped too unless this node is by now a primary of the key.
 */
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import type { Logger } from '../log';
import { Pacer } from '../limits/pacer';
import type { StoreItem } from '../coordinator/replica';
import { batchesOf, versionsBytesOf } from '../coordinator/wire';
import type { HashedRecord, HintCount, KeyAtHash, PendingHint } from '../storage/sqlite';

/** What handoff needs from the node's store. */
export interface HintStore {
  hintCounts(): HintCount[];
  hintsFor(target: string, afterKey: Buffer, limit: number): PendingHint[];
  handedOff(target: string, dropCopy: boolean, items: readonly KeyAtHash[]): Promise<number>;
  readonly tree: { bucketsHoldingKeys(): number[] };
  unhintedInBucket(bucket: number, afterKey: Buffer, limit: number): HashedRecord[];
  reap(items: readonly KeyAtHash[]): Promise<number>;
}

/** What handoff needs of a target node. */
export interface HandoffPeer {
  storeMany(items: readonly StoreItem[], timeoutMs?: number): Promise<void>;
}

export interface HandoffOptions {
  readonly env: Env;
  readonly store: HintStore;
  readonly log: Logger;
  /** Whether the membership holds the node up: hints wait for their target to be up. */
  readonly isUp: (nodeId: string) => boolean;
  readonly peerOf: (nodeId: string) => HandoffPeer;
  readonly nodeId: string;
  /** The bucket's primaries under the current ring: a copy of a bucket this node is one of stays. */
  readonly primariesOf: (bucket: number) => readonly string[];
  /** Whether this node knows the whole ring (it is not waiting for a seed): nothing runs until then. */
  readonly ready?: () => boolean;
  /**
   * Whether copies of buckets this node does not own may go now: not while the ring changes, nor
   * before every member routes by the current ring. Always, when absent.
   */
  readonly releaseReady?: () => boolean;
  /**
   * Whether `nodeId` is still in the ring. Hints for a member that left or was removed can never
   * be delivered: they are dropped, and their copies go to the buckets' owners as any copy of a
   * bucket this node does not own. Every target is a member when absent.
   */
  readonly isRingMember?: (nodeId: string) => boolean;
  readonly keysPerSecond: number;
  readonly bytesPerSecond: number;
  readonly requestTimeoutMs: number;
  readonly intervalMs?: number;
}

export const handoffIntervalMsDefault = 1000;
/** Hints read from the store per step, and so keys per batch at most. */
export const hintsPerBatchMax = 500;
/** Bytes of versions one batch carries at most (one larger copy goes alone). */
export const handoffBatchBytesMax = 4 * 1024 * 1024;
/** Batches of hints for a former member dropped in one pass; the rest wait for the next. */
const hintsDropRoundsMax = 100;
/** Targets delivered to at once. */
export const handoffTargetsInFlightMax = 2;

export interface HandoffCounters {
  /** Hints whose copy the primary committed. */
  hintsDelivered: number;
  /** Batches a target failed to take; they are tried again on a later round. */
  deliveryFailures: number;
  /**
   * Copies without a hint of buckets this node is not a primary of, handed to the primaries and
   * removed here (written while this node's view of the ring was incomplete).
   */
  straysReleased: number;
}

export class Handoff {
  readonly counters: HandoffCounters = { hintsDelivered: 0, deliveryFailures: 0, straysReleased: 0 };
  private readonly delivering = new Set<string>();
  private readonly pacer: Pacer;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private releasing = false;

  constructor(private readonly options: HandoffOptions) {
    this.pacer = new Pacer(options.env, options.keysPerSecond, options.bytesPerSecond);
  }

  start(): void {
    this.timer = this.options.env.every(this.options.intervalMs ?? handoffIntervalMsDefault, () => this.deliverDue());
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private isPrimaryHere(bucket: number): boolean {
    return this.options.primariesOf(bucket).includes(this.options.nodeId);
  }

  /** Targets delivering now. */
  get targetsInFlight(): number {
    return this.delivering.size;
  }

  /** Starts a delivery to every target that has hints, is up and is not being delivered to. */
  deliverDue(): void {
    if (this.stopped || this.options.ready?.() === false) return;
    for (const { target, count } of this.options.store.hintCounts()) {
      if (this.delivering.size >= handoffTargetsInFlightMax) break;
      if (count === 0 || this.delivering.has(target)) continue;
      if (this.options.isRingMember?.(target) === false && this.options.releaseReady?.() !== false) {
        this.delivering.add(target);
        void this.dropHintsFor(target).finally(() => this.delivering.delete(target));
        continue;
      }
      if (!this.options.isUp(target)) continue;
      this.delivering.add(target);
      void this.deliver(target).finally(() => this.delivering.delete(target));
    }
    if (!this.releasing && this.options.releaseReady?.() !== false) {
      this.releasing = true;
      void this.releaseStrays().finally(() => {
        this.releasing = false;
      });
    }
  }

  /**
   * A copy without a hint in a bucket this node is not a primary of was written while its view of
   * the ring was incomplete (a node restarted on an empty data dir, cut off from its seeds, places
   * keys on the members it knows). Such copies go to the bucket's primaries, all of which must be
   * up and commit them, and are then removed here, each only if it did not change meanwhile.
   */
  private async releaseStrays(): Promise<void> {
    const { store } = this.options;
    try {
      for (const bucket of store.tree.bucketsHoldingKeys()) {
        if (this.stopped || this.options.ready?.() === false || this.options.releaseReady?.() === false) return;
        if (this.isPrimaryHere(bucket)) continue;
        const primaries = this.options.primariesOf(bucket);
        if (primaries.length === 0 || !primaries.every((node) => this.options.isUp(node))) continue;
        // Each step starts after the last key of the one before, so the walk ends.
        for (let afterKey: Buffer = Buffer.alloc(0); ; ) {
          const records = store.unhintedInBucket(bucket, afterKey, hintsPerBatchMax);
          if (records.length === 0) break;
          afterKey = records[records.length - 1].key;
          for (const batch of batchesOf(records, handoffBatchBytesMax, hintsPerBatchMax)) {
            await this.pacer.pace(batch.length, versionsBytesOf(batch));
            if (this.stopped) return;
            await Promise.all(primaries.map((node) => this.options.peerOf(node).storeMany(batch, this.options.requestTimeoutMs)));
            this.counters.straysReleased += await store.reap(batch.map((record) => ({ key: record.key, expectedHash: record.hash })));
          }
        }
      }
    } catch (error) {
      this.counters.deliveryFailures++;
      const detail = error instanceof KaiError ? error.message : String(error);
      this.options.log.info({ detail }, 'handing off copies of buckets this node does not own paused');
    }
  }

  /** Drops every hint for a former member, keeping the copies for releaseStrays to hand to the owners. */
  private async dropHintsFor(target: string): Promise<void> {
    for (let round = 0; !this.stopped; round++) {
      const hints = this.options.store.hintsFor(target, Buffer.alloc(0), hintsPerBatchMax);
      if (hints.length === 0 || round >= hintsDropRoundsMax) return;
      await this.options.store.handedOff(target, false, hints.map((hint) => ({ key: hint.key, expectedHash: hint.record?.hash ?? -1 })));
    }
  }

  /** Delivers every hint of `target`, in key order, until none is left or a batch fails. */
  private async deliver(target: string): Promise<void> {
    let afterKey: Buffer = Buffer.alloc(0);
    // Each step starts after the last key of the one before, so the walk ends.
    for (;;) {
      if (this.stopped || !this.options.isUp(target)) return;
      const hints = this.options.store.hintsFor(target, afterKey, hintsPerBatchMax);
      if (hints.length === 0) return;
      afterKey = hints[hints.length - 1].key;
      try {
        await this.deliverBatch(target, hints);
      } catch (error) {
        this.counters.deliveryFailures++;
        const detail = error instanceof KaiError ? error.message : String(error);
        this.options.log.info({ target, detail }, 'hinted handoff paused: the target did not take a batch');
        return;
      }
    }
  }

  private async deliverBatch(target: string, hints: readonly PendingHint[]): Promise<void> {
    const gone = hints.filter((hint) => hint.record === undefined).map((hint) => ({ key: hint.key, expectedHash: -1 }));
    const withCopies = hints.flatMap((hint) => (hint.record === undefined ? [] : [hint.record]));
    for (const batch of batchesOf(withCopies, handoffBatchBytesMax, hintsPerBatchMax)) {
      await this.pacer.pace(batch.length, versionsBytesOf(batch));
      if (this.stopped) return;
      await this.options.peerOf(target).storeMany(batch, this.options.requestTimeoutMs);
      const dropped = batch.filter((record) => !this.isPrimaryHere(record.bucket));
      const kept = batch.filter((record) => this.isPrimaryHere(record.bucket));
      const toKeyAtHash = (record: { key: Buffer; hash: number }): KeyAtHash => ({ key: record.key, expectedHash: record.hash });
      const deliveredDropping = await this.options.store.handedOff(target, true, dropped.map(toKeyAtHash));
      const deliveredKeeping = await this.options.store.handedOff(target, false, kept.map(toKeyAtHash));
      this.counters.hintsDelivered += deliveredDropping + deliveredKeeping;
    }
    // Hints whose copy is gone (a flush removed it) have nothing left to deliver.
    if (gone.length > 0) await this.options.store.handedOff(target, false, gone);
  }
}
