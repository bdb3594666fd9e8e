/**
 * A ReplicaStore over a Map, for tests of the layers above storage. Reads see every accepted write
 * at once, as the SQLite store's do; writes resolve on the next microtask, and hints are kept in
 * a map beside the records.
 */
import type { ReplicaStore, StoredRecord, WriteOptions } from '../../src/storage';

export class MemoryStore implements ReplicaStore {
  /** Keyed by the key's hex, since Buffers compare by identity in a Map. */
  readonly records = new Map<string, StoredRecord>();
  /** Hex keys hinted for each target. */
  readonly hints = new Map<string, Set<string>>();
  closed = false;

  read(key: Buffer): StoredRecord | undefined {
    return this.records.get(key.toString('hex'));
  }

  write(record: StoredRecord, options: WriteOptions = {}): Promise<void> {
    const hex = record.key.toString('hex');
    this.records.set(hex, record);
    if (options.hintFor !== undefined) {
      const hinted = this.hints.get(options.hintFor) ?? new Set<string>();
      hinted.add(hex);
      this.hints.set(options.hintFor, hinted);
    }
    return Promise.resolve();
  }

  whenCommitted(): Promise<void> {
    return Promise.resolve();
  }

  removeAll(): Promise<void> {
    this.records.clear();
    this.hints.clear();
    return Promise.resolve();
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
