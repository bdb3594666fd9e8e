/** Every setting of a kai node, with its default. docs/configuration.md describes each. */
export interface Settings {
  /** Name other nodes reach this node by; also its node id together with `port`. */
  readonly hostname: string;
  /** Internal API port (msgpack over TCP). */
  readonly port: number;
  /** memcache protocol port (text and binary). */
  readonly memcachePort: number;
  readonly dataDir: string;
  /** Replicas per key, read quorum, write quorum. */
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly buckets: number;
  readonly vnodes: number;
  /** Largest value accepted, in bytes (memcached's -I). */
  readonly maxItemSize: number;
  /** Bytes of decoded items kept in memory so reads skip SQLite; 0 disables the cache. */
  readonly cacheSize: number;
  /** Client connections accepted at once (memcached's -c). */
  readonly maxConnections: number;
  /**
   * File of `user:password` lines (memcached's -Y format) clients must authenticate against;
   * absent, every client is trusted. Read at start and again on SIGHUP.
   */
  readonly authFile: string | undefined;
  /** Log destination; stdout when absent. */
  readonly logFile: string | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const defaultSettings: Settings = {
  hostname: '127.0.0.1',
  port: 11011,
  memcachePort: 11211,
  dataDir: './data',
  n: 3,
  r: 2,
  w: 2,
  buckets: 1024,
  vnodes: 128,
  maxItemSize: 1024 * 1024,
  cacheSize: 64 * 1024 * 1024,
  maxConnections: 1024,
  authFile: undefined,
  logFile: undefined,
  logLevel: 'info',
};
