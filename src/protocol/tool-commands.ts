/**
 * memcached's tooling commands that turn a text connection's reply into a stream: the key dumps
 * (`lru_crawler metadump`, `stats cachedump`) that memcached-tool and libmemcached's memcdump read,
 * and `watch`, after which the connection only streams log lines. The text connection runs them
 * itself (server/text-tools.ts); the dispatcher never sees them.
 */

/** The one slab class kai reports every item in (docs/protocol.md, *memcached's internals*). */
export const itemSlabClass = 1;
/** memcached's MAX_NUMBER_OF_SLAB_CLASSES: class ids at or past it are refused. */
export const slabClassesMax = 64;

/** The event streams a `watch` may ask for, by memcached's names. */
export const watchStreams = [
  'rawcmds',
  'evictions',
  'fetchers',
  'mutations',
  'sysevents',
  'connevents',
  'proxyreqs',
  'proxyevents',
  'proxyuser',
] as const;
export type WatchStream = (typeof watchStreams)[number];

export type ToolCommand =
  /** `lru_crawler metadump all|hash|<class>,<class>...`: one line per key, then END. */
  | { readonly kind: 'metadump'; readonly slabClasses: 'all' | readonly number[] }
  /** `stats cachedump <class> <limit>`: an ITEM line per key of the class, at most `limit` (0: all). */
  | { readonly kind: 'cachedump'; readonly slabClass: number; readonly limit: number }
  /** `watch [streams...]`: the connection streams the node's events from now on. */
  | { readonly kind: 'watch'; readonly streams: readonly WatchStream[] };
