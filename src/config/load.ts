/**
 * Builds a node's Settings: defaults, overridden by a config file, overridden by flags. Every
 * value is checked here, before anything starts, so a bad setting is one clear line and never a
 * half-started node. docs/configuration.md describes each setting and rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AuthFileError, readAuthFile } from '../auth/auth-file';
import { ClusterSecretError, readClusterSecret } from '../auth/cluster-secret';
import { readTlsMaterial, TlsMaterialError, type TlsMaterial } from '../auth/tls-material';
import { seedAddressProblem } from '../membership';
import { ConfigError, oneLineMessage, settingFields, settingNames, type RawSetting, type SettingName } from './fields';
import { defaultSettings, type Settings } from './settings';

export { ConfigError } from './fields';

/** The config file looked for in the current directory when no `--config` is given. */
export const defaultConfigFileName = 'kai.config.json';

/** Flag values: text as typed on the command line, or already typed values from code. */
export type SettingsFlags = { readonly [K in SettingName]?: Settings[K] | string };

export interface LoadOptions {
  /** `--config <file>`: must exist. Without it, ./kai.config.json is read when present. */
  readonly configFile?: string;
  /** Where relative paths and ./kai.config.json are resolved; the process's cwd by default. */
  readonly cwd?: string;
}

/** Fails with ConfigError on any bad value; creates the data directory when missing. */
export function loadSettings(flags: SettingsFlags, options: LoadOptions = {}): Settings {
  const cwd = options.cwd ?? process.cwd();
  const fileValues = readConfigFile(options.configFile, cwd);
  const resolved: Partial<Record<SettingName, unknown>> = {};
  for (const name of settingNames) resolved[name] = resolveSetting(name, flags, fileValues);
  // Every name was resolved by its own field's parser just above.
  const merged = resolved as Settings;
  const settings: Settings = {
    ...merged,
    dataDir: path.resolve(cwd, merged.dataDir),
    logFile: merged.logFile === undefined ? undefined : path.resolve(cwd, merged.logFile),
    authFile: merged.authFile === undefined ? undefined : path.resolve(cwd, merged.authFile),
    clusterSecretFile: resolvedPath(cwd, merged.clusterSecretFile),
    tlsCertFile: resolvedPath(cwd, merged.tlsCertFile),
    tlsKeyFile: resolvedPath(cwd, merged.tlsKeyFile),
    tlsCaFile: resolvedPath(cwd, merged.tlsCaFile),
  };
  checkQuorums(settings);
  checkPortsDiffer(settings);
  checkIdDialable(settings);
  prepareDataDir(settings.dataDir);
  if (settings.logFile !== undefined) checkLogFileWritable(settings.logFile);
  if (settings.authFile !== undefined) checkAuthFile(settings.authFile);
  if (settings.clusterSecretFile !== undefined) clusterSecretOrConfigError(settings.clusterSecretFile);
  nodeTlsMaterial(settings);
  return settings;
}

function resolvedPath(cwd: string, file: string | undefined): string | undefined {
  return file === undefined ? undefined : path.resolve(cwd, file);
}

/**
 * The TLS files a node's settings name, read and checked, or undefined with `tls` none. Every
 * rule is a settings error: a certificate without its key, internal TLS without a CA to check
 * peers against, client certificates asked for without a CA to check them against.
 */
export function nodeTlsMaterial(settings: Settings): TlsMaterial | undefined {
  const { tls, tlsCertFile, tlsKeyFile, tlsCaFile, tlsClientCertificates } = settings;
  if (tls === 'none') return undefined;
  if (tlsCertFile === undefined || tlsKeyFile === undefined) throw new ConfigError(`tls ${tls}: needs tls_cert_file and tls_key_file (--tls-cert, --tls-key)`);
  if ((tls === 'internal' || tls === 'all') && tlsCaFile === undefined) {
    throw new ConfigError(`tls ${tls}: needs tls_ca_file (--tls-ca), the CA peers' certificates are checked against`);
  }
  if (tlsClientCertificates !== 'none' && tlsCaFile === undefined) {
    throw new ConfigError(`tls_client_certificates ${tlsClientCertificates}: needs tls_ca_file (--tls-ca) to check them against`);
  }
  return tlsMaterialOrConfigError(tlsCertFile, tlsKeyFile, tlsCaFile);
}

function tlsMaterialOrConfigError(certFile: string, keyFile: string, caFile: string | undefined): TlsMaterial {
  try {
    return readTlsMaterial({ certFile, keyFile, caFile });
  } catch (error) {
    if (error instanceof TlsMaterialError) throw new ConfigError(error.message);
    throw error;
  }
}

