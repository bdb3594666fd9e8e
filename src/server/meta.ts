/**
 * Runs the meta commands against the cluster: mg is a quorum read, or a coordinated write when it
 * touches (T), may create (N) or hands out a recache (R, or a stale item not yet claimed); ms, md
 * and ma are the writes they name. Counters move as memcached moves them. Replies are data; the
 * text encoder (protocol/text/meta-reply.ts) writes their bytes.
 */
import { casOfVersions, latestLive } from '../coordinator/mutations';
import type { FetchResult, FetchStep } from '../coordinator/meta-mutations';
import { arithSpec, deleteSpec, fetchSpec, storeSpec, type SpecKind, type SpecOf, type SpecOutcome } from '../coordinator/specs';
import type { Env } from '../env';
import { KaiError } from '../errors';
import type { StorageMode, StoreOutcome } from '../protocol/command';
import { expiresAtMsOf } from '../protocol/exptime';
import type {
  MetaArithRequest,
  MetaCommand,
  MetaDeleteRequest,
  MetaGetRequest,
  MetaItem,
  MetaReply,
  MetaRequest,
  MetaSetRequest,
  MetaStatus,
} from '../protocol/meta-command';
import { opaqueBytesMax } from '../protocol/text/meta';
import { holdsOnlyExpired, versionMarks, type Version } from '../storage/record';
import { accessFactsOf, type AccessFacts, type AccessTracker } from './access-tracker';
import { lookupSeen, notFound, versionsSeen, type KeyActivity } from './key-activity';
import type { NodeStats } from './stats';

/** What memcached's counters and watchers need of a storage command besides its outcome. */
export interface StoreCounted {
  readonly mode: StorageMode;
  readonly expiresAtMs: number;
  /** The bytes the command sent, counted when no value was written. */
  readonly valueBytes: number;
  /** It compared cas uniques (a `cas`, or a store naming one), so a cas counter moves. */
  readonly comparesCas: boolean;
}

/** A write as the dispatcher carries it out: applied on the key's coordinating replica, its lookup counted. */
export interface AppliedWrite<K extends SpecKind> {
  readonly result: SpecOutcome<K>['result'];
  /** Every version the coordinating replica holds after the write. */
  readonly versions: readonly Version[];
  readonly written: Version | undefined;
  readonly lookup: SpecOutcome<K>['lookup'];
}

export interface MetaBackend {
  readonly env: Env;
  readonly stats: NodeStats;
  readonly access: AccessTracker;
  /**
   * The key's versions a client may see now (a flush deadline's hidden ones left out); at once
   * when this node holds them.
   */
  read(key: Buffer): Promise<readonly Version[]> | readonly Version[];
  mutate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<AppliedWrite<K>>;
  /** Counts an incr or decr as memcached does (Dispatcher.countArithmetic). */
  countArithmetic(incr: boolean, applied: AppliedWrite<'arith'>): void;
  /** Counts a store, and tells the watchers of it, as memcached does (Dispatcher.countStore). */
  countStore(key: Buffer, stored: StoreCounted, applied: AppliedWrite<'store'>): void;
  /**
   * Watchers told of each key looked up and each store (key-activity.ts). memcached's per-prefix
   * statistics count only the classic commands, so meta commands leave them alone.
   */
  readonly activity?: KeyActivity;
}

const storeStatus: Readonly<Record<StoreOutcome, MetaStatus>> = { STORED: 'HD', NOT_STORED: 'NS', EXISTS: 'EX', NOT_FOUND: 'NF' };

export class MetaExecutor {
  constructor(private readonly backend: MetaBackend) {}

  async execute(command: MetaCommand): Promise<MetaReply> {
    switch (command.op) {
      case 'meta_noop':
        return { kind: 'meta_noop' };
      case 'meta_get':
        return this.afterOpaqueCheck(command.request, await this.get(command.request));
      case 'meta_set':
        return this.set(command.request, command.value);
      case 'meta_delete':
        return this.delete(command.request);
      case 'meta_arith':
        return this.afterOpaqueCheck(command.request, await this.arith(command.request));
      case 'meta_debug':
        return this.debug(command.key);
    }
  }

