/**
 * One table describing every setting: its config file key, its command line flag, its help text
 * and how a raw value is checked. The loader, the command line and docs/configuration.md all
 * follow this table, so a setting cannot be added to one and forgotten in another.
 */
import { downAfterRounds } from '../gossip';
import { memberWeightMax, zoneLengthMax } from '../membership';
import { conflictResolutions, siblingsMaxLimit } from '../coordinator/siblings';
import { defaultSettings, durabilities, tlsClientCertificateChoices, tlsPortChoices, type Settings } from './settings';

export type SettingName = keyof Settings;
export type LogLevel = Settings['logLevel'];

export const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Bounds of every numeric setting. Each exists so a typo cannot ask for an absurd resource. */
export const settingLimits = {
  portMax: 65535,
  /** More replicas than this multiplies every write for no durability a cluster can use. */
  replicasMax: 16,
  /** Buckets are a power of two so they split the 32-bit hash space into equal ranges. */
  bucketsMax: 65536,
  /** memcached's -I accepts 1 KiB to 1 GiB; kai keeps the same bounds. */
  itemSizeBytesMin: 1024,
  itemSizeBytesMax: 1024 * 1024 * 1024,
  connectionsMax: 65536,
  /** An idle timeout under 100 ms would close clients between two requests; over a day it guards nothing. */
  idleTimeoutMsMin: 100,
  idleTimeoutMsMax: 24 * 60 * 60 * 1000,
  /** The receive budget must hold a few requests at the least; past 64 GiB it is a typo. */
  receiveBufferBytesMin: 1024 * 1024,
  receiveBufferBytesMax: 64 * 1024 * 1024 * 1024,
  /** Siblings per key: each may be a whole value, and a record and a message carry them all. */
  siblingsMax: siblingsMaxLimit,
  /** The read cache lives in the node's heap; past this it is a typo, not a plan. */
  cacheBytesMax: 64 * 1024 * 1024 * 1024,
  /** The longest DNS name (RFC 1035). */
  hostnameLengthMax: 253,
  /** A few seeds are enough to join: gossip finds the rest. */
  seedsMax: 64,
  zoneLengthMax,
  /** Weights below this would give a node almost no share of the ring; above, too much of it. */
  weightMin: 0.1,
  weightMax: memberWeightMax,
  /** Faster gossip than this is network noise; slower makes failure detection take minutes. */
  gossipIntervalMsMin: 10,
  gossipIntervalMsMax: 60_000,
  /** A grace under a second would race the deletes it protects; over 30 days, dead records pile up. */
  reapGraceMsMin: 1000,
  reapGraceMsMax: 30 * 24 * 60 * 60 * 1000,
  /** Exchanges more often than this only repeat one another; a day apart is the slowest useful. */
  antiEntropyIntervalMsMin: 100,
  antiEntropyIntervalMsMax: 24 * 60 * 60 * 1000,
  /** Keys or repairs per second: past this the limit no longer limits anything a node can do. */
  ratePerSecondMax: 10_000_000,
  rateBytesPerSecondMin: 1024,
  rateBytesPerSecondMax: 64 * 1024 * 1024 * 1024,
  hintsPerTargetMax: 100_000_000,
  hintBytesPerTargetMin: 1024 * 1024,
  hintBytesPerTargetMax: 1024 * 1024 * 1024 * 1024,
  /** A stop needs a second or so to end connections and close storage; ten minutes is a hang. */
  stopTimeoutMsMin: 1000,
  stopTimeoutMsMax: 10 * 60 * 1000,
} as const;

/** Thrown for any bad setting; `message` is one line, fit to print after `kai: `. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Error text on one line, as node's messages for files sometimes span several. Checks the shape,
 * not `instanceof Error`, which fails for errors from another realm (a vm context, a test runner).
 */
