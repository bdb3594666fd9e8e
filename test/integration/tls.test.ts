// kai processes with --tls: a cluster whose nodes and commands speak TLS to each other, and a memcache port clients reach over TLS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as memjs from 'memjs';
import { makeTestCertificates, type TestCertificates } from '../support/certificates';
import { startCluster, type ClusterNode } from '../support/cluster';
import { kaiBin, killStartedKai, runKai } from '../support/process';
import { RawClient } from '../support/raw-client';
import { delay, getFreePort, killByPid, loopbackHost, spawnTracked } from '../support/servers';

const quietLogger = { log: (): void => undefined };
const readyTimeoutMs = 15_000;
const readyPollMs = 50;

let baseDir: string;
let certificates: TestCertificates;

beforeAll(() => {
  baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tls-'));
  certificates = makeTestCertificates(path.join(baseDir, 'certificates'));
});

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(baseDir, { recursive: true, force: true });
});

/** A TLS connection to a memcache port, with the client certificate unless told otherwise. */
function tlsClient(port: number, withCertificate = true): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: loopbackHost,
      port,
      ca: fs.readFileSync(certificates.caFile),
      ...(withCertificate ? { cert: fs.readFileSync(certificates.clientCertFile), key: fs.readFileSync(certificates.clientKeyFile) } : {}),
    });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `request` and reads until the reply ends with `terminator`, or the connection closes. */
function exchange(socket: tls.TLSSocket, request: string, terminator: string): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    const done = (): void => resolve(received);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.endsWith(terminator)) done();
    });
    socket.once('close', done);
    socket.write(request);
  });
}

/** A quorum write through a loaded cluster can take longer than memjs's default of half a second. */
const clientTimeoutSeconds = 8;

it('links a cluster whose internal API speaks only TLS, and replicates through it', async () => {
  // Proves nodes dial each other over TLS with the cluster CA, and kai commands do too from the config file.
  const clusterDir = path.join(baseDir, 'cluster');
  fs.mkdirSync(clusterDir);
  fs.writeFileSync(
    path.join(clusterDir, 'kai.config.json'),
    JSON.stringify({ tls: 'internal', tls_cert_file: certificates.nodeCertFile, tls_key_file: certificates.nodeKeyFile, tls_ca_file: certificates.caFile }),
  );
  const nodes: ClusterNode[] = await startCluster({ baseDir: clusterDir, size: 2, args: ['--n', '2', '--r', '2', '--w', '2', '--gossip-interval', '200'] });
  const writer = memjs.Client.create(`127.0.0.1:${nodes[0].memcachePort}`, { logger: quietLogger, retries: 0, timeout: clientTimeoutSeconds });
  const reader = memjs.Client.create(`127.0.0.1:${nodes[1].memcachePort}`, { logger: quietLogger, retries: 0, timeout: clientTimeoutSeconds });
  try {
    await writer.set('over-tls', 'replicated', {});
    expect((await reader.get('over-tls')).value?.toString()).toBe('replicated');
  } finally {
    writer.close();
    reader.close();
  }
  // Without the CA and a certificate a command cannot reach the node.
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tls-none-'));
  try {
    const plain = await runKai(['status', '--node', nodes[0].id], { cwd: elsewhere });
    expect(plain.code).toBe(1);
    const withFlags = await runKai(
      ['status', '--node', nodes[0].id, '--tls-ca', certificates.caFile, '--tls-cert', certificates.clientCertFile, '--tls-key', certificates.clientKeyFile],
      { cwd: elsewhere },
    );
    expect(withFlags.code).toBe(0);
    expect(withFlags.stdout).toContain(nodes[1].id);
  } finally {
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
  await Promise.all(nodes.map((node) => node.stop()));
}, 120_000);

it('serves memcache clients over TLS, requiring a certificate of the CA', async () => {
  // Proves --tls memcache with --tls-client-certificates require, as memcached's -Z with ssl_verify_mode 2.
  const [memcachePort, port] = [await getFreePort(), await getFreePort()];
  const started = spawnTracked({
    command: process.execPath,
    args: [kaiBin, 'start', '--hostname', loopbackHost, '--port', String(port), '--memcache-port', String(memcachePort), '--n', '1', '--r', '1', '--w', '1']
      .concat(['--data-dir', path.join(baseDir, 'tls-memcache'), '--tls', 'memcache', '--tls-client-certificates', 'require'])
      .concat(['--tls-cert', certificates.nodeCertFile, '--tls-key', certificates.nodeKeyFile, '--tls-ca', certificates.caFile]),
    cwd: baseDir,
  });
  try {
    const deadlineMs = Date.now() + readyTimeoutMs;
    let client: tls.TLSSocket | undefined;
    while (client === undefined && Date.now() < deadlineMs) {
      client = await tlsClient(memcachePort).catch(() => undefined);
      if (client === undefined) await delay(readyPollMs);
    }
    if (client === undefined) throw new Error(`kai did not accept TLS clients within ${readyTimeoutMs} ms: ${started.stdout()}`);
    expect(await exchange(client, 'set k 5 0 3\r\nabc\r\n', '\r\n')).toBe('STORED\r\n');
    client.removeAllListeners('data');
    expect(await exchange(client, 'get k\r\n', 'END\r\n')).toBe('VALUE k 5 3\r\nabc\r\nEND\r\n');
    client.destroy();
    // A client without a certificate does not get through the handshake.
    await expect(tlsClient(memcachePort, false).then((socket) => exchange(socket, 'get k\r\n', 'END\r\n'))).resolves.not.toContain('VALUE');
    // Nor does a client that does not speak TLS.
    const plain = await RawClient.connect(memcachePort);
    plain.send('get k\r\n');
    expect((await plain.readUntil(() => plain.closed, readyTimeoutMs)).toString('latin1')).not.toContain('VALUE');
  } finally {
    killByPid(started.child.pid, 'SIGTERM');
    await started.exited;
  }
});