  /** mg and ma find an over-long opaque while answering, after they have acted: so does kai. */
  private afterOpaqueCheck(request: MetaRequest, reply: MetaReply): MetaReply {
    if (request.opaqueTooLong) throw new KaiError('KAI_META_OPAQUE_TOO_LONG');
    return reply;
  }

  /**
   * An mg. Whatever it writes starts in the same synchronous step as the read it follows when the
   * read is local, so pipelined commands behind it on the connection act after it, as on memcached.
   */
  private get(request: MetaGetRequest): Promise<MetaReply> {
    const nowMs = this.backend.env.nowMs();
    if (request.opaqueTooLong) return this.getFailingPartWay(request, nowMs);
    const steps = fetchSteps(request.flags, request, nowMs);
    if (steps.length > 0) return this.fetchWriting(request.key, steps, !request.noBump).then((fetched) => this.answerGet(request, fetched, nowMs));
    const read = this.backend.read(request.key);
    if (read instanceof Promise) return read.then((versions) => this.getFromRead(request, versions, nowMs));
    return this.getFromRead(request, read, nowMs);
  }

  /**
   * An mg with an over-long opaque fails where memcached finds it, while writing its reply: an item
   * `N` names is created all the same, and the `T` and `N` before the opaque act; no recache is
   * handed out. The error is answered by execute().
   */
  private async getFailingPartWay(request: MetaGetRequest, nowMs: number): Promise<MetaReply> {
    const opaqueAt = request.flags.findIndex((token) => token[0] === 0x4f /* O */ && token.length > opaqueBytesMax);
    const before = fetchSteps(request.flags.slice(0, opaqueAt), request, nowMs).filter(([flag]) => flag !== 'R');
    const vivifies = request.vivifyExptime !== undefined;
    const steps: FetchStep[] = vivifies && !before.some(([flag]) => flag === 'N') ? [['N', 0], ...before] : before;
    if (steps.length > 0) await this.backend.mutate(request.key, fetchSpec(steps, true));
    return { kind: 'meta_get', created: false, won: false, nowMs };
  }

  private async getFromRead(request: MetaGetRequest, versions: readonly Version[], nowMs: number): Promise<MetaReply> {
    if (holdsOnlyExpired(versions, nowMs)) this.backend.stats.getExpired++;
    this.backend.activity?.lookedUp(request.key, versionsSeen(versions, versions, nowMs));
    const latest = latestLive(versions, nowMs);
    const marks = latest?.marks ?? 0;
    if (latest && (marks & versionMarks.stale) !== 0 && (marks & versionMarks.winTokenSent) === 0) {
      // A stale item nobody has been told to recache: this client is, if no other got there first.
      return this.answerGet(request, await this.fetchWriting(request.key, [], !request.noBump), nowMs);
    }
    const found = latest && { version: latest, cas: casOfVersions(versions), now: latest };
    return this.answerGet(request, { found, created: false, won: false }, nowMs);
  }

  private answerGet(request: MetaGetRequest, fetched: Fetched, nowMs: number): MetaReply {
    const { stats } = this.backend;
    const { found, created, won } = fetched;
    // memcached counts a touching mg as a touch only when it hits; a miss is a get miss.
    if (!found) {
      stats.cmdGet++;
      stats.getMisses++;
      return { kind: 'meta_get', created: false, won: false, nowMs };
    }
    if (created) stats.totalItems++;
    if (request.touchExptime !== undefined) {
      stats.cmdTouch++;
      stats.touchHits++;
    } else {
      stats.cmdGet++;
      stats.getHits++;
    }
    const item = this.itemOf(request.key, found);
    if (!request.noBump) this.recordRead(request.key, found);
    return { kind: 'meta_get', item, created, won, nowMs };
  }

