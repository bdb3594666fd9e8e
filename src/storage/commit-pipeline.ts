/**
 * The group-commit pipeline of a SqliteStore: operations queue up, and whatever is queued when the
 * executor is free leaves as one batch, at most `writesPerCommitMax` operations, one batch at a
 * time. It settles each operation with its batch's outcome, counts commits and failures, replaces
 * a lost commit worker after a backoff (commit-restarts.ts), and gives up for good when workers
 * keep being lost, when one is lost while closing, or on a reply it cannot place. What a commit or a failure means for reads (pending records, the cache, the
 * hash trees) is the store's: the pipeline hands it every settled batch first (`CommitEffects`).
 */
import type { Env, TimerHandle } from '../env';
import { KaiError, assert } from '../errors';
import { WorkerCommitExecutor, storageFailure, type CommitExecutor, type CommitListener } from './commit-executor';
import { CommitRestarts, commitRestartPolicyDefault, type CommitRestartPolicy } from './commit-restarts';
import { diskFullCode, type StorageEvent, type StorageHealth, type StorageListener } from './health';
import type { CommitOperation, CommitWorkerReply, CommittedReply } from './sqlite-batch';

/**
 * Most operations (writes, removeAlls, purges) committed in one transaction. Bounds how much one
 * failed commit takes down with it, and how long the next batch waits behind one in flight.
 */
export const defaultWritesPerCommitMax = 1000;

export interface Settlement {
  resolve(outcome: number): void;
  reject(error: KaiError): void;
}

/** An operation waiting for its commit, and how to answer its caller. */
export interface QueuedOperation {
  readonly operation: CommitOperation;
  readonly settlement: Settlement;
}

/** Where the store reports its commits, by a monotonic clock of its own (src/metrics). */
export interface CommitTimer {
  start(): number;
  record(outcome: 'committed' | 'failed', operations: number, startedAtMs: number): void;
}

/** What the store does with a settled batch, before its operations' callers hear of it. */
export interface CommitEffects<Queued extends QueuedOperation> {
  /** The batch committed: `reply` says what each operation did and how the file changed. */
  applyCommitted(batch: readonly Queued[], reply: CommittedReply): void;
  /**
   * The operations fail: their batch failed or has an unknown outcome, or they were never sent
   * because the pipeline gave up or closed. What reads showed of them must go, and so must what
   * the store cached, which the file may no longer match; with no operations, only the cache goes.
   */
  rollBack(batch: readonly Queued[]): void;
}

/** Counters of the pipeline, for monitoring and for tests that observe group commit. */
export interface CommitPipelineStats {
  /** Group-commit transactions that committed. */
  readonly commits: number;
  /** Operations that those transactions committed. */
  readonly operationsCommitted: number;
  /**
   * Group-commit transactions that failed, each rejecting all of its operations; also each time
   * operations still queued were failed unsent, when the pipeline gave up or closed during a restart.
   */
  readonly commitFailures: number;
  /** Operations accepted and not yet committed or failed. */
  readonly operationsQueued: number;
}

export interface CommitPipelineOptions {
  readonly env: Env;
  readonly writesPerCommitMax?: number;
  readonly commitTimer?: CommitTimer;
  readonly commitRestartPolicy?: CommitRestartPolicy;
}

interface InFlightBatch<Queued> {
  readonly batchId: number;
  readonly queued: readonly Queued[];
  /** The commit timer's reading when the batch left for the executor. */
  readonly startedAtMs: number;
}

export class CommitPipeline<Queued extends QueuedOperation> {
  private executor: CommitExecutor;
  private readonly restarts: CommitRestarts;
  /** Set while a lost commit worker waits out its backoff: nothing is dispatched meanwhile. */
  private restartTimer: TimerHandle | undefined;
  private readonly listeners = new Set<StorageListener>();
  private readonly env: Env;
  private readonly writesPerCommitMax: number;
  private readonly commitTimer: CommitTimer | undefined;
  private queue: Queued[] = [];
  private inFlight: InFlightBatch<Queued> | undefined;
  private dispatchScheduled = false;
  private nextBatchId = 1;
  private closing = false;
  /** Set once the executor is gone for good: every later operation fails with it. */
  private executorLost: KaiError | undefined;
  private drainWaiters: (() => void)[] = [];
  private commits = 0;
  private operationsCommitted = 0;
  private commitFailures = 0;
  private operationsFailed = 0;
  private diskFullFailures = 0;
  private workersLost = 0;
  private lastError: string | undefined;
  /** Why the pipeline gave up committing, once it has. */
  private failedReason: string | undefined;

