import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { KaiError, assert } from '../errors';
import type { ReplicaStore } from './index';
import { recordPurgeAtMs, tombstoneRetentionMs, type StoredRecord } from './record';
import { RecordCache, compactRecord, defaultCacheBytesMax } from './record-cache';
import { assertValidRecord, decodeVersions, encodeVersions, itemBytesOf } from './record-codec';
import {
  encodeBatch,
  keyIdOf,
  type CommitWorkerData,
  type CommitWorkerReply,
  type CommitWorkerRequest,
  type CommittedReply,
  type Counts,
} from './sqlite-commit-protocol';
import { prepareSchema, selectCountsSql } from './sqlite-schema';

export { defaultCacheBytesMax } from './record-cache';

/** The database file of a node, inside its data dir. */
export const databaseFileName = 'kai.sqlite3';

/**
 * Most operations (writes, removeAlls, purges) committed in one transaction. Bounds how much one
 * failed commit takes down with it, and how long the next batch waits behind one in flight.
 */
export const defaultWritesPerCommitMax = 1000;

/**
 * How long SQLite waits for a lock held by another connection. Only this process writes the
 * file, so a lock held elsewhere (an operator's sqlite3 shell) should fail a commit quickly
 * rather than stall it for better-sqlite3's default of 5 s.
 */
const busyTimeoutMs = 250;

/** Notes share the `meta` table with the schema's own rows; the prefix keeps their names apart. */
const notePrefix = 'note:';
/** A note is a small value (a member list is a few tens of KiB at most). */
export const noteLengthMax = 1024 * 1024;

/** How long close() lets the commit worker close its connection before terminating it. */
const workerCloseWaitMsMax = 5000;

/** The compiled commit worker; tests and bin/kai both run the compiled tree, so it sits next to this file. */
const commitWorkerPath = path.join(__dirname, 'sqlite-commit-worker.js');

export interface SqliteStoreOptions {
  readonly dataDir: string;
  readonly writesPerCommitMax?: number;
  /** Estimated bytes of decoded records the read cache may hold; 0 disables the cache. */
  readonly cacheBytesMax?: number;
  /** How long a tombstone is kept after its delete before its row may be purged. */
  readonly tombstoneRetentionMs?: number;
}

/** Counters for monitoring and for tests that observe group commit and the cache. */
export interface SqliteStoreStats {
  /** Group-commit transactions that committed. */
  readonly commits: number;
  /** Writes, removeAlls and purges that those transactions committed. */
  readonly operationsCommitted: number;
  /** Group-commit transactions that failed; each rejected all of its operations. */
  readonly commitFailures: number;
  /** Operations accepted and not yet committed or failed. */
  readonly operationsQueued: number;
  /** Keys whose latest accepted write has not committed yet. */
  readonly pendingKeys: number;
  /** Reads answered by the cache, without SQLite. */
  readonly cacheHits: number;
  /** Reads that looked the key up in SQLite. */
  readonly cacheMisses: number;
  readonly cacheEntries: number;
  /** Estimated memory held by the cache. */
  readonly cacheBytes: number;
}

interface Settlement<T> {
  resolve(value: T): void;
  reject(error: KaiError): void;
}

interface QueuedWrite {
  readonly kind: 'write';
  readonly record: StoredRecord;
  readonly key: Buffer;
  readonly bucket: number;
  readonly keyId: string;
  readonly sequence: number;
  readonly versionsBlob: Buffer;
  readonly purgeAtMs: number | null;
  readonly itemBytes: number | null;
  readonly settlement: Settlement<void>;
}

interface QueuedRemoveAll {
  readonly kind: 'removeAll';
  readonly settlement: Settlement<void>;
}

interface QueuedPurge {
  readonly kind: 'purge';
  readonly nowMs: number;
  readonly limit: number;
  readonly settlement: Settlement<number>;
}

/** Each is also the CommitOperation the worker applies, so a batch encodes without conversion. */
type QueuedOperation = QueuedWrite | QueuedRemoveAll | QueuedPurge;

/** An accepted write not yet committed, as reads must see it. */
interface PendingRecord {
  readonly record: StoredRecord;
  readonly sequence: number;
}

