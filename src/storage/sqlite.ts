import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KaiError, assert } from '../errors';
import type { ReplicaStore } from './index';
import { recordExpiresAtMs, type StoredRecord } from './record';
import { assertValidRecord, decodeVersions, encodeVersions, itemBytesOf } from './record-codec';
import { prepareSchema } from './sqlite-schema';

/** The database file of a node, inside its data dir. */
export const databaseFileName = 'kai.sqlite3';

/**
 * Most operations (writes and removeAlls) committed in one transaction. Bounds how long one
 * commit holds the event loop and how much one failed commit takes down with it.
 */
export const defaultWritesPerCommitMax = 1000;

/**
 * How long SQLite waits for a lock held by another connection. Only this process writes the
 * file, so a lock held elsewhere (an operator's sqlite3 shell) should fail a commit quickly
 * rather than stall the event loop for better-sqlite3's default of 5 s.
 */
const busyTimeoutMs = 250;

export interface SqliteStoreOptions {
  readonly dataDir: string;
  readonly writesPerCommitMax?: number;
}

/** Counters for monitoring and for tests that observe group commit. */
export interface SqliteStoreStats {
  /** Group-commit transactions that committed. */
  readonly commits: number;
  /** Writes and removeAlls that those transactions committed. */
  readonly operationsCommitted: number;
  /** Group-commit transactions that failed; each rejected all of its operations. */
  readonly commitFailures: number;
  /** Operations accepted and not yet committed or failed. */
  readonly operationsQueued: number;
  /** Keys whose latest accepted write has not committed yet. */
  readonly pendingKeys: number;
}

interface Settlement {
  resolve(): void;
  reject(error: KaiError): void;
}

interface QueuedWrite {
  readonly kind: 'write';
  readonly record: StoredRecord;
  readonly keyId: string;
  readonly sequence: number;
  readonly versionsBlob: Buffer;
  /** NULL in the table when the record never expires. */
  readonly purgeAtMs: number | null;
  readonly itemBytes: number | null;
  readonly settlement: Settlement;
}

interface QueuedRemoveAll {
  readonly kind: 'removeAll';
  readonly settlement: Settlement;
}

type QueuedOperation = QueuedWrite | QueuedRemoveAll;

/** An accepted write not yet committed, as reads must see it. */
interface PendingRecord {
  readonly record: StoredRecord;
  readonly sequence: number;
}

interface Counts {
  items: number;
  bytes: number;
}

interface ItemRow {
  readonly key: Buffer;
  readonly bucket: number;
  readonly versions: Buffer;
}

interface ItemBytesRow {
  readonly item_bytes: number | null;
}

/** The map key of a record key: latin1 maps each byte to one char, so distinct keys stay distinct. */
function keyIdOf(key: Buffer): string {
  return key.toString('latin1');
}

function storageFailure(error: unknown): KaiError {
  return new KaiError('KAI_STORAGE_FAILURE', error instanceof Error ? error.message : String(error));
}

function prepareStatements(db: Database.Database) {
  return {
    selectItem: db.prepare<[Buffer], ItemRow>('SELECT key, bucket, versions FROM items WHERE key = ?'),
    selectItemBytes: db.prepare<[Buffer], ItemBytesRow>('SELECT item_bytes FROM items WHERE key = ?'),
    upsertItem: db.prepare<[Buffer, number, number | null, number | null, Buffer]>(
      `INSERT INTO items (key, bucket, record_expires_at_ms, item_bytes, versions) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET bucket = excluded.bucket,
         record_expires_at_ms = excluded.record_expires_at_ms,
         item_bytes = excluded.item_bytes, versions = excluded.versions`,
    ),
    deleteAllItems: db.prepare('DELETE FROM items'),
    selectExpiredKeys: db.prepare<[number], { key: Buffer }>(
      `SELECT key FROM items WHERE record_expires_at_ms <= ? ORDER BY record_expires_at_ms`,
    ),
    deleteItem: db.prepare<[Buffer], ItemBytesRow>('DELETE FROM items WHERE key = ? RETURNING item_bytes'),
    selectCounts: db.prepare<[], Counts>(
      'SELECT COUNT(item_bytes) AS items, COALESCE(SUM(item_bytes), 0) AS bytes FROM items',
    ),
  };
}

/**
 * The SQLite backend of a node's ReplicaStore: one WAL database per node, written by group
 * commit. Writes accepted in one turn of the event loop commit in one transaction scheduled with
 * setImmediate; until then reads answer from a map of pending records.
 */
