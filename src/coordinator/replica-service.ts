/**
 * The internal API requests about keys, answered for peers: a fetch or store on this node's
 * replica, a write forwarded for this node to coordinate, and a flush_all another node received.
 * The node mounts `handleReplicaRequest` on its transport next to the gossip handler; what peers
 * send is checked here (wire.ts, specs.ts) before it reaches the store.
 */
import type { Env } from '../env';
import { KaiError } from '../errors';
import { bucketOfKey } from '../ring';
import type { RpcReply, RpcRequest, WireVersion } from '../rpc/messages';
import type { Version } from '../storage/record';
import type { Coordinator } from './index';
import type { LocalReplica } from './replica';
import { siblingsMaxLimit } from './siblings';
import { outcomeToWire, type SpecKind, type SpecOf } from './specs';
import { digestToWire, itemWireBytes, versionsFromWire, versionsToWire, versionToWire } from './wire';

export type ReplicaRequest = Extract<
  RpcRequest,
  { readonly type: 'replicaFetch' | 'replicaStore' | 'storeMany' | 'fetchMany' | 'digestMany' | 'coordinate' | 'flushAll' }
>;

const replicaRequestTypes: ReadonlySet<string> = new Set<ReplicaRequest['type']>([
  'replicaFetch',
  'replicaStore',
  'storeMany',
  'fetchMany',
  'digestMany',
  'coordinate',
  'flushAll',
]);

export function isReplicaRequest(request: RpcRequest): request is ReplicaRequest {
  return replicaRequestTypes.has(request.type);
}

export interface ReplicaServiceOptions {
  readonly coordinator: Coordinator;
  /** This node's replica: the coordinator's replica for its own node id. */
  readonly local: LocalReplica;
  /**
   * Applies a flush_all another node received: Dispatcher.flushUntil, which sets the deadline
   * and removes the node's data once it has come. Resolves once done (or armed, for a later one).
   */
  readonly flushUntil: (deadlineMs: number) => Promise<void>;
  /** Bytes of versions one fetchMany reply carries at most, so it stays within a frame. */
  readonly replyBatchBytesMax?: number;
  /** The ring's bucket count: a peer's store must name the bucket its key hashes to. */
  readonly buckets: number;
  /** This node's clock: a peer's write time is weighed against it (writeTimeAheadMsMax). */
  readonly env: Pick<Env, 'nowMs'>;
}

/** Versions one store request may carry: a key's siblings at the cap, plus the write. */
export const versionsPerStoreMax = siblingsMaxLimit + 1;
/** Keys one storeMany or fetchMany request may name. */
export const itemsPerBatchMax = 1000;
/**
 * How far a write time a peer stores may be ahead of this node's clock, or of the latest write
 * time this replica holds for the key when that is later. Write times order versions with equal
 * clocks and decide what a flush_all removes, and every later write of the key is stamped after
 * the latest it holds (coordinator/replica.ts): a time years ahead would make the version outlive
 * every flush and drag every later write's time with it. Honest times run ahead of the clock only
 * when one key takes over a thousand writes a second (each is stamped 1 ms after the last), which
 * the held base covers; a day leaves room for a replica that missed such a run.
 */
export const writeTimeAheadMsMax = 86_400_000;

/** What a fetchMany reply holds at most, beyond its first key (which is always answered). */
export const replyBatchBytesMaxDefault = 4 * 1024 * 1024;

export class ReplicaService {
  constructor(private readonly options: ReplicaServiceOptions) {}