  constructor(
    options: CommitPipelineOptions,
    private readonly startExecutor: (listener: CommitListener) => CommitExecutor,
    private readonly effects: CommitEffects<Queued>,
  ) {
    this.env = options.env;
    this.writesPerCommitMax = options.writesPerCommitMax ?? defaultWritesPerCommitMax;
    assert(Number.isInteger(this.writesPerCommitMax) && this.writesPerCommitMax > 0, 'writesPerCommitMax > 0');
    this.commitTimer = options.commitTimer;
    this.restarts = new CommitRestarts(options.commitRestartPolicy ?? commitRestartPolicyDefault);
    this.executor = this.launchExecutor();
  }

  /** Starts an executor whose reports count only while it is the pipeline's current one. */
  private launchExecutor(): CommitExecutor {
    const executor: CommitExecutor = this.startExecutor({
      onReply: (reply) => {
        if (this.executor === executor) this.onReply(reply);
      },
      onLost: (error) => {
        if (this.executor === executor) this.onExecutorLost(error);
      },
    });
    return executor;
  }

  /** Ends the commit worker at once, as a crash of its thread would. False without a worker. */
  killCommitWorker(): boolean {
    if (!(this.executor instanceof WorkerCommitExecutor)) return false;
    void this.executor.terminate();
    return true;
  }

