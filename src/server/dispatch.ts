/**
 * Executes decoded commands against the coordinator and answers with protocol-neutral replies,
 * keeping memcached's counters on the way. Both the text and the binary front ends use it.
 */
import type { Coordinator } from '../coordinator';
import { casOfVersions, latestLive, storesAsCas } from '../coordinator/mutations';
import { arithSpec, deleteSpec, storeSpec, touchSpec, type SpecKind, type SpecOf, type SpecOutcome } from '../coordinator/specs';
import type { Env, TimerHandle } from '../env';
import { KaiError } from '../errors';
import type { Command, ItemView, Reply } from '../protocol/command';
import { commandName } from '../protocol/command-name';
import { expiresAtMsOf } from '../protocol/exptime';
import type { Version } from '../storage/record';
import { holdsOnlyExpired, isLive } from '../storage/record';
import { AccessTracker } from './access-tracker';
import { lookupSeen, versionsSeen, type KeyActivity } from './key-activity';
import { MetaExecutor, type AppliedWrite, type StoreCounted } from './meta';
import type { RunOptions } from './connection';
import type { NodeStats } from './stats';

export interface DispatchOptions {
  readonly coordinator: Coordinator;
  readonly env: Env;
  readonly stats: NodeStats;
  readonly version: string;
  /** Empties the node (flush_all). */
  readonly flushAll: () => Promise<void>;
  /**
   * Sends a flush_all's deadline (unix ms) to every other node of the cluster, which applies it
   * with its own `flushUntil`; resolves once the reachable nodes have answered. Absent on a
   * single node.
   */
  readonly broadcastFlush?: (deadlineMs: number) => Promise<void>;
  /** The general and settings statistics, computed on request. */
  readonly statistics: (group: string) => ReadonlyArray<readonly [string, string]> | undefined;
  /** Per-prefix statistics and watchers, told of each key commands touch (key-activity.ts). */
  readonly activity?: KeyActivity;
  /** `verbosity` changed memcached's level (at most verbosityLevelMax): the node's log level follows. */
  readonly onVerbosity?: (level: number) => void;
}

/** memcached's MAX_VERBOSITY_LEVEL: a higher `verbosity` is kept as this. */
export const verbosityLevelMax = 2;

/** Keys a multiget reads at once, at most; a wide multiget is answered window by window. */
export const multigetWindowKeysMax = 512;
/** Keys in a wide multiget's first window, before the sizes of its values are known. */
export const multigetWindowKeysFirst = 64;
/** About what one window's reply holds: later windows are sized from the bytes per key so far. */
export const multigetWindowBytesTarget = 1024 * 1024;
/** Multigets of more keys than this are answered window by window (Dispatcher.itemWindows). */
export const multigetStreamedKeysMin = 64;

/** What a reply line costs beyond the key and value, in the window sizing's estimate. */
const itemLineOverheadBytes = 48;

/** The command's value bytes, which admission holds while it runs (src/server/admission.ts). */
export function valueBytesOf(command: Command): number {
  return command.op === 'store' ? command.value.length : 0;
}

/** The keys a command reads or writes: a connection runs its requests on a key in order. */
export function keysOf(command: Command): readonly Buffer[] {
  switch (command.op) {
    case 'get':
    case 'gat':
      return command.keys;
    case 'store':
    case 'delete':
    case 'arith':
    case 'touch':
    case 'refuse_store':
    case 'meta_debug':
      return [command.key];
    case 'meta_get':
    case 'meta_set':
    case 'meta_delete':
    case 'meta_arith':
      return [command.request.key];
    default:
      return [];
  }
}

/**
 * How a command runs beside the others of its connection (connection.ts): its value bytes held by
 * admission, its keys kept in order. `stats` waits for every request ahead of it, whose counters it
 * reads; `flush_all` too, whose writes it empties, and every later request waits for it, as
 * memcached's one-at-a-time loop would have them.
 */
export function runOptionsOf(command: Command): RunOptions {
  const flush = command.op === 'flush_all';
  return {
    valueBytes: valueBytesOf(command),
    afterEarlier: flush || command.op === 'stats',
    keys: keysOf(command),
    barrier: flush,
    command: commandName(command),
  };
}

/** Whether the command is a multiget wide enough to be answered window by window. */
export function isWideMultiget(command: Command): command is Extract<Command, { op: 'get' | 'gat' }> {
  return (command.op === 'get' || command.op === 'gat') && command.keys.length > multigetStreamedKeysMin;
}

