/**
 * Merkle-tree anti-entropy, the shell. Each node keeps a hash tree per bucket over its committed
 * records (src/merkle, updated by every commit: storage/sqlite.ts). Periodically, and as soon as a
 * peer is seen up again, it exchanges with one peer about every bucket both replicate: roots
 * first, then down the levels where they differ, then the keys of the segments that differ, and
 * it reconciles only those keys, through vector clocks as a read does: it fetches the peer's
 * versions and merges them into its own store, then sends the peer what it lacks. Exchanges are
 * paced by keys-per-second and bytes-per-second budgets, one exchange at a time by default, so
 * that repairing never takes the request path's share of the node.
 *
 * It also answers the peer side of exchanges: tree hashes and segment key lists.
 */
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import type { Logger } from '../log';
import { Pacer } from '../limits/pacer';
import { childrenOf, differingPositions, type MerkleForest } from '../merkle';
import { coversAll } from '../quorum/get';
import type { Ring } from '../ring';
import type { RpcReply, RpcRequest } from '../rpc/messages';
import type { StoreItem } from '../coordinator/replica';
import { batchesOf, versionsBytesOf } from '../coordinator/wire';
import type { Version } from '../storage/record';
import type { KeyHash } from '../storage/sqlite-queries';
import { exchangePartners, keysToReconcile, sharedBuckets, sharesBucket } from './plan';

/** What anti-entropy needs from the node's store. */
export interface TreeStore {
  readonly tree: MerkleForest;
  readonly buckets: number;
  segmentKeys(bucket: number, segment: number, limit: number): KeyHash[];
}

/** This node's replica: versions held, and a merge that resolves once committed. */
export interface LocalKeys {
  /** The versions held, once committed (Replica.fetch): only durable versions are pushed. */
  fetch(key: Buffer): Promise<readonly Version[]>;
  storeMany(items: readonly StoreItem[]): Promise<void>;
}

/** What an exchange asks of the peer (RemoteReplica). */
export interface ExchangePeer {
  treeRoots(buckets: readonly number[], timeoutMs?: number): Promise<number[]>;
  treeNodes(bucket: number, level: number, indexes: readonly number[], timeoutMs?: number): Promise<number[]>;
  segmentKeys(bucket: number, segments: readonly number[], timeoutMs?: number): Promise<{ readonly segments: readonly number[]; readonly keys: readonly KeyHash[] }>;
  fetchMany(keys: readonly Buffer[], timeoutMs?: number): Promise<Version[][]>;
  storeMany(items: readonly StoreItem[], timeoutMs?: number): Promise<void>;
}

export interface AntiEntropyOptions {
  readonly env: Env;
  readonly nodeId: string;
  readonly store: TreeStore;
  readonly local: LocalKeys;
  readonly log: Logger;
  readonly ring: () => Ring;
  /** Replicas per key, as the coordinator caps it. */
  readonly replicas: () => number;
  readonly isUp: (nodeId: string) => boolean;
  readonly peerOf: (nodeId: string) => ExchangePeer;
  /** How often an exchange with the next peer starts; 0 exchanges only when a peer comes back. */
  readonly intervalMs: number;
  readonly keysPerSecond: number;
  readonly bytesPerSecond: number;
  readonly requestTimeoutMs: number;
  /** Whether this node knows the whole ring (it is not waiting for a seed): nothing runs until then. */
  readonly ready?: () => boolean;
  /** Bytes of keys one segmentKeys reply carries at most (the first segment always goes whole). */
  readonly replyBytesMax?: number;
}

/** Exchanges running at once. */
export const exchangesInFlightMax = 1;
/**
 * A peer that just came back may not answer at first (its connection is still backing off, it is
 * still opening its file): an exchange with it that stops early is tried again this much later,
 * at most `wantedExchangeAttemptsMax` times, rather than waiting for the next periodic round.
 */
export const wantedExchangeRetryMs = 1000;
export const wantedExchangeAttemptsMax = 5;
/** Buckets per treeRoots request. */
export const bucketsPerRootsRequestMax = 4096;
/** Keys per fetch and per push while reconciling. */
export const keysPerReconcileBatchMax = 500;
/** Bytes of versions per push. */
export const reconcileBatchBytesMax = 4 * 1024 * 1024;
/** Keys of one segment listed at most: a segment holds far fewer unless the key space is huge. */
export const segmentKeysMax = 65_536;
export const segmentKeysReplyBytesMaxDefault = 4 * 1024 * 1024;

export interface AntiEntropyCounters {
  exchanges: number;
  exchangeFailures: number;
  /** Buckets whose roots differed. */
  bucketsDiffering: number;
  /** Keys found different, fetched from the peer and merged here. */
  keysFetched: number;
  /** Keys sent to the peer because it lacked versions this node holds. */
  keysPushed: number;
}

export type TreeRequest = Extract<RpcRequest, { readonly type: 'treeRoots' | 'treeNodes' | 'segmentKeys' }>;