  /**
   * An mg that writes: its steps (and any recache it wins) applied on the coordinating replica.
   * What this node knew of the item's reads is taken first, since the rewrite carries it over.
   */
  private async fetchWriting(key: Buffer, steps: readonly FetchStep[], read: boolean): Promise<Fetched> {
    const { access, env } = this.backend;
    const known = access.entry(key);
    access.beginRewrite(key, read, env.nowMs());
    const applied = await this.backend.mutate(key, fetchSpec(steps));
    access.settleRewrite(key, applied.written?.writtenAtMs);
    this.backend.activity?.lookedUp(key, lookupSeen(applied.lookup));
    const { item, created, won }: FetchResult = applied.result;
    if (!item) return { created, won };
    const before: Version = {
      clock: [],
      value: item.value,
      flags: item.flags,
      expiresAtMs: item.expiresAtMs,
      tombstone: false,
      writtenAtMs: created ? env.nowMs() : item.writtenAtMs,
      ...(item.marks ? { marks: item.marks } : {}),
    };
    const now = applied.written ?? latestLive(applied.versions, env.nowMs()) ?? before;
    const facts = created ? accessFactsOf(undefined, before.writtenAtMs) : accessFactsOf(known, before.writtenAtMs);
    return { found: { version: before, cas: casOfVersions(applied.versions), now, facts }, created, won };
  }

  private itemOf(key: Buffer, found: FoundItem): MetaItem {
    const { version, cas } = found;
    const marks = version.marks ?? 0;
    const access = found.facts ?? this.backend.access.lookup(key, version.writtenAtMs);
    return {
      key,
      value: version.value,
      flags: version.flags,
      cas,
      expiresAtMsBefore: version.expiresAtMs,
      keyBase64: (marks & versionMarks.keyBase64) !== 0,
      stale: (marks & versionMarks.stale) !== 0,
      winTokenSentBefore: (marks & versionMarks.winTokenSent) !== 0,
      fetchedBefore: access.fetched,
      lastAccessMs: access.lastAccessMs,
    };
  }

  /** The read is remembered against the item as it now is, so a touch keeps it known as read. */
  private recordRead(key: Buffer, found: FoundItem): void {
    this.backend.access.recordRead(key, found.now.writtenAtMs, this.backend.env.nowMs());
  }

  private async set(request: MetaSetRequest, value: Buffer): Promise<MetaReply> {
    const { stats, env } = this.backend;
    const cas = request.compareCas ?? 0n;
    // A cas makes a set or replace a `cas`; an add ignores it, as memcached's does.
    const mode: StorageMode = cas !== 0n && (request.mode === 'set' || request.mode === 'replace') ? 'cas' : request.mode;
    const casUnique = mode === 'add' ? 0n : cas;
    stats.cmdSet++;
    const spec = storeSpec({
      mode,
      value,
      flags: request.clientFlags,
      expiresAtMs: expiresAtMsOf(request.exptime, env.nowMs()),
      casUnique,
      invalidate: request.invalidate && mode === 'cas',
      keyBase64: request.keyBase64,
    });
    const applied = await this.backend.mutate(request.key, spec);
    const stored = { mode, expiresAtMs: spec.expiresAtMs, valueBytes: value.length, comparesCas: mode === 'cas' };
    this.backend.countStore(request.key, stored, applied);
    return { kind: 'meta_set', status: storeStatus[applied.result], cas: applied.written ? casOfVersions(applied.versions) : 0n };
  }

  /** md: a cas refusal counts as a delete miss, and an invalidation as nothing, as in memcached. */
  private async delete(request: MetaDeleteRequest): Promise<MetaReply> {
    const { stats, env } = this.backend;
    const invalidation = request.invalidate
      ? { expiresAtMs: request.exptime === undefined ? undefined : expiresAtMsOf(request.exptime, env.nowMs()) }
      : undefined;
    // An invalidated item is the same item in memcached, so what was known of its reads carries over.
    if (invalidation) this.backend.access.beginRewrite(request.key, false, env.nowMs());
    const applied = await this.backend.mutate(request.key, deleteSpec(request.compareCas ?? 0n, invalidation));
    if (invalidation) this.backend.access.settleRewrite(request.key, applied.written?.writtenAtMs);
    this.backend.activity?.lookedUp(request.key, lookupSeen(applied.lookup));
    switch (applied.result) {
      case 'DELETED':
        if (!request.invalidate) stats.deleteHits++;
        return { kind: 'meta_delete', status: 'HD' };
      case 'NOT_FOUND':
        stats.deleteMisses++;
        return { kind: 'meta_delete', status: 'NF' };
      case 'EXISTS':
        stats.deleteMisses++;
        return { kind: 'meta_delete', status: 'EX' };
    }
  }

