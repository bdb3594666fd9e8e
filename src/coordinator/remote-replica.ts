/**
 * A replica on another node, reached over the internal API: fetch is `replicaFetch`, store is
 * `replicaStore`, and a forwarded write is `coordinate`. Everything a peer answers is checked at
 * this boundary (wire.ts, specs.ts) before the coordinator uses it.
 */
import type { Env } from '../env';
import { KaiError } from '../errors';
import { isTreeHash } from '../merkle';
import type { RpcReply, RpcRequest } from '../rpc/messages';
import { errorFromReply } from '../rpc/peer-connection';
import type { Transport } from '../rpc/transport';
import type { Version } from '../storage/record';
import type { KeyHash } from '../storage/sqlite-queries';
import { RequestBatcher, type BatchLimits } from './batching';
import type { Coordinated, Replica, StoreItem } from './replica';
import { itemsPerBatchMax, replyBatchBytesMaxDefault } from './replica-service';
import { outcomeFromWire, type SpecKind, type SpecOf } from './specs';
import { digestFromWire, itemWireBytes, storeItemToWire, versionFromWire, versionsFromWire, type VersionDigest } from './wire';

export interface RemoteReplicaOptions {
  /** How long a fetch or store waits for the peer. */
  readonly requestTimeoutMs: number;
  /** Values a peer sends larger than this are refused (the node's --max-item-size). */
  readonly valueBytesMax: number;
  /** Gathers the fetches and stores of one turn into batched requests (batching.ts). */
  readonly env: Env;
  /** How many keys and bytes one batched request carries; by default what a peer accepts. */
  readonly batchLimits?: BatchLimits;
}

/** What one batched request carries by default: as many keys as a peer takes, 4 MB of versions. */
export const batchLimitsDefault: BatchLimits = { itemsMax: itemsPerBatchMax, bytesMax: replyBatchBytesMaxDefault };

/** What a fetch of one key takes in a batch, beyond the key: msgpack's framing of it. */
const fetchItemOverheadBytes = 8;

type ReplyOf<T extends RpcReply['type']> = Extract<RpcReply, { readonly type: T }>;

export class RemoteReplica implements Replica {
  private readonly fetches: RequestBatcher<Buffer, readonly Version[]>;
  private readonly stores: RequestBatcher<StoreItem, void>;
  private readonly digests: RequestBatcher<Buffer, readonly VersionDigest[]>;

  constructor(
    readonly nodeId: string,
    /** host:port of the peer's internal API. */
    readonly address: string,
    private readonly transport: Pick<Transport, 'request'>,
    private readonly options: RemoteReplicaOptions,
  ) {
    const limits = options.batchLimits ?? batchLimitsDefault;
    this.fetches = new RequestBatcher<Buffer, readonly Version[]>(options.env, limits, {
      send: (keys) => (keys.length === 1 ? this.fetchOne(keys[0]).then((versions) => [versions]) : this.fetchMany(keys)),
      bytesOf: (key) => key.length + fetchItemOverheadBytes,
    });
    this.digests = new RequestBatcher<Buffer, readonly VersionDigest[]>(options.env, limits, {
      send: (keys) => this.digestMany(keys),
      bytesOf: (key) => key.length + fetchItemOverheadBytes,
    });
    this.stores = new RequestBatcher<StoreItem, void>(options.env, limits, {
      send: (items) => (items.length === 1 ? this.storeOne(items[0]) : this.storeMany(items)).then(() => items.map(() => undefined)),
      bytesOf: itemWireBytes,
    });
  }

  /** The digests of the key's versions on the peer; asked in one turn, they travel as one request. */
  fetchDigests(key: Buffer): Promise<readonly VersionDigest[]> {
    return this.digests.add(key);
  }

