/**
 * What the dispatcher tells about each key a client command touches, for the two consumers that
 * want it: the per-prefix statistics (`stats detail`) and the watchers (`watch fetchers
 * mutations`). Events come from the node the client talks to, whichever node coordinated the
 * write, as memcached's counters do.
 */
import { latestLive } from '../coordinator/mutations';
import type { Lookup } from '../coordinator/specs';
import type { StorageMode, StoreOutcome } from '../protocol/command';
import { itemSlabClass } from '../protocol/tool-commands';
import { itemGetLine, itemStoreLine, type LookupStatus, type StoreStatus } from '../protocol/text/watch-lines';
import { holdsOnlyExpired, isLive, type Version } from '../storage/record';
import type { PrefixStatistics } from './prefix-stats';
import type { Watchers } from './watchers';

/** What a command's lookup of its key found. */
export interface LookupSeen {
  readonly status: LookupStatus;
  /** Bytes of the value found; 0 when none was. */
  readonly valueBytes: number;
}

export const notFound: LookupSeen = { status: 'not_found', valueBytes: 0 };

/** A write's lookup (specs.ts), as the item_get event reports it. */
export function lookupSeen(lookup: Lookup): LookupSeen {
  if (lookup.previousValueBytes >= 0) return { status: 'found', valueBytes: lookup.previousValueBytes };
  return lookup.expired ? { status: 'expired', valueBytes: 0 } : notFound;
}

/**
 * A read's lookup, as the item_get event reports it: the newest live value among those the read
 * may see, only expired values, values hidden by a flush deadline (held but not visible), or none.
 */
export function versionsSeen(held: readonly Version[], visible: readonly Version[], nowMs: number): LookupSeen {
  const latest = latestLive(visible, nowMs);
  if (latest) return { status: 'found', valueBytes: latest.value.length };
  if (holdsOnlyExpired(visible, nowMs)) return { status: 'expired', valueBytes: 0 };
  if (visible.length < held.length && held.some((version) => isLive(version, nowMs))) return { status: 'flushed', valueBytes: 0 };
  return notFound;
}

const storeStatuses: Readonly<Record<StoreOutcome, StoreStatus>> = {
  STORED: 'stored',
  NOT_STORED: 'not_stored',
  EXISTS: 'exists',
  NOT_FOUND: 'not_found',
};

/**
 * kai does not know which connection a dispatched command came from; memcached names the client's
 * file descriptor here, and kai writes 0 (docs/protocol.md, *watch*).
 */
const unknownClient = 0;

export class KeyActivity {
  constructor(
    readonly prefixes: PrefixStatistics,
    readonly watchers: Watchers,
  ) {}

  /** Whether anything listens: when not, the dispatcher need not work out what a lookup found. */
  get listening(): boolean {
    return this.prefixes.enabled || this.watchers.count > 0;
  }

  /** A key a get, gets, gat or gats looked up. */
  read(key: Buffer, seen: LookupSeen): void {
    this.prefixes.recordGet(key, seen.status === 'found');
    this.fetched(key, seen);
  }

  /** A key another command looked up before acting on it (touch, incr, decr, delete). */
  lookedUp(key: Buffer, seen: LookupSeen): void {
    this.fetched(key, seen);
  }

  /**
   * A storage command received for `key`, before it runs: memcached counts it for its prefix on
   * receipt, so a value refused for its size, or a store that fails, counts too.
   */
  storeReceived(key: Buffer): void {
    this.prefixes.recordSet(key);
  }

  /** A delete received for `key`, before it runs, counted as memcached counts it. */
  deleteReceived(key: Buffer): void {
    this.prefixes.recordDelete(key);
  }

  /** A storage command's lookup of its key and its outcome; `valueBytes`: the value it made. */
  stored(key: Buffer, mode: StorageMode, seen: LookupSeen, outcome: StoreOutcome, expiresAtMs: number, valueBytes: number): void {
    this.fetched(key, seen);
    this.watchers.publish('mutations', (stamp) =>
      itemStoreLine(stamp, {
        key,
        status: storeStatuses[outcome],
        command: mode,
        ttlSeconds: expiresAtMs === 0 ? 0 : Math.max(0, Math.round((expiresAtMs - stamp.nowMs) / 1000)),
        slabClass: itemSlabClass,
        clientId: unknownClient,
        valueBytes,
      }),
    );
  }

  private fetched(key: Buffer, seen: LookupSeen): void {
    this.watchers.publish('fetchers', (stamp) =>
      itemGetLine(stamp, {
        key,
        status: seen.status,
        slabClass: seen.status === 'found' ? itemSlabClass : 0,
        clientId: unknownClient,
        valueBytes: seen.valueBytes,
      }),
    );
  }
}
