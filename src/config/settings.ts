/** Every setting of a kai node, with its default. docs/configuration.md describes each. */
/** What an acknowledged write survives (Settings.durability). */
export type Durability = 'process' | 'power';
export const durabilities: readonly Durability[] = ['process', 'power'];
/** Which ports speak TLS (Settings.tls). */
export type TlsPorts = 'none' | 'memcache' | 'internal' | 'all';
export const tlsPortChoices: readonly TlsPorts[] = ['none', 'memcache', 'internal', 'all'];
/** Whether the memcache port asks clients for certificates (memcached's ssl_verify_mode 0, 1, 2). */
export type TlsClientCertificates = 'none' | 'request' | 'require';
export const tlsClientCertificateChoices: readonly TlsClientCertificates[] = ['none', 'request', 'require'];

export interface Settings {
  /**
   * Where both ports listen unless `memcacheHost` or `internalHost` say otherwise, and the name
   * other nodes reach this node by unless `advertiseAddress` names another.
   */
  readonly hostname: string;
  /** Internal API port (msgpack over TCP). */
  readonly port: number;
  /** memcache protocol port (text and binary). */
  readonly memcachePort: number;
  /** Interface the memcache port listens on; `hostname` when absent. */
  readonly memcacheHost: string | undefined;
  /** Interface the internal API listens on; `hostname` when absent. */
  readonly internalHost: string | undefined;
  /**
   * Port of the admin HTTP server (/metrics, /health, /ready, /status); absent, there is none.
   * 0 picks a free port, as for the other ports.
   */
  readonly adminPort: number | undefined;
  /** Interface the admin HTTP server listens on: the loopback by default, so it is not exposed. */
  readonly adminHost: string;
  /**
   * The address other nodes dial this node's internal API at, and so the host of its id
   * (`<advertiseAddress>:<port>`); `hostname` when absent. It differs from where the node listens
   * behind NAT or in a container, where the address peers know is not an interface of the node.
   */
  readonly advertiseAddress: string | undefined;
  readonly dataDir: string;
  /** Replicas per key, read quorum, write quorum. */
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly buckets: number;
  /** Internal API addresses (host:port) of nodes to join through at start. */
  readonly seeds: readonly string[];
  /** Failure domain (rack, availability zone); replicas spread over zones. '' is the default zone. */
  readonly zone: string;
  /** Share of the ring relative to other nodes: scales this node's virtual nodes. */
  readonly weight: number;
  /** How often the node gossips its member list with a random peer. */
  readonly gossipIntervalMs: number;
  /** Largest value accepted, in bytes (memcached's -I). */
  readonly maxItemSize: number;
  /** Bytes of decoded items kept in memory so reads skip SQLite; 0 disables the cache. */
  readonly cacheSize: number;
  /** Client connections accepted at once (memcached's -c). */
  readonly maxConnections: number;
  /**
   * Client connections idle longer than this are closed (memcached's -o idle_timeout, in ms
   * here); 0 never closes them.
   */
  readonly idleTimeoutMs: number;
  /**
   * Bytes of partly received client requests held at once over all client connections, beyond a
   * small allowance each; past it, connections that would buffer more are not read.
   */
  readonly receiveBufferBytesMax: number;
  /**
   * What an acknowledged write survives: 'process', a crash or kill -9 of the node (SQLite's WAL
   * written, synchronous=NORMAL); 'power', also power loss or an OS crash (fsynced before the
   * reply, synchronous=FULL).
   */
  readonly durability: Durability;
  /** How concurrent writes to a key are kept: all as siblings, or only the latest (last write wins). */
  readonly conflictResolution: 'siblings' | 'lww';
  /** Siblings kept per key at most; past it the oldest by write time are dropped. */
  readonly siblingsMax: number;
  /** How long a dead record (tombstone, expired value) is kept at least before it may be reaped. */
  readonly reapGraceMs: number;
  /** How often a node starts a Merkle exchange with its next peer; 0 only when a peer comes back. */
  readonly antiEntropyIntervalMs: number;
  /** Keys anti-entropy reconciles per second at most. */
  readonly antiEntropyKeysPerSecond: number;
  /** Bytes of versions anti-entropy moves per second at most. */
  readonly antiEntropyBytesPerSecond: number;
  /** Hinted copies handed off per second at most. */
  readonly handoffKeysPerSecond: number;
  /** Bytes of hinted copies handed off per second at most. */
  readonly handoffBytesPerSecond: number;
  /** Hints kept for one down node at most; past it, the node refuses to stand in for it. */
  readonly hintsPerTargetMax: number;
  /** Bytes of hinted copies kept for one down node at most. */
  readonly hintBytesPerTargetMax: number;
  /** Read repairs started per second at most. */
  readonly readRepairsPerSecond: number;
  /**
   * File of `user:password` lines (memcached's -Y format) clients must authenticate against;
   * absent, every client is trusted. Read at start and again on SIGHUP.
   */
  readonly authFile: string | undefined;
  /**
   * File holding the secret every node of the cluster (and every kai command) proves on each
   * internal API connection; absent, the internal API trusts whoever reaches it.
   */
  readonly clusterSecretFile: string | undefined;
  /** Which ports speak TLS; the internal API's TLS verifies peers both ways against `tlsCaFile`. */
  readonly tls: TlsPorts;
  /** PEM certificate chain this node presents (memcached's ssl_chain_cert). */
  readonly tlsCertFile: string | undefined;
  /** PEM private key of that certificate (memcached's ssl_key). */
  readonly tlsKeyFile: string | undefined;
  /** PEM certificates of the CAs peers' and clients' certificates must chain to (memcached's ssl_ca_cert). */
  readonly tlsCaFile: string | undefined;
  /** Whether memcache clients must present a certificate (memcached's ssl_verify_mode). */
  readonly tlsClientCertificates: TlsClientCertificates;
  /** Log destination; stdout when absent. */
  readonly logFile: string | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * How long a stop (SIGTERM, SIGINT, after `kai leave`) may take in all: past it the process
   * exits anyway, whatever clients, peers or disks are doing, and says so in the log.
   */
  readonly stopTimeoutMs: number;
}

