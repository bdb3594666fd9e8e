/**
 * A ReplicaStore over a Map, for tests of the layers above storage. Reads see every accepted write
 * at once, as the SQLite store's do; writes resolve on the next microtask.
 */
import type { ReplicaStore, StoredRecord } from '../../src/storage';
import { recordPurgeAtMs } from '../../src/storage/record';

export class MemoryStore implements ReplicaStore {
  /** Keyed by the key's hex, since Buffers compare by identity in a Map. */
  readonly records = new Map<string, StoredRecord>();
  closed = false;

  read(key: Buffer): StoredRecord | undefined {
    return this.records.get(key.toString('hex'));
  }

  write(record: StoredRecord): Promise<void> {
    this.records.set(record.key.toString('hex'), record);
    return Promise.resolve();
  }

  removeAll(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }

  purgeExpired(nowMs: number, limit: number): Promise<number> {
    let purged = 0;
    for (const [hex, record] of this.records) {
      if (purged >= limit) break;
      const purgeAtMs = recordPurgeAtMs(record.versions);
      if (purgeAtMs !== 0 && purgeAtMs <= nowMs) {
        this.records.delete(hex);
        purged++;
      }
    }
    return Promise.resolve(purged);
  }

  counts(): { readonly items: number; readonly bytes: number } {
    let items = 0;
    let bytes = 0;
    for (const record of this.records.values()) {
      const values = record.versions.filter((version) => !version.tombstone);
      if (values.length === 0) continue;
      items++;
      bytes += record.key.length + values.reduce((sum, version) => sum + version.value.length, 0);
    }
    return { items, bytes };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
