/**
 * Bucket transfer: while a ring change is planned (src/claimant), each node receives the buckets
 * it is a new replica of before reads move to it. It pulls each bucket in pages, in key order,
 * from the replicas the bucket leaves (each departing replica's copy, so the number of copies of
 * every write is kept, as Riak's ownership handoff keeps it) or, when one of those is down, from
 * every old replica that is up; merges each page into its own store and, once a bucket is in,
 * reports it through the ring state, where the switch of that bucket spreads by gossip.
 *
 * It starts only once every up member holds the plan and a request timeout has passed since, so
 * no write routed by the ring before the plan is still on its way; writes made during the plan
 * reach the new replicas directly (the coordinator's joint quorum). Pages are paced by the
 * handoff budgets. What a node has received is saved with the ring state, so a restarted node
 * resumes with the buckets it still lacks; a page that fails is tried again on a later round.
 */
import type { RingKeeper } from '../claimant/keeper';
import type { BucketMove } from '../claimant';
import type { StoreItem } from '../coordinator/replica';
import { itemWireBytes, versionsBytesOf, versionsToWire } from '../coordinator/wire';
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import { Pacer } from '../limits/pacer';
import type { Logger } from '../log';
import type { RpcReply, TransferProgress } from '../rpc/messages';
import type { HashedRecord } from '../storage/sqlite';

/** What a node needs of a peer it pulls from. */
export interface TransferPeer {
  bucketPage(bucket: number, afterKey: Buffer, limit: number, timeoutMs?: number): Promise<{ items: StoreItem[]; more: boolean }>;
}

export interface TransferOptions {
  readonly env: Env;
  readonly log: Logger;
  readonly nodeId: string;
  readonly keeper: RingKeeper;
  /** Pages are served from the store's committed records. */
  readonly store: { inBucket(bucket: number, afterKey: Buffer, limit: number): HashedRecord[] };
  /** Merges a received page into this node's replica; resolves once committed. */
  readonly storeLocally: (items: readonly StoreItem[]) => Promise<void>;
  readonly peerOf: (nodeId: string) => TransferPeer;
  readonly isUp: (nodeId: string) => boolean;
  readonly keysPerSecond: number;
  readonly bytesPerSecond: number;
  readonly requestTimeoutMs: number;
  /** Bytes one page's reply holds at most (beyond its first record). */
  readonly replyBytesMax: number;
  readonly intervalMs?: number;
}

export const transferIntervalMsDefault = 1000;
/** Keys one page carries at most. */
export const keysPerPageMax = 500;
/** Buckets received at once, as Riak's handoff concurrency bounds its transfers. */
export const bucketsInFlightMax = 2;

export interface TransferCounters {
  bucketsReceived: number;
  keysMoved: number;
  bytesMoved: number;
  pageFailures: number;
}

interface PlanProgress {
  readonly version: number;
  readonly claimant: string;
  startedAtMs: number;
  keysMoved: number;
  bytesMoved: number;
}

export class Transfer {
  readonly counters: TransferCounters = { bucketsReceived: 0, keysMoved: 0, bytesMoved: 0, pageFailures: 0 };
  private readonly pacer: Pacer;
  private readonly inFlight = new Set<number>();
  private timer: TimerHandle | undefined;
  private stopped = false;
  private plan: PlanProgress | undefined;
  private waiting: string | undefined;

  constructor(private readonly options: TransferOptions) {
    this.pacer = new Pacer(options.env, options.keysPerSecond, options.bytesPerSecond);
  }

