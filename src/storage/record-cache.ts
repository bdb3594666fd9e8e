import { assert } from '../errors';
import type { StoredRecord } from './record';

/** Default byte budget of a store's read cache. */
export const defaultCacheBytesMax = 64 * 1024 * 1024;

/*
 * What an entry costs beyond its key and value bytes, estimated from V8's object layout on 64-bit
 * Node: the map slot, the key string, the entry and record objects, and the backing store of the
 * Buffers. The estimate errs high so the budget bounds real memory rather than a fraction of it.
 */
const entryOverheadBytes = 256;
const versionOverheadBytes = 128;
const clockEntryOverheadBytes = 64;

/** An absent key is cached with record `undefined`: a miss that needs no SQLite lookup next time. */
export interface CacheEntry {
  readonly record: StoredRecord | undefined;
  readonly bytes: number;
}

/** Estimated memory held by a cached record, its key and its map entry. */
export function cachedBytesOf(keyId: string, record: StoredRecord | undefined): number {
  let bytes = entryOverheadBytes + keyId.length;
  if (record === undefined) return bytes;
  bytes += record.key.length + (record.actor?.length ?? 0);
  for (const version of record.versions) {
    bytes += versionOverheadBytes + version.value.length;
    for (const entry of version.clock) bytes += clockEntryOverheadBytes + entry.node.length;
  }
  return bytes;
}

/**
 * A copy of the record whose key and values share one exact-size allocation. Buffers handed to
 * a store may be views of larger buffers (socket chunks, Buffer's 8 KiB pool); caching such a
 * view would keep the whole larger buffer alive, and the budget would no longer bound memory.
 */
export function compactRecord(record: StoredRecord): StoredRecord {
  let totalBytes = record.key.length;
  for (const version of record.versions) totalBytes += version.value.length;
  const storage = Buffer.allocUnsafeSlow(totalBytes);
  let offset = record.key.copy(storage, 0);
  const key = storage.subarray(0, offset);
  const versions = record.versions.map((version) => {
    const start = offset;
    offset += version.value.copy(storage, start);
    return { ...version, value: storage.subarray(start, offset) };
  });
  return record.actor === undefined ? { key, bucket: record.bucket, versions } : { key, bucket: record.bucket, versions, actor: record.actor };
}

/**
 * The committed state of recently used keys, decoded, in least-recently-used order and bounded
 * by an estimated byte budget. It must only ever hold what the database holds: callers put
 * records in after they committed or after they were read back, never before.
 */
export class RecordCache {
  /** A Map iterates in insertion order; a hit re-inserts its entry, so the first entry is the LRU. */
  private readonly entries = new Map<string, CacheEntry>();
  private bytesUsed = 0;

  constructor(readonly bytesMax: number) {
    assert(Number.isSafeInteger(bytesMax) && bytesMax >= 0, 'cacheBytesMax is an integer >= 0');
  }

  get enabled(): boolean {
    return this.bytesMax > 0;
  }

  get bytes(): number {
    return this.bytesUsed;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The key's entry, made the most recently used; undefined when the cache knows nothing of the key. */
  lookup(keyId: string): CacheEntry | undefined {
    const entry = this.entries.get(keyId);
    if (entry === undefined) return undefined;
    this.entries.delete(keyId);
    this.entries.set(keyId, entry);
    return entry;
  }

  /** Records the key's committed state: its record, or `undefined` when the key is absent. */
  put(keyId: string, record: StoredRecord | undefined): void {
    if (!this.enabled) return;
    this.delete(keyId);
    const bytes = cachedBytesOf(keyId, record);
    // An entry over the whole budget would evict everything and then itself.
    if (bytes > this.bytesMax) return;
    this.entries.set(keyId, { record, bytes });
    this.bytesUsed += bytes;
    this.evictOverBudget();
  }

  delete(keyId: string): void {
    const entry = this.entries.get(keyId);
    if (entry === undefined) return;
    this.entries.delete(keyId);
    this.bytesUsed -= entry.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytesUsed = 0;
  }

  private evictOverBudget(): void {
    // Each turn removes one entry, so the loop ends within entries.size turns.
    while (this.bytesUsed > this.bytesMax) {
      const oldest = this.entries.keys().next();
      assert(oldest.done !== true, 'a cache over budget holds entries');
      this.delete(oldest.value);
    }
  }
}
