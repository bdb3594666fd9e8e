/**
 * memcached's per-prefix statistics (`stats detail on|off|dump`): while detail is on, every key
 * read, stored or deleted counts toward its prefix, the part of the key before the first ':'. Keys
 * without the delimiter count nowhere, as in memcached. Counts live in memory on the node the client
 * talks to, like the general counters, and `stats reset` clears them.
 */

/** memcached's default prefix delimiter (its -D option). */
export const prefixDelimiter = ':';

/**
 * Prefixes tracked at most. memcached tracks every prefix it meets, without bound; kai counts the
 * first this many and leaves keys of any further prefix uncounted, so a client writing random
 * prefixes cannot grow the table without end. At most 250-byte prefixes, this is about 1 MiB.
 */
export const prefixesTrackedMax = 4096;

const delimiterByte = prefixDelimiter.charCodeAt(0);
const nul = 0x00;

interface PrefixCounts {
  gets: number;
  hits: number;
  sets: number;
  deletes: number;
}

export class PrefixStatistics {
  /** Whether keys are counted now (`stats detail on`); off at start, as in memcached. */
  enabled = false;
  private readonly prefixes = new Map<string, PrefixCounts>();

  constructor(private readonly prefixesMax = prefixesTrackedMax) {}

  /** A key a get (or gat) looked up, and whether it found a value. */
  recordGet(key: Buffer, hit: boolean): void {
    const counts = this.countsOf(key);
    if (!counts) return;
    counts.gets++;
    if (hit) counts.hits++;
  }

  /** A key a storage command named, whether or not it was stored (memcached counts on receipt). */
  recordSet(key: Buffer): void {
    const counts = this.countsOf(key);
    if (counts) counts.sets++;
  }

  /** A key a delete named, whether or not it was there. */
  recordDelete(key: Buffer): void {
    const counts = this.countsOf(key);
    if (counts) counts.deletes++;
  }

  /** `stats detail dump`: one line per prefix, in memcached's words, without line ends. */
  dump(): string[] {
    const lines: string[] = [];
    for (const [prefix, counts] of this.prefixes) {
      lines.push(`PREFIX ${prefix} get ${counts.gets} hit ${counts.hits} set ${counts.sets} del ${counts.deletes}`);
    }
    return lines;
  }

  /** `stats reset` forgets every prefix. */
  clear(): void {
    this.prefixes.clear();
  }

  /**
   * The counts of the key's prefix, created on first sight while there is room. As memcached reads
   * it, a NUL before the delimiter ends the key, so such a key has no prefix.
   */
  private countsOf(key: Buffer): PrefixCounts | undefined {
    if (!this.enabled) return undefined;
    let end = -1;
    for (let index = 0; index < key.length; index++) {
      if (key[index] === nul) return undefined;
      if (key[index] === delimiterByte) {
        end = index;
        break;
      }
    }
    if (end < 0) return undefined;
    const prefix = key.toString('latin1', 0, end);
    let counts = this.prefixes.get(prefix);
    if (counts === undefined) {
      if (this.prefixes.size >= this.prefixesMax) return undefined;
      counts = { gets: 0, hits: 0, sets: 0, deletes: 0 };
      this.prefixes.set(prefix, counts);
    }
    return counts;
  }
}
