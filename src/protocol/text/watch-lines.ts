/**
 * The lines a `watch` connection receives, in memcached 1.6's words (its logger.c): one per event,
 * `ts=<seconds>.<microseconds> gid=<n> type=<event> ...`, ended by a bare newline. Pure: the
 * caller gives the time, the sequence number and the event.
 */
import { uriEncode } from './uri-encode';

/** What a lookup found, as memcached's item_get event says it. */
export type LookupStatus = 'not_found' | 'found' | 'flushed' | 'expired';
/** How a storage command ended, as memcached's item_store event says it. */
export type StoreStatus = 'not_stored' | 'stored' | 'exists' | 'not_found' | 'too_large' | 'no_memory';

/** Fields every event line starts with. */
export interface EventStamp {
  /** Unix time in ms. */
  readonly nowMs: number;
  /** The event's sequence number among those logged, memcached's gid. */
  readonly gid: number;
}

/**
 * memcached prints the microseconds without padding them (`%d`), so 5 µs past a second reads
 * `.5`; kept so, since tools split on the fields rather than read the number.
 */
function stampOf(stamp: EventStamp): string {
  const seconds = Math.floor(stamp.nowMs / 1000);
  const microseconds = Math.floor((stamp.nowMs - seconds * 1000) * 1000);
  return `ts=${seconds}.${microseconds} gid=${stamp.gid}`;
}

export interface ItemGetEvent {
  readonly key: Buffer;
  readonly status: LookupStatus;
  /** memcached's slab class of the item found, 0 when none was. */
  readonly slabClass: number;
  /** The client connection's number (memcached's file descriptor). */
  readonly clientId: number;
  /** Bytes of the value found; 0 when none was. */
  readonly valueBytes: number;
}

export function itemGetLine(stamp: EventStamp, event: ItemGetEvent): string {
  return (
    `${stampOf(stamp)} type=item_get key=${uriEncode(event.key)} status=${event.status} ` +
    `clsid=${event.slabClass} cfd=${event.clientId} size=${event.valueBytes}\n`
  );
}

export interface ItemStoreEvent {
  readonly key: Buffer;
  readonly status: StoreStatus;
  /** set, add, replace, append, prepend or cas. */
  readonly command: string;
  /** Seconds the stored value has left to live; 0 when it never expires. */
  readonly ttlSeconds: number;
  readonly slabClass: number;
  readonly clientId: number;
  /** Bytes of the value the command made (for append and prepend, the whole value). */
  readonly valueBytes: number;
}

export function itemStoreLine(stamp: EventStamp, event: ItemStoreEvent): string {
  return (
    `${stampOf(stamp)} type=item_store key=${uriEncode(event.key)} status=${event.status} cmd=${event.command} ` +
    `ttl=${event.ttlSeconds} clsid=${event.slabClass} cfd=${event.clientId} size=${event.valueBytes}\n`
  );
}

/** Written before the next line a watcher gets after it fell behind and lines were dropped. */
export function skippedLine(skipped: number): string {
  return `skipped=${skipped}\n`;
}

/** The longest skipped notice, kept free in a watcher's buffer as memcached keeps room for it. */
export const skippedLineBytesMax = 128;
