/**
 * Commits batches of operations on one SQLite connection, each batch in one transaction, and says
 * what changed: counts, hints per target, the hash-tree entries of changed records, and the keys
 * whose records went. The commit worker (sqlite-commit-worker.ts) runs it in its own thread; under
 * simulation it runs on the store's thread, after a simulated commit delay.
 */
import type Database from 'better-sqlite3';
import { treeShapeFor } from '../merkle';
import { recordHash, segmentOfKey } from './record-hash';
import {
  keyIdOf,
  type CommitOperation,
  type CommitWorkerReply,
  type Counts,
  type HandedOffOperation,
  type HintCount,
  type KeyAtHash,
  type WriteOperation,
} from './sqlite-batch';
import { selectCountsSql, selectHintCountsSql } from './sqlite-schema';

interface ItemStateRow {
  readonly item_bytes: number | null;
  readonly key_hash: number;
  readonly bucket: number;
  readonly segment: number;
}

function prepareStatements(db: Database.Database) {
  return {
    selectItemState: db.prepare<[Buffer], ItemStateRow>('SELECT item_bytes, key_hash, bucket, segment FROM items WHERE key = ?'),
    upsertItem: db.prepare<[Buffer, number, number, number, number | null, number | null, Buffer, string | null]>(
      `INSERT INTO items (key, bucket, segment, key_hash, dead_at_ms, reap_after_ms, item_bytes, versions, actor)
       VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET bucket = excluded.bucket, segment = excluded.segment,
         key_hash = excluded.key_hash, dead_at_ms = excluded.dead_at_ms, reap_after_ms = NULL,
         item_bytes = excluded.item_bytes, versions = excluded.versions, actor = excluded.actor`,
    ),
    deleteAllItems: db.prepare('DELETE FROM items'),
    deleteAllHints: db.prepare('DELETE FROM hints'),
    selectPurgeable: db.prepare<[number, number], { key: Buffer }>(
      `SELECT key FROM items WHERE dead_at_ms <= ?
         AND NOT EXISTS (SELECT 1 FROM hints WHERE hints.key = items.key)
       ORDER BY dead_at_ms LIMIT ?`,
    ),
    deleteItem: db.prepare<[Buffer], ItemStateRow>(
      'DELETE FROM items WHERE key = ? RETURNING item_bytes, key_hash, bucket, segment',
    ),
    deleteUnhintedItemAtHash: db.prepare<[Buffer, number], ItemStateRow>(
      `DELETE FROM items WHERE key = ? AND key_hash = ?
         AND NOT EXISTS (SELECT 1 FROM hints WHERE hints.key = items.key)
       RETURNING item_bytes, key_hash, bucket, segment`,
    ),
    deleteUnhintedItem: db.prepare<[Buffer], ItemStateRow>(
      `DELETE FROM items WHERE key = ? AND NOT EXISTS (SELECT 1 FROM hints WHERE hints.key = items.key)
       RETURNING item_bytes, key_hash, bucket, segment`,
    ),
    deferReap: db.prepare<[number, Buffer, number]>('UPDATE items SET reap_after_ms = ? WHERE key = ? AND key_hash = ?'),
    selectHintBytes: db.prepare<[string, Buffer], { bytes: number }>('SELECT bytes FROM hints WHERE target = ? AND key = ?'),
    upsertHint: db.prepare<[string, Buffer, number]>(
      'INSERT INTO hints (target, key, bytes) VALUES (?, ?, ?) ON CONFLICT (target, key) DO UPDATE SET bytes = excluded.bytes',
    ),
    deleteHint: db.prepare<[string, Buffer], { bytes: number }>('DELETE FROM hints WHERE target = ? AND key = ? RETURNING bytes'),
    selectCounts: db.prepare<[], Counts>(selectCountsSql),
    selectHintCounts: db.prepare<[], HintCount>(selectHintCountsSql),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** What one batch changes, gathered while it runs; it counts only if the transaction commits. */
class BatchEffects {
  readonly outcomes: number[] = [];
  readonly removedKeyIds: string[] = [];
  readonly treeChanges: number[] = [];
  readonly hintCounts = new Map<string, { count: number; bytes: number }>();
  treeCleared = false;
  /** Fallback copies removed after their last hint was delivered. */
  copiesDropped = 0;

  constructor(
    readonly counts: Counts,
    private readonly committedHints: ReadonlyMap<string, HintCount>,
  ) {}

  hintCountOf(target: string): { count: number; bytes: number } {
    let count = this.hintCounts.get(target);
    if (count === undefined) {
      const committed = this.committedHints.get(target);
      count = { count: committed?.count ?? 0, bytes: committed?.bytes ?? 0 };
      this.hintCounts.set(target, count);
    }
    return count;
  }

  /** A record left its bucket's tree (deleted, or replaced: its old hash goes). */
  leave(row: ItemStateRow): void {
    this.treeChanges.push(row.bucket, row.segment, row.key_hash);
    if (row.item_bytes !== null) {
      this.counts.items -= 1;
      this.counts.bytes -= row.item_bytes;
    }
  }
}

export class BatchApplier {
  private readonly statements: Statements;
  private readonly segments: number;
  private committedCounts: Counts;
  private committedHints: Map<string, HintCount>;
  private readonly applyInTransaction: Database.Transaction<(operations: readonly CommitOperation[], effects: BatchEffects) => void>;

  constructor(
    db: Database.Database,
    private readonly buckets: number,
  ) {
    this.statements = prepareStatements(db);
    this.segments = treeShapeFor(buckets).segments;
    this.committedCounts = { ...this.statements.selectCounts.get()! };
    this.committedHints = new Map(this.statements.selectHintCounts.all().map((row) => [row.target, { ...row }]));
    this.applyInTransaction = db.transaction((operations: readonly CommitOperation[], effects: BatchEffects) => {
      for (const operation of operations) effects.outcomes.push(this.applyOne(operation, effects));
    });
  }

  /** Commits the batch in one transaction, or rolls it all back. */
  commit(batchId: number, operations: readonly CommitOperation[]): CommitWorkerReply {
    const effects = new BatchEffects({ ...this.committedCounts }, this.committedHints);
    try {
      // IMMEDIATE takes the write lock up front, so a busy file waits out the busy timeout rather
      // than failing when a read inside the batch upgrades to a write.
      this.applyInTransaction.immediate(operations, effects);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: unknown } | null)?.code;
      return typeof code === 'string' ? { type: 'failed', batchId, message, code } : { type: 'failed', batchId, message };
    }
    this.committedCounts = effects.counts;
    const hintCounts: HintCount[] = [];
    for (const [target, count] of effects.hintCounts) {
      const hintCount = { target, ...count };
      hintCounts.push(hintCount);
      if (count.count === 0) this.committedHints.delete(target);
      else this.committedHints.set(target, hintCount);
    }
    return {
      type: 'committed',
      batchId,
      counts: effects.counts,
      hintCounts,
      outcomes: effects.outcomes,
      removedKeyIds: effects.removedKeyIds,
      treeChanges: effects.treeChanges,
      treeCleared: effects.treeCleared,
      copiesDropped: effects.copiesDropped,
    };
  }

  private applyOne(operation: CommitOperation, effects: BatchEffects): number {
    const { statements } = this;
    switch (operation.kind) {
      case 'write':
        return this.write(operation, effects) ? 1 : 0;
      case 'removeAll':
        statements.deleteAllItems.run();
        statements.deleteAllHints.run();
        effects.counts.items = 0;
        effects.counts.bytes = 0;
        for (const target of this.committedHints.keys()) effects.hintCountOf(target);
        for (const count of effects.hintCounts.values()) Object.assign(count, { count: 0, bytes: 0 });
        // Changes gathered so far describe rows that are gone: the tree restarts from empty.
        effects.treeChanges.length = 0;
        effects.treeCleared = true;
        return 1;
      case 'purge': {
        const keys = statements.selectPurgeable.all(operation.deadBeforeMs, operation.limit).map((row) => row.key);
        for (const key of keys) this.removed(key, statements.deleteItem.get(key), effects);
        return keys.length;
      }
      case 'reap':
        return this.countRemoved(operation.items, effects, (item) => statements.deleteUnhintedItemAtHash.get(item.key, item.expectedHash));
      case 'deferReap': {
        let deferred = 0;
        for (const item of operation.items) deferred += statements.deferReap.run(operation.untilMs, item.key, item.expectedHash).changes;
        return deferred;
      }
      case 'handedOff':
        return this.handedOff(operation, effects);
    }
  }

  /** Whether the write took effect: one only if present finds no row to merge into. */
  private write(operation: WriteOperation, effects: BatchEffects): boolean {
    const { statements } = this;
    const previous = statements.selectItemState.get(operation.key);
    if (previous === undefined && operation.onlyIfPresent) return false;
    if (previous !== undefined) effects.leave(previous);
    const segment = segmentOfKey(operation.key, this.buckets, this.segments);
    const hash = recordHash(operation.key, operation.versionsBlob);
    statements.upsertItem.run(
      operation.key,
      operation.bucket,
      segment,
      hash,
      operation.deadAtMs,
      operation.itemBytes,
      operation.versionsBlob,
      operation.actor,
    );
    effects.treeChanges.push(operation.bucket, segment, hash);
    if (operation.itemBytes !== null) {
      effects.counts.items += 1;
      effects.counts.bytes += operation.itemBytes;
    }
    if (operation.hintTarget !== null) {
      const bytes = operation.key.length + operation.versionsBlob.length;
      const count = effects.hintCountOf(operation.hintTarget);
      const held = statements.selectHintBytes.get(operation.hintTarget, operation.key);
      count.count += held === undefined ? 1 : 0;
      count.bytes += bytes - (held?.bytes ?? 0);
      statements.upsertHint.run(operation.hintTarget, operation.key, bytes);
    }
    return true;
  }

  private removed(key: Buffer, row: ItemStateRow | undefined, effects: BatchEffects): boolean {
    if (row === undefined) return false;
    effects.leave(row);
    effects.removedKeyIds.push(keyIdOf(key));
    return true;
  }

  private countRemoved(items: readonly KeyAtHash[], effects: BatchEffects, remove: (item: KeyAtHash) => ItemStateRow | undefined): number {
    let removed = 0;
    for (const item of items) if (this.removed(item.key, remove(item), effects)) removed += 1;
    return removed;
  }

  /**
   * Removes each delivered hint whose record still has the hash that was sent (or that has no
   * record left to deliver); with dropCopy, the record goes too once no other hint holds it.
   */
  private handedOff(operation: HandedOffOperation, effects: BatchEffects): number {
    const { statements } = this;
    let delivered = 0;
    for (const item of operation.items) {
      const current = statements.selectItemState.get(item.key);
      if (current !== undefined && current.key_hash !== item.expectedHash) continue;
      const hint = statements.deleteHint.get(operation.target, item.key);
      if (hint === undefined) continue;
      delivered += 1;
      const count = effects.hintCountOf(operation.target);
      count.count -= 1;
      count.bytes -= hint.bytes;
      if (operation.dropCopy && current !== undefined && this.removed(item.key, statements.deleteUnhintedItem.get(item.key), effects)) {
        effects.copiesDropped += 1;
      }
    }
    return delivered;
  }
}

/** Applies a batch's tree changes (flat bucket, segment, change triples) through `apply`. */
export function forEachTreeChange(changes: readonly number[], apply: (bucket: number, segment: number, change: number) => void): void {
  for (let index = 0; index + 2 < changes.length; index += 3) apply(changes[index], changes[index + 1], changes[index + 2]);
}