  /** Answers one request; an operating error is thrown as a KaiError, which the transport answers. */
  async handleReplicaRequest(request: ReplicaRequest): Promise<RpcReply> {
    const { local } = this.options;
    switch (request.type) {
      case 'replicaFetch':
        return { type: 'versions', versions: versionsToWire(await local.fetch(request.key)) };
      case 'replicaStore': {
        this.checkBucket(request.key, request.bucket);
        const versions = this.checkedVersions(request.key, request.versions);
        await local.store(request.key, request.bucket, versions, request.hintFor);
        return { type: 'stored' };
      }
      case 'storeMany': {
        if (request.items.length > itemsPerBatchMax) {
          throw new KaiError('KAI_BAD_FRAME', `a store of ${request.items.length} keys is over ${itemsPerBatchMax}`);
        }
        // Every item is checked before any is stored, so a bad one stores nothing.
        const items = request.items.map((item) => {
          this.checkBucket(item.key, item.bucket);
          const versions = this.checkedVersions(item.key, item.versions);
          return item.hintFor === undefined ? { key: item.key, bucket: item.bucket, versions } : { key: item.key, bucket: item.bucket, versions, hintFor: item.hintFor };
        });
        await local.storeMany(items, { ifHeld: request.ifHeld === true });
        return { type: 'stored' };
      }
      case 'fetchMany':
        return await this.fetchMany(request.keys);
      case 'digestMany':
        return await this.digestMany(request.keys);
      case 'coordinate':
        return this.coordinate(request.key, request.mutation);
      case 'flushAll':
        await this.options.flushUntil(request.deadlineMs);
        return { type: 'flushed' };
    }
  }

  /** A key stored under another bucket than its own would hide it from its bucket's hash tree. */
  private checkBucket(key: Buffer, bucket: number): void {
    const expected = bucketOfKey(key, this.options.buckets);
    if (bucket !== expected) throw new KaiError('KAI_BAD_FRAME', `a key of bucket ${expected} was sent as bucket ${bucket}`);
  }

  private checkedVersions(key: Buffer, wire: readonly WireVersion[]): Version[] {
    if (wire.length > versionsPerStoreMax) {
      throw new KaiError('KAI_BAD_FRAME', `a store of ${wire.length} versions is over ${versionsPerStoreMax}`);
    }
    let latestMs = this.options.env.nowMs();
    for (const held of this.options.local.fetchNow(key)) latestMs = Math.max(latestMs, held.writtenAtMs);
    const writtenAtMsMax = latestMs + writeTimeAheadMsMax;
    for (const version of wire) {
      if (version.writtenAtMs > writtenAtMsMax) {
        throw new KaiError('KAI_BAD_FRAME', `a version written at ${version.writtenAtMs}, over ${writeTimeAheadMsMax} ms ahead of this replica`);
      }
    }
    return versionsFromWire(wire, this.options.local.valueBytesMax);
  }

  /** The versions of the first keys asked, as many as fit in one reply (at least one). */
  private async fetchMany(keys: readonly Buffer[]): Promise<RpcReply> {
    if (keys.length > itemsPerBatchMax) throw new KaiError('KAI_BAD_FRAME', `a fetch of ${keys.length} keys is over ${itemsPerBatchMax}`);
    const bytesMax = this.options.replyBatchBytesMax ?? replyBatchBytesMaxDefault;
    const { local } = this.options;
    const items: WireVersion[][] = [];
    const answered: Buffer[] = [];
    let bytes = 0;
    for (const key of keys) {
      const versions = local.fetchNow(key);
      bytes += itemWireBytes({ key, versions });
      if (items.length > 0 && bytes > bytesMax) break;
      items.push(versionsToWire(versions));
      answered.push(key);
    }
    // Answered once committed, as a single fetch is (Replica.fetch).
    await Promise.all(answered.map((key) => local.whenCommitted(key)));
    return { type: 'versionsMany', items };
  }

  /** The digests of the keys' versions; a reply carries at most itemsPerBatchMax keys, so it fits a frame. */
  private async digestMany(keys: readonly Buffer[]): Promise<RpcReply> {
    if (keys.length > itemsPerBatchMax) throw new KaiError('KAI_BAD_FRAME', `a digest of ${keys.length} keys is over ${itemsPerBatchMax}`);
    const { local } = this.options;
    const items = keys.map((key) => local.fetchNow(key).map(digestToWire));
    // Answered once committed, as a fetch is (Replica.fetch).
    await Promise.all(keys.map((key) => local.whenCommitted(key)));
    return { type: 'digestsMany', items };
  }

  private async coordinate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<RpcReply> {
    const applied = await this.options.coordinator.coordinate(key, spec);
    if (applied.error) throw applied.error;
    return {
      type: 'coordinated',
      result: outcomeToWire(spec.kind as K, applied.result),
      versions: versionsToWire(applied.versions),
      written: applied.written ? versionToWire(applied.written) : null,
      ...(applied.acknowledgedBy === undefined ? {} : { acknowledgedBy: applied.acknowledgedBy }),
    };
  }
}