/** setTimeout's longest delay: a longer one overflows and fires at once, so longer waits are re-armed. */
export const timerDelayMsMax = 2 ** 31 - 1;

/**
 * The `stats` groups about memcached's slab allocator, answered as memcached answers them when it
 * holds no item: kai keeps no slabs, so there is nothing to list (docs/protocol.md).
 */
const allocatorStatistics: ReadonlyMap<string, ReadonlyArray<readonly [string, string]>> = new Map([
  ['items', []],
  [
    'slabs',
    [
      ['active_slabs', '0'],
      ['total_malloced', '0'],
    ],
  ],
  ['sizes', [['sizes_status', 'disabled']]],
]);

/** A write that was applied, its operating error (if any) already answered, its lookup counted. */
interface Unwrapped<K extends SpecKind> {
  readonly result: SpecOutcome<K>['result'];
  /** Every version the coordinating replica holds after the write. */
  readonly versions: readonly Version[];
  readonly written: Version | undefined;
}

export class Dispatcher {
  private verbosityLevel = 0;
  private flushTimer: TimerHandle | undefined;
  /** What this node knows of its items' reads (meta `h`, `l` and `me`). */
  readonly access = new AccessTracker();
  private readonly meta: MetaExecutor;

  constructor(private readonly options: DispatchOptions) {
    this.meta = new MetaExecutor({
      env: options.env,
      stats: options.stats,
      access: this.access,
      read: (key) => {
        const read = options.coordinator.read(key);
        if (read instanceof Promise) return read.then((versions) => this.unflushed(versions, options.env.nowMs()));
        return this.unflushed(read, options.env.nowMs());
      },
      mutate: async (key, spec) => {
        const { applied, lookup } = await this.mutateLookingUp(key, spec);
        return { ...applied, lookup };
      },
      countArithmetic: (incr, applied) => this.countArithmetic(incr, applied),
      countStore: (key, stored, applied) => this.countStore(key, stored, applied),
      activity: options.activity,
    });
  }

  execute(command: Command): Promise<Reply> | Reply {
    switch (command.op) {
      case 'get':
        return this.get(command.keys, command.withCas, command.latestSiblingOnly ?? false);
      case 'gat':
        return this.gat(command.keys, command.exptime, command.withCas);
      case 'store':
        return this.store(command);
      case 'delete':
        return this.delete(command.key, command.casUnique);
      case 'arith':
        return this.arith(command);
      case 'touch':
        return this.touch(command.key, command.exptime);
      case 'refuse_store':
        return this.refuseStore(command.key, command.removeOld);
      case 'flush_all':
        return this.flushAll(command.delaySeconds);
      case 'version':
        return { kind: 'version', version: this.options.version };
      case 'verbosity':
        this.verbosityLevel = Math.min(command.level, verbosityLevelMax);
        this.options.onVerbosity?.(this.verbosityLevel);
        return { kind: 'ok' };
      case 'stats':
        return this.statistics(command.group, command.args ?? []);
      case 'quit':
        return { kind: 'quit' };
      case 'tool':
        // A text connection runs its streamed tooling commands itself (server/text-tools.ts).
        throw new KaiError('KAI_UNKNOWN_COMMAND');
      default:
        return this.meta.execute(command);
    }
  }

  /**
   * A wide multiget's items, window by window, each window read (or touched) in one go: its keys'
   * reads leave as one batched request per replica. Windows start at multigetWindowKeysFirst keys
   * and are then sized so that each holds about multigetWindowBytesTarget of replies.
   */
  async *itemWindows(command: Extract<Command, { op: 'get' | 'gat' }>): AsyncGenerator<readonly ItemView[]> {
    const { keys } = command;
    let start = 0;
    let windowKeys = multigetWindowKeysFirst;
    let keysRead = 0;
    let bytesRead = 0;
    while (start < keys.length) {
      const window = keys.slice(start, start + windowKeys);
      const reply =
        command.op === 'get'
          ? await this.get(window, command.withCas, command.latestSiblingOnly ?? false)
          : await this.gat(window, command.exptime, command.withCas);
      if (reply.kind !== 'items') throw new Error(`assertion failed: a multiget answered ${reply.kind}`);
      start += window.length;
      keysRead += window.length;
      for (const item of reply.items) bytesRead += item.key.length + item.value.length + itemLineOverheadBytes;
      const bytesPerKey = Math.max(1, bytesRead / keysRead);
      windowKeys = Math.max(1, Math.min(multigetWindowKeysMax, Math.floor(multigetWindowBytesTarget / bytesPerKey)));
      yield reply.items;
    }
  }

