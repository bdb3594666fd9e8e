// The cluster secret and TLS settings: files read and checked at start, each mistake one settings error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, commandSecurity, loadSettings, nodeTlsMaterial, type SettingsFlags } from '../../../src/config/load';
import { makeTestCertificates, type TestCertificates } from '../../support/certificates';

let cwd: string;
let certificates: TestCertificates;

beforeAll(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-security-settings-'));
  certificates = makeTestCertificates(path.join(cwd, 'certificates'));
});

afterAll(() => fs.rmSync(cwd, { recursive: true, force: true }));

function errorOf(flags: SettingsFlags): string {
  try {
    loadSettings(flags, { cwd });
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a settings error');
}

const nodeFiles = (): SettingsFlags => ({ tlsCertFile: certificates.nodeCertFile, tlsKeyFile: certificates.nodeKeyFile });

test('a cluster secret is read whole, one trailing line ending aside, and must be 16 bytes at least', () => {
  fs.writeFileSync(path.join(cwd, 'secret'), 'sixteen bytes ok\r\n');
  expect(commandSecurity({ clusterSecretFile: 'secret' }, { cwd }).clusterSecret?.toString()).toBe('sixteen bytes ok');
  fs.writeFileSync(path.join(cwd, 'weak'), 'fifteen bytes!!\n');
  expect(errorOf({ clusterSecretFile: 'weak' })).toMatch(/weak: 15 bytes, fewer than 16/);
  expect(errorOf({ clusterSecretFile: 'missing' })).toMatch(/cluster secret file .*missing: ENOENT/);
});

test('TLS needs a certificate and its key, and a CA wherever something is verified', () => {
  expect(errorOf({ tls: 'memcache' })).toBe('tls memcache: needs tls_cert_file and tls_key_file (--tls-cert, --tls-key)');
  expect(errorOf({ tls: 'internal', ...nodeFiles() })).toMatch(/tls internal: needs tls_ca_file/);
  expect(errorOf({ tls: 'memcache', tlsClientCertificates: 'require', ...nodeFiles() })).toMatch(/tls_client_certificates require: needs tls_ca_file/);
  expect(errorOf({ tls: 'sometimes' })).toMatch(/--tls: must be one of none, memcache, internal, all/);
  const settings = loadSettings({ tls: 'all', tlsCaFile: certificates.caFile, ...nodeFiles() }, { cwd });
  expect(nodeTlsMaterial(settings)?.cert.toString()).toContain('BEGIN CERTIFICATE');
});

test('a key that is not the certificate\'s is refused at start', () => {
  expect(errorOf({ tls: 'memcache', tlsCertFile: certificates.nodeCertFile, tlsKeyFile: certificates.clientKeyFile })).toMatch(/^TLS files .*node\.pem.*: .*key/i);
});

test('kai commands speak TLS when given a CA, from their flags or the config file', () => {
  expect(commandSecurity({}, { cwd }).tls).toBeUndefined();
  const flags = { tlsCa: certificates.caFile, tlsCert: certificates.clientCertFile, tlsKey: certificates.clientKeyFile };
  expect(commandSecurity(flags, { cwd }).tls?.ca).toBeDefined();
  const configFile = path.join(cwd, 'tls.config.json');
  fs.writeFileSync(configFile, JSON.stringify({ tls: 'all', tls_cert_file: certificates.nodeCertFile, tls_key_file: certificates.nodeKeyFile, tls_ca_file: certificates.caFile }));
  expect(commandSecurity({}, { cwd, configFile }).tls?.cert.toString()).toContain('BEGIN CERTIFICATE');
  expect(() => commandSecurity({ tlsCa: certificates.caFile }, { cwd })).toThrow(/needs a certificate and key/);
});