export function oneLineMessage(error: unknown): string {
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  const text = typeof message === 'string' ? message : String(error);
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

/** A value before checking, with where it came from: a flag (a string) or a config file (JSON). */
export interface RawSetting {
  readonly value: unknown;
  /** Names the source in error messages, e.g. `--port` or `/etc/kai.config.json: "port"`. */
  readonly origin: string;
  readonly fromFlag: boolean;
}

export interface SettingField<K extends SettingName> {
  readonly name: K;
  /** snake_case key in kai.config.json. */
  readonly fileKey: string;
  /** Commander flag with its value placeholder. */
  readonly flag: string;
  readonly description: string;
  /** The default as shown in help and docs. */
  readonly defaultText: string;
  /** Checks a raw value and converts it; throws ConfigError with a one-line message. */
  parse(raw: RawSetting): Settings[K];
}

/** Describes a rejected value briefly: `70000`, `the string "abc"`, `an array`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(truncate(value))}`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return truncate(String(value));
}

function truncate(text: string): string {
  const lengthMax = 40;
  return text.length > lengthMax ? `${text.slice(0, lengthMax)}...` : text;
}

function reject(raw: RawSetting, rule: string): never {
  // A flag is always text, so it is shown as typed rather than as "the string ...".
  const shown = raw.fromFlag && typeof raw.value === 'string' ? truncate(raw.value) || '""' : describeValue(raw.value);
  throw new ConfigError(`${raw.origin}: ${rule}, got ${shown}`);
}

/** Flags arrive as text; config files must hold real JSON numbers. */
function toInteger(raw: RawSetting, rule: string): number {
  const { value } = raw;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (raw.fromFlag && typeof value === 'string' && /^-?\d{1,16}$/.test(value)) return Number(value);
  return reject(raw, rule);
}

function integerIn(min: number, max: number, rule = `must be an integer from ${min} to ${max}`) {
  return (raw: RawSetting): number => {
    const integer = toInteger(raw, rule);
    if (integer < min || integer > max) reject(raw, rule);
    return integer;
  };
}

function parsePort(raw: RawSetting): number {
  return integerIn(0, settingLimits.portMax, `must be a port from 1 to ${settingLimits.portMax} (0 picks a free port)`)(raw);
}

function parseBuckets(raw: RawSetting): number {
  const rule = `must be a power of two from 1 to ${settingLimits.bucketsMax}`;
  const buckets = integerIn(1, settingLimits.bucketsMax, rule)(raw);
  if ((buckets & (buckets - 1)) !== 0) reject(raw, rule);
  return buckets;
}

const byteSuffixes: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses a size in bytes: an integer, or text such as `1048576`, `512k`, `1m`, `1g` (powers of
 * 1024, case-insensitive). Returns undefined when the text is not a size.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d{1,13})([kmg]?)$/i.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * byteSuffixes[match[2].toLowerCase()];
}

/** A byte count given as a number or as a string with an optional k, m or g suffix. */
function byteSizeIn(bytesMin: number, bytesMax: number, rule: string): (raw: RawSetting) => number {
  return (raw) => {
    const { value } = raw;
    const bytes =
      typeof value === 'number' && Number.isSafeInteger(value)
        ? value
        : typeof value === 'string'
          ? parseByteSize(value)
          : undefined;
    if (bytes === undefined || bytes < bytesMin || bytes > bytesMax) return reject(raw, rule);
    return bytes;
  };
}

const parseMaxItemSize = byteSizeIn(
  settingLimits.itemSizeBytesMin,
  settingLimits.itemSizeBytesMax,
  `must be a size from ${settingLimits.itemSizeBytesMin} (1k) to ${settingLimits.itemSizeBytesMax} (1g) bytes`,
);

const parseBytesPerSecond = byteSizeIn(
  settingLimits.rateBytesPerSecondMin,
  settingLimits.rateBytesPerSecondMax,
  `must be a size from ${settingLimits.rateBytesPerSecondMin} (1k) to ${settingLimits.rateBytesPerSecondMax} (64g) bytes`,
);

const parseHintBytes = byteSizeIn(
  settingLimits.hintBytesPerTargetMin,
  settingLimits.hintBytesPerTargetMax,
  `must be a size from ${settingLimits.hintBytesPerTargetMin} (1m) to ${settingLimits.hintBytesPerTargetMax} (1024g) bytes`,
);

/** 0 (never) or a timeout within the bounds. */
function parseIdleTimeout(raw: RawSetting): number {
  const { idleTimeoutMsMin: min, idleTimeoutMsMax: max } = settingLimits;
  const rule = `must be 0 (never) or an integer from ${min} to ${max}`;
  const timeoutMs = integerIn(0, max, rule)(raw);
  if (timeoutMs !== 0 && timeoutMs < min) reject(raw, rule);
  return timeoutMs;
}

