/**
 * The lines of memcached's key dumps, in its words: `lru_crawler metadump` (memcached's
 * crawler.c, one `key=... exp=... la=... cas=... fetch=... cls=... size=...` line per key, ended by
 * a bare newline) and `stats cachedump` (items.c, `ITEM <key> [<bytes> b; <exp> s]`). Pure.
 */
import { itemSlabClass } from '../tool-commands';
import { uriEncode } from './uri-encode';

/** A key as the dumps show it (listing/ makes these from the records a replica holds). */
export interface DumpedKey {
  readonly key: Buffer;
  /** Unix ms after which the value is gone; 0 for never. */
  readonly expiresAtMs: number;
  /** When the value was written, standing for memcached's last access (unix ms). */
  readonly writtenAtMs: number;
  readonly cas: bigint;
  readonly valueBytes: number;
}

const seconds = (unixMs: number): number => Math.floor(unixMs / 1000);

/**
 * `exp` is -1 for a value that never expires, else a unix time; `la` is the write time, since kai
 * keeps no access time; `fetch` is always `no`, since kai does not track which values were read;
 * `size` counts the key and value bytes, as `stats bytes` does, where memcached adds its item
 * header.
 */
export function metadumpLine(item: DumpedKey): string {
  const exp = item.expiresAtMs === 0 ? -1 : seconds(item.expiresAtMs);
  return (
    `key=${uriEncode(item.key)} exp=${exp} la=${seconds(item.writtenAtMs)} cas=${item.cas} ` +
    `fetch=no cls=${itemSlabClass} size=${item.key.length + item.valueBytes}\n`
  );
}

const space = 0x20;
const carriageReturn = 0x0d;
const newline = 0x0a;

/**
 * Whether a key can be printed raw on a cachedump line: only binary-protocol clients can make keys
 * holding a space or a line end, which would break the line (memcached skips binary keys too).
 */
export function printableInCachedump(key: Buffer): boolean {
  return !key.includes(space) && !key.includes(carriageReturn) && !key.includes(newline);
}

/** `exp` is 0 for a value that never expires, else a unix time. */
export function cachedumpLine(item: DumpedKey): string {
  const exp = item.expiresAtMs === 0 ? 0 : seconds(item.expiresAtMs);
  return `ITEM ${item.key.toString('latin1')} [${item.valueBytes} b; ${exp} s]\r\n`;
}

/** What ends either dump. */
export const dumpEndLine = 'END\r\n';
