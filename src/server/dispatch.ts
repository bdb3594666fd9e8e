/**
 * Executes decoded commands against the coordinator and answers with protocol-neutral replies,
 * keeping memcached's counters on the way. Both the text and the binary front ends use it.
 */
import type { Coordinator } from '../coordinator';
import {
  arithMutation,
  casOfVersions,
  deleteMutation,
  latestLive,
  storeMutation,
  storesAsCas,
  touchMutation,
} from '../coordinator/mutations';
import type { Env } from '../env';
import { KaiError } from '../errors';
import type { Command, ItemView, Reply } from '../protocol/command';
import { expiresAtMsOf } from '../protocol/exptime';
import type { Version } from '../storage/record';
import { isLive } from '../storage/record';
import type { NodeStats } from './stats';

export interface DispatchOptions {
  readonly coordinator: Coordinator;
  readonly env: Env;
  readonly stats: NodeStats;
  readonly version: string;
  /** Empties the node (flush_all). */
  readonly flushAll: () => Promise<void>;
  /** The general and settings statistics, computed on request. */
  readonly statistics: (group: string) => ReadonlyArray<readonly [string, string]> | undefined;
}

export class Dispatcher {
  private verbosityLevel = 0;
  private pendingFlush: { cancel(): void } | undefined;

  constructor(private readonly options: DispatchOptions) {}

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
      case 'flush_all':
        return this.flushAll(command.delaySeconds);
      case 'version':
        return { kind: 'version', version: this.options.version };
      case 'verbosity':
        this.verbosityLevel = command.level;
        return { kind: 'ok' };
      case 'stats':
        return this.statistics(command.group);
      case 'quit':
        return { kind: 'quit' };
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
  private itemsOf(key: Buffer, versions: readonly Version[], withCas: boolean, latestOnly: boolean): ItemView[] {
    const nowMs = this.options.env.nowMs();
    const latest = latestOnly ? latestLive(versions, nowMs) : undefined;
    const live = latestOnly ? (latest ? [latest] : []) : versions.filter((version) => isLive(version, nowMs));
    if (live.length === 0) return [];
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
    const { coordinator, stats, env } = this.options;
    const expiresAtMs = expiresAtMsOf(exptime, env.nowMs());
    const items: ItemView[] = [];
    for (const key of keys) {
      const applied = await coordinator.mutate(key, touchMutation(expiresAtMs));
      stats.cmdGet++;
      stats.cmdTouch++;
      if (applied.result) {
        stats.getHits++;
        stats.touchHits++;
        // The item as it was read, as memcached answers even `gat -1` (which then expires it).
        const { flags, value } = applied.result;
        items.push({ key, flags, value, cas: withCas ? casOfVersions(applied.versions) : 0n });
      } else {
        stats.getMisses++;
        stats.touchMisses++;
      }
    }
    return { kind: 'items', items, withCas };
  }

  private async store(command: Extract<Command, { op: 'store' }>): Promise<Reply> {
    const { coordinator, stats, env } = this.options;
    stats.cmdSet++;
    const applied = await coordinator.mutate(
      command.key,
      storeMutation({
        mode: command.mode,
        value: command.value,
        flags: command.flags,
        expiresAtMs: expiresAtMsOf(command.exptime, env.nowMs()),
        casUnique: command.casUnique,
      }),
    );
    const outcome = applied.result;
    if (outcome === 'STORED') stats.totalItems++;
    if (storesAsCas(command.mode, command.casUnique)) {
      if (outcome === 'STORED') stats.casHits++;
      else if (outcome === 'EXISTS') stats.casBadval++;
      else if (outcome === 'NOT_FOUND') stats.casMisses++;
    }
    return { kind: 'stored', outcome, cas: applied.written ? casOfVersions(applied.versions) : 0n };
  }

  /** A delete refused for its cas unique counts neither as a hit nor as a miss, as in memcached. */
  private async delete(key: Buffer, casUnique: bigint): Promise<Reply> {
    const { stats } = this.options;
    const applied = await this.options.coordinator.mutate(key, deleteMutation(casUnique));
    if (applied.result === 'DELETED') stats.deleteHits++;
    else if (applied.result === 'NOT_FOUND') stats.deleteMisses++;
    return { kind: 'deleted', outcome: applied.result };
  }

  /**
   * memcached counts a hit when the counter changes and a miss when the key is missing and not
   * created; creating it with the binary initial value, or a cas mismatch, counts neither.
   */
  private async arith(command: Extract<Command, { op: 'arith' }>): Promise<Reply> {
    const { stats, env } = this.options;
    const { incr, delta, casUnique, initial } = command;
    const mutation = arithMutation({
      incr,
      delta,
      casUnique,
      initial: initial && { value: initial.value, expiresAtMs: expiresAtMsOf(initial.exptime, env.nowMs()) },
    });
    const applied = await this.options.coordinator.mutate(command.key, mutation);
    const { outcome, value, created } = applied.result;
    if (created) {
      stats.totalItems++;
    } else if (outcome === 'NOT_FOUND') {
      if (incr) stats.incrMisses++;
      else stats.decrMisses++;
    } else if (outcome === 'OK') {
      if (incr) stats.incrHits++;
      else stats.decrHits++;
    }
    return { kind: 'arith', outcome, value, cas: applied.written ? casOfVersions(applied.versions) : 0n };
  }

  private async touch(key: Buffer, exptime: number): Promise<Reply> {
    const { stats, env } = this.options;
    stats.cmdTouch++;
    const applied = await this.options.coordinator.mutate(key, touchMutation(expiresAtMsOf(exptime, env.nowMs())));
    if (applied.result) stats.touchHits++;
    else stats.touchMisses++;
    return { kind: 'touched', found: applied.result !== undefined };
  }

  /**
   * flush_all with a delay empties the node when the delay has passed; a later flush_all replaces a
   * pending one, as memcached's single flush deadline does.
   */
  private async flushAll(delaySeconds: number): Promise<Reply> {
    this.options.stats.cmdFlush++;
    this.pendingFlush?.cancel();
    this.pendingFlush = undefined;
    if (delaySeconds > 0) {
      this.pendingFlush = this.options.env.after(delaySeconds * 1000, () => {
        this.pendingFlush = undefined;
        void this.options.flushAll().catch(() => undefined);
      });
    } else {
      await this.options.flushAll();
    }
    return { kind: 'ok' };
  }

  private statistics(group: string): Reply {
    if (group === 'reset') {
      this.options.stats.reset();
      return { kind: 'reset' };
    }
    const stats = this.options.statistics(group);
    if (!stats) throw new KaiError('KAI_UNKNOWN_COMMAND');
    return { kind: 'stats', stats };
  }

  cancelTimers(): void {
    this.pendingFlush?.cancel();
  }
}
