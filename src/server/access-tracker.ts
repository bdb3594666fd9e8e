/**
 * What memcached keeps of an item's reads, for the meta `h` and `l` flags and `me`: whether it
 * has been read since it was written, and when it was last read or written. These are facts about
 * a cache's traffic, not data, so kai keeps them in memory on the node the clients talk to, for
 * the keys read most recently (docs/protocol.md). An item is known by the write time of the
 * version read, so a new write starts it afresh wherever it was made.
 */

/** Keys whose reads are remembered, at most; the least recently read are forgotten first. */
export const trackedKeysMax = 65_536;

/** An entry that matches whichever version is read next: its rewrite is still in flight. */
const anyVersion = -1;

export interface AccessEntry {
  /** The version the facts are about, or anyVersion while a rewrite by this node is in flight. */
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

/** What `entry` (taken earlier) says of the version written at `writtenAtMs`. */
export function accessFactsOf(entry: AccessEntry | undefined, writtenAtMs: number): AccessFacts {
  if (!entry || (entry.writtenAtMs !== anyVersion && entry.writtenAtMs !== writtenAtMs)) {
    return { fetched: false, lastAccessMs: writtenAtMs };
  }
  return entry;
}

export class AccessTracker {
  private readonly accesses = new Map<string, AccessEntry>();

  constructor(private readonly keysMax = trackedKeysMax) {}

  /** What is remembered of the key, to judge against the version it turns out to be about. */
  entry(key: Buffer): AccessEntry | undefined {
    return this.accesses.get(key.toString('latin1'));
  }

  /** What is known of the item written at `writtenAtMs` under `key`. */
  lookup(key: Buffer, writtenAtMs: number): AccessFacts {
    return accessFactsOf(this.entry(key), writtenAtMs);
  }

  /** The item was read now. */
  recordRead(key: Buffer, writtenAtMs: number, nowMs: number): void {
    this.remember(key, { writtenAtMs, fetched: true, lastAccessMs: nowMs });
  }

  /**
   * This node starts rewriting the item without making it a new one (a touch, a recache won): until
   * settleRewrite names the version written, what is known carries over to whichever version is
   * read, so commands pipelined behind the rewrite see it as memcached would. `read` records the
   * access too, as a touch counts as one.
   */
  beginRewrite(key: Buffer, read: boolean, nowMs: number): void {
    const known = this.entry(key);
    if (read) this.remember(key, { writtenAtMs: anyVersion, fetched: true, lastAccessMs: nowMs });
    else if (known) this.remember(key, { ...known, writtenAtMs: anyVersion });
  }

  /** The rewrite is done: the facts are about `writtenAtMs` from now on; undefined if nothing was written. */
  settleRewrite(key: Buffer, writtenAtMs: number | undefined): void {
    const name = key.toString('latin1');
    const known = this.accesses.get(name);
    if (!known || known.writtenAtMs !== anyVersion) return;
    if (writtenAtMs === undefined) this.accesses.delete(name);
    else this.accesses.set(name, { ...known, writtenAtMs });
  }

  /** The number of keys remembered. */
  get size(): number {
    return this.accesses.size;
  }

  private remember(key: Buffer, access: AccessEntry): void {
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
