import type { StoredRecord } from './record';

export type { StoredRecord, Version } from './record';

/**
 * What a node needs from its local storage. Reads are synchronous and see every write already
 * accepted by `write`, committed or not, so a read-modify-write on one node is atomic.
 * `write` resolves only once the write's transaction has committed: an acknowledged write
 * survives `kill -9`. Writes that arrive together commit together (group commit).
 */
export interface ReplicaStore {
  read(key: Buffer): StoredRecord | undefined;
  /** Replaces everything stored under the record's key. */
  write(record: StoredRecord): Promise<void>;
  /** Removes every record; ordered with writes (a write accepted before is removed, one after is kept). */
  removeAll(): Promise<void>;
  /** Deletes up to `limit` records whose every version expired before `nowMs`; resolves to how many. */
  purgeExpired(nowMs: number, limit: number): Promise<number>;
  /** Records holding at least one non-tombstone version, and their key plus value bytes. */
  counts(): { readonly items: number; readonly bytes: number };
  /** Finishes pending writes and closes the database. */
  close(): Promise<void>;
}