export const defaultSettings: Settings = {
  hostname: '127.0.0.1',
  port: 11011,
  memcachePort: 11211,
  memcacheHost: undefined,
  internalHost: undefined,
  adminPort: undefined,
  adminHost: '127.0.0.1',
  advertiseAddress: undefined,
  dataDir: './data',
  n: 3,
  r: 2,
  w: 2,
  buckets: 1024,
  seeds: [],
  zone: '',
  weight: 1,
  gossipIntervalMs: 1_000,
  maxItemSize: 1024 * 1024,
  cacheSize: 64 * 1024 * 1024,
  maxConnections: 1024,
  idleTimeoutMs: 0,
  receiveBufferBytesMax: 64 * 1024 * 1024,
  durability: 'process',
  conflictResolution: 'siblings',
  siblingsMax: 25,
  reapGraceMs: 60 * 60 * 1000,
  antiEntropyIntervalMs: 10_000,
  antiEntropyKeysPerSecond: 5000,
  antiEntropyBytesPerSecond: 32 * 1024 * 1024,
  handoffKeysPerSecond: 5000,
  handoffBytesPerSecond: 32 * 1024 * 1024,
  hintsPerTargetMax: 1_000_000,
  hintBytesPerTargetMax: 1024 * 1024 * 1024,
  readRepairsPerSecond: 1000,
  authFile: undefined,
  clusterSecretFile: undefined,
  tls: 'none',
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  tlsCaFile: undefined,
  tlsClientCertificates: 'none',
  logFile: undefined,
  logLevel: 'info',
  stopTimeoutMs: 15_000,
};