  private async digestMany(keys: readonly Buffer[]): Promise<VersionDigest[][]> {
    const reply = await this.call({ type: 'digestMany', keys }, 'digestsMany', this.options.requestTimeoutMs);
    if (reply.items.length > keys.length || (keys.length > 0 && reply.items.length === 0)) {
      throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered ${reply.items.length} digests of ${keys.length} keys`);
    }
    return reply.items.map((digests) => digests.map(digestFromWire));
  }

  /** The key's versions on the peer; fetches made in one turn travel as one request. */
  fetch(key: Buffer): Promise<readonly Version[]> {
    return this.fetches.add(key);
  }

  /** Merges versions on the peer; stores made in one turn travel as one request. */
  store(key: Buffer, bucket: number, versions: readonly Version[], hintFor?: string): Promise<void> {
    return this.stores.add(hintFor === undefined ? { key, bucket, versions } : { key, bucket, versions, hintFor });
  }

  private async fetchOne(key: Buffer): Promise<readonly Version[]> {
    const reply = await this.call({ type: 'replicaFetch', key }, 'versions', this.options.requestTimeoutMs);
    return versionsFromWire(reply.versions, this.options.valueBytesMax);
  }

  private async storeOne(item: StoreItem): Promise<void> {
    await this.call({ type: 'replicaStore', ...storeItemToWire(item) }, 'stored', this.options.requestTimeoutMs);
  }

  /**
   * Merges many keys' versions on the peer; resolves once it has committed them all. With
   * `ifHeld`, the peer merges only into keys it holds something for.
   */
  async storeMany(items: readonly StoreItem[], timeoutMs = this.options.requestTimeoutMs, ifHeld = false): Promise<void> {
    await this.call({ type: 'storeMany', items: items.map(storeItemToWire), ...(ifHeld ? { ifHeld } : {}) }, 'stored', timeoutMs);
  }

  /**
   * A page of the peer's committed records of `bucket`, in key order after `afterKey`: at most
   * `limit` keys and a reply's worth of bytes; `more` says whether the bucket holds keys beyond.
   */
  async bucketPage(bucket: number, afterKey: Buffer, limit: number, timeoutMs = this.options.requestTimeoutMs): Promise<{ items: StoreItem[]; more: boolean }> {
    const reply = await this.call({ type: 'bucketPage', bucket, afterKey, limit }, 'bucketPage', timeoutMs);
    if (reply.items.length > limit) throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered ${reply.items.length} keys of ${limit}`);
    const items = reply.items.map((item) => {
      if (item.bucket !== bucket) throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered a key of bucket ${item.bucket} for ${bucket}`);
      return { key: item.key, bucket, versions: versionsFromWire(item.versions, this.options.valueBytesMax) };
    });
    return { items, more: reply.more };
  }

  /**
   * The versions the peer holds for the first keys of `keys`, in order; it may answer fewer than
   * asked (a frame's worth), never none unless `keys` is empty.
   */
  async fetchMany(keys: readonly Buffer[], timeoutMs = this.options.requestTimeoutMs): Promise<Version[][]> {
    const reply = await this.call({ type: 'fetchMany', keys }, 'versionsMany', timeoutMs);
    if (reply.items.length > keys.length || (keys.length > 0 && reply.items.length === 0)) {
      throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered ${reply.items.length} of ${keys.length} keys`);
    }
    return reply.items.map((versions) => versionsFromWire(versions, this.options.valueBytesMax));
  }

  async coordinate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>, timeoutMs: number): Promise<Coordinated<K>> {
    const reply = await this.call({ type: 'coordinate', key, mutation: spec }, 'coordinated', timeoutMs);
    const { valueBytesMax } = this.options;
    return {
      result: outcomeFromWire(spec.kind as K, reply.result),
      versions: versionsFromWire(reply.versions, valueBytesMax),
      written: reply.written === null ? undefined : versionFromWire(reply.written, valueBytesMax),
      ...(reply.acknowledgedBy === undefined ? {} : { acknowledgedBy: reply.acknowledgedBy }),
    };
  }

  /** Anti-entropy: the root hash of each of `buckets`' trees on the peer. */
  async treeRoots(buckets: readonly number[], timeoutMs = this.options.requestTimeoutMs): Promise<number[]> {
    const reply = await this.call({ type: 'treeRoots', buckets }, 'treeHashes', timeoutMs);
    return this.checkedHashes(reply.hashes, buckets.length);
  }

  /** Anti-entropy: hashes of nodes `indexes` at `level` of a bucket's tree on the peer. */
  async treeNodes(bucket: number, level: number, indexes: readonly number[], timeoutMs = this.options.requestTimeoutMs): Promise<number[]> {
    const reply = await this.call({ type: 'treeNodes', bucket, level, indexes }, 'treeHashes', timeoutMs);
    return this.checkedHashes(reply.hashes, indexes.length);
  }

  /**
   * Anti-entropy: the keys and hashes of some of `segments` of a bucket on the peer, and which
   * segments they cover (a prefix of those asked, at least one).
   */
  async segmentKeys(
    bucket: number,
    segments: readonly number[],
    timeoutMs = this.options.requestTimeoutMs,
  ): Promise<{ readonly segments: readonly number[]; readonly keys: readonly KeyHash[] }> {
    const reply = await this.call({ type: 'segmentKeys', bucket, segments }, 'segmentKeys', timeoutMs);
    const covered = reply.segments;
    const isPrefix = covered.length > 0 && covered.length <= segments.length && covered.every((segment, index) => segment === segments[index]);
    if ((segments.length > 0 && !isPrefix) || reply.keys.length !== reply.hashes.length) {
      throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered segmentKeys with a malformed list`);
    }
    this.checkedHashes(reply.hashes, reply.keys.length);
    return { segments: covered, keys: reply.keys.map((key, index) => ({ key, hash: reply.hashes[index] })) };
  }

  private checkedHashes(hashes: readonly number[], expected: number): number[] {
    if (hashes.length !== expected || !hashes.every(isTreeHash)) {
      throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered ${hashes.length} tree hashes, not ${expected} valid ones`);
    }
    return [...hashes];
  }

  /** Sends a request and expects a reply of type `expected`; an error reply rejects as its KaiError. */
  private async call<T extends RpcReply['type']>(request: RpcRequest, expected: T, timeoutMs: number): Promise<ReplyOf<T>> {
    const reply = await this.transport.request(this.address, request, timeoutMs);
    // The TCP transport rejects error replies itself; a transport may also hand them back.
    if (reply.type === 'error') throw errorFromReply(reply.code, reply.detail);
    if (reply.type !== expected) {
      throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered ${request.type} with ${reply.type}`);
    }
    return reply as ReplyOf<T>;
  }
}