const parseReceiveBufferBytes = byteSizeIn(
  settingLimits.receiveBufferBytesMin,
  settingLimits.receiveBufferBytesMax,
  `must be a size from ${settingLimits.receiveBufferBytesMin} (1m) to ${settingLimits.receiveBufferBytesMax} (64g) bytes`,
);

/** 0 (off) or an interval within the bounds. */
function parseAntiEntropyInterval(raw: RawSetting): number {
  const { antiEntropyIntervalMsMin: min, antiEntropyIntervalMsMax: max } = settingLimits;
  const rule = `must be 0 (only when a peer comes back) or an integer from ${min} to ${max}`;
  const interval = integerIn(0, max, rule)(raw);
  if (interval !== 0 && interval < min) reject(raw, rule);
  return interval;
}

const parseCacheSize = byteSizeIn(
  0,
  settingLimits.cacheBytesMax,
  `must be a size from 0 (no cache) to ${settingLimits.cacheBytesMax} (64g) bytes`,
);

const hostnamePattern = /^[A-Za-z0-9.\-:]+$/;

function parseHostname(raw: RawSetting): string {
  const rule = `must be a host name or IP address (letters, digits, '.', '-', ':'; at most ${settingLimits.hostnameLengthMax} characters)`;
  const { value } = raw;
  if (typeof value !== 'string' || value.length > settingLimits.hostnameLengthMax) return reject(raw, rule);
  if (!hostnamePattern.test(value)) return reject(raw, rule);
  return value;
}

function parsePath(raw: RawSetting): string {
  if (typeof raw.value !== 'string' || raw.value.trim() === '') return reject(raw, 'must be a non-empty path');
  return raw.value;
}

/**
 * `parse`, except that null in a config file means the setting's default (none, stdout, the host
 * name), like leaving the key out. A flag always has a value.
 */
function nullableInFile<T>(parse: (raw: RawSetting) => T): (raw: RawSetting) => T | undefined {
  return (raw) => (raw.value === null && !raw.fromFlag ? undefined : parse(raw));
}

const parseOptionalHostname = nullableInFile(parseHostname);
const parseOptionalPort = nullableInFile(parsePort);
const parseOptionalPath = nullableInFile(parsePath);

/** `host:port` with a port from 1 to 65535: where a node's internal API is reached. */
export function checkNodeAddress(text: string): boolean {
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon > settingLimits.hostnameLengthMax) return false;
  const portText = text.slice(colon + 1);
  const port = Number(portText);
  return hostnamePattern.test(text.slice(0, colon)) && /^\d{1,5}$/.test(portText) && port >= 1 && port <= settingLimits.portMax;
}

/** A comma-separated list as a flag, a JSON array of strings in a config file. */
function parseSeeds(raw: RawSetting): readonly string[] {
  const rule = `must be a list of at most ${settingLimits.seedsMax} host:port addresses`;
  const { value } = raw;
  let items: unknown[];
  if (raw.fromFlag && typeof value === 'string') items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
  else if (Array.isArray(value)) items = value;
  else return reject(raw, rule);
  if (items.length > settingLimits.seedsMax) return reject(raw, rule);
  for (const item of items) {
    if (typeof item !== 'string' || !checkNodeAddress(item)) {
      throw new ConfigError(`${raw.origin}: ${rule}, got ${describeValue(item)}`);
    }
  }
  return items as string[];
}

function parseZone(raw: RawSetting): string {
  const rule = `must be at most ${settingLimits.zoneLengthMax} letters, digits, '.', '_' or '-'`;
  const { value } = raw;
  if (typeof value !== 'string' || value.length > settingLimits.zoneLengthMax) return reject(raw, rule);
  if (!/^[A-Za-z0-9._-]*$/.test(value)) return reject(raw, rule);
  return value;
}

