import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Durability } from '../config/settings';
import { realEnv, type Env } from '../env';
import { KaiError, assert } from '../errors';
import { MerkleForest } from '../merkle';
import type { ReplicaStore, WriteOptions } from './index';
import { newerFirst, recordDeadAtMs, type StoredRecord, type Version } from './record';
import { RecordCache, compactRecord, defaultCacheBytesMax } from './record-cache';
import { assertValidRecord, encodeVersions, itemBytesOf } from './record-codec';
import { forEachTreeChange } from './sqlite-apply';
import { keyIdOf, type CommitOperation, type CommittedReply, type Counts, type HintCount, type KeyAtHash } from './sqlite-batch';
import { InlineCommitExecutor, WorkerCommitExecutor, storageFailure, type CommitExecutor, type CommitListener } from './commit-executor';
import { CommitPipeline, type CommitPipelineStats, type CommitTimer, type QueuedOperation, type Settlement } from './commit-pipeline';
import type { CommitRestartPolicy } from './commit-restarts';
import type { StorageHealth, StorageListener } from './health';
import { prepareSchema, selectCountsSql } from './sqlite-schema';
import { HintBounds, type HintBoundsTuning } from './hint-bounds';
import { StoreQueries, decodeRecordRow, type BucketPage, type HashedRecord, type KeyHash, type PendingHint } from './sqlite-queries';

export { defaultCacheBytesMax } from './record-cache';
export type { StorageEvent, StorageHealth, StorageListener } from './health';
export type { BucketPage, HashedRecord, KeyHash, PendingHint } from './sqlite-queries';
export type { HintCount, KeyAtHash } from './sqlite-batch';
export { defaultWritesPerCommitMax, type CommitTimer } from './commit-pipeline';

/** The database file of a node, inside its data dir. */
export const databaseFileName = 'kai.sqlite3';

/** The ring's bucket count when a store is opened without one (kai's default `--buckets`). */
export const bucketsDefault = 1024;

/**
 * How long SQLite waits for a lock held by another connection. Only this process writes the
 * file, so a lock held elsewhere (an operator's sqlite3 shell) should fail a commit quickly
 * rather than stall it for better-sqlite3's default of 5 s.
 */
export const busyTimeoutMsDefault = 250;

/** Notes live in the `meta` table under this prefix, apart from the schema's own entries. */
export const notePrefix = 'note:';
/** A note is a small value (a member list is a few tens of KiB at most). */
export const noteLengthMax = 1024 * 1024;

/** The settings shared by a store on a file and one on a connection it is handed. */
export interface StoreTuning extends HintBoundsTuning {
  /** The ring's bucket count: the file records it, and the hash trees are cut by it. */
  readonly buckets?: number;
  readonly writesPerCommitMax?: number;
  /** Estimated bytes of decoded records the read cache may hold; 0 disables the cache. */
  readonly cacheBytesMax?: number;
  /** Gathers each turn's writes into one batch; realEnv by default. */
  readonly env?: Env;
  /** How long a statement waits for a lock another connection holds; busyTimeoutMsDefault by default. */
  readonly busyTimeoutMs?: number;
  /** What a commit survives (Settings.durability); 'process' by default. */
  readonly durability?: Durability;
  /** When a lost commit worker is replaced, and when the store gives up; commitRestartPolicyDefault by default. */
  readonly commitRestartPolicy?: CommitRestartPolicy;
  /** Told how long each batch took to commit or fail, and its size (the metrics); none when absent. */
  readonly commitTimer?: CommitTimer;
}

export interface SqliteStoreOptions extends StoreTuning {
  readonly dataDir: string;
}

/** A store on a connection the caller keeps (an in-memory "disk" that outlives the store). */
export interface InlineStoreOptions extends StoreTuning {
  readonly database: Database.Database;
  readonly env: Env;
  /** How long each commit takes, in the Env's time. */
  readonly commitDelayMs: () => number;
}

