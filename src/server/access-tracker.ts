/**
 * What memcached keeps of an item's reads, for the meta `h` and `l` flags and `me`: whether it
 * has been read since it was written, and when it was last read or written. These are facts about
 * a cache's traffic, not data, so kai keeps them in memory on the node the clients talk to, for
 * the keys read most recently (docs/protocol.md). An item is known by the write time of the
 * version read, so a new write starts it afresh wherever it was made.
 */

/** Keys whose reads are remembered, at most; the least recently read are forgotten first. */
export const trackedKeysMax = 65_536;

interface Access {
  readonly writtenAtMs: number;
  readonly fetched: boolean;
  readonly lastAccessMs: number;
}

export interface AccessFacts {
  /** Read since it was written (memcached's ITEM_FETCHED). */
  readonly fetched: boolean;
  /** Last read, or when written if never read since (unix ms). */
  readonly lastAccessMs: number;
}

export class AccessTracker {
  private readonly accesses = new Map<string, Access>();

  constructor(private readonly keysMax = trackedKeysMax) {}

  /** What is known of the item written at `writtenAtMs` under `key`. */
  lookup(key: Buffer, writtenAtMs: number): AccessFacts {
    const access = this.accesses.get(key.toString('latin1'));
    if (!access || access.writtenAtMs !== writtenAtMs) return { fetched: false, lastAccessMs: writtenAtMs };
    return access;
  }

  /** The item was read now. */
  recordRead(key: Buffer, writtenAtMs: number, nowMs: number): void {
    this.remember(key, { writtenAtMs, fetched: true, lastAccessMs: nowMs });
  }

  /** The number of keys remembered. */
  get size(): number {
    return this.accesses.size;
  }

  private remember(key: Buffer, access: Access): void {
    const name = key.toString('latin1');
    // Deleted first so the key moves to the end: the map's order is the order of last access.
    this.accesses.delete(name);
    this.accesses.set(name, access);
    if (this.accesses.size > this.keysMax) {
      const oldest = this.accesses.keys().next();
      if (!oldest.done) this.accesses.delete(oldest.value);
    }
  }
}