export class SqliteStore implements ReplicaStore {
  readonly filePath: string;
  private readonly db: Database.Database;
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly writesPerCommitMax: number;
  private readonly applyBatchTransaction: (batch: readonly QueuedOperation[], counts: Counts) => Counts;
  private readonly purgeTransaction: (nowMs: number, limit: number, counts: Counts) => number;
  private readonly pending = new Map<string, PendingRecord>();
  private queue: QueuedOperation[] = [];
  private commitScheduled = false;
  /** While above zero, a key absent from `pending` reads as absent: a removeAll will delete it. */
  private removeAllsQueued = 0;
  private nextSequence = 1;
  private committedCounts: Counts;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private whenClosed: Promise<void> | undefined;
  private drainWaiters: (() => void)[] = [];
  private commits = 0;
  private operationsCommitted = 0;
  private commitFailures = 0;

  constructor(options: SqliteStoreOptions) {
    this.writesPerCommitMax = options.writesPerCommitMax ?? defaultWritesPerCommitMax;
    assert(Number.isInteger(this.writesPerCommitMax) && this.writesPerCommitMax > 0, 'writesPerCommitMax > 0');
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.filePath = path.join(options.dataDir, databaseFileName);
    this.db = new Database(this.filePath, { timeout: busyTimeoutMs });
    try {
      this.db.pragma('journal_mode = WAL');
      // FULL syncs the WAL on every commit: an acknowledged write survives power loss, not only kill -9.
      this.db.pragma('synchronous = FULL');
      prepareSchema(this.db);
      this.statements = prepareStatements(this.db);
      this.committedCounts = { ...this.statements.selectCounts.get()! };
      this.applyBatchTransaction = this.db.transaction(this.applyBatchInTransaction.bind(this));
      this.purgeTransaction = this.db.transaction(this.purgeInTransaction.bind(this));
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  read(key: Buffer): StoredRecord | undefined {
    const pendingRecord = this.pending.get(keyIdOf(key));
    if (pendingRecord !== undefined) return pendingRecord.record;
    if (this.removeAllsQueued > 0) return undefined;
    if (this.state === 'closed') throw new KaiError('KAI_SHUTTING_DOWN');
    let row: ItemRow | undefined;
    try {
      row = this.statements.selectItem.get(key);
    } catch (error) {
      throw storageFailure(error);
    }
    return row === undefined ? undefined : decodeRow(row);
  }

  write(record: StoredRecord): Promise<void> {
    assertValidRecord(record);
    if (this.state !== 'open') return Promise.reject(new KaiError('KAI_SHUTTING_DOWN'));
    const purgeAtMs = recordExpiresAtMs(record.versions);
    const keyId = keyIdOf(record.key);
    const sequence = this.nextSequence++;
    const versionsBlob = encodeVersions(record.versions);
    this.pending.set(keyId, { record, sequence });
    return new Promise<void>((resolve, reject) => {
      this.enqueue({
        kind: 'write',
        record,
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
    if (this.state !== 'open') return Promise.reject(new KaiError('KAI_SHUTTING_DOWN'));
    // Writes accepted so far are queued ahead of this removeAll, so their records read as gone
    // now and their commits cannot outlive it.
    this.pending.clear();
    this.removeAllsQueued += 1;
    return new Promise<void>((resolve, reject) => {
      this.enqueue({ kind: 'removeAll', settlement: { resolve, reject } });
    });
  }

  purgeExpired(nowMs: number, limit: number): Promise<number> {
    assert(Number.isSafeInteger(nowMs), 'purgeExpired nowMs is an integer');
    assert(Number.isSafeInteger(limit) && limit >= 0, 'purgeExpired limit is an integer >= 0');
    if (this.state !== 'open') return Promise.reject(new KaiError('KAI_SHUTTING_DOWN'));
    try {
      return Promise.resolve(this.purgeNow(nowMs, limit));
    } catch (error) {
      return Promise.reject(storageFailure(error));
    }
  }

  /** Counts of committed records: a write shows in them once its commit lands, a tick after reads see it. */
  counts(): { readonly items: number; readonly bytes: number } {
    return { items: this.committedCounts.items, bytes: this.committedCounts.bytes };
  }

  stats(): SqliteStoreStats {
    return {
      commits: this.commits,
      operationsCommitted: this.operationsCommitted,
      commitFailures: this.commitFailures,
      operationsQueued: this.queue.length,
      pendingKeys: this.pending.size,
    };
  }

  close(): Promise<void> {
    if (this.whenClosed !== undefined) return this.whenClosed;
    this.state = 'closing';
    this.whenClosed = this.whenDrained().then(() => {
      this.db.close();
      this.state = 'closed';
    });
    return this.whenClosed;
  }

  private enqueue(operation: QueuedOperation): void {
    this.queue.push(operation);
    if (this.commitScheduled) return;
    this.commitScheduled = true;
    setImmediate(() => this.commitNextBatch());
  }

  private commitNextBatch(): void {
    this.commitScheduled = false;
    const batch = this.takeBatch();
    this.commitBatch(batch);
    if (this.queue.length > 0) {
      // The rest waits one turn so other I/O runs between batches.
      this.commitScheduled = true;
      setImmediate(() => this.commitNextBatch());
      return;
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private takeBatch(): QueuedOperation[] {
    if (this.queue.length <= this.writesPerCommitMax) {
      const batch = this.queue;
      this.queue = [];
      return batch;
    }
    return this.queue.splice(0, this.writesPerCommitMax);
  }

  private commitBatch(batch: readonly QueuedOperation[]): void {
    let counts: Counts;
    try {
      counts = this.applyBatchTransaction(batch, { ...this.committedCounts });
    } catch (error) {
      this.failBatch(batch, storageFailure(error));
      return;
    }
    this.committedCounts = counts;
    this.commits += 1;
    this.operationsCommitted += batch.length;
    for (const operation of batch) {
      if (operation.kind === 'write') this.dropPendingIfLatest(operation);
      else this.removeAllsQueued -= 1;
      operation.settlement.resolve();
    }
  }

  /** Rolls back what reads showed of the batch: its writes never happened. */
  private failBatch(batch: readonly QueuedOperation[], error: KaiError): void {
    this.commitFailures += 1;
    for (const operation of batch) {
      if (operation.kind === 'write') this.dropPendingIfLatest(operation);
      else this.removeAllsQueued -= 1;
      operation.settlement.reject(error);
    }
  }

  /** A later write of the same key keeps its pending entry until its own commit settles. */
  private dropPendingIfLatest(write: QueuedWrite): void {
    if (this.pending.get(write.keyId)?.sequence === write.sequence) this.pending.delete(write.keyId);
  }

  /** Runs inside one transaction; updates `counts` as the batch goes (they apply only if it commits). */
  private applyBatchInTransaction(batch: readonly QueuedOperation[], counts: Counts): Counts {
    for (const operation of batch) {
      if (operation.kind === 'removeAll') {
        this.statements.deleteAllItems.run();
        counts.items = 0;
        counts.bytes = 0;
        continue;
      }
      subtractItem(counts, this.statements.selectItemBytes.get(operation.record.key));
      const { record } = operation;
      this.statements.upsertItem.run(
        record.key,
        record.bucket,
        operation.purgeAtMs,
        operation.itemBytes,
        operation.versionsBlob,
      );
      if (operation.itemBytes !== null) {
        counts.items += 1;
        counts.bytes += operation.itemBytes;
      }
    }
    return counts;
  }

  /** Deletes up to `limit` expired rows, skipping keys a pending write is about to replace. */
  private purgeNow(nowMs: number, limit: number): number {
    if (limit === 0) return 0;
    const counts = { ...this.committedCounts };
    const purged = this.purgeTransaction(nowMs, limit, counts);
    this.committedCounts = counts;
    return purged;
  }

  private purgeInTransaction(nowMs: number, limit: number, counts: Counts): number {
    const keys: Buffer[] = [];
    // The scan stops at `limit` keys; it passes over at most the pending keys besides.
    for (const row of this.statements.selectExpiredKeys.iterate(nowMs)) {
      if (!this.pending.has(keyIdOf(row.key))) keys.push(row.key);
      if (keys.length >= limit) break;
    }
    for (const key of keys) subtractItem(counts, this.statements.deleteItem.get(key));
    return keys.length;
  }

  private whenDrained(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
}

function subtractItem(counts: Counts, row: ItemBytesRow | undefined): void {
  if (row === undefined || row.item_bytes === null) return;
  counts.items -= 1;
  counts.bytes -= row.item_bytes;
}

function decodeRow(row: ItemRow): StoredRecord {
  const record: StoredRecord = { key: row.key, bucket: row.bucket, versions: decodeVersions(row.versions) };
  assertValidRecord(record);
  return record;
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