  onStorageEvent(listener: StorageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** False once the pipeline has given up committing. */
  get serving(): boolean {
    return this.failedReason === undefined;
  }

  health(): StorageHealth {
    return {
      state: this.failedReason === undefined ? 'ok' : 'failed',
      reason: this.failedReason,
      commitFailures: this.commitFailures,
      operationsFailed: this.operationsFailed,
      diskFullFailures: this.diskFullFailures,
      workersLost: this.workersLost,
      workerRestarts: this.restarts.restarts,
      lastError: this.lastError,
    };
  }

  stats(): CommitPipelineStats {
    return {
      commits: this.commits,
      operationsCommitted: this.operationsCommitted,
      commitFailures: this.commitFailures,
      operationsQueued: this.queue.length + (this.inFlight?.queued.length ?? 0),
    };
  }

  /** Why an operation submitted now would fail at once: the executor is gone for good. */
  get refusal(): KaiError | undefined {
    return this.executorLost;
  }

  /** Queues an operation for the next batch; the caller checked `refusal` first. */
  enqueue(queued: Queued): void {
    this.queue.push(queued);
    this.scheduleDispatch();
  }

  /**
   * Lets what is queued and in flight settle, then ends the executor. While a lost worker waits
   * out its backoff there is no worker to drain the queue through: what waited fails instead.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.restartTimer !== undefined) {
      this.restartTimer.cancel();
      this.restartTimer = undefined;
      const queued = this.queue;
      this.queue = [];
      if (queued.length > 0) this.failOperations(queued, new KaiError('KAI_SHUTTING_DOWN'));
    }
    await this.whenDrained();
    // From here an exit of the executor is the expected end, not a failure.
    this.executorLost ??= new KaiError('KAI_SHUTTING_DOWN');
    await this.executor.close();
  }

  private emit(event: StorageEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Waits one turn, so that writes accepted in the same turn of the event loop share a commit. */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.inFlight !== undefined || this.restartTimer !== undefined || this.queue.length === 0) return;
    this.dispatchScheduled = true;
    this.env.soon(() => this.dispatchNextBatch());
  }

  private dispatchNextBatch(): void {
    this.dispatchScheduled = false;
    if (this.inFlight !== undefined || this.executorLost !== undefined || this.restartTimer !== undefined) return;
    if (this.queue.length === 0) return this.notifyIfDrained();
    const queued = this.takeBatch();
    const batchId = this.nextBatchId++;
    this.inFlight = { batchId, queued, startedAtMs: this.commitTimer?.start() ?? 0 };
    this.executor.commit(
      batchId,
      queued.map((item) => item.operation),
    );
  }

  private takeBatch(): Queued[] {
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
      // Only a bug could cause this; the pipeline can no longer tell what committed, and stops.
      const error = new KaiError('KAI_STORAGE_FAILURE', `unexpected reply for batch ${reply.batchId}`);
      this.inFlight = undefined;
      if (batch !== undefined) this.failOperations(batch.queued, error);
      this.giveUp(error, error.detail!);
      return;
    }
    this.inFlight = undefined;
    this.commitTimer?.record(reply.type === 'committed' ? 'committed' : 'failed', batch.queued.length, batch.startedAtMs);
    if (reply.type === 'committed') this.settleCommitted(batch.queued, reply);
    else this.commitFailed(batch.queued, reply.message, reply.code);
    this.scheduleDispatch();
    this.notifyIfDrained();
  }

  private settleCommitted(batch: readonly Queued[], reply: CommittedReply): void {
    this.commits += 1;
    this.operationsCommitted += batch.length;
    this.effects.applyCommitted(batch, reply);
    batch.forEach((queued, index) => queued.settlement.resolve(reply.outcomes[index] ?? 0));
  }

  /** A commit SQLite refused (a full disk, an I/O error): counted and reported, and its operations fail. */
  private commitFailed(batch: readonly Queued[], message: string, code: string | undefined): void {
    if (code === diskFullCode) this.diskFullFailures += 1;
    this.lastError = code === undefined ? message : `${code}: ${message}`;
    this.failOperations(batch, new KaiError('KAI_STORAGE_FAILURE', message));
    this.emit({ kind: 'commitFailed', operations: batch.length, code, message });
  }

  /**
   * Rejects operations whose outcome is a failure, once the store has rolled back what reads
   * showed of them. Called with no operations, it still has the store forget what it cached.
   */
  private failOperations(batch: readonly Queued[], error: KaiError): void {
    if (batch.length > 0) {
      this.commitFailures += 1;
      this.operationsFailed += batch.length;
    }
    this.effects.rollBack(batch);
    for (const queued of batch) queued.settlement.reject(error);
  }

  /**
   * The executor is gone. The batch in flight has an unknown outcome (the worker may have committed
   * it before it went), so it fails: no write is acknowledged without its commit, and reads fetch
   * what the file really holds. Operations still queued were never sent: a new worker, started
   * after a backoff, commits them. Lost too often (commit-restarts.ts), or while closing, the
   * pipeline gives up: everything queued fails, and so does every operation from now on.
   */
  private onExecutorLost(error: KaiError): void {
    if (this.executorLost !== undefined) return;
    this.workersLost += 1;
    this.lastError = error.detail ?? error.message;
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    if (inFlight !== undefined) this.failOperations(inFlight.queued, error);
    if (this.closing) return this.giveUp(error, error.detail ?? error.message);
    const decision = this.restarts.lost(this.env.nowMs());
    if (!decision.restart) {
      const windowSeconds = Math.round(this.restarts.policy.windowMs / 1000);
      return this.giveUp(error, `commit worker lost ${decision.lossesInWindow} times within ${windowSeconds} s; last: ${this.lastError}`);
    }
    this.restartTimer = this.env.after(decision.delayMs, () => this.restartExecutor());
    this.emit({ kind: 'workerLost', message: this.lastError, restartInMs: decision.delayMs });
  }

  private restartExecutor(): void {
    this.restartTimer = undefined;
    if (this.closing || this.executorLost !== undefined) return;
    try {
      this.executor = this.launchExecutor();
    } catch (error) {
      this.onExecutorLost(storageFailure(error));
      return;
    }
    this.emit({ kind: 'workerRestarted', restarts: this.restarts.restarts });
    this.scheduleDispatch();
  }

  /** Fails everything queued; operations from now on fail at once. */
  private giveUp(error: KaiError, reason: string): void {
    this.executorLost = this.closing ? error : new KaiError('KAI_STORAGE_FAILURE', reason);
    const unsettled = this.queue;
    this.queue = [];
    this.failOperations(unsettled, this.executorLost);
    this.notifyIfDrained();
    if (!this.closing) {
      this.failedReason = reason;
      this.emit({ kind: 'failed', reason });
    }
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
