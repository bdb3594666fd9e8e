import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseByteSize, settingFields, settingNames } from '../../../src/config/fields';
import { ConfigError, loadSettings, type SettingsFlags } from '../../../src/config/load';
import { defaultSettings } from '../../../src/config/settings';

let cwd: string;

beforeEach(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-config-'));
});

afterEach(() => {
  fs.rmSync(cwd, { recursive: true, force: true });
});

function writeConfig(content: unknown, fileName = 'kai.config.json'): string {
  const file = path.join(cwd, fileName);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The ConfigError message loadSettings fails with, or a failure if it does not throw one. */
function errorOf(flags: SettingsFlags, configFile?: string): string {
  try {
    loadSettings(flags, { cwd, configFile });
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadSettings precedence and discovery', () => {
  test('defaults apply when there is neither config file nor flag', () => {
    // Proves the defaults pass their own validation and paths resolve against cwd.
    const settings = loadSettings({}, { cwd });
    expect(settings).toEqual({ ...defaultSettings, dataDir: path.join(cwd, 'data') });
    expect(fs.statSync(path.join(cwd, 'data')).isDirectory()).toBe(true);
  });

  test('./kai.config.json in the working directory overrides defaults', () => {
    // Proves discovery of the config file in cwd and the snake_case to setting mapping.
    writeConfig({
      hostname: 'node1.example',
      port: 12011,
      memcache_port: 12211,
      data_dir: 'store',
      n: 5,
      r: 3,
      w: 4,
      buckets: 256,
      seeds: ['node2.example:12011', '10.0.0.3:12011'],
      zone: 'rack-2',
      weight: 1.5,
      gossip_interval_ms: 500,
      max_item_size: '2m',
      cache_size: '8m',
      max_connections: 50,
      idle_timeout_ms: 2500,
      receive_buffer_bytes_max: '16m',
      reap_grace_ms: 5000,
      anti_entropy_interval_ms: 0,
      anti_entropy_keys_per_second: 100,
      anti_entropy_bytes_per_second: '1m',
      handoff_keys_per_second: 200,
      handoff_bytes_per_second: 4096,
      hints_per_target_max: 10,
      hint_bytes_per_target_max: '2m',
      read_repairs_per_second: 7,
      log_file: 'kai.log',
      log_level: 'debug',
      stop_timeout_ms: 4000,
    });
    expect(loadSettings({}, { cwd })).toEqual({
      ...defaultSettings,
      hostname: 'node1.example',
      port: 12011,
      memcachePort: 12211,
      dataDir: path.join(cwd, 'store'),
      n: 5,
      r: 3,
      w: 4,
      buckets: 256,
      seeds: ['node2.example:12011', '10.0.0.3:12011'],
      zone: 'rack-2',
      weight: 1.5,
      gossipIntervalMs: 500,
      maxItemSize: 2 * 1024 * 1024,
      cacheSize: 8 * 1024 * 1024,
      reapGraceMs: 5000,
      antiEntropyIntervalMs: 0,
      antiEntropyKeysPerSecond: 100,
      antiEntropyBytesPerSecond: 1024 * 1024,
      handoffKeysPerSecond: 200,
      handoffBytesPerSecond: 4096,
      hintsPerTargetMax: 10,
      hintBytesPerTargetMax: 2 * 1024 * 1024,
      readRepairsPerSecond: 7,
      maxConnections: 50,
      idleTimeoutMs: 2500,
      receiveBufferBytesMax: 16 * 1024 * 1024,
      durability: 'process',
      conflictResolution: 'siblings',
      siblingsMax: 25,
      logFile: path.join(cwd, 'kai.log'),
      logLevel: 'debug',
      stopTimeoutMs: 4000,
    });
  });

  test('flags override the config file, which overrides defaults', () => {
    // Proves the order defaults < file < flags, setting by setting.
    writeConfig({ port: 12011, memcache_port: 12211, n: 5 });
    const settings = loadSettings({ memcachePort: '13211', r: '1' }, { cwd });
    expect(settings.port).toBe(12011);
    expect(settings.memcachePort).toBe(13211);
    expect(settings.n).toBe(5);
    expect(settings.r).toBe(1);
    expect(settings.w).toBe(defaultSettings.w);
  });

  test('an explicit config file replaces discovery', () => {
    // Proves --config wins over ./kai.config.json, which is then not read at all.
    writeConfig('{ this is not read');
    const explicit = writeConfig({ buckets: 32 }, 'other.json');
    expect(loadSettings({}, { cwd, configFile: explicit }).buckets).toBe(32);
  });

  test('a relative explicit config file resolves against cwd', () => {
    // Proves --config paths are relative to the working directory.
    writeConfig({ buckets: 64 }, 'relative.json');
    expect(loadSettings({}, { cwd, configFile: 'relative.json' }).buckets).toBe(64);
  });

  test('null log_file means stdout', () => {
    // Proves the example config's "log_file": null is accepted.
    writeConfig({ log_file: null });
    expect(loadSettings({}, { cwd }).logFile).toBeUndefined();
  });

  test('flags accept typed values as well as text', () => {
    // Proves code may pass numbers where the command line passes strings.
    expect(loadSettings({ n: 4, r: 4, w: 1, maxItemSize: 4096 }, { cwd })).toMatchObject({ n: 4, r: 4, w: 1, maxItemSize: 4096 });
  });

  test('port 0 is accepted and means pick a free port', () => {
    // Proves 0 passes validation for both ports, even together.
    expect(loadSettings({ port: '0', memcachePort: '0' }, { cwd })).toMatchObject({ port: 0, memcachePort: 0 });
  });

  test('the repository example kai.config.json is valid and equals the defaults', () => {
    // Proves the shipped example can be used as is.
    const example = path.resolve(__dirname, '../../../../kai.config.json');
    const settings = loadSettings({}, { cwd, configFile: example });
    expect(settings).toEqual({ ...defaultSettings, dataDir: path.join(cwd, 'data') });
  });
});

describe('loadSettings config file errors', () => {
  test('an unknown key names the key and the file', () => {
    // Proves typos in the file are rejected rather than ignored.
    const file = writeConfig({ port: 1, memcahce_port: 2 });
    expect(errorOf({})).toBe(
      `${file}: unknown key "memcahce_port" (known keys: ${settingNames.map((name) => settingFields[name].fileKey).join(', ')})`,
    );
  });

  test('a config file from before the bucket claim, with "vnodes", is refused', () => {
    // Proves the removed vnodes setting is an unknown key, so an old file fails loudly instead of being half applied.
    const file = writeConfig({ buckets: 1024, vnodes: 128 });
    const message = errorOf({});
    expect(message).toMatch(new RegExp(`^${escape(file)}: unknown key "vnodes" \\(known keys: hostname, port, .*\\)$`));
    expect(message.slice(message.indexOf('(known keys:'))).not.toContain('vnodes');
  });

  test('malformed JSON names the file and the parse error', () => {
    // Proves the message carries both where and what.
    const file = writeConfig('{ "port": 1,, }');
    expect(errorOf({})).toMatch(new RegExp(`^${escape(file)}: malformed JSON: .+`));
  });

  test('a JSON value that is not an object is rejected', () => {
    // Proves an array or scalar file is not silently treated as empty.
    const file = writeConfig('[1, 2]');
    expect(errorOf({})).toBe(`${file}: must hold a JSON object of settings`);
  });

  test('a missing explicit config file is an error', () => {
    // Proves --config does not fall back to defaults when its file is absent.
    const file = path.join(cwd, 'missing.json');
    expect(errorOf({}, file)).toMatch(new RegExp(`^cannot read config file ${escape(file)}: ENOENT`));
  });

  test('a number given as a string in the file is a wrong type', () => {
    // Proves JSON types are enforced in the file, unlike flag text.
    const file = writeConfig({ port: '11011' });
    expect(errorOf({})).toBe(`${file}: "port": must be a port from 1 to 65535 (0 picks a free port), got the string "11011"`);
  });

  test.each([
    [{ n: true }, '"n": must be an integer from 1 to 16, got true'],
    [{ hostname: 7 }, `"hostname": must be a host name or IP address (letters, digits, '.', '-', ':'; at most 253 characters), got 7`],
    [{ data_dir: [] }, '"data_dir": must be a non-empty path, got an array'],
    [{ log_level: { level: 'info' } }, '"log_level": must be one of fatal, error, warn, info, debug, trace, silent, got an object'],
    [{ max_item_size: null }, '"max_item_size": must be a size from 1024 (1k) to 1073741824 (1g) bytes, got null'],
    [{ n: 1.5 }, '"n": must be an integer from 1 to 16, got 1.5'],
  ])('wrong type %j is rejected with its key', (content, expected) => {
    // Proves each kind of JSON value is named in the message.
    const file = writeConfig(content);
    expect(errorOf({})).toBe(`${file}: ${expected}`);
  });
});

describe('loadSettings value rules', () => {
  test.each<[string, SettingsFlags, string]>([
    ['port above 65535', { port: '70000' }, '--port: must be a port from 1 to 65535 (0 picks a free port), got 70000'],
    ['negative port', { memcachePort: '-1' }, '--memcache-port: must be a port from 1 to 65535 (0 picks a free port), got -1'],
    ['port that is not a number', { port: 'http' }, '--port: must be a port from 1 to 65535 (0 picks a free port), got http'],
    ['n of 0', { n: '0' }, '--n: must be an integer from 1 to 16, got 0'],
    ['r of 0', { r: '0' }, '--r: must be an integer from 1 to 16, got 0'],
    ['w of 0', { w: '0' }, '--w: must be an integer from 1 to 16, got 0'],
    ['n above the cap', { n: '17' }, '--n: must be an integer from 1 to 16, got 17'],
    ['r greater than n', { r: '4' }, 'r (4) must not be greater than n (3): a read cannot wait for more replicas than exist'],
    ['w greater than n', { n: '1', r: '1' }, 'w (2) must not be greater than n (1): a write cannot wait for more replicas than exist'],
    ['buckets not a power of two', { buckets: '1000' }, '--buckets: must be a power of two from 1 to 65536, got 1000'],
    ['buckets of 0', { buckets: '0' }, '--buckets: must be a power of two from 1 to 65536, got 0'],
    ['buckets above the cap', { buckets: '131072' }, '--buckets: must be a power of two from 1 to 65536, got 131072'],
    ['item size below 1 KiB', { maxItemSize: '1023' }, '--max-item-size: must be a size from 1024 (1k) to 1073741824 (1g) bytes, got 1023'],
    ['item size above 1 GiB', { maxItemSize: '2g' }, '--max-item-size: must be a size from 1024 (1k) to 1073741824 (1g) bytes, got 2g'],
    ['item size with a bad suffix', { maxItemSize: '10q' }, '--max-item-size: must be a size from 1024 (1k) to 1073741824 (1g) bytes, got 10q'],
    ['cache size above 64 GiB', { cacheSize: '65g' }, '--cache-size: must be a size from 0 (no cache) to 68719476736 (64g) bytes, got 65g'],
    ['negative cache size', { cacheSize: '-1' }, '--cache-size: must be a size from 0 (no cache) to 68719476736 (64g) bytes, got -1'],
    ['max connections of 0', { maxConnections: '0' }, '--max-connections: must be an integer from 1 to 65536, got 0'],
    ['idle timeout under its floor', { idleTimeoutMs: '50' }, '--idle-timeout: must be 0 (never) or an integer from 100 to 86400000, got 50'],
    ['receive budget under 1m', { receiveBufferBytesMax: '64k' }, '--receive-buffer-bytes-max: must be a size from 1048576 (1m) to 68719476736 (64g) bytes, got 64k'],
    ['unknown log level', { logLevel: 'verbose' }, '--log-level: must be one of fatal, error, warn, info, debug, trace, silent, got verbose'],
    ['hostname with a space', { hostname: 'a b' }, `--hostname: must be a host name or IP address (letters, digits, '.', '-', ':'; at most 253 characters), got a b`],
    ['empty data dir', { dataDir: '' }, '--data-dir: must be a non-empty path, got ""'],
    ['equal ports', { port: '12000', memcachePort: '12000' }, 'port and memcache_port must differ, both are 12000'],
    ['seed without a port', { seeds: 'node2' }, '--seed: must be a list of at most 64 host:port addresses, got the string "node2"'],
    ['seed with port 0', { seeds: 'a:1,b:0' }, '--seed: must be a list of at most 64 host:port addresses, got the string "b:0"'],
    ['zone with a space', { zone: 'rack 1' }, "--zone: must be at most 64 letters, digits, '.', '_' or '-', got rack 1"],
    ['weight of 0', { weight: '0' }, '--weight: must be a number from 0.1 to 16, got 0'],
    ['weight above the cap', { weight: '17' }, '--weight: must be a number from 0.1 to 16, got 17'],
    ['gossip interval of 5 ms', { gossipIntervalMs: '5' }, '--gossip-interval: must be an integer from 10 to 60000, got 5'],
  ])('%s is rejected', (_case, flags, expected) => {
    // Proves each rule fails with its own one-line message naming the flag.
    expect(errorOf(flags)).toBe(expected);
  });

  test('r greater than n is caught across sources', () => {
    // Proves the quorum check runs on merged values: n from the file, r from a flag.
    writeConfig({ n: 2 });
    expect(errorOf({ r: '3', w: '1' })).toBe('r (3) must not be greater than n (2): a read cannot wait for more replicas than exist');
  });

  test.each([
    ['1k', 1024],
    ['512K', 512 * 1024],
    ['1m', 1024 * 1024],
    ['1G', 1024 ** 3],
    ['4096', 4096],
  ])('max item size %s is %d bytes', (text, bytes) => {
    // Proves size suffixes are powers of 1024 and case-insensitive.
    expect(loadSettings({ maxItemSize: text }, { cwd }).maxItemSize).toBe(bytes);
  });

  test('seeds are a comma-separated flag or a JSON array, blanks ignored', () => {
    // Proves both forms of the seed list parse to the same addresses.
    expect(loadSettings({ seeds: ' a.example:1 ,, 10.0.0.2:11011,' }, { cwd }).seeds).toEqual(['a.example:1', '10.0.0.2:11011']);
    writeConfig({ seeds: ['a.example:1'] });
    expect(loadSettings({}, { cwd }).seeds).toEqual(['a.example:1']);
    writeConfig({ seeds: 'a.example:1' });
    expect(errorOf({})).toMatch(/"seeds": must be a list of at most 64 host:port addresses, got the string "a.example:1"$/);
  });

  test('advertise_address is a host like hostname, and null or absent means the host name', () => {
    // Proves the advertised address is read from a flag or the file, with the host name's rule.
    expect(loadSettings({ hostname: '0.0.0.0', advertiseAddress: 'kai-0.kai' }, { cwd }).advertiseAddress).toBe('kai-0.kai');
    writeConfig({ advertise_address: null });
    expect(loadSettings({}, { cwd }).advertiseAddress).toBeUndefined();
    writeConfig({ advertise_address: 'a b' });
    expect(errorOf({})).toMatch(/"advertise_address": must be a host name or IP address/);
  });

  test('an id peers cannot dial is refused, naming --advertise-address', () => {
    // Proves a node listening on every interface must say which address the others reach it by.
    expect(errorOf({ hostname: '0.0.0.0' })).toBe(
      "hostname 0.0.0.0 cannot be this node's id, which other nodes dial: host is the unspecified address; " +
        'set --advertise-address to the address they reach it by',
    );
    expect(errorOf({ advertiseAddress: '224.0.0.1' })).toMatch(/^advertise_address 224\.0\.0\.1 cannot be this node's id.*multicast/);
    expect(loadSettings({ hostname: '::', advertiseAddress: '10.0.0.7' }, { cwd }).hostname).toBe('::');
  });

  test('parseByteSize rejects what is not a size', () => {
    // Proves signs, fractions, units other than k/m/g and empty text are refused.
    for (const text of ['', '-1', '1.5m', '1kb', 'm', '1 m x']) expect(parseByteSize(text)).toBeUndefined();
  });
});

describe('loadSettings data dir and log file', () => {
  test('a missing data dir is created, parents included', () => {
    // Proves a fresh deployment needs no mkdir.
    const settings = loadSettings({ dataDir: 'a/b/c' }, { cwd });
    expect(fs.statSync(settings.dataDir).isDirectory()).toBe(true);
  });

  test('a data dir under a regular file cannot be created', () => {
    // Proves creation failure is reported with the path and the system error.
    fs.writeFileSync(path.join(cwd, 'file'), '');
    const dataDir = path.join(cwd, 'file', 'data');
    expect(errorOf({ dataDir })).toMatch(new RegExp(`^data dir ${escape(dataDir)} cannot be created: ENOTDIR`));
  });

  test('a data dir that is a regular file is rejected', () => {
    // Proves an existing non-directory is not mistaken for a data dir.
    const dataDir = path.join(cwd, 'plain');
    fs.writeFileSync(dataDir, '');
    expect(errorOf({ dataDir })).toMatch(new RegExp(`^data dir ${escape(dataDir)} (cannot be created: EEXIST|is not a directory)`));
  });

  const isRoot = process.getuid?.() === 0;
  (isRoot ? test.skip : test)('a read-only data dir is not writable', () => {
    // Proves the write probe catches permissions (skipped as root, who may write anywhere).
    const dataDir = path.join(cwd, 'readonly');
    fs.mkdirSync(dataDir, { mode: 0o500 });
    expect(errorOf({ dataDir })).toMatch(new RegExp(`^data dir ${escape(dataDir)} is not writable: EACCES`));
  });

  test('the write probe leaves nothing behind', () => {
    // Proves validation does not litter the data dir.
    const settings = loadSettings({}, { cwd });
    expect(fs.readdirSync(settings.dataDir)).toEqual([]);
  });

  test('a log file that cannot be opened is rejected', () => {
    // Proves a bad log path fails before the node starts, not on the first log line.
    fs.writeFileSync(path.join(cwd, 'file'), '');
    const logFile = path.join(cwd, 'file', 'kai.log');
    expect(errorOf({ logFile })).toMatch(new RegExp(`^log file ${escape(logFile)} cannot be opened for writing: ENOTDIR`));
  });

  test('an existing log file is appended to, not truncated', () => {
    // Proves the open check keeps earlier log lines.
    const logFile = path.join(cwd, 'kai.log');
    fs.writeFileSync(logFile, 'earlier line\n');
    loadSettings({ logFile }, { cwd });
    expect(fs.readFileSync(logFile, 'utf8')).toBe('earlier line\n');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