export function isTreeRequest(request: RpcRequest): request is TreeRequest {
  return request.type === 'treeRoots' || request.type === 'treeNodes' || request.type === 'segmentKeys';
}

export class AntiEntropy {
  readonly counters: AntiEntropyCounters = { exchanges: 0, exchangeFailures: 0, bucketsDiffering: 0, keysFetched: 0, keysPushed: 0 };
  private readonly pacer: Pacer;
  private readonly inFlight = new Set<string>();
  /** Peers to exchange with before the round-robin goes on: those just seen up again. */
  private readonly wanted = new Set<string>();
  /** Failed attempts of each wanted exchange, so its retries stay bounded. */
  private readonly wantedAttempts = new Map<string, number>();
  private nextPartner = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: AntiEntropyOptions) {
    this.pacer = new Pacer(options.env, options.keysPerSecond, options.bytesPerSecond);
  }

  start(): void {
    if (this.options.intervalMs > 0) this.timer = this.options.env.every(this.options.intervalMs, () => this.exchangeNext());
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  get exchangesInFlight(): number {
    return this.inFlight.size;
  }

  /** Exchanges with `peer` as soon as one may start: a peer back from a failure has catching up to do. */
  exchangeSoon(peer: string): void {
    if (peer === this.options.nodeId || this.stopped) return;
    this.wantedAttempts.set(peer, 0);
    this.want(peer);
  }

  private want(peer: string): void {
    this.wanted.add(peer);
    this.startWanted();
  }

  /** Starts an exchange with the next partner in turn (or a wanted one), if none is running. */
  exchangeNext(): void {
    if (this.stopped || this.inFlight.size >= exchangesInFlightMax || this.options.ready?.() === false) return;
    if (this.startWanted()) return;
    const partners = exchangePartners(this.options.ring(), this.options.replicas(), this.options.nodeId).filter((peer) =>
      this.options.isUp(peer),
    );
    if (partners.length === 0) return;
    const peer = partners[this.nextPartner++ % partners.length];
    this.begin(peer);
  }

  private startWanted(): boolean {
    if (this.options.ready?.() === false) return false;
    for (const peer of this.wanted) {
      if (this.inFlight.size >= exchangesInFlightMax) return true;
      this.wanted.delete(peer);
      if (!this.options.isUp(peer) || this.inFlight.has(peer)) continue;
      this.begin(peer, true);
      return true;
    }
    return false;
  }

  private begin(peer: string, wanted = false): void {
    this.inFlight.add(peer);
    void this.exchange(peer).then((completed) => {
      this.inFlight.delete(peer);
      if (wanted && !completed && !this.stopped) this.retryWanted(peer);
      if (this.wanted.size > 0) this.startWanted();
    });
  }

  private retryWanted(peer: string): void {
    const attempts = (this.wantedAttempts.get(peer) ?? 0) + 1;
    this.wantedAttempts.set(peer, attempts);
    if (attempts >= wantedExchangeAttemptsMax) return;
    this.options.env.after(wantedExchangeRetryMs, () => {
      if (!this.stopped) this.want(peer);
    });
  }

  /** One exchange: every bucket both nodes replicate, compared and reconciled; whether it completed. */
  async exchange(peerId: string): Promise<boolean> {
    const { options } = this;
    const peer = options.peerOf(peerId);
    const timeoutMs = options.requestTimeoutMs;
    try {
      const shared = sharedBuckets(options.ring(), options.replicas(), options.nodeId, peerId);
      for (let start = 0; start < shared.length; start += bucketsPerRootsRequestMax) {
        const buckets = shared.slice(start, start + bucketsPerRootsRequestMax);
        const remote = await peer.treeRoots(buckets, timeoutMs);
        const differing = differingPositions(options.store.tree.roots(buckets), remote).map((position) => buckets[position]);
        this.counters.bucketsDiffering += differing.length;
        for (const bucket of differing) {
          if (this.stopped) return false;
          await this.reconcileBucket(peer, peerId, bucket);
        }
      }
      this.counters.exchanges++;
      return true;
    } catch (error) {
      this.counters.exchangeFailures++;
      const detail = error instanceof KaiError ? error.message : String(error);
      options.log.info({ peer: peerId, detail }, 'anti-entropy exchange stopped early');
      return false;
    }
  }

  private stillShared(bucket: number, peerId: string): boolean {
    return sharesBucket(this.options.ring(), this.options.replicas(), this.options.nodeId, peerId, bucket);
  }

  /** Walks down a bucket's tree where it differs from the peer's, then reconciles those segments' keys. */
  private async reconcileBucket(peer: ExchangePeer, peerId: string, bucket: number): Promise<void> {
    const { tree } = this.options.store;
    const timeoutMs = this.options.requestTimeoutMs;
    const levels = tree.shape.levelWidths.length;
    let differing = [0];
    for (let level = 1; level < levels && differing.length > 0; level++) {
      const indexes = differing.flatMap((index) => childrenOf(tree.shape, level - 1, index));
      const remote = await peer.treeNodes(bucket, level, indexes, timeoutMs);
      differing = differingPositions(tree.hashes(bucket, level, indexes), remote).map((position) => indexes[position]);
    }
    if (differing.length === 0) return;
    const remoteKeys: KeyHash[] = [];
    for (let segments = differing; segments.length > 0; ) {
      const listed = await peer.segmentKeys(bucket, segments, timeoutMs);
      remoteKeys.push(...listed.keys);
      segments = segments.slice(listed.segments.length);
    }
    const localKeys = differing.flatMap((segment) => this.options.store.segmentKeys(bucket, segment, segmentKeysMax));
    const keys = keysToReconcile(localKeys, remoteKeys);
    for (let start = 0; start < keys.length; start += keysPerReconcileBatchMax) {
      // The exchange waited on the peer: if the ring moved meanwhile and the two no longer share
      // the bucket, a copy sent now would sit on a node that is not the key's replica.
      if (this.stopped || !this.stillShared(bucket, peerId)) return;
      await this.reconcileKeys(peer, peerId, bucket, keys.slice(start, start + keysPerReconcileBatchMax));
    }
  }

  /** Fetches the peer's versions of `keys`, merges them here, and sends the peer what it lacks. */
  private async reconcileKeys(peer: ExchangePeer, peerId: string, bucket: number, keys: readonly Buffer[]): Promise<void> {
    const timeoutMs = this.options.requestTimeoutMs;
    const { local } = this.options;
    for (let remaining = keys; remaining.length > 0; ) {
      await this.pacer.pace(remaining.length, 0);
      const fetched = await peer.fetchMany(remaining, timeoutMs);
      const answered = remaining.slice(0, fetched.length);
      remaining = remaining.slice(fetched.length);
      const incoming = answered.map((key, index) => ({ key, bucket, versions: fetched[index] }));
      await this.pacer.pace(0, versionsBytesOf(incoming));
      await local.storeMany(incoming.filter((item) => item.versions.length > 0));
      this.counters.keysFetched += incoming.length;
      const held = await Promise.all(incoming.map((item) => local.fetch(item.key)));
      const lacking = incoming
        .map((item, index) => ({ key: item.key, bucket, versions: held[index], theirs: item.versions }))
        .filter((item) => item.versions.length > 0 && !coversAll(item.theirs, item.versions))
        .map(({ key, versions }): StoreItem => ({ key, bucket, versions }));
      for (const batch of batchesOf(lacking, reconcileBatchBytesMax, keysPerReconcileBatchMax)) {
        await this.pacer.pace(0, versionsBytesOf(batch));
        if (this.stopped || !this.stillShared(bucket, peerId)) return;
        await peer.storeMany(batch, timeoutMs);
        this.counters.keysPushed += batch.length;
      }
    }
  }

  /** Answers a peer's exchange requests; a malformed one is KAI_BAD_FRAME. */
  handle(request: TreeRequest): RpcReply {
    const { store } = this.options;
    const { tree } = store;
    const bad = (detail: string): KaiError => new KaiError('KAI_BAD_FRAME', detail);
    const checkBucket = (bucket: number): void => {
      if (bucket >= store.buckets) throw bad(`bucket ${bucket} is out of range`);
    };
    switch (request.type) {
      case 'treeRoots':
        if (request.buckets.length > bucketsPerRootsRequestMax) throw bad(`${request.buckets.length} buckets in one request`);
        request.buckets.forEach(checkBucket);
        return { type: 'treeHashes', hashes: tree.roots(request.buckets) };
      case 'treeNodes': {
        checkBucket(request.bucket);
        const width = tree.shape.levelWidths[request.level];
        if (width === undefined) throw bad(`level ${request.level} is out of range`);
        if (request.indexes.length > width || request.indexes.some((index) => index >= width)) throw bad('tree node out of range');
        return { type: 'treeHashes', hashes: tree.hashes(request.bucket, request.level, request.indexes) };
      }
      case 'segmentKeys':
        checkBucket(request.bucket);
        if (request.segments.length > tree.shape.segments || request.segments.some((segment) => segment >= tree.shape.segments)) {
          throw bad('segment out of range');
        }
        return this.segmentKeysReply(request.bucket, request.segments);
    }
  }

  /** The keys of the first segments asked that fit in one reply; at least the first. */
  private segmentKeysReply(bucket: number, segments: readonly number[]): RpcReply {
    const bytesMax = this.options.replyBytesMax ?? segmentKeysReplyBytesMaxDefault;
    const covered: number[] = [];
    const keys: Buffer[] = [];
    const hashes: number[] = [];
    let bytes = 0;
    for (const segment of segments) {
      const listed = this.options.store.segmentKeys(bucket, segment, segmentKeysMax);
      const segmentBytes = listed.reduce((sum, entry) => sum + entry.key.length + 16, 0);
      if (covered.length > 0 && bytes + segmentBytes > bytesMax) break;
      covered.push(segment);
      bytes += segmentBytes;
      for (const entry of listed) {
        keys.push(entry.key);
        hashes.push(entry.hash);
      }
    }
    return { type: 'segmentKeys', segments: covered, keys, hashes };
  }
}