  private async arith(request: MetaArithRequest): Promise<MetaReply> {
    const nowMs = this.backend.env.nowMs();
    const expiresAtMs = request.exptime === undefined ? undefined : expiresAtMsOf(request.exptime, nowMs);
    const initial =
      request.vivifyExptime === undefined ? undefined : { value: request.initial, expiresAtMs: createdExpiry(request, nowMs) };
    const applied = await this.backend.mutate(
      request.key,
      arithSpec({ incr: request.incr, delta: request.delta, casUnique: request.compareCas ?? 0n, initial, expiresAtMs }),
    );
    this.backend.countArithmetic(request.incr, applied);
    const { outcome, value, created, previousExpiresAtMs } = applied.result;
    this.backend.activity?.lookedUp(request.key, lookupSeen(applied.lookup));
    // memcached creates the counter as an add, which its watchers see as one.
    if (created && applied.written && initial) {
      this.backend.activity?.stored(request.key, 'add', notFound, 'STORED', initial.expiresAtMs, applied.written.value.length);
    }
    const cas = applied.written ? casOfVersions(applied.versions) : 0n;
    const common = { kind: 'meta_arith' as const, cas, created, expiresAtMsBefore: previousExpiresAtMs, nowMs };
    if (outcome === 'OK') return { ...common, status: 'HD', value };
    return { ...common, status: outcome === 'EXISTS' ? 'EX' : 'NF' };
  }

  /** me: what is known of the item, without counting as a read. */
  private debug(key: Buffer): MetaReply | Promise<MetaReply> {
    const read = this.backend.read(key);
    if (read instanceof Promise) return read.then((versions) => this.debugReply(key, versions));
    return this.debugReply(key, read);
  }

  private debugReply(key: Buffer, versions: readonly Version[]): MetaReply {
    const nowMs = this.backend.env.nowMs();
    this.backend.activity?.lookedUp(key, versionsSeen(versions, versions, nowMs));
    const latest = latestLive(versions, nowMs);
    if (!latest) return { kind: 'meta_debug', nowMs };
    return { kind: 'meta_debug', item: this.itemOf(key, { version: latest, cas: casOfVersions(versions), now: latest }), nowMs };
  }
}

/** An mg's outcome: the item it found, if any, whether N created it, whether this client won its recache. */
interface Fetched {
  readonly found?: FoundItem;
  readonly created: boolean;
  readonly won: boolean;
}

/** The item an mg found (`version`, before it acted), the key's cas after it, and the item now. */
interface FoundItem {
  readonly version: Version;
  readonly cas: bigint;
  readonly now: Version;
  /** What this node knew of the item's reads before the command, when taken before it wrote. */
  readonly facts?: AccessFacts;
}

/** mg's T, N and R among `flags`, in request order, each with the expiry it names. */
function fetchSteps(flags: readonly Buffer[], request: MetaGetRequest, nowMs: number): FetchStep[] {
  const steps: FetchStep[] = [];
  for (const token of flags) {
    const flag = String.fromCharCode(token[0]);
    if (flag === 'T' && request.touchExptime !== undefined) steps.push(['T', expiresAtMsOf(request.touchExptime, nowMs)]);
    else if (flag === 'N' && request.vivifyExptime !== undefined) steps.push(['N', expiresAtMsOf(request.vivifyExptime, nowMs)]);
    else if (flag === 'R' && request.recacheExptime !== undefined) steps.push(['R', expiresAtMsOf(request.recacheExptime, nowMs)]);
  }
  return steps;
}

/** The expiry of a counter ma creates: its N, or a T after it, as memcached applies them in order. */
function createdExpiry(request: MetaArithRequest, nowMs: number): number {
  let expiresAtMs = 0;
  for (const token of request.flags) {
    const flag = String.fromCharCode(token[0]);
    if (flag === 'N') expiresAtMs = expiresAtMsOf(request.vivifyExptime ?? 0, nowMs);
    else if (flag === 'T') expiresAtMs = expiresAtMsOf(request.exptime ?? 0, nowMs);
  }
  return expiresAtMs;
}
