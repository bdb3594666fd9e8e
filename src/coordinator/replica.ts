/**
 * A replica of a key: where the coordinator reads versions from and writes them to. The local
 * replica works on this node's store; remote replicas (remote-replica.ts) reach a peer's over the
 * internal API and share the interface.
 */
import type { Env } from '../env';
import type { KaiError } from '../errors';
import type { ReplicaStore, StoredRecord } from '../storage';
import { deadPastGrace, reapGraceMsDefault, type Version } from '../storage/record';
import { compare, increment, incrementable, merge, prune } from '../vclock';
import type { Mutation } from './mutations';
import { defaultSiblingPolicy, resolveVersions, type SiblingPolicy } from './siblings';
import type { SpecKind, SpecOf, SpecOutcome } from './specs';
import type { VersionDigest } from './wire';

/**
 * What a mutation did on the replica that applied it: the client's result, or the operating error
 * the mutation decided on instead (nothing is written then).
 */
export type Applied<R> = {
  /** Every version the replica holds after the mutation. */
  readonly versions: readonly Version[];
} & (
  | {
      readonly result: R;
      readonly error?: undefined;
      /** The version the mutation wrote, to be sent to the other replicas. */
      readonly written: Version | undefined;
    }
  | { readonly result?: undefined; readonly error: KaiError; readonly written: undefined }
);

/** One key's versions, as batches of stores carry them. */
export interface StoreItem {
  readonly key: Buffer;
  readonly bucket: number;
  readonly versions: readonly Version[];
  /** The primary the receiving replica stands in for, when it is a fallback (Replica.store). */
  readonly hintFor?: string;
}

/**
 * A write coordinated from a spec: what the dispatcher of the client's node needs, and which
 * replicas acknowledged it (the coordinating one first) when it wrote.
 */
export type Coordinated<K extends SpecKind> = Applied<SpecOutcome<K>> & { readonly acknowledgedBy?: readonly string[] };

export interface Replica {
  readonly nodeId: string;
  /**
   * Every version held for the key, siblings, tombstones and expired ones alike; resolves once
   * they are committed there. What a replica answers may travel on (read repair, a peer's context
   * read, anti-entropy) and become durable elsewhere: it must be durable here first, or a crash
   * here would leave peers with writes this node no longer has, and a counter here would then
   * count again from totals below those its peers keep (src/counter).
   */
  fetch(key: Buffer): Promise<readonly Version[]>;
  /**
   * What identifies each version held for the key (clock and write time), without the values,
   * once committed there as for `fetch`: how a read compares this replica with the one that sent
   * the values (a digest read).
   */
  fetchDigests(key: Buffer): Promise<readonly VersionDigest[]>;
  /** What the replica holds now, committed or not, answered at once; only a replica on this node can. */
  fetchNow?(key: Buffer): readonly Version[];
  /**
   * Merges versions written elsewhere into what the replica holds; resolves once they (or versions
   * that supersede them) are committed there. `hintFor` names the primary this replica stands in
   * for, when it is a fallback: its copy then carries a hint for hinted handoff.
   */
  store(key: Buffer, bucket: number, versions: readonly Version[], hintFor?: string): Promise<void>;
  /**
   * Reads, decides and writes atomically on this replica; acts as the write's coordinator. Only
   * this node's replica can, since a mutation is a function.
   */
  apply?<R>(key: Buffer, bucket: number, mutation: Mutation<R>, hintFor?: string): Promise<Applied<R>>;
  /**
   * Asks the replica's node to coordinate a write described as data, waiting at most
   * `timeoutMs`; how a node outside a key's preference list forwards a write.
   */
  coordinate?<K extends SpecKind>(key: Buffer, spec: SpecOf<K>, timeoutMs: number): Promise<Coordinated<K>>;
}

/** Random base-36 characters in a new actor name, after its write time: two names never meet. */
const actorSuffixRandomChars = 4;

export class LocalReplica implements Replica {
  /** Siblings dropped for the siblings cap on this replica (kai's `siblings_dropped`). */
  siblingsDropped = 0;

  constructor(
    readonly nodeId: string,
    private readonly storage: ReplicaStore,
    private readonly env: Env,
    readonly valueBytesMax: number,
    readonly siblingPolicy: SiblingPolicy = defaultSiblingPolicy,
    /** How long dead records are kept at least (storage/record.ts, reapGraceMsDefault). */
    readonly reapGraceMs: number = reapGraceMsDefault,
  ) {}

  /**
   * The name this replica writes a key under: its clock entry and its counter totals. A vector
   * clock entry promises that the writer holds every earlier write it names, and a counter's
   * totals that they only grow; a node keeps that promise only while it keeps the key's record.
   * It drops records by design (a fallback's copy once handed off, a stray copy, a flush, a lost
   * disk), and then no longer holds its own earlier writes. Writing on under the same name would
   * make its next version seem to descend from writes it never saw, superseding them (Riak's
   * kv679), and its counter totals would start again below those its peers keep, which would
   * swallow them. So the name lives in the record (StoredRecord.actor) and goes with it: a node
   * writing a key it keeps no record of, or only a copy received from others, takes a new name.
   */
  private actorFor(record: StoredRecord | undefined, writtenAtMs: number): string {
    if (record?.actor !== undefined) return record.actor;
    let suffix = writtenAtMs.toString(36);
    for (let index = 0; index < actorSuffixRandomChars; index++) suffix += Math.floor(this.env.random() * 36).toString(36);
    return `${this.nodeId}~${suffix}`;
  }

