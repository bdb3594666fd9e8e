/**
 * The bounds on the hints one node keeps for each target node, by count and by bytes. Hinted
 * writes count from the moment they are accepted, not only once committed, so a burst of writes
 * for a node that is down cannot queue past the bounds while its batch is in flight.
 */
import type Database from 'better-sqlite3';
import { KaiError } from '../errors';
import type { CommitOperation, HintCount } from './sqlite-batch';
import { selectHintCountsSql } from './sqlite-schema';

/** Hints one node keeps for one target node at most, by count and by bytes (key plus versions). */
export const hintsPerTargetMaxDefault = 1_000_000;
export const hintBytesPerTargetMaxDefault = 1024 * 1024 * 1024;

export interface HintBoundsTuning {
  readonly hintsPerTargetMax?: number;
  readonly hintBytesPerTargetMax?: number;
}

export class HintBounds {
  private readonly hintsPerTargetMax: number;
  private readonly hintBytesPerTargetMax: number;
  private readonly selectHint: Database.Statement<[string, Buffer], { bytes: number }>;
  /** Committed hints per target, as the commit executor last reported them. */
  private readonly committed = new Map<string, HintCount>();
  /** Hinted writes accepted and not yet settled, per target. */
  private readonly queued = new Map<string, { count: number; bytes: number }>();

  constructor(db: Database.Database, tuning: HintBoundsTuning) {
    this.hintsPerTargetMax = tuning.hintsPerTargetMax ?? hintsPerTargetMaxDefault;
    this.hintBytesPerTargetMax = tuning.hintBytesPerTargetMax ?? hintBytesPerTargetMaxDefault;
    this.selectHint = db.prepare<[string, Buffer], { bytes: number }>('SELECT bytes FROM hints WHERE target = ? AND key = ?');
    // The executor reads the committed hints itself; these copies follow its replies, starting
    // from the same file.
    for (const row of db.prepare<[], HintCount>(selectHintCountsSql).all()) this.committed.set(row.target, { ...row });
  }

  /** Committed hints per target. */
  counts(): HintCount[] {
    return [...this.committed.values()];
  }

  /**
   * KAI_HINTS_FULL when `target` already has its most hints, counting those not yet committed. A
   * newer copy of a key already hinted for the target replaces its hint: it adds no hint.
   */
  refusal(target: string, key: Buffer, bytes: number): KaiError | undefined {
    const committed = this.committed.get(target);
    const queued = this.queued.get(target);
    if (this.selectHint.get(target, key) !== undefined) return undefined;
    const count = (committed?.count ?? 0) + (queued?.count ?? 0) + 1;
    const totalBytes = (committed?.bytes ?? 0) + (queued?.bytes ?? 0) + bytes;
    if (count > this.hintsPerTargetMax) return new KaiError('KAI_HINTS_FULL', `${target} has ${this.hintsPerTargetMax} hints`);
    if (totalBytes > this.hintBytesPerTargetMax) {
      return new KaiError('KAI_HINTS_FULL', `${target} has ${this.hintBytesPerTargetMax} bytes of hints`);
    }
    return undefined;
  }

  /** An operation joins the queue (+1) or settles (-1): a hinted write counts while queued. */
  countQueued(operation: CommitOperation, sign: 1 | -1): void {
    if (operation.kind !== 'write' || operation.hintTarget === null) return;
    const queued = this.queued.get(operation.hintTarget) ?? { count: 0, bytes: 0 };
    queued.count += sign;
    queued.bytes += sign * (operation.key.length + operation.versionsBlob.length);
    if (queued.count === 0) this.queued.delete(operation.hintTarget);
    else this.queued.set(operation.hintTarget, queued);
  }

  /** A commit's report of the hint counts of the targets it changed. */
  committedNow(hintCounts: readonly HintCount[]): void {
    for (const hintCount of hintCounts) {
      if (hintCount.count === 0) this.committed.delete(hintCount.target);
      else this.committed.set(hintCount.target, hintCount);
    }
  }
}