interface InFlightBatch {
  readonly batchId: number;
  readonly operations: readonly QueuedOperation[];
}

interface ItemRow {
  readonly key: Buffer;
  readonly bucket: number;
  readonly versions: Buffer;
}

function storageFailure(error: unknown): KaiError {
  return new KaiError('KAI_STORAGE_FAILURE', error instanceof Error ? error.message : String(error));
}

/** Opens the store's own connection, which prepares the schema and then only reads. */
function openReadConnection(filePath: string): Database.Database {
  const db = new Database(filePath, { timeout: busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    prepareSchema(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * The SQLite backend of a node's ReplicaStore: one WAL database per node, written by group
 * commit in a worker thread. Writes accepted while a batch is in flight form the next batch, one
 * batch at a time; until its commit is reported, reads answer from a map of pending records.
 * Committed records read recently stay decoded in an LRU cache, so hot keys cost no SQLite lookup.
 */
export class SqliteStore implements ReplicaStore {
  readonly filePath: string;
  private readonly db: Database.Database;
  private readonly selectItem: Database.Statement<[Buffer], ItemRow>;
  private readonly worker: Worker;
  private readonly cache: RecordCache;
  private readonly writesPerCommitMax: number;
  private readonly tombstoneRetentionMs: number;
  private readonly pending = new Map<string, PendingRecord>();
  private queue: QueuedOperation[] = [];
  private inFlight: InFlightBatch | undefined;
  private dispatchScheduled = false;
  private nextBatchId = 1;
  /** While above zero, a key absent from `pending` reads as absent: a removeAll will delete it. */
  private removeAllsQueued = 0;
  private nextSequence = 1;
  private committedCounts: Counts;
  private state: 'open' | 'closing' | 'closed' = 'open';
  /** Set once the worker is gone for good: every later write fails with it. */
  private workerLost: KaiError | undefined;
  private workerExited = false;
  private whenClosed: Promise<void> | undefined;
  private drainWaiters: (() => void)[] = [];
  private commits = 0;
  private operationsCommitted = 0;
  private commitFailures = 0;
  private cacheHits = 0;
  private cacheMisses = 0;

  constructor(options: SqliteStoreOptions) {
    this.writesPerCommitMax = options.writesPerCommitMax ?? defaultWritesPerCommitMax;
    assert(Number.isInteger(this.writesPerCommitMax) && this.writesPerCommitMax > 0, 'writesPerCommitMax > 0');
    this.tombstoneRetentionMs = options.tombstoneRetentionMs ?? tombstoneRetentionMs;
    assert(Number.isSafeInteger(this.tombstoneRetentionMs) && this.tombstoneRetentionMs >= 0, 'tombstoneRetentionMs >= 0');
    this.cache = new RecordCache(options.cacheBytesMax ?? defaultCacheBytesMax);
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.filePath = path.join(options.dataDir, databaseFileName);
    this.db = openReadConnection(this.filePath);
    try {
      schedulePurgeOfTombstones(this.db, this.tombstoneRetentionMs);
      this.selectItem = this.db.prepare<[Buffer], ItemRow>('SELECT key, bucket, versions FROM items WHERE key = ?');
      this.committedCounts = { ...this.db.prepare<[], Counts>(selectCountsSql).get()! };
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.worker = this.startWorker();
  }

  read(key: Buffer): StoredRecord | undefined {
    const keyId = keyIdOf(key);
    const pendingRecord = this.pending.get(keyId);
    if (pendingRecord !== undefined) return pendingRecord.record;
    if (this.removeAllsQueued > 0) return undefined;
    if (this.state === 'closed') throw new KaiError('KAI_SHUTTING_DOWN');
    const cached = this.cache.lookup(keyId);
    if (cached !== undefined) {
      this.cacheHits += 1;
      return cached.record;
    }
    this.cacheMisses += 1;
    let row: ItemRow | undefined;
    try {
      row = this.selectItem.get(key);
    } catch (error) {
      throw storageFailure(error);
    }
    // The key is in no batch in flight (it would be pending), so the row is its committed state
    // until a later commit report, which updates the cache itself.
    const record = row === undefined ? undefined : decodeRow(row);
    this.cache.put(keyId, record);
    return record;
  }

  write(record: StoredRecord): Promise<void> {
    assertValidRecord(record);
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const purgeAtMs = recordPurgeAtMs(record.versions, this.tombstoneRetentionMs);
    const keyId = keyIdOf(record.key);
    const sequence = this.nextSequence++;
    const versionsBlob = encodeVersions(record.versions);
    this.pending.set(keyId, { record, sequence });
    return new Promise<void>((resolve, reject) => {
      this.enqueue({
        kind: 'write',
        record,
        key: record.key,
        bucket: record.bucket,
        keyId,
        sequence,
        versionsBlob,
        purgeAtMs: purgeAtMs === 0 ? null : purgeAtMs,
        itemBytes: itemBytesOf(record) ?? null,
        settlement: { resolve, reject },
      });
    });
  }

  removeAll(): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    // Writes accepted so far are queued ahead of this removeAll, so their records read as gone
    // now and their commits cannot outlive it.
    this.pending.clear();
    this.removeAllsQueued += 1;
    return new Promise<void>((resolve, reject) => {
      this.enqueue({ kind: 'removeAll', settlement: { resolve, reject } });
    });
  }

  /**
   * Queued behind the writes accepted before it: a record a queued write is about to refresh is
   * judged by what that write stores, and a write accepted later replaces what the purge removed.
   */
  purgeExpired(nowMs: number, limit: number): Promise<number> {
    assert(Number.isSafeInteger(nowMs), 'purgeExpired nowMs is an integer');
    assert(Number.isSafeInteger(limit) && limit >= 0, 'purgeExpired limit is an integer >= 0');
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (limit === 0) return Promise.resolve(0);
    return new Promise<number>((resolve, reject) => {
      this.enqueue({ kind: 'purge', nowMs, limit, settlement: { resolve, reject } });
    });
  }

  /** Counts of committed records: a write shows in them once its commit is reported. */
  counts(): { readonly items: number; readonly bytes: number } {
    return { items: this.committedCounts.items, bytes: this.committedCounts.bytes };
  }

  stats(): SqliteStoreStats {
    return {
      commits: this.commits,
      operationsCommitted: this.operationsCommitted,
      commitFailures: this.commitFailures,
      operationsQueued: this.queue.length + (this.inFlight?.operations.length ?? 0),
      pendingKeys: this.pending.size,
      cacheHits: this.cacheHits,
      cacheMisses: this.cacheMisses,
      cacheEntries: this.cache.size,
      cacheBytes: this.cache.bytes,
    };
  }

  /**
   * A small value the node keeps beside its items (its member list), from the `meta` table;
   * undefined when none was written under `name`.
   */
  readNote(name: string): string | undefined {
    assert(this.state === 'open', 'notes are read while the store is open');
    const row = this.db.prepare<[string], { value: unknown }>('SELECT value FROM meta WHERE name = ?').get(notePrefix + name);
    return typeof row?.value === 'string' ? row.value : undefined;
  }

  /**
   * Replaces the note `name`, durably, before returning (synchronous = FULL). Written on this
   * connection rather than through the commit worker: notes are small and rare, and a caller
   * such as gossip must know the value is on disk before it acts on it. Throws KAI_STORAGE_FAILURE
   * when SQLite refuses, for instance while another writer holds the lock past the busy timeout.
   */
  writeNote(name: string, value: string): void {
    assert(this.state === 'open', 'notes are written while the store is open');
    assert(value.length <= noteLengthMax, `a note is at most ${noteLengthMax} characters`);
    try {
      this.db
        .prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value')
        .run(notePrefix + name, value);
    } catch (error) {
      throw storageFailure(error);
    }
  }

  close(): Promise<void> {
    if (this.whenClosed !== undefined) return this.whenClosed;
    this.state = 'closing';
    this.whenClosed = this.whenDrained()
      .then(() => this.stopWorker())
      .then(() => {
        // Closing last, this connection checkpoints the WAL into the database file.
        this.db.close();
        this.cache.clear();
        this.state = 'closed';
      });
    return this.whenClosed;
  }

  private refusal(): KaiError | undefined {
    if (this.state !== 'open') return new KaiError('KAI_SHUTTING_DOWN');
    return this.workerLost;
  }

  private startWorker(): Worker {
    const workerData: CommitWorkerData = { filePath: this.filePath, busyTimeoutMs };
    const worker = new Worker(commitWorkerPath, { workerData });
    worker.on('message', (reply: CommitWorkerReply) => this.onReply(reply));
    worker.on('error', (error) => this.onWorkerLost(storageFailure(error)));
    worker.on('messageerror', (error) => this.onWorkerLost(storageFailure(error)));
    worker.on('exit', (exitCode) => {
      this.workerExited = true;
      this.onWorkerLost(new KaiError('KAI_STORAGE_FAILURE', `commit worker exited with code ${exitCode}`));
    });
    // An idle worker does not keep the process alive; one with a batch in flight does.
    worker.unref();
    return worker;
  }

  private enqueue(operation: QueuedOperation): void {
    this.queue.push(operation);
    this.scheduleDispatch();
  }

  /** Waits one turn, so that writes accepted in the same turn of the event loop share a commit. */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.inFlight !== undefined || this.queue.length === 0) return;
    this.dispatchScheduled = true;
    setImmediate(() => this.dispatchNextBatch());
  }

  private dispatchNextBatch(): void {
    this.dispatchScheduled = false;
    if (this.inFlight !== undefined || this.workerLost !== undefined) return;
    if (this.queue.length === 0) return this.notifyIfDrained();
    const batch = this.takeBatch();
    const batchId = this.nextBatchId++;
    this.inFlight = { batchId, operations: batch };
    const operations = encodeBatch(batch);
    const request: CommitWorkerRequest = { type: 'commit', batchId, operations };
    this.worker.ref();
    this.worker.postMessage(request, [operations]);
  }

  private takeBatch(): QueuedOperation[] {
    if (this.queue.length <= this.writesPerCommitMax) {
      const batch = this.queue;
      this.queue = [];
      return batch;
    }
    return this.queue.splice(0, this.writesPerCommitMax);
  }

  private onReply(reply: CommitWorkerReply): void {
    const batch = this.inFlight;
    if (batch === undefined || batch.batchId !== reply.batchId) {
      // Only a bug could cause this; the store can no longer tell what committed.
      this.onWorkerLost(new KaiError('KAI_STORAGE_FAILURE', `unexpected reply for batch ${reply.batchId}`));
      void this.worker.terminate();
      return;
    }
    this.inFlight = undefined;
    this.worker.unref();
    if (reply.type === 'committed') this.settleCommitted(batch.operations, reply);
    else this.failOperations(batch.operations, new KaiError('KAI_STORAGE_FAILURE', reply.message));
    this.scheduleDispatch();
    this.notifyIfDrained();
  }

  /** Applies the batch to the cache in commit order, then settles its operations. */
  private settleCommitted(batch: readonly QueuedOperation[], reply: CommittedReply): void {
    this.committedCounts = reply.counts;
    this.commits += 1;
    this.operationsCommitted += batch.length;
    let purgeIndex = 0;
    for (const operation of batch) {
      if (operation.kind === 'write') {
        this.cacheCommittedWrite(operation);
        this.dropPendingIfLatest(operation);
        operation.settlement.resolve();
      } else if (operation.kind === 'removeAll') {
        this.cache.clear();
        this.removeAllsQueued -= 1;
        operation.settlement.resolve();
      } else {
        const purgedKeyIds = reply.purgedKeyIds[purgeIndex++];
        for (const keyId of purgedKeyIds) this.cache.delete(keyId);
        operation.settlement.resolve(purgedKeyIds.length);
      }
    }
  }

  /**
   * Caches the record a write committed. A later write of the key is still pending and answers
   * reads until its own commit updates the cache, so this one only has to evict the stale entry.
   */
  private cacheCommittedWrite(write: QueuedWrite): void {
    if (this.pending.get(write.keyId)?.sequence === write.sequence && this.cache.enabled) {
      this.cache.put(write.keyId, compactRecord(write.record));
    } else {
      this.cache.delete(write.keyId);
    }
  }

  /**
   * Rejects operations whose outcome is a failure, and rolls back what reads showed of them. The
   * cache is emptied too: a commit that failed at its very end, or a worker lost mid-batch, may
   * have changed rows after all, and the next reads must fetch what the file really holds.
   */
  private failOperations(operations: readonly QueuedOperation[], error: KaiError): void {
    this.commitFailures += 1;
    this.cache.clear();
    for (const operation of operations) {
      if (operation.kind === 'write') this.dropPendingIfLatest(operation);
      else if (operation.kind === 'removeAll') this.removeAllsQueued -= 1;
      operation.settlement.reject(error);
    }
  }

  /** A later write of the same key keeps its pending entry until its own commit settles. */
  private dropPendingIfLatest(write: QueuedWrite): void {
    if (this.pending.get(write.keyId)?.sequence === write.sequence) this.pending.delete(write.keyId);
  }

  /** Fails the batch in flight and everything queued; writes from now on fail at once. */
  private onWorkerLost(error: KaiError): void {
    if (this.workerLost !== undefined) return;
    this.workerLost = error;
    const unsettled = [...(this.inFlight?.operations ?? []), ...this.queue];
    this.inFlight = undefined;
    this.queue = [];
    this.cache.clear();
    if (unsettled.length > 0) this.failOperations(unsettled, error);
    this.notifyIfDrained();
  }

  private stopWorker(): Promise<void> {
    if (this.workerExited) return Promise.resolve();
    // From here an exit is the expected end, not a failure.
    this.workerLost ??= new KaiError('KAI_SHUTTING_DOWN');
    return new Promise((resolve) => {
      const forceTimer = setTimeout(() => void this.worker.terminate(), workerCloseWaitMsMax);
      this.worker.once('exit', () => {
        clearTimeout(forceTimer);
        resolve();
      });
      this.worker.ref();
      const request: CommitWorkerRequest = { type: 'close' };
      this.worker.postMessage(request);
    });
  }

  private notifyIfDrained(): void {
    if (this.queue.length > 0 || this.inFlight !== undefined) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private whenDrained(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === undefined) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
}

/** Rows scanned per transaction while giving an older file's tombstones their purge times. */
const rowsScannedPerTransactionMax = 1000;

/** The meta row that records that every tombstone-only row of the file has a purge time. */
const tombstonesScheduledName = 'tombstonesScheduled';

/**
 * Gives a purge time to rows holding only tombstones that have none: files written before
 * tombstones were purged kept them forever. It walks the table once per file, in key order and in
 * transactions of a bounded size, then records in `meta` that it is done; every later write sets
 * the time itself.
 */
function schedulePurgeOfTombstones(db: Database.Database, retentionMs: number): void {
  const done = db.prepare('SELECT 1 FROM meta WHERE name = ?').get(tombstonesScheduledName);
  if (done !== undefined) return;
  const select = db.prepare<[Buffer, number], ItemRow & { purgeAtMs: number | null; itemBytes: number | null }>(
    `SELECT key, bucket, versions, record_expires_at_ms AS purgeAtMs, item_bytes AS itemBytes
       FROM items WHERE key > ? ORDER BY key LIMIT ?`,
  );
  const update = db.prepare<[number, Buffer]>('UPDATE items SET record_expires_at_ms = ? WHERE key = ?');
  // Returns the last key scanned, or undefined once the table has been walked.
  const scheduleSome = db.transaction((after: Buffer): Buffer | undefined => {
    const rows = select.all(after, rowsScannedPerTransactionMax);
    for (const row of rows) {
      if (row.itemBytes !== null || row.purgeAtMs !== null) continue;
      update.run(recordPurgeAtMs(decodeRow(row).versions, retentionMs), row.key);
    }
    return rows.length === rowsScannedPerTransactionMax ? rows[rows.length - 1].key : undefined;
  });
  // Every key sorts after the empty blob; each pass starts after the last key of the one before.
  for (let after: Buffer | undefined = Buffer.alloc(0); after !== undefined; ) after = scheduleSome(after);
  db.prepare('INSERT INTO meta (name, value) VALUES (?, 1)').run(tombstonesScheduledName);
}

function decodeRow(row: ItemRow): StoredRecord {
  const record: StoredRecord = { key: row.key, bucket: row.bucket, versions: decodeVersions(row.versions) };
  assertValidRecord(record);
  return record;
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
