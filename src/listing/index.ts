/**
 * Listing the keys the cluster holds, for memcached's key dumps (`lru_crawler metadump`, `stats
 * cachedump`). Every key lives in one bucket of the ring, so the walk goes bucket by bucket and
 * reads each from one of its replicas (this node first when it is one, else the first replica up),
 * in pages of committed records in key order: each key is listed once, and memory holds one page.
 * A replica that fails part way is replaced by the next, from the last key listed. A key a write
 * has not yet reached on the replica read (one of those the write quorum did not wait for) is
 * missing until read repair or anti-entropy brings it.
 */
import { casOfVersions, latestLive } from '../coordinator/mutations';
import { KaiError } from '../errors';
import type { Version } from '../storage/record';

/** A key as the dumps show it: from the versions a client may see, the live one written last. */
export interface ListedKey {
  readonly key: Buffer;
  /** Unix ms after which the value is gone; 0 for never. */
  readonly expiresAtMs: number;
  /** When the value was written (unix ms): kai keeps no last-access time. */
  readonly writtenAtMs: number;
  /** The cas unique `gets` shows for the key, from the versions the replica read holds. */
  readonly cas: bigint;
  readonly valueBytes: number;
}

/** A record as a page carries it. */
export interface PagedRecord {
  readonly key: Buffer;
  readonly versions: readonly Version[];
}

export interface RecordPage {
  readonly items: readonly PagedRecord[];
  /** Whether the bucket holds keys after the page's last. */
  readonly more: boolean;
}

/** Keys asked of a replica per page; a page also stays within the internal API's reply bytes. */
export const keysPerListingPageMax = 100;

/**
 * The key as a dump lists it, or undefined when no value of it is live: only tombstones, expired
 * values, or values a flush deadline hides (`visible` filters them, as reads do).
 */
export function listedKeyOf(
  record: PagedRecord,
  visible: (versions: readonly Version[], nowMs: number) => readonly Version[],
  nowMs: number,
): ListedKey | undefined {
  const versions = visible(record.versions, nowMs);
  const latest = latestLive(versions, nowMs);
  if (latest === undefined) return undefined;
  return {
    key: record.key,
    expiresAtMs: latest.expiresAtMs,
    writtenAtMs: latest.writtenAtMs,
    cas: casOfVersions(versions),
    valueBytes: latest.value.length,
  };
}

export interface KeyListingOptions {
  readonly buckets: number;
  /** The members that may be asked for a bucket, in order: this node first when it holds the bucket. */
  readonly sourcesOf: (bucket: number) => readonly string[];
  /** Up to `limit` committed records of `bucket` after `afterKey`, in key order, from `memberId`. */
  readonly readPage: (memberId: string, bucket: number, afterKey: Buffer, limit: number) => Promise<RecordPage>;
  readonly visible: (versions: readonly Version[], nowMs: number) => readonly Version[];
  readonly nowMs: () => number;
  /** Why the node cannot serve yet (joining), as the coordinator refuses requests; else undefined. */
  readonly notReady: () => string | undefined;
}

/**
 * The cluster's live keys, page by page. Throws KAI_QUORUM_UNMET (before the first page, or part
 * way) when the node is not ready or no replica of a bucket answers.
 */
export async function* listClusterKeys(options: KeyListingOptions): AsyncGenerator<readonly ListedKey[]> {
  const waiting = options.notReady();
  if (waiting !== undefined) throw new KaiError('KAI_QUORUM_UNMET', waiting);
  for (let bucket = 0; bucket < options.buckets; bucket++) {
    const sources = options.sourcesOf(bucket);
    let source = 0;
    let afterKey: Buffer = Buffer.alloc(0);
    let more = true;
    while (more) {
      let page: RecordPage | undefined;
      while (page === undefined) {
        const memberId = sources[source];
        if (memberId === undefined) throw new KaiError('KAI_QUORUM_UNMET', `listing bucket ${bucket}: no replica answered`);
        try {
          page = await options.readPage(memberId, bucket, afterKey, keysPerListingPageMax);
        } catch {
          source++;
        }
      }
      const nowMs = options.nowMs();
      const listed: ListedKey[] = [];
      for (const record of page.items) {
        const key = listedKeyOf(record, options.visible, nowMs);
        if (key !== undefined) listed.push(key);
      }
      if (page.items.length > 0) afterKey = page.items[page.items.length - 1].key;
      more = page.more && page.items.length > 0;
      if (listed.length > 0) yield listed;
    }
  }
}
