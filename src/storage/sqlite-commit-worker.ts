/**
 * The commit worker of a SqliteStore: a worker thread that owns the store's write connection and
 * commits each batch it is sent in one transaction (sqlite-apply.ts). The write, and with
 * durability 'power' the fsync, of a commit then block this thread instead of the event loop;
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
  // A commit is in the WAL file before it is answered, which a crash or kill -9 of this process
  // cannot undo. FULL also syncs the WAL on every commit, so it survives power loss too; NORMAL
  // syncs only at checkpoints, and a power loss may take the last commits back.
  db.pragma(data.syncEveryCommit ? 'synchronous = FULL' : 'synchronous = NORMAL');
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