  get verbosity(): number {
    return this.verbosityLevel;
  }

  /**
   * One item per live sibling (or only the one written last), all carrying the cas unique of the
   * whole context. The cas unique costs a hash of the clocks, so it is only computed when the
   * reply shows it.
   */
  private itemsOf(key: Buffer, held: readonly Version[], withCas: boolean, latestOnly: boolean): ItemView[] {
    const nowMs = this.options.env.nowMs();
    const versions = this.unflushed(held, nowMs);
    const onlyExpired = holdsOnlyExpired(versions, nowMs);
    if (onlyExpired) this.options.stats.getExpired++;
    const latest = latestOnly ? latestLive(versions, nowMs) : undefined;
    const live = latestOnly ? (latest ? [latest] : []) : versions.filter((version) => isLive(version, nowMs));
    if (this.options.activity?.listening) this.options.activity.read(key, versionsSeen(held, versions, nowMs));
    if (live.length === 0) return [];
    const read = latest ?? latestLive(versions, nowMs);
    if (read) this.access.recordRead(key, read.writtenAtMs, nowMs);
    const cas = withCas ? casOfVersions(versions) : 0n;
    return live.map((version) => ({ key, flags: version.flags, value: version.value, cas }));
  }

  private get(keys: readonly Buffer[], withCas: boolean, latestOnly: boolean): Promise<Reply> | Reply {
    const reads = keys.map((key) => this.options.coordinator.read(key));
    if (reads.every((read) => !(read instanceof Promise))) {
      return this.itemsReply(keys, reads as readonly (readonly Version[])[], withCas, latestOnly);
    }
    return Promise.all(reads).then((found) => this.itemsReply(keys, found, withCas, latestOnly));
  }

  private itemsReply(
    keys: readonly Buffer[],
    found: readonly (readonly Version[])[],
    withCas: boolean,
    latestOnly: boolean,
  ): Reply {
    const { stats } = this.options;
    const items: ItemView[] = [];
    keys.forEach((key, index) => {
      const views = this.itemsOf(key, found[index], withCas, latestOnly);
      stats.cmdGet++;
      if (views.length > 0) stats.getHits++;
      else stats.getMisses++;
      items.push(...views);
    });
    return { kind: 'items', items, withCas };
  }

  private async gat(keys: readonly Buffer[], exptime: number, withCas: boolean): Promise<Reply> {
    const { stats, env } = this.options;
    const expiresAtMs = expiresAtMsOf(exptime, env.nowMs());
    const items: ItemView[] = [];
    // memcached counts gat and gats, text and binary, as touches only: no cmd_get, get_hits or get_misses.
    for (const key of keys) {
      this.access.beginRewrite(key, true, env.nowMs());
      const { applied, lookup } = await this.mutateLookingUp(key, touchSpec(expiresAtMs));
      this.access.settleRewrite(key, applied.written?.writtenAtMs);
      this.options.activity?.read(key, lookupSeen(lookup));
      stats.cmdTouch++;
      if (applied.result) {
        stats.touchHits++;
        // The item as it was read, as memcached answers even `gat -1` (which then expires it).
        const { flags, value } = applied.result;
        items.push({ key, flags, value, cas: withCas ? casOfVersions(applied.versions) : 0n });
      } else {
        stats.touchMisses++;
      }
    }
    return { kind: 'items', items, withCas };
  }

  private async store(command: Extract<Command, { op: 'store' }>): Promise<Reply> {
    const { stats, env } = this.options;
    stats.cmdSet++;
    this.options.activity?.storeReceived(command.key);
    const expiresAtMs = expiresAtMsOf(command.exptime, env.nowMs());
    const spec = storeSpec({ mode: command.mode, value: command.value, flags: command.flags, expiresAtMs, casUnique: command.casUnique });
    const { applied, lookup } = await this.mutateLookingUp(command.key, spec);
    const comparesCas = storesAsCas(command.mode, command.casUnique);
    const stored = { mode: command.mode, expiresAtMs, valueBytes: command.value.length, comparesCas };
    this.countStore(command.key, stored, { ...applied, lookup });
    return { kind: 'stored', outcome: applied.result, cas: applied.written ? casOfVersions(applied.versions) : 0n };
  }