/** Counters for monitoring and for tests that observe group commit and the cache. */
export interface SqliteStoreStats extends CommitPipelineStats {
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

/** An operation in the commit pipeline, with what the store needs to settle it. */
interface StoreOperation extends QueuedOperation {
  /** For a write: its key's id and sequence, to retire its pending entry. */
  readonly keyId?: string;
  readonly sequence?: number;
  /** For a write: the record as reads see it, cached once committed. */
  readonly record?: StoredRecord;
}

/** An accepted write not yet committed, as reads must see it. */
interface PendingRecord {
  readonly record: StoredRecord;
  readonly sequence: number;
  /** Settles with the write's commit. */
  readonly committed: Promise<void>;
}

interface ItemRow {
  readonly key: Buffer;
  readonly bucket: number;
  readonly versions: Buffer;
  readonly actor: string | null;
}

/** Opens the store's own connection to a file, which prepares the schema and then only reads. */
function openReadConnection(filePath: string, buckets: number, busyTimeoutMs: number): Database.Database {
  const db = new Database(filePath, { timeout: busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    prepareSchema(db, buckets);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function isCanonical(versions: readonly Version[]): boolean {
  for (let index = 1; index < versions.length; index++) if (newerFirst(versions[index - 1], versions[index]) > 0) return false;
  return true;
}

/**
 * The SQLite backend of a node's ReplicaStore: one WAL database per node, written by group
 * commit. Writes accepted while a batch is in flight form the next batch, one batch at a time;
 * until its commit is reported, reads answer from a map of pending records. Committed records
 * read recently stay decoded in an LRU cache, so hot keys cost no SQLite lookup. Each commit also
 * reports how the records it changed move the bucket hash trees (`tree`), which anti-entropy
 * compares with other replicas', and how many hints each target has.
 */
export class SqliteStore implements ReplicaStore {
  readonly filePath: string | undefined;
  /** Every bucket's hash tree over the committed records. */
  readonly tree: MerkleForest;
  readonly buckets: number;
  private readonly selectItem: Database.Statement<[Buffer], ItemRow>;
  private readonly queries: StoreQueries;
  private readonly pipeline: CommitPipeline<StoreOperation>;
  private readonly cache: RecordCache;
  private readonly pending = new Map<string, PendingRecord>();
  /** While above zero, a key absent from `pending` reads as absent: a removeAll will delete it. */
  private removeAllsQueued = 0;
  private nextSequence = 1;
  private committedCounts: Counts;
  private readonly hints: HintBounds;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private whenClosed: Promise<void> | undefined;
  /** Hinted writes refused because their target had its most hints. */
  hintsRefused = 0;
  /** Fallback copies removed once their hints were delivered. */
  copiesDropped = 0;
  private cacheHits = 0;
  private cacheMisses = 0;

  constructor(
    private readonly db: Database.Database,
    tuning: StoreTuning,
    filePath: string | undefined,
    startExecutor: (listener: CommitListener) => CommitExecutor,
  ) {
    this.filePath = filePath;
    this.buckets = tuning.buckets ?? bucketsDefault;
    this.cache = new RecordCache(tuning.cacheBytesMax ?? defaultCacheBytesMax);
    this.tree = new MerkleForest(this.buckets);
    this.selectItem = db.prepare<[Buffer], ItemRow>('SELECT key, bucket, versions, actor FROM items WHERE key = ?');
    this.queries = new StoreQueries(db);
    // The executor reads the committed counts itself; the store's copy follows its replies,
    // starting from the same file.
    this.committedCounts = { ...db.prepare<[], Counts>(selectCountsSql).get()! };
    this.hints = new HintBounds(db, tuning);
    this.queries.forEachTreeEntry((bucket, segment, hash) => this.tree.apply(bucket, segment, hash));
    this.pipeline = new CommitPipeline<StoreOperation>({ ...tuning, env: tuning.env ?? realEnv }, startExecutor, {
      applyCommitted: (batch, reply) => this.applyCommitted(batch, reply),
      rollBack: (batch) => this.rollBack(batch),
    });
  }

  /**
   * Ends the commit worker at once, as a crash of its thread would: for fault tests of the
   * restart (bin/kai with KAI_FAULT_INJECTION=1 does it on SIGUSR2). False without a worker.
   */
  killCommitWorker(): boolean {
    return this.pipeline.killCommitWorker();
  }

  /** Calls `listener` with every failure and recovery of the store; returns the unsubscribe. */
  onStorageEvent(listener: StorageListener): () => void {
    return this.pipeline.onStorageEvent(listener);
  }

  /** False once the store has given up committing (health().state 'failed'); cheap, for every request. */
  get serving(): boolean {
    return this.pipeline.serving;
  }

  health(): StorageHealth {
    return this.pipeline.health();
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
    const record = row === undefined ? undefined : decodeRecordRow(row);
    this.cache.put(keyId, record);
    return record;
  }

  write(record: StoredRecord, options: WriteOptions = {}): Promise<void> {
    assertValidRecord(record);
    assert(record.bucket < this.buckets, `record bucket ${record.bucket} is within the ring's ${this.buckets}`);
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const canonical = isCanonical(record.versions) ? record : { ...record, versions: [...record.versions].sort(newerFirst) };
    const versionsBlob = encodeVersions(canonical.versions);
    const hintTarget = options.hintFor ?? null;
    if (hintTarget !== null) {
      const full = this.hints.refusal(hintTarget, record.key, record.key.length + versionsBlob.length);
      if (full !== undefined) {
        this.hintsRefused += 1;
        return Promise.reject(full);
      }
    }
    const keyId = keyIdOf(record.key);
    const sequence = this.nextSequence++;
    const deadAtMs = recordDeadAtMs(canonical.versions);
    let settlement: Settlement | undefined;
    const committed = new Promise<void>((resolve, reject) => {
      settlement = { resolve: () => resolve(), reject };
    });
    this.pending.set(keyId, { record: canonical, sequence, committed });
    // A waiter may come later (whenCommitted); until then a failure must not count as unhandled.
    committed.catch(() => undefined);
    this.enqueue({
      operation: {
        kind: 'write',
        key: record.key,
        bucket: record.bucket,
        deadAtMs,
        itemBytes: itemBytesOf(record) ?? null,
        versionsBlob,
        actor: record.actor ?? null,
        hintTarget,
        onlyIfPresent: options.onlyIfPresent === true,
      },
      settlement: settlement!,
      keyId,
      sequence,
      record: canonical,
    });
    return committed;
  }

  /** Settles when the latest write accepted for the key has committed (at once when none is pending). */
  whenCommitted(key: Buffer): Promise<void> {
    return this.pending.get(keyIdOf(key))?.committed ?? Promise.resolve();
  }

  removeAll(): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    // Writes accepted so far are queued ahead of this removeAll, so their records read as gone
    // now and their commits cannot outlive it.
    this.pending.clear();
    this.removeAllsQueued += 1;
    return this.submit({ kind: 'removeAll' }).then(() => undefined);
  }

  /**
   * Deletes up to `limit` records dead since `deadBeforeMs` that hold no hint, whatever other
   * replicas hold: for a node that is the only replica of its keys. Queued behind the writes
   * accepted before it; a write accepted later replaces what it removed.
   */
  purgeExpired(deadBeforeMs: number, limit: number): Promise<number> {
    assert(Number.isSafeInteger(deadBeforeMs), 'purgeExpired deadBeforeMs is an integer');
    assert(Number.isSafeInteger(limit) && limit >= 0, 'purgeExpired limit is an integer >= 0');
    if (limit === 0) return Promise.resolve(0);
    return this.submit({ kind: 'purge', deadBeforeMs, limit });
  }

  /** Deletes each record that still has its hash and holds no hint; resolves to how many went. */
  reap(items: readonly KeyAtHash[]): Promise<number> {
    return items.length === 0 ? Promise.resolve(0) : this.submit({ kind: 'reap', items });
  }

  /** Holds records that still have their hash back from reaping until `untilMs`. */
  deferReap(items: readonly KeyAtHash[], untilMs: number): Promise<number> {
    return items.length === 0 ? Promise.resolve(0) : this.submit({ kind: 'deferReap', items, untilMs });
  }

  /**
   * Hints for `target` whose records it has committed: each is removed if the record still has the
   * hash that was sent, and with `dropCopy` the record too, once no other hint holds it.
   * Resolves to how many hints were removed.
   */
  handedOff(target: string, dropCopy: boolean, items: readonly KeyAtHash[]): Promise<number> {
    return items.length === 0 ? Promise.resolve(0) : this.submit({ kind: 'handedOff', target, dropCopy, items });
  }

  /** Committed hints per target. */
  hintCounts(): HintCount[] {
    return this.hints.counts();
  }

  /** Up to `limit` committed hints for `target`, in key order after `afterKey`. */
  hintsFor(target: string, afterKey: Buffer, limit: number): PendingHint[] {
    return this.queries.hints(target, afterKey, limit);
  }

  reapCandidates(deadBeforeMs: number, nowMs: number, limit: number): HashedRecord[] {
    return this.queries.reapCandidates(deadBeforeMs, nowMs, limit);
  }

  segmentKeys(bucket: number, segment: number, limit: number): KeyHash[] {
    return this.queries.segmentKeys(bucket, segment, limit);
  }

  /** Up to `limit` committed records of `bucket` that hold no hint, in key order after `afterKey`. */
  unhintedInBucket(bucket: number, afterKey: Buffer, limit: number): HashedRecord[] {
    return this.queries.unhintedInBucket(bucket, afterKey, limit);
  }

  /** Up to `limit` committed records of `bucket`, hinted or not, in key order after `afterKey`. */
  inBucket(bucket: number, afterKey: Buffer, limit: number): HashedRecord[] {
    return this.queries.inBucket(bucket, afterKey, limit);
  }

  /** Committed records of `bucket` after `afterKey`, in key order, within `limit` and `bytesMax` (sqlite-queries.ts). */
  bucketPage(bucket: number, afterKey: Buffer, limit: number, bytesMax: number): BucketPage {
    return this.queries.bucketPage(bucket, afterKey, limit, bytesMax);
  }

  committedRecord(key: Buffer): HashedRecord | undefined {
    return this.queries.committedRecord(key);
  }

  /** Counts of committed records: a write shows in them once its commit is reported. */
  counts(): { readonly items: number; readonly bytes: number } {
    return { items: this.committedCounts.items, bytes: this.committedCounts.bytes };
  }

  stats(): SqliteStoreStats {
    return {
      ...this.pipeline.stats(),
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
   * connection rather than through the commit executor: notes are small and rare, and a caller
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
    this.whenClosed = this.pipeline.close().then(() => {
      // Closing last, this connection checkpoints the WAL into the database file. A connection
      // the store was handed belongs to the caller.
      if (this.filePath !== undefined) this.db.close();
      this.cache.clear();
      this.state = 'closed';
    });
    return this.whenClosed;
  }

  private refusal(): KaiError | undefined {
    if (this.state !== 'open') return new KaiError('KAI_SHUTTING_DOWN');
    return this.pipeline.refusal;
  }

  private submit(operation: CommitOperation): Promise<number> {
    const refusal = this.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    return new Promise<number>((resolve, reject) => this.enqueue({ operation, settlement: { resolve, reject } }));
  }

  private enqueue(queued: StoreOperation): void {
    this.hints.countQueued(queued.operation, 1);
    this.pipeline.enqueue(queued);
  }

  /** Applies a committed batch to the cache, counts and trees in commit order, before its operations settle. */
  private applyCommitted(batch: readonly StoreOperation[], reply: CommittedReply): void {
    this.committedCounts = reply.counts;
    this.hints.committedNow(reply.hintCounts);
    if (reply.treeCleared) this.tree.clear();
    forEachTreeChange(reply.treeChanges, (bucket, segment, change) => this.tree.apply(bucket, segment, change));
    this.copiesDropped += reply.copiesDropped;
    batch.forEach((queued, index) => {
      const { operation } = queued;
      this.hints.countQueued(operation, -1);
      if (operation.kind === 'write') {
        this.cacheCommittedWrite(queued, reply.outcomes[index] === 1);
        this.dropPendingIfLatest(queued);
      } else if (operation.kind === 'removeAll') {
        this.cache.clear();
        this.removeAllsQueued -= 1;
      }
    });
    // Evicting is always safe, so removals go after the writes whatever their order in the batch.
    for (const keyId of reply.removedKeyIds) this.cache.delete(keyId);
  }

  /**
   * Caches the record a write committed. A later write of the key is still pending and answers
   * reads until its own commit updates the cache, so this one only has to evict the stale entry.
   */
  private cacheCommittedWrite(queued: StoreOperation, applied: boolean): void {
    const keyId = queued.keyId!;
    if (applied && this.pending.get(keyId)?.sequence === queued.sequence && this.cache.enabled) {
      this.cache.put(keyId, compactRecord(queued.record!));
    } else {
      this.cache.delete(keyId);
    }
  }

  /**
   * Rolls back what reads showed of operations that failed, before they are rejected. The cache is
   * emptied too: a commit that failed at its very end, or a worker lost mid-batch, may have
   * changed rows after all, and the next reads must fetch what the file really holds.
   */
  private rollBack(batch: readonly StoreOperation[]): void {
    this.cache.clear();
    for (const queued of batch) {
      this.hints.countQueued(queued.operation, -1);
      if (queued.operation.kind === 'write') this.dropPendingIfLatest(queued);
      else if (queued.operation.kind === 'removeAll') this.removeAllsQueued -= 1;
    }
  }

  /** A later write of the same key keeps its pending entry until its own commit settles. */
  private dropPendingIfLatest(queued: StoreOperation): void {
    const keyId = queued.keyId!;
    if (this.pending.get(keyId)?.sequence === queued.sequence) this.pending.delete(keyId);
  }
}

/** Opens (creating it when missing) the store in `dataDir`, committed by a worker thread. */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const buckets = options.buckets ?? bucketsDefault;
  fs.mkdirSync(options.dataDir, { recursive: true });
  const filePath = path.join(options.dataDir, databaseFileName);
  const busyTimeoutMs = options.busyTimeoutMs ?? busyTimeoutMsDefault;
  const db = openReadConnection(filePath, buckets, busyTimeoutMs);
  try {
    const syncEveryCommit = options.durability === 'power';
    return new SqliteStore(db, options, filePath, (listener) => new WorkerCommitExecutor({ filePath, busyTimeoutMs, buckets, syncEveryCommit }, listener));
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * A store on a connection the caller keeps, committing on this thread after `commitDelayMs` of
 * the Env's time: the simulated disk of test/sim, where a crash before the delay loses the batch.
 */
export function openInlineStore(options: InlineStoreOptions): SqliteStore {
  const buckets = options.buckets ?? bucketsDefault;
  prepareSchema(options.database, buckets);
  return new SqliteStore(options.database, options, undefined, (listener) =>
    new InlineCommitExecutor(options.database, buckets, options.env, options.commitDelayMs, listener),
  );
}