function parseWeight(raw: RawSetting): number {
  const { weightMin, weightMax } = settingLimits;
  const rule = `must be a number from ${weightMin} to ${weightMax}`;
  const { value } = raw;
  const decimalText = raw.fromFlag && typeof value === 'string' && /^\d{1,2}(\.\d{1,3})?$/.test(value);
  const weight = typeof value === 'number' ? value : decimalText ? Number(value) : NaN;
  if (!Number.isFinite(weight) || weight < weightMin || weight > weightMax) return reject(raw, rule);
  return weight;
}

/** One of `choices`, as typed. */
function choiceOf<T extends string>(choices: readonly T[]): (raw: RawSetting) => T {
  return (raw) => {
    const choice = choices.find((candidate) => candidate === raw.value);
    if (choice === undefined) return reject(raw, `must be one of ${choices.join(', ')}`);
    return choice;
  };
}




const { replicasMax, connectionsMax } = settingLimits;

export const settingFields: { readonly [K in SettingName]: SettingField<K> } = {
  hostname: {
    name: 'hostname',
    fileKey: 'hostname',
    flag: '--hostname <host>',
    description: 'name or address this node listens on and, without --advertise-address, other nodes reach it by',
    defaultText: defaultSettings.hostname,
    parse: parseHostname,
  },
  port: {
    name: 'port',
    fileKey: 'port',
    flag: '--port <port>',
    description: 'internal API port, for other nodes (0 picks a free port)',
    defaultText: String(defaultSettings.port),
    parse: parsePort,
  },
  memcachePort: {
    name: 'memcachePort',
    fileKey: 'memcache_port',
    flag: '--memcache-port <port>',
    description: 'memcache protocol port, for clients (0 picks a free port)',
    defaultText: String(defaultSettings.memcachePort),
    parse: parsePort,
  },
  memcacheHost: {
    name: 'memcacheHost',
    fileKey: 'memcache_host',
    flag: '--memcache-host <host>',
    description: 'interface the memcache port listens on (0.0.0.0 for every one)',
    defaultText: 'the --hostname',
    parse: parseOptionalHostname,
  },
  internalHost: {
    name: 'internalHost',
    fileKey: 'internal_host',
    flag: '--internal-host <host>',
    description: 'interface the internal API listens on, when other nodes reach --hostname through another',
    defaultText: 'the --hostname',
    parse: parseOptionalHostname,
  },
  adminPort: {
    name: 'adminPort',
    fileKey: 'admin_port',
    flag: '--admin-port <port>',
    description: 'port of the admin HTTP server: /metrics, /health, /ready, /status (0 picks a free port)',
    defaultText: 'none (no admin server)',
    parse: parseOptionalPort,
  },
  adminHost: {
    name: 'adminHost',
    fileKey: 'admin_host',
    flag: '--admin-host <host>',
    description: 'interface the admin HTTP server listens on (0.0.0.0 for every one)',
    defaultText: defaultSettings.adminHost,
    parse: parseHostname,
  },
  advertiseAddress: {
    name: 'advertiseAddress',
    fileKey: 'advertise_address',
    flag: '--advertise-address <host>',
    description: "address other nodes dial this node's internal API at, and the host of its id, when it is not where the node listens (NAT, containers)",
    defaultText: 'the --hostname',
    parse: parseOptionalHostname,
  },
  dataDir: {
    name: 'dataDir',
    fileKey: 'data_dir',
    flag: '--data-dir <dir>',
    description: 'directory of the SQLite files, created if missing',
    defaultText: defaultSettings.dataDir,
    parse: parsePath,
  },
  n: {
    name: 'n',
    fileKey: 'n',
    flag: '--n <count>',
    description: `replicas of each key (1 to ${replicasMax})`,
    defaultText: String(defaultSettings.n),
    parse: integerIn(1, replicasMax),
  },
  r: {
    name: 'r',
    fileKey: 'r',
    flag: '--r <count>',
    description: 'replies a read waits for (1 to N)',
    defaultText: String(defaultSettings.r),
    parse: integerIn(1, replicasMax),
  },
  w: {
    name: 'w',
    fileKey: 'w',
    flag: '--w <count>',
    description: 'acknowledgements a write waits for (1 to N)',
    defaultText: String(defaultSettings.w),
    parse: integerIn(1, replicasMax),
  },
  buckets: {
    name: 'buckets',
    fileKey: 'buckets',
    flag: '--buckets <count>',
    description: `ranges the hash space is split into (a power of two, 1 to ${settingLimits.bucketsMax})`,
    defaultText: String(defaultSettings.buckets),
    parse: parseBuckets,
  },
  seeds: {
    name: 'seeds',
    fileKey: 'seeds',
    flag: '--seed <host:port,...>',
    description: 'internal API addresses of nodes to join through at start, comma-separated',
    defaultText: 'none',
    parse: parseSeeds,
  },
  zone: {
    name: 'zone',
    fileKey: 'zone',
    flag: '--zone <zone>',
    description: "this node's failure domain (rack, availability zone); replicas spread over zones",
    defaultText: "'' (the default zone)",
    parse: parseZone,
  },
  weight: {
    name: 'weight',
    fileKey: 'weight',
    flag: '--weight <number>',
    description: `this node's share of the ring relative to others (${settingLimits.weightMin} to ${settingLimits.weightMax})`,
    defaultText: String(defaultSettings.weight),
    parse: parseWeight,
  },
  gossipIntervalMs: {
    name: 'gossipIntervalMs',
    fileKey: 'gossip_interval_ms',
    flag: '--gossip-interval <ms>',
    description:
      `how often the node gossips with a random peer, in ms (${settingLimits.gossipIntervalMsMin} to ` +
      `${settingLimits.gossipIntervalMsMax}); a peer silent for ${downAfterRounds} intervals is down`,
    defaultText: String(defaultSettings.gossipIntervalMs),
    parse: integerIn(settingLimits.gossipIntervalMsMin, settingLimits.gossipIntervalMsMax),
  },
  maxItemSize: {
    name: 'maxItemSize',
    fileKey: 'max_item_size',
    flag: '--max-item-size <bytes>',
    description: 'largest value accepted, in bytes; suffixes k, m, g allowed (1k to 1g)',
    defaultText: `${defaultSettings.maxItemSize} (1m)`,
    parse: parseMaxItemSize,
  },
  cacheSize: {
    name: 'cacheSize',
    fileKey: 'cache_size',
    flag: '--cache-size <bytes>',
    description: 'memory for recently read and written items, in bytes; suffixes k, m, g allowed (0 disables)',
    defaultText: `${defaultSettings.cacheSize} (64m)`,
    parse: parseCacheSize,
  },
  maxConnections: {
    name: 'maxConnections',
    fileKey: 'max_connections',
    flag: '--max-connections <count>',
    description: `client connections accepted at once (1 to ${connectionsMax})`,
    defaultText: String(defaultSettings.maxConnections),
    parse: integerIn(1, connectionsMax),
  },
  idleTimeoutMs: {
    name: 'idleTimeoutMs',
    fileKey: 'idle_timeout_ms',
    flag: '--idle-timeout <ms>',
    description:
      `close client connections idle this long, in ms, as memcached's idle_timeout (${settingLimits.idleTimeoutMsMin} ` +
      `to ${settingLimits.idleTimeoutMsMax}); 0 never closes them`,
    defaultText: '0 (never)',
    parse: parseIdleTimeout,
  },
  receiveBufferBytesMax: {
    name: 'receiveBufferBytesMax',
    fileKey: 'receive_buffer_bytes_max',
    flag: '--receive-buffer-bytes-max <bytes>',
    description:
      'bytes of partly received client requests held at once over all connections, beyond 16k each; past it, ' +
      'connections that would buffer more wait; suffixes k, m, g allowed (1m to 64g)',
    defaultText: `${defaultSettings.receiveBufferBytesMax} (64m)`,
    parse: parseReceiveBufferBytes,
  },
  durability: {
    name: 'durability',
    fileKey: 'durability',
    flag: '--durability <mode>',
    description: "what an acknowledged write survives: 'process' (a crash or kill -9 of the node) or 'power' (also power loss: fsync before the reply)",
    defaultText: defaultSettings.durability,
    parse: choiceOf(durabilities),
  },
  conflictResolution: {
    name: 'conflictResolution',
    fileKey: 'conflict_resolution',
    flag: '--conflict-resolution <mode>',
    description: "concurrent writes to a key: 'siblings' keeps them all (get answers each), 'lww' keeps the latest",
    defaultText: defaultSettings.conflictResolution,
    parse: choiceOf(conflictResolutions),
  },
  siblingsMax: {
    name: 'siblingsMax',
    fileKey: 'siblings_max',
    flag: '--siblings-max <count>',
    description: `siblings kept per key; past it the oldest by write time are dropped (1 to ${settingLimits.siblingsMax})`,
    defaultText: String(defaultSettings.siblingsMax),
    parse: integerIn(1, settingLimits.siblingsMax),
  },
  reapGraceMs: {
    name: 'reapGraceMs',
    fileKey: 'reap_grace_ms',
    flag: '--reap-grace <ms>',
    description:
      `how long a deleted or expired key is kept at least, in ms, before it is removed once every replica holds ` +
      `its deletion (${settingLimits.reapGraceMsMin} to ${settingLimits.reapGraceMsMax})`,
    defaultText: `${defaultSettings.reapGraceMs} (1 hour)`,
    parse: integerIn(settingLimits.reapGraceMsMin, settingLimits.reapGraceMsMax),
  },
  antiEntropyIntervalMs: {
    name: 'antiEntropyIntervalMs',
    fileKey: 'anti_entropy_interval_ms',
    flag: '--anti-entropy-interval <ms>',
    description:
      `how often the node compares its Merkle trees with its next peer, in ms (${settingLimits.antiEntropyIntervalMsMin} ` +
      `to ${settingLimits.antiEntropyIntervalMsMax}); 0 compares only with a peer that comes back up`,
    defaultText: String(defaultSettings.antiEntropyIntervalMs),
    parse: parseAntiEntropyInterval,
  },
  antiEntropyKeysPerSecond: {
    name: 'antiEntropyKeysPerSecond',
    fileKey: 'anti_entropy_keys_per_second',
    flag: '--anti-entropy-keys-per-second <count>',
    description: `keys anti-entropy reconciles per second at most (1 to ${settingLimits.ratePerSecondMax})`,
    defaultText: String(defaultSettings.antiEntropyKeysPerSecond),
    parse: integerIn(1, settingLimits.ratePerSecondMax),
  },
  antiEntropyBytesPerSecond: {
    name: 'antiEntropyBytesPerSecond',
    fileKey: 'anti_entropy_bytes_per_second',
    flag: '--anti-entropy-bytes-per-second <bytes>',
    description: 'bytes of values anti-entropy moves per second at most; suffixes k, m, g allowed',
    defaultText: `${defaultSettings.antiEntropyBytesPerSecond} (32m)`,
    parse: parseBytesPerSecond,
  },
  handoffKeysPerSecond: {
    name: 'handoffKeysPerSecond',
    fileKey: 'handoff_keys_per_second',
    flag: '--handoff-keys-per-second <count>',
    description: `hinted copies handed to a returning node per second at most (1 to ${settingLimits.ratePerSecondMax})`,
    defaultText: String(defaultSettings.handoffKeysPerSecond),
    parse: integerIn(1, settingLimits.ratePerSecondMax),
  },
  handoffBytesPerSecond: {
    name: 'handoffBytesPerSecond',
    fileKey: 'handoff_bytes_per_second',
    flag: '--handoff-bytes-per-second <bytes>',
    description: 'bytes of hinted copies handed off per second at most; suffixes k, m, g allowed',
    defaultText: `${defaultSettings.handoffBytesPerSecond} (32m)`,
    parse: parseBytesPerSecond,
  },
  hintsPerTargetMax: {
    name: 'hintsPerTargetMax',
    fileKey: 'hints_per_target_max',
    flag: '--hints-per-target-max <count>',
    description: `hinted copies kept for one down node at most; past it this node refuses to stand in for it (1 to ${settingLimits.hintsPerTargetMax})`,
    defaultText: String(defaultSettings.hintsPerTargetMax),
    parse: integerIn(1, settingLimits.hintsPerTargetMax),
  },
  hintBytesPerTargetMax: {
    name: 'hintBytesPerTargetMax',
    fileKey: 'hint_bytes_per_target_max',
    flag: '--hint-bytes-per-target-max <bytes>',
    description: 'bytes of hinted copies kept for one down node at most; suffixes k, m, g allowed (1m to 1024g)',
    defaultText: `${defaultSettings.hintBytesPerTargetMax} (1g)`,
    parse: parseHintBytes,
  },
  readRepairsPerSecond: {
    name: 'readRepairsPerSecond',
    fileKey: 'read_repairs_per_second',
    flag: '--read-repairs-per-second <count>',
    description: `stale replicas repaired by reads per second at most; more are left to anti-entropy (1 to ${settingLimits.ratePerSecondMax})`,
    defaultText: String(defaultSettings.readRepairsPerSecond),
    parse: integerIn(1, settingLimits.ratePerSecondMax),
  },
  authFile: {
    name: 'authFile',
    fileKey: 'auth_file',
    flag: '--auth-file <file>',
    description: "file of 'user:password' lines (memcached's -Y format) clients must authenticate with; reloaded on SIGHUP",
    defaultText: 'none (no authentication)',
    parse: parseOptionalPath,
  },
  clusterSecretFile: {
    name: 'clusterSecretFile',
    fileKey: 'cluster_secret_file',
    flag: '--cluster-secret-file <file>',
    description: 'file holding the secret every node and kai command proves on internal API connections',
    defaultText: 'none (the internal API trusts whoever reaches it)',
    parse: parseOptionalPath,
  },
  tls: {
    name: 'tls',
    fileKey: 'tls',
    flag: '--tls <ports>',
    description: `ports that speak TLS: ${tlsPortChoices.join(', ')} (needs --tls-cert and --tls-key; internal needs --tls-ca)`,
    defaultText: defaultSettings.tls,
    parse: choiceOf(tlsPortChoices),
  },
  tlsCertFile: {
    name: 'tlsCertFile',
    fileKey: 'tls_cert_file',
    flag: '--tls-cert <file>',
    description: "PEM certificate chain the node presents (memcached's ssl_chain_cert)",
    defaultText: 'none',
    parse: parseOptionalPath,
  },
  tlsKeyFile: {
    name: 'tlsKeyFile',
    fileKey: 'tls_key_file',
    flag: '--tls-key <file>',
    description: "PEM private key of --tls-cert (memcached's ssl_key)",
    defaultText: 'none',
    parse: parseOptionalPath,
  },
  tlsCaFile: {
    name: 'tlsCaFile',
    fileKey: 'tls_ca_file',
    flag: '--tls-ca <file>',
    description: "PEM CA certificates peers and client certificates must chain to (memcached's ssl_ca_cert)",
    defaultText: 'none',
    parse: parseOptionalPath,
  },
  tlsClientCertificates: {
    name: 'tlsClientCertificates',
    fileKey: 'tls_client_certificates',
    flag: '--tls-client-certificates <mode>',
    description: `whether memcache clients present a certificate checked against --tls-ca: ${tlsClientCertificateChoices.join(', ')} (memcached's ssl_verify_mode)`,
    defaultText: defaultSettings.tlsClientCertificates,
    parse: choiceOf(tlsClientCertificateChoices),
  },
  logFile: {
    name: 'logFile',
    fileKey: 'log_file',
    flag: '--log-file <file>',
    description: 'file to append JSON log lines to',
    defaultText: 'stdout',
    parse: parseOptionalPath,
  },
  logLevel: {
    name: 'logLevel',
    fileKey: 'log_level',
    flag: '--log-level <level>',
    description: `least severe level logged: ${logLevels.join(', ')}`,
    defaultText: defaultSettings.logLevel,
    parse: choiceOf(logLevels),
  },
  stopTimeoutMs: {
    name: 'stopTimeoutMs',
    fileKey: 'stop_timeout_ms',
    flag: '--stop-timeout <ms>',
    description:
      `how long a stop may take in all, in ms (${settingLimits.stopTimeoutMsMin} to ${settingLimits.stopTimeoutMsMax}); ` +
      'past it the process exits with status 1 whatever clients, peers or disks do',
    defaultText: String(defaultSettings.stopTimeoutMs),
    parse: integerIn(settingLimits.stopTimeoutMsMin, settingLimits.stopTimeoutMsMax),
  },
};

export const settingNames = Object.keys(settingFields) as SettingName[];