  /**
   * What memcached counts and tells its watchers of a storage command (and ms): the store, an item
   * made, and a cas outcome for one that compared cas uniques.
   */
  private countStore(key: Buffer, stored: StoreCounted, applied: AppliedWrite<'store'>): void {
    const { stats } = this.options;
    const outcome = applied.result;
    const madeBytes = applied.written?.value.length ?? stored.valueBytes;
    this.options.activity?.stored(key, stored.mode, lookupSeen(applied.lookup), outcome, stored.expiresAtMs, madeBytes);
    if (outcome === 'STORED') stats.totalItems++;
    if (stored.comparesCas) {
      if (outcome === 'STORED') stats.casHits++;
      else if (outcome === 'EXISTS') stats.casBadval++;
      else if (outcome === 'NOT_FOUND') stats.casMisses++;
    }
  }

  /** A delete refused for its cas unique counts neither as a hit nor as a miss, as in memcached. */
  private async delete(key: Buffer, casUnique: bigint): Promise<Reply> {
    const { stats } = this.options;
    this.options.activity?.deleteReceived(key);
    const { applied, lookup } = await this.mutateLookingUp(key, deleteSpec(casUnique));
    this.options.activity?.lookedUp(key, lookupSeen(lookup));
    if (applied.result === 'DELETED') stats.deleteHits++;
    else if (applied.result === 'NOT_FOUND') stats.deleteMisses++;
    return { kind: 'deleted', outcome: applied.result };
  }

  /**
   * memcached counts a hit when the counter changes and a miss when the key is missing and not
   * created; creating it with the binary initial value, or a cas mismatch, counts neither. A
   * counter whose text outgrows the stored value is a new item in memcached, so it counts in
   * total_items; one rewritten in place does not.
   */
  private async arith(command: Extract<Command, { op: 'arith' }>): Promise<Reply> {
    const { env } = this.options;
    const { incr, delta, casUnique, initial } = command;
    const spec = arithSpec({
      incr,
      delta,
      casUnique,
      initial: initial && { value: initial.value, expiresAtMs: expiresAtMsOf(initial.exptime, env.nowMs()) },
    });
    const { applied, lookup } = await this.mutateLookingUp(command.key, spec);
    this.options.activity?.lookedUp(command.key, lookupSeen(lookup));
    this.countArithmetic(incr, { ...applied, lookup });
    const { outcome, value } = applied.result;
    return { kind: 'arith', outcome, value, cas: applied.written ? casOfVersions(applied.versions) : 0n };
  }

  /** memcached's counters for an incr or decr (and ma), whatever the protocol. */
  private countArithmetic(incr: boolean, applied: AppliedWrite<'arith'>): void {
    const { stats } = this.options;
    const { outcome, created } = applied.result;
    // A created counter has no previous value, so it counts here too.
    if (applied.written && applied.written.value.length > applied.lookup.previousValueBytes) stats.totalItems++;
    if (created) {
      // Counted as neither a hit nor a miss.
    } else if (outcome === 'NOT_FOUND') {
      if (incr) stats.incrMisses++;
      else stats.decrMisses++;
    } else if (outcome === 'OK') {
      if (incr) stats.incrHits++;
      else stats.decrHits++;
    }
  }

  private async touch(key: Buffer, exptime: number): Promise<Reply> {
    const { stats, env } = this.options;
    stats.cmdTouch++;
    // memcached's touch counts as a read of the item.
    this.access.beginRewrite(key, true, env.nowMs());
    const { applied, lookup } = await this.mutateLookingUp(key, touchSpec(expiresAtMsOf(exptime, env.nowMs())));
    this.access.settleRewrite(key, applied.written?.writtenAtMs);
    this.options.activity?.lookedUp(key, lookupSeen(lookup));
    if (applied.result) stats.touchHits++;
    else stats.touchMisses++;
    return { kind: 'touched', found: applied.result !== undefined };
  }

  /**
   * A storage command refused for its size: counted, and for a set the old value removed, as
   * memcached does. The removal is not a client delete, so no delete counter moves.
   */
  private async refuseStore(key: Buffer, removeOld: boolean): Promise<Reply> {
    this.options.stats.storeTooLarge++;
    this.options.activity?.storeReceived(key);
    if (removeOld) await this.mutate(key, deleteSpec(0n));
    return { kind: 'ok' };
  }

  /**
   * Runs a write on the key, wherever the coordinator has it coordinated: the coordinating node
   * leaves out versions written before its flush deadline, and reports what its lookup found,
   * which is counted here, on the node the client talks to. An operating error the write decided
   * on is answered as the client's error reply.
   */
  private async mutate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<Unwrapped<K>> {
    const { applied } = await this.mutateLookingUp(key, spec);
    return applied;
  }

