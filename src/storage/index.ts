import type { StoredRecord } from './record';

export type { StoredRecord, Version } from './record';

export interface WriteOptions {
  /**
   * The primary this copy stands in for, when the write reaches a fallback (sloppy quorum): the
   * store records a hint in the same transaction, and hinted handoff delivers the copy later.
   */
  readonly hintFor?: string;
  /**
   * Only if the key still holds a record when the write commits: a merge into an existing copy
   * (the reaper's), which must not re-create a copy that a removal queued before it deletes.
   */
  readonly onlyIfPresent?: boolean;
}

/**
 * What a node needs from its local storage. Reads are synchronous and see every write already
 * accepted by `write`, committed or not, so a read-modify-write on one node is atomic.
 * `write` resolves only once the write's transaction has committed: an acknowledged write
 * survives `kill -9`. Writes that arrive together commit together (group commit).
 */
export interface ReplicaStore {
  read(key: Buffer): StoredRecord | undefined;
  /** Replaces everything stored under the record's key. */
  write(record: StoredRecord, options?: WriteOptions): Promise<void>;
  /**
   * Settles once the latest write accepted for the key has committed (rejects if it failed); at
   * once when none is pending. What `read` shows may not be on disk yet: a replica that answers
   * "stored" because it already holds a version waits for that version's commit first.
   */
  whenCommitted(key: Buffer): Promise<void>;
  /** Removes every record; ordered with writes (a write accepted before is removed, one after is kept). */
  removeAll(): Promise<void>;
  /** Records holding at least one non-tombstone version, and their key plus value bytes. */
  counts(): { readonly items: number; readonly bytes: number };
  /** Finishes pending writes and closes the database. */
  close(): Promise<void>;
}