  /** Synchronous read for the coordinator's fast path. */
  fetchNow(key: Buffer): readonly Version[] {
    return this.storage.read(key)?.versions ?? [];
  }

  /** Settles once the latest write accepted for the key here has committed. */
  whenCommitted(key: Buffer): Promise<void> {
    return this.storage.whenCommitted(key);
  }

  async fetch(key: Buffer): Promise<readonly Version[]> {
    const versions = this.fetchNow(key);
    // Settles once the latest write accepted for the key has committed: the one read, or later.
    await this.storage.whenCommitted(key);
    return versions;
  }

  async fetchDigests(key: Buffer): Promise<readonly VersionDigest[]> {
    const digests = this.fetchNow(key).map((version) => ({ clock: version.clock, writtenAtMs: version.writtenAtMs }));
    await this.storage.whenCommitted(key);
    return digests;
  }

  async apply<R>(key: Buffer, bucket: number, mutation: Mutation<R>, hintFor?: string): Promise<Applied<R>> {
    // Read, decide and queue the write in one synchronous step, so no other request interleaves.
    const record = this.storage.read(key);
    const held = record?.versions ?? [];
    const nowMs = this.env.nowMs();
    // A write is stamped later than every version it supersedes, even when the wall clock says
    // otherwise (two writes in one ms, a clock behind a peer's): last-write-wins then never lets
    // a version beat its own successor, whatever other versions the two meet.
    let writtenAtMs = nowMs;
    for (const version of held) writtenAtMs = Math.max(writtenAtMs, version.writtenAtMs + 1);
    const heldClock = merge(held.map((v) => v.clock));
    let actor = this.actorFor(record, writtenAtMs);
    // A counter at its bound cannot move on; only a peer's forged clock puts it there. Under a
    // new name the write still descends from every version it read, so the key stays writable
    // and keeps its causal order, at the cost of one more clock entry.
    if (!incrementable(heldClock, actor, writtenAtMs)) actor = this.actorFor(undefined, writtenAtMs);
    const decision = mutation(held, { nowMs, valueBytesMax: this.valueBytesMax, actor });
    if (decision.error) return { error: decision.error, versions: held, written: undefined };
    if (!decision.write) return { result: decision.result, versions: held, written: undefined };
    // The write time in ms is a floor for this node's counter: it only grows, so a counter is
    // never reused after the key's history here is gone (expired and purged, flushed), while
    // peers may still hold the older entries. A clock set back by more than the time between two
    // writes of one key is the one case this does not cover.
    const clock = prune(increment(heldClock, actor, writtenAtMs, writtenAtMs), writtenAtMs);
    const written: Version = { ...decision.write, clock, writtenAtMs };
    const versions = this.resolve([...held, written]);
    await this.storage.write({ key, bucket, versions, actor }, { hintFor });
    return { result: decision.result, versions, written };
  }

  async store(key: Buffer, bucket: number, incoming: readonly Version[], hintFor?: string, onlyIfPresent = false): Promise<void> {
    const record = this.storage.read(key);
    const held = record?.versions ?? [];
    if (held.length === 0 && deadPastGrace(incoming, this.env.nowMs(), this.reapGraceMs)) {
      // Nothing here for them to supersede, and their holders may reap them any time now: taking
      // them would only bring them back after the reaper removed them everywhere else.
      return;
    }
    // Versions this replica already has or has superseded change nothing: no new write. But what
    // it holds may still be waiting for its commit, and "stored" means committed, so it waits for
    // that. A fallback's copy must carry its hint, so a hinted store always writes.
    if (hintFor === undefined && incoming.every((version) => held.some((mine) => isAtLeast(mine, version)))) {
      await this.storage.whenCommitted(key);
      return;
    }
    const versions = this.resolve([...held, ...incoming]);
    // The record keeps this node's name for the key: it still holds every write made under it.
    await this.storage.write(record?.actor === undefined ? { key, bucket, versions } : { key, bucket, versions, actor: record.actor }, {
      hintFor,
      onlyIfPresent,
    });
  }

  /**
   * Stores each item; resolves once all are committed. With `ifHeld`, only the items whose key
   * this replica already holds something for.
   */
  async storeMany(items: readonly StoreItem[], options: { readonly ifHeld?: boolean } = {}): Promise<void> {
    const ifHeld = options.ifHeld === true;
    const wanted = ifHeld ? items.filter((item) => this.fetchNow(item.key).length > 0) : items;
    // What is held now may be removed by a removal already queued (a handed-off copy dropped, a
    // record reaped): the merge then applies only if the record is still there when it commits.
    await Promise.all(wanted.map((item) => this.store(item.key, item.bucket, item.versions, item.hintFor, ifHeld)));
  }

  private resolve(versions: readonly Version[]): readonly Version[] {
    const resolved = resolveVersions(versions, this.siblingPolicy);
    this.siblingsDropped += resolved.dropped;
    return resolved.versions;
  }
}

/** Whether `mine` already covers `other`: it descends from it (equal clocks: the same write). */
function isAtLeast(mine: Version, other: Version): boolean {
  const order = compare(mine.clock, other.clock);
  return order === 'after' || (order === 'equal' && mine.writtenAtMs >= other.writtenAtMs);
}