  private async mutateLookingUp<K extends SpecKind>(
    key: Buffer,
    spec: SpecOf<K>,
  ): Promise<{ readonly applied: Unwrapped<K>; readonly lookup: SpecOutcome<K>['lookup'] }> {
    const applied = await this.options.coordinator.mutate(key, spec);
    if (applied.error) throw applied.error;
    const { lookup, result } = applied.result;
    if (lookup.expired) this.options.stats.getExpired++;
    return { applied: { result, versions: applied.versions, written: applied.written }, lookup };
  }

  /** The versions a client may see: none written before a flush deadline that has come. */
  private unflushed(versions: readonly Version[], nowMs: number): readonly Version[] {
    return this.options.coordinator.flushDeadline.visible(versions, nowMs);
  }

  /**
   * flush_all as memcached reads its delay: none (or not positive) flushes now; up to 30 days it is
   * relative, beyond it is a unix time. A delayed flush sets a deadline: from then on every version
   * written before it reads as absent (docs/protocol.md), and the node's data is removed. A later
   * flush_all replaces a pending one, as memcached's single deadline does.
   */
  private async flushAll(delaySeconds: number): Promise<Reply> {
    this.options.stats.cmdFlush++;
    // 0 flushes now on every node, by its own clock, so a node whose clock is behind does not wait.
    const deadlineMs = delaySeconds > 0 ? expiresAtMsOf(delaySeconds, this.options.env.nowMs()) : 0;
    await Promise.all([this.flushUntil(deadlineMs), this.options.broadcastFlush?.(deadlineMs)]);
    return { kind: 'ok' };
  }

  /**
   * Applies a flush deadline (unix ms; 0 for now) on this node: one that has come removes the node's data
   * now; a later one hides what was written before it from then on, and removes the data when it
   * comes. Called for this node's flush_all and for one another node received, with the
   * deadline that node computed.
   */
  async flushUntil(deadlineMs: number): Promise<void> {
    const flushDeadline = this.options.coordinator.flushDeadline;
    this.cancelTimers();
    flushDeadline.deadlineMs = 0;
    if (deadlineMs <= this.options.env.nowMs()) {
      await this.options.flushAll();
    } else {
      flushDeadline.deadlineMs = deadlineMs;
      this.armFlush(deadlineMs);
    }
  }

  /**
   * Waits for the deadline in steps setTimeout can take, then removes the data. The deadline stays
   * in force until the removal has committed, so a failed removal still hides the flushed data.
   */
  private armFlush(deadlineMs: number): void {
    const { env } = this.options;
    const remainingMs = deadlineMs - env.nowMs();
    if (remainingMs > 0) {
      this.flushTimer = env.after(Math.min(remainingMs, timerDelayMsMax), () => this.armFlush(deadlineMs));
      return;
    }
    this.flushTimer = undefined;
    this.options.flushAll().then(
      () => {
        const flushDeadline = this.options.coordinator.flushDeadline;
        if (flushDeadline.deadlineMs === deadlineMs) flushDeadline.deadlineMs = 0;
      },
      () => undefined,
    );
  }

  private statistics(group: string, args: readonly string[]): Reply {
    if (group === 'reset') {
      this.options.stats.reset();
      this.options.activity?.prefixes.clear();
      return { kind: 'reset' };
    }
    if (group === 'detail') return this.detail(args[0]);
    const stats =
      allocatorStatistics.get(group) ??
      this.options.statistics(group) ??
      (group === 'kai' ? this.options.coordinator.statistics() : undefined);
    if (!stats) throw new KaiError('KAI_UNKNOWN_COMMAND');
    return { kind: 'stats', stats };
  }

  /** `stats detail on|off|dump`: memcached's per-prefix statistics (prefix-stats.ts). */
  private detail(action: string | undefined): Reply {
    const prefixes = this.options.activity?.prefixes;
    if (prefixes === undefined) throw new KaiError('KAI_UNKNOWN_COMMAND');
    if (action === 'dump') return { kind: 'lines', name: 'detailed', lines: prefixes.dump() };
    if (action !== 'on' && action !== 'off') throw new KaiError('KAI_STATS_DETAIL_USAGE');
    prefixes.enabled = action === 'on';
    return { kind: 'ok' };
  }

  get detailEnabled(): boolean {
    return this.options.activity?.prefixes.enabled ?? false;
  }

  cancelTimers(): void {
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
  }
}
