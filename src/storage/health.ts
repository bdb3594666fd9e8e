/**
 * What a store says about its own health: whether it still commits, and the failures it met. The
 * node logs the events, counts them in `stats kai`, reports the state in `kai status`, and, once
 * the store has failed for good, tells the cluster it is down so coordinators route around it.
 */

export type StorageState = 'ok' | 'failed';

export interface StorageHealth {
  /** 'failed' once the store cannot commit at all: every write is refused from then on. */
  readonly state: StorageState;
  /** Why the store failed; undefined while it is ok. */
  readonly reason: string | undefined;
  /** Commits (batches) that failed, each failing all of its operations. */
  readonly commitFailures: number;
  /** Operations (writes, removals) those commits failed. */
  readonly operationsFailed: number;
  /** Commits that failed because the disk was full (SQLITE_FULL). */
  readonly diskFullFailures: number;
  /** Commit workers lost (exited, crashed) while the store was open. */
  readonly workersLost: number;
  /** Commit workers started to replace a lost one. */
  readonly workerRestarts: number;
  /** The error of the last failed commit or lost worker. */
  readonly lastError: string | undefined;
}

export type StorageEvent =
  /** A commit failed and its operations were answered with errors; the store goes on. */
  | { readonly kind: 'commitFailed'; readonly operations: number; readonly code: string | undefined; readonly message: string }
  /** The commit worker was lost; a new one starts after `restartInMs`. */
  | { readonly kind: 'workerLost'; readonly message: string; readonly restartInMs: number }
  /** A new commit worker was started. */
  | { readonly kind: 'workerRestarted'; readonly restarts: number }
  /** The store cannot commit any more: every write from now on is refused. */
  | { readonly kind: 'failed'; readonly reason: string };

export type StorageListener = (event: StorageEvent) => void;

/** SQLite's result code for a full disk (or a database at its size limit). */
export const diskFullCode = 'SQLITE_FULL';
