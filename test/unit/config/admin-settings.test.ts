// The admin port settings: off unless set, 0 for a free port, null in a file for none, and never one of the node's other ports.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadSettings, type SettingsFlags } from '../../../src/config/load';

let cwd: string;

beforeEach(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-admin-config-'));
});

afterEach(() => {
  fs.rmSync(cwd, { recursive: true, force: true });
});

function load(flags: SettingsFlags, file?: Record<string, unknown>) {
  if (file !== undefined) fs.writeFileSync(path.join(cwd, 'kai.config.json'), JSON.stringify(file));
  return loadSettings(flags, { cwd });
}

function errorOf(flags: SettingsFlags, file?: Record<string, unknown>): string {
  try {
    load(flags, file);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

test('off by default, listening on the loopback when set', () => {
  expect(load({})).toMatchObject({ adminPort: undefined, adminHost: '127.0.0.1' });
  expect(load({ adminPort: '9100' })).toMatchObject({ adminPort: 9100, adminHost: '127.0.0.1' });
  expect(load({ adminPort: '0', adminHost: '0.0.0.0' })).toMatchObject({ adminPort: 0, adminHost: '0.0.0.0' });
});

test('from the config file, where null means none', () => {
  expect(load({}, { admin_port: 9100, admin_host: '10.0.0.1' })).toMatchObject({ adminPort: 9100, adminHost: '10.0.0.1' });
  expect(load({}, { admin_port: null })).toMatchObject({ adminPort: undefined });
  expect(load({ adminPort: '9200' }, { admin_port: 9100 })).toMatchObject({ adminPort: 9200 });
});

test('bad values are one-line settings errors naming the flag or key', () => {
  expect(errorOf({ adminPort: '70000' })).toBe('--admin-port: must be a port from 1 to 65535 (0 picks a free port), got 70000');
  expect(errorOf({ adminHost: 'not a host' })).toMatch(/^--admin-host: must be a host name or IP address/);
  expect(errorOf({}, { admin_port: '9100' })).toMatch(/"admin_port": must be a port .* got the string "9100"$/);
});

test('the admin port cannot be the internal or the memcache port', () => {
  expect(errorOf({ adminPort: '11011' })).toBe('admin_port and port must differ, both are 11011');
  expect(errorOf({ adminPort: '11211' })).toBe('admin_port and memcache_port must differ, both are 11211');
});
