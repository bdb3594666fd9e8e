/**
 * The commit worker of a SqliteStore: a worker thread that owns the store's write connection and
 * commits each batch it is sent in one transaction (sqlite-apply.ts). The fsync of a commit
 * (synchronous = FULL) then blocks this thread instead of the event loop that serves requests;
 * WAL lets the store's own connection keep reading meanwhile. The worker answers each batch once
 * it has committed or rolled back.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { assert } from '../errors';
import { BatchApplier } from './sqlite-apply';
import { decodeBatch, type CommitWorkerData, type CommitWorkerRequest } from './sqlite-batch';

function serve(port: MessagePort, data: CommitWorkerData): void {
  const db = new Database(data.filePath, { timeout: data.busyTimeoutMs });
  // The store's connection made the file WAL; the mode is persistent, so only check it.
  assert(db.pragma('journal_mode', { simple: true }) === 'wal', 'the database is in WAL mode');
  // FULL syncs the WAL on every commit: an acknowledged write survives power loss, not only kill -9.
  db.pragma('synchronous = FULL');
  const applier = new BatchApplier(db, data.buckets);
  port.on('message', (request: CommitWorkerRequest) => {
    if (request.type === 'close') {
      db.close();
      port.close();
      return;
    }
    port.postMessage(applier.commit(request.batchId, decodeBatch(request.operations)));
  });
}

if (!isMainThread && parentPort !== null) serve(parentPort, workerData as CommitWorkerData);