/**
 * The cluster secret a kai command proves to the node it asks: from its --cluster-secret-file,
 * else from the config file's `cluster_secret_file` (`--config`, or ./kai.config.json when
 * present), else none.
 */
export interface CommandSecurityFlags {
  readonly clusterSecretFile?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
}

/**
 * How a kai command connects to a node's internal API: the cluster secret it proves and the TLS
 * it speaks, each from the command's flags, else from the config file (`--config`, or
 * ./kai.config.json when present), else none. TLS is spoken when the flags give a CA, or the
 * config file's `tls` covers the internal API.
 */
export function commandSecurity(flags: CommandSecurityFlags, options: LoadOptions = {}): { clusterSecret?: Buffer; tls?: TlsMaterial } {
  const cwd = options.cwd ?? process.cwd();
  const fromFile = fileSettings(options.configFile, cwd);
  const secretFile = flags.clusterSecretFile ?? fromFile('clusterSecretFile');
  const clusterSecret = secretFile === undefined ? undefined : clusterSecretOrConfigError(path.resolve(cwd, secretFile));
  const fileTls = fromFile('tls');
  const caFile = flags.tlsCa ?? (fileTls === 'internal' || fileTls === 'all' ? fromFile('tlsCaFile') : undefined);
  if (caFile === undefined) return { clusterSecret };
  const certFile = flags.tlsCert ?? fromFile('tlsCertFile');
  const keyFile = flags.tlsKey ?? fromFile('tlsKeyFile');
  if (certFile === undefined || keyFile === undefined) {
    throw new ConfigError('TLS to a node needs a certificate and key signed by its CA (--tls-cert, --tls-key)');
  }
  return { clusterSecret, tls: tlsMaterialOrConfigError(path.resolve(cwd, certFile), path.resolve(cwd, keyFile), path.resolve(cwd, caFile)) };
}

/** The node a config file describes, as a command on its machine reaches it. */
export interface LocalNode {
  /** host:port of its internal API, where this machine dials it. */
  readonly address: string;
  /** The config file the address came from; undefined when there is none and it is the default. */
  readonly configFile: string | undefined;
}

/**
 * The internal API address of the node that `kai start` with the same config file (`--config`,
 * else ./kai.config.json when present, else the defaults) runs on this machine: where it listens
 * (`internal_host`, else `hostname`), dialled on loopback when that is every interface. Reads the
 * file only: nothing is created or checked beyond the three settings it needs.
 */
export function localNodeAddress(options: LoadOptions = {}): LocalNode {
  const cwd = options.cwd ?? process.cwd();
  const value = fileSettings(options.configFile, cwd);
  const configFile = configFileUsed(options.configFile, cwd);
  const port = value('port');
  if (port === 0) throw new ConfigError(`${configFile}: "port" is 0 (a free port, known only to the node): name the node with --node host:port`);
  const listening = value('internalHost') ?? value('hostname');
  const host = listening === '0.0.0.0' ? '127.0.0.1' : listening === '::' ? '::1' : listening;
  return { address: `${host}:${port}`, configFile };
}

/**
 * The data dir `kai start` with the same config file uses: the file's `data_dir`, else the
 * default, resolved against the working directory as `kai start` resolves it.
 */
export function configuredDataDir(options: LoadOptions = {}): string {
  const cwd = options.cwd ?? process.cwd();
  return path.resolve(cwd, fileSettings(options.configFile, cwd)('dataDir'));
}

/** A reader of single settings from the config file a command reads, each checked, else its default. */
function fileSettings(explicitFile: string | undefined, cwd: string): <K extends SettingName>(name: K) => Settings[K] {
  const file = readConfigFile(explicitFile, cwd);
  return <K extends SettingName>(name: K): Settings[K] => {
    const raw = file[name];
    const parsed = raw === undefined ? undefined : settingFields[name].parse(raw);
    return (parsed ?? defaultSettings[name]) as Settings[K];
  };
}

/** The config file a command reads, or undefined when it reads none. */
function configFileUsed(explicitFile: string | undefined, cwd: string): string | undefined {
  if (explicitFile !== undefined) return path.resolve(cwd, explicitFile);
  const discovered = path.join(cwd, defaultConfigFileName);
  return fs.existsSync(discovered) ? discovered : undefined;
}

function clusterSecretOrConfigError(file: string): Buffer {
  try {
    return readClusterSecret(file);
  } catch (error) {
    if (error instanceof ClusterSecretError) throw new ConfigError(error.message);
    throw error;
  }
}

/** Values read from a config file, by setting name, each with its origin for messages. */
type FileValues = Partial<Record<SettingName, RawSetting>>;

