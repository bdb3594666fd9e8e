/**
 * What commits a SqliteStore's batches, one at a time. The real one is a worker thread with its
 * own connection, so the fsync never blocks the event loop. The inline one commits on the store's
 * own connection after a delay drawn from the store's Env: under simulation the delay is virtual
 * time, and a node that crashes before it passes loses the batch, as a process killed before its
 * fsync does.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import { BatchApplier } from './sqlite-apply';
import {
  encodeBatch,
  type CommitOperation,
  type CommitWorkerData,
  type CommitWorkerReply,
  type CommitWorkerRequest,
} from './sqlite-batch';

export interface CommitListener {
  /** The batch's outcome; once per batch committed. */
  onReply(reply: CommitWorkerReply): void;
  /** The executor is gone for good: the batch in flight, if any, has an unknown outcome. */
  onLost(error: KaiError): void;
}

export interface CommitExecutor {
  /** Commits the batch; the listener hears the outcome. One batch at a time. */
  commit(batchId: number, operations: readonly CommitOperation[]): void;
  /** Stops once every batch sent has been answered. */
  close(): Promise<void>;
}

export function storageFailure(error: unknown): KaiError {
  // An error thrown in the worker thread arrives as an Error, or as a plain copy of one.
  const message = (error as { message?: unknown } | null)?.message;
  return new KaiError('KAI_STORAGE_FAILURE', typeof message === 'string' ? message : String(error));
}

/** How long close() lets the commit worker close its connection before terminating it. */
const workerCloseWaitMsMax = 5000;

/** The compiled commit worker; tests and bin/kai both run the compiled tree, so it sits next to this file. */
const commitWorkerPath = path.join(__dirname, 'sqlite-commit-worker.js');

export class WorkerCommitExecutor implements CommitExecutor {
  readonly worker: Worker;
  private exited = false;
  private closing = false;
  /** The first error the worker reported; the loss is reported once it has exited. */
  private failure: KaiError | undefined;

  constructor(data: CommitWorkerData, listener: CommitListener) {
    this.worker = new Worker(commitWorkerPath, { workerData: data });
    this.worker.on('message', (reply: CommitWorkerReply) => {
      // An idle worker does not keep the process alive; one with a batch in flight does.
      this.worker.unref();
      listener.onReply(reply);
    });
    this.worker.on('error', (error) => {
      // An uncaught error ends the worker; its exit follows.
      this.failure ??= storageFailure(error);
    });
    this.worker.on('messageerror', (error) => {
      // The worker still runs but can no longer be understood: end it, and its exit reports it.
      this.failure ??= storageFailure(error);
      void this.worker.terminate();
    });
    this.worker.on('exit', (exitCode) => {
      this.exited = true;
      // Reported only once the thread is gone, so a replacement never meets its open transaction.
      if (!this.closing) listener.onLost(this.failure ?? new KaiError('KAI_STORAGE_FAILURE', `commit worker exited with code ${exitCode}`));
    });
    this.worker.unref();
  }

  commit(batchId: number, operations: readonly CommitOperation[]): void {
    const encoded = encodeBatch(operations);
    const request: CommitWorkerRequest = { type: 'commit', batchId, operations: encoded };
    this.worker.ref();
    this.worker.postMessage(request, [encoded]);
  }

  /** Ends the worker at once; the batch in flight is lost (for tests of a dying worker). */
  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  close(): Promise<void> {
    this.closing = true;
    if (this.exited) return Promise.resolve();
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
}

export class InlineCommitExecutor implements CommitExecutor {
  private readonly applier: BatchApplier;
  private inFlight: TimerHandle | undefined;

  constructor(
    db: Database.Database,
    buckets: number,
    private readonly env: Env,
    /** How long the next commit takes, in the Env's time. */
    private readonly commitDelayMs: () => number,
    private readonly listener: CommitListener,
  ) {
    this.applier = new BatchApplier(db, buckets);
  }

  commit(batchId: number, operations: readonly CommitOperation[]): void {
    this.inFlight = this.env.after(this.commitDelayMs(), () => {
      this.inFlight = undefined;
      this.listener.onReply(this.applier.commit(batchId, operations));
    });
  }

  close(): Promise<void> {
    // The store waits for its batches before closing, so nothing is in flight here.
    this.inFlight?.cancel();
    return Promise.resolve();
  }
}
