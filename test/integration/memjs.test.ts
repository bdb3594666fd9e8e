/**
 * memjs, the most used Node memcache client, which speaks only the binary protocol, against one
 * real kai node (bin/kai as a child process), with no authentication configured.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as memjs from 'memjs';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';

let dataDir: string;
let kai: KaiProcess;
let client: memjs.Client;

const quietLogger = { log: (): void => undefined };

function stats(): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    client.stats((error, _server, values) => (error || !values ? reject(error ?? new Error('no stats')) : resolve(values)));
  });
}

function statsWithKey(key: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    client.statsWithKey(key, (error, _server, values) => (error || !values ? reject(error ?? new Error('no stats')) : resolve(values)));
  });
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-memjs-'));
  kai = await startKai({ dataDir, args: ['--log-level', 'warn'] });
  client = memjs.Client.create(`127.0.0.1:${kai.memcachePort}`, { retries: 0, timeout: 5, logger: quietLogger });
});

afterAll(async () => {
  client.close();
  await kai.stop();
  await killStartedKai();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('set, get, add, replace and delete', async () => {
  // Proves memjs's storage calls get memcached's answers from kai, binary values and flags included.
  expect(await client.set('memjs:a', 'alpha', { expires: 0 })).toBe(true);
  const read = await client.get('memjs:a');
  expect(read.value?.toString()).toBe('alpha');
  expect(await client.add('memjs:a', 'again')).toBe(false);
  expect(await client.add('memjs:b', 'bravo')).toBe(true);
  expect(await client.replace('memjs:a', 'beta')).toBe(true);
  expect(await client.replace('memjs:none', 'x')).toBe(false);
  expect((await client.get('memjs:a')).value?.toString()).toBe('beta');
  const binary = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
  expect(await client.set('memjs:bin', binary)).toBe(true);
  expect((await client.get('memjs:bin')).value).toEqual(binary);
  expect(await client.delete('memjs:a')).toBe(true);
  expect(await client.delete('memjs:a')).toBe(false);
  expect((await client.get('memjs:a')).value).toBeNull();
});

test('increment and decrement', async () => {
  // Proves counters: creation with an initial value, wrap-free arithmetic, the floor at zero.
  expect(await client.increment('memjs:n', 5, { initial: 10 })).toEqual({ success: true, value: 10 });
  // memjs reads its options argument unconditionally, so it must be given.
  expect(await client.increment('memjs:n', 5, {})).toEqual({ success: true, value: 15 });
  expect(await client.decrement('memjs:n', 20, {})).toEqual({ success: true, value: 0 });
  expect((await client.get('memjs:n')).value?.toString().trim()).toBe('0');
});

test('append, prepend and touch', async () => {
  // Proves append joins onto the stored value and touch answers for present and missing keys.
  await client.set('memjs:j', 'mid');
  expect(await client.append('memjs:j', '>')).toBe(true);
  expect(await client.prepend('memjs:j', '<')).toBe(true);
  // memjs turns APPEND's "not stored" status into an error, against memcached as against kai.
  await expect(client.append('memjs:none', 'x')).rejects.toThrow('Item not stored');
  // memjs 1.3.2's prepend sends the APPEND opcode (0x0e), so memcached and kai both append.
  expect((await client.get('memjs:j')).value?.toString()).toBe('mid><');
  expect(await client.touch('memjs:j', 1000)).toBe(true);
  expect(await client.touch('memjs:none', 1000)).toBe(false);
});

test('expiry', async () => {
  // Proves an absolute expiry in the past hides the item at once.
  await client.set('memjs:old', 'x', { expires: 1_000_000_000 });
  expect((await client.get('memjs:old')).value).toBeNull();
});

test('stats and flush', async () => {
  // Proves memjs reads every STAT packet up to the empty one, and flush empties the node.
  const general = await stats();
  expect(general.pid).toBe(String(kai.pid));
  expect(Number(general.cmd_get)).toBeGreaterThan(0);
  expect((await statsWithKey('settings')).maxconns).toBeDefined();
  await client.set('memjs:f', 'x');
  const flushed = await client.flush();
  expect(Object.values(flushed)).toEqual([true]);
  expect((await client.get('memjs:f')).value).toBeNull();
});