function resolveSetting<K extends SettingName>(name: K, flags: SettingsFlags, fileValues: FileValues): Settings[K] {
  const field = settingFields[name];
  const flagValue = flags[name];
  if (flagValue !== undefined) {
    const flagName = field.flag.split(' ')[0];
    return field.parse({ value: flagValue, origin: flagName, fromFlag: true });
  }
  const fileValue = fileValues[name];
  if (fileValue !== undefined) return field.parse(fileValue);
  return defaultSettings[name];
}

function readConfigFile(explicitFile: string | undefined, cwd: string): FileValues {
  const file = configFileUsed(explicitFile, cwd);
  return file === undefined ? {} : parseConfigFile(file);
}

function parseConfigFile(file: string): FileValues {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${file}: ${oneLineMessage(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: malformed JSON: ${oneLineMessage(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${file}: must hold a JSON object of settings`);
  }
  return fileValuesOf(file, parsed as Record<string, unknown>);
}

const fieldsByFileKey = new Map(settingNames.map((name) => [settingFields[name].fileKey, name]));

function fileValuesOf(file: string, object: Record<string, unknown>): FileValues {
  const values: FileValues = {};
  for (const [key, value] of Object.entries(object)) {
    const name = fieldsByFileKey.get(key);
    if (name === undefined) {
      const known = [...fieldsByFileKey.keys()].join(', ');
      throw new ConfigError(`${file}: unknown key ${JSON.stringify(key)} (known keys: ${known})`);
    }
    values[name] = { value, origin: `${file}: "${key}"`, fromFlag: false };
  }
  return values;
}

function checkQuorums(settings: Settings): void {
  const { n, r, w } = settings;
  if (r > n) throw new ConfigError(`r (${r}) must not be greater than n (${n}): a read cannot wait for more replicas than exist`);
  if (w > n) throw new ConfigError(`w (${w}) must not be greater than n (${n}): a write cannot wait for more replicas than exist`);
}

function checkPortsDiffer(settings: Settings): void {
  if (settings.port !== 0 && settings.port === settings.memcachePort) {
    throw new ConfigError(`port and memcache_port must differ, both are ${settings.port}`);
  }
  const { adminPort } = settings;
  if (adminPort === undefined || adminPort === 0) return;
  if (adminPort === settings.port) throw new ConfigError(`admin_port and port must differ, both are ${adminPort}`);
  if (adminPort === settings.memcachePort) throw new ConfigError(`admin_port and memcache_port must differ, both are ${adminPort}`);
}

/**
 * A node's id is the address peers dial (`advertise_address`, else `hostname`, with `port`), and
 * peers refuse one they cannot dial: a node listening on every interface (0.0.0.0) must say which
 * address the others reach it by.
 */
function checkIdDialable(settings: Settings): void {
  const host = settings.advertiseAddress ?? settings.hostname;
  // Port 0 is bound to a real port at start; any port checks the host alike.
  const problem = seedAddressProblem(`${host}:${settings.port === 0 ? 1 : settings.port}`);
  if (problem === undefined) return;
  const named = settings.advertiseAddress === undefined ? `hostname ${host}` : `advertise_address ${host}`;
  throw new ConfigError(
    `${named} cannot be this node's id, which other nodes dial: ${problem}; set --advertise-address to the address they reach it by`,
  );
}

/** Creates the directory if missing and proves it writable by creating and removing a file. */
export function prepareDataDir(dataDir: string): void {
  try {
    fs.mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw new ConfigError(`data dir ${dataDir} cannot be created: ${oneLineMessage(error)}`);
  }
  if (!fs.statSync(dataDir).isDirectory()) throw new ConfigError(`data dir ${dataDir} is not a directory`);
  const probeFile = path.join(dataDir, `.write-probe-${process.pid}`);
  try {
    fs.writeFileSync(probeFile, '');
    fs.unlinkSync(probeFile);
  } catch (error) {
    throw new ConfigError(`data dir ${dataDir} is not writable: ${oneLineMessage(error)}`);
  }
}

/** Reads and parses the auth file, so a node never starts with one it would refuse. */
function checkAuthFile(authFile: string): void {
  try {
    readAuthFile(authFile);
  } catch (error) {
    if (error instanceof AuthFileError) throw new ConfigError(error.message);
    throw error;
  }
}

/** Opening for append creates the file but never truncates an existing log. */
function checkLogFileWritable(logFile: string): void {
  try {
    fs.closeSync(fs.openSync(logFile, 'a'));
  } catch (error) {
    throw new ConfigError(`log file ${logFile} cannot be opened for writing: ${oneLineMessage(error)}`);
  }
}
