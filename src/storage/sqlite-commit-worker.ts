/**
 * The commit worker of a SqliteStore: a worker thread that owns the store's write connection and
 * commits each batch it is sent in one transaction. The fsync of a commit (synchronous = FULL)
 * then blocks this thread instead of the event loop that serves requests; WAL lets the store's
 * own connection keep reading meanwhile. The worker answers each batch once it has committed or
 * rolled back; it keeps no state besides the connection and the committed counts.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { assert } from '../errors';
import {
  decodeBatch,
  keyIdOf,
  type CommitOperation,
  type CommitRequest,
  type CommitWorkerData,
  type CommitWorkerReply,
  type CommitWorkerRequest,
  type Counts,
} from './sqlite-commit-protocol';
import { selectCountsSql } from './sqlite-schema';

interface ItemBytesRow {
  readonly item_bytes: number | null;
}

function prepareStatements(db: Database.Database) {
  return {
    selectItemBytes: db.prepare<[Buffer], ItemBytesRow>('SELECT item_bytes FROM items WHERE key = ?'),
    upsertItem: db.prepare<[Buffer, number, number | null, number | null, Buffer]>(
      `INSERT INTO items (key, bucket, record_expires_at_ms, item_bytes, versions) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET bucket = excluded.bucket,
         record_expires_at_ms = excluded.record_expires_at_ms,
         item_bytes = excluded.item_bytes, versions = excluded.versions`,
    ),
    deleteAllItems: db.prepare('DELETE FROM items'),
    selectExpiredKeys: db.prepare<[number, number], { key: Buffer }>(
      `SELECT key FROM items WHERE record_expires_at_ms <= ? ORDER BY record_expires_at_ms LIMIT ?`,
    ),
    deleteItem: db.prepare<[Buffer], ItemBytesRow>('DELETE FROM items WHERE key = ? RETURNING item_bytes'),
    selectCounts: db.prepare<[], Counts>(selectCountsSql),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

function subtractItem(counts: Counts, row: ItemBytesRow | undefined): void {
  if (row === undefined || row.item_bytes === null) return;
  counts.items -= 1;
  counts.bytes -= row.item_bytes;
}

/** Runs inside one transaction; updates `counts` as the batch goes (they apply only if it commits). */
function applyOperations(
  statements: Statements,
  operations: readonly CommitOperation[],
  counts: Counts,
  purgedKeyIds: string[][],
): void {
  for (const operation of operations) {
    if (operation.kind === 'removeAll') {
      statements.deleteAllItems.run();
      counts.items = 0;
      counts.bytes = 0;
    } else if (operation.kind === 'purge') {
      purgedKeyIds.push(purgeExpired(statements, operation.nowMs, operation.limit, counts));
    } else {
      subtractItem(counts, statements.selectItemBytes.get(operation.key));
      statements.upsertItem.run(
        operation.key,
        operation.bucket,
        operation.purgeAtMs,
        operation.itemBytes,
        operation.versionsBlob,
      );
      if (operation.itemBytes !== null) {
        counts.items += 1;
        counts.bytes += operation.itemBytes;
      }
    }
  }
}

/**
 * Deletes up to `limit` expired rows. Writes queued before the purge were applied before it in
 * this transaction; one queued after it replaces whatever the purge removed.
 */
function purgeExpired(statements: Statements, nowMs: number, limit: number, counts: Counts): string[] {
  const keys = statements.selectExpiredKeys.all(nowMs, limit).map((row) => row.key);
  for (const key of keys) subtractItem(counts, statements.deleteItem.get(key));
  return keys.map(keyIdOf);
}

function serve(port: MessagePort, data: CommitWorkerData): void {
  const db = new Database(data.filePath, { timeout: data.busyTimeoutMs });
  // The store's connection made the file WAL; the mode is persistent, so only check it.
  assert(db.pragma('journal_mode', { simple: true }) === 'wal', 'the database is in WAL mode');
  // FULL syncs the WAL on every commit: an acknowledged write survives power loss, not only kill -9.
  db.pragma('synchronous = FULL');
  const statements = prepareStatements(db);
  let committedCounts: Counts = { ...statements.selectCounts.get()! };
  const applyInTransaction = db.transaction(applyOperations);

  const commit = (request: CommitRequest): CommitWorkerReply => {
    const operations = decodeBatch(request.operations);
    const counts = { ...committedCounts };
    const purgedKeyIds: string[][] = [];
    try {
      // IMMEDIATE takes the write lock up front, so a busy file waits out busyTimeoutMs rather
      // than failing when a read inside the batch upgrades to a write.
      applyInTransaction.immediate(statements, operations, counts, purgedKeyIds);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { type: 'failed', batchId: request.batchId, message };
    }
    committedCounts = counts;
    return { type: 'committed', batchId: request.batchId, counts, purgedKeyIds };
  };

  port.on('message', (request: CommitWorkerRequest) => {
    if (request.type === 'close') {
      db.close();
      port.close();
      return;
    }
    port.postMessage(commit(request));
  });
}

if (!isMainThread && parentPort !== null) serve(parentPort, workerData as CommitWorkerData);