  start(): void {
    this.timer = this.options.env.every(this.options.intervalMs ?? transferIntervalMsDefault, () => this.pump());
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** The buckets of the plan in progress this node must receive and has not yet. */
  private pending(): BucketMove[] {
    const { keeper, nodeId } = this.options;
    const transition = keeper.transition();
    if (transition === undefined) return [];
    const received = new Set(keeper.state.done[nodeId] ?? []);
    return [...transition.moves.values()].filter((move) => move.receivers.includes(nodeId) && !received.has(move.bucket));
  }

  /** Starts receiving buckets, up to the bound, once the plan is held everywhere. */
  pump(): void {
    if (this.stopped) return;
    const { keeper } = this.options;
    const state = keeper.state;
    if (state.next === null) {
      this.waiting = undefined;
      return;
    }
    if (this.plan?.version !== state.version || this.plan.claimant !== state.claimant) {
      this.plan = { version: state.version, claimant: state.claimant, startedAtMs: 0, keysMoved: 0, bytesMoved: 0 };
    }
    if (!keeper.settled(this.options.requestTimeoutMs)) {
      this.waiting = 'waiting for every member to hold the plan';
      return;
    }
    this.waiting = undefined;
    for (const move of this.pending()) {
      if (this.inFlight.size >= bucketsInFlightMax) break;
      if (this.inFlight.has(move.bucket)) continue;
      const sources = this.sourcesOf(move);
      if (sources.length === 0) {
        this.waiting = `no replica of bucket ${move.bucket} is up to send it`;
        continue;
      }
      if (this.plan.startedAtMs === 0) this.plan.startedAtMs = this.options.env.nowMs();
      this.inFlight.add(move.bucket);
      const plan = this.plan;
      void this.receive(move, sources, plan).then((received) => {
        this.inFlight.delete(move.bucket);
        // The next bucket starts at once; a failed one waits for the next round.
        if (received) this.pump();
      });
    }
  }

  /**
   * Where a bucket comes from: the replicas it leaves, when all of them are up (their copies are
   * the ones the new replicas take over); else every old replica that is up, whose copies together
   * hold what the lost ones held and more. A bucket that only changes order has no receiver.
   */
  private sourcesOf(move: BucketMove): string[] {
    const { isUp, nodeId } = this.options;
    const leaving = move.from.filter((id) => !move.to.includes(id));
    if (leaving.length > 0 && leaving.every((id) => id !== nodeId && isUp(id))) return leaving;
    return move.from.filter((id) => id !== nodeId && isUp(id));
  }

  /** Receives one bucket from its sources; whether it is in. */
  private async receive(move: BucketMove, sources: readonly string[], plan: PlanProgress): Promise<boolean> {
    const { keeper, log } = this.options;
    try {
      for (const source of sources) {
        const complete = await this.pullFrom(source, move.bucket, plan);
        if (!complete) return false;
      }
      if (!keeper.received(plan.version, plan.claimant, [move.bucket])) return false;
      this.counters.bucketsReceived++;
      log.debug({ bucket: move.bucket, sources }, 'bucket received');
      return true;
    } catch (error) {
      this.counters.pageFailures++;
      const detail = error instanceof KaiError ? error.message : String(error);
      log.info({ bucket: move.bucket, detail }, 'bucket transfer paused; it is tried again');
      return false;
    }
  }

  /** Pulls every page of `bucket` from `source`; false when the plan changed meanwhile. */
  private async pullFrom(source: string, bucket: number, plan: PlanProgress): Promise<boolean> {
    const { keeper } = this.options;
    let afterKey: Buffer = Buffer.alloc(0);
    // Each page starts after the last key of the one before, so the walk ends.
    for (;;) {
      if (this.stopped || keeper.state.version !== plan.version || keeper.state.claimant !== plan.claimant) return false;
      const page = await this.options.peerOf(source).bucketPage(bucket, afterKey, keysPerPageMax, this.options.requestTimeoutMs);
      if (page.items.length > 0) {
        const bytes = versionsBytesOf(page.items);
        await this.pacer.pace(page.items.length, bytes);
        await this.options.storeLocally(page.items);
        this.counters.keysMoved += page.items.length;
        this.counters.bytesMoved += bytes;
        plan.keysMoved += page.items.length;
        plan.bytesMoved += bytes;
        afterKey = page.items[page.items.length - 1].key;
      }
      if (!page.more || page.items.length === 0) return true;
    }
  }

  /** Answers a peer's `bucketPage`: committed records in key order, within the reply's bytes. */
  page(bucket: number, afterKey: Buffer, limit: number): RpcReply {
    const wanted = Math.max(1, Math.min(limit, keysPerPageMax));
    const records = this.options.store.inBucket(bucket, afterKey, wanted + 1);
    const items: { key: Buffer; bucket: number; versions: ReturnType<typeof versionsToWire> }[] = [];
    let bytes = 0;
    for (const record of records.slice(0, wanted)) {
      bytes += itemWireBytes(record);
      if (items.length > 0 && bytes > this.options.replyBytesMax) break;
      items.push({ key: record.key, bucket: record.bucket, versions: versionsToWire(record.versions) });
    }
    return { type: 'bucketPage', items, more: records.length > items.length };
  }

  /** What `kai transfers` shows of this node. */
  progress(): TransferProgress {
    const { keeper, nodeId, env } = this.options;
    const state = keeper.state;
    const transition = keeper.transition();
    const nowMs = env.nowMs();
    if (transition === undefined || state.next === null) {
      return { version: 0, bucketsToReceive: 0, bucketsReceived: 0, keysMoved: 0, bytesMoved: 0, startedAtMs: 0, nowMs };
    }
    const toReceive = [...transition.moves.values()].filter((move) => move.receivers.includes(nodeId)).length;
    const plan = this.plan?.version === state.version && this.plan.claimant === state.claimant ? this.plan : undefined;
    return {
      version: state.version,
      bucketsToReceive: toReceive,
      bucketsReceived: (state.done[nodeId] ?? []).length,
      keysMoved: plan?.keysMoved ?? 0,
      bytesMoved: plan?.bytesMoved ?? 0,
      startedAtMs: plan?.startedAtMs ?? 0,
      nowMs,
      ...(this.waiting === undefined ? {} : { waiting: this.waiting }),
    };
  }
}
