// The internal API over TLS on real sockets: peers present certificates of the cluster's CA both ways, or are not heard.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { readTlsMaterial, type TlsMaterial } from '../../src/auth/tls-material';
import { makeTestCertificates, type TestCertificates } from '../support/certificates';
import { loopbackHost } from '../support/servers';
import { TransportPool, countingHandler, rejection } from '../support/transports';

const frameBytesMax = 1024 * 1024;
const timeoutMs = 3_000;
const fastBackoff = { backoffBaseMs: 20, backoffMaxMs: 100, connectTimeoutMs: timeoutMs };

let certificates: TestCertificates;
let nodeTls: TlsMaterial;
const pool = new TransportPool({ frameBytesMax }, fastBackoff);
const serving = pool.serving.bind(pool);
const client = pool.client.bind(pool);

beforeAll(() => {
  certificates = makeTestCertificates(fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tls-rpc-')));
  nodeTls = readTlsMaterial({ certFile: certificates.nodeCertFile, keyFile: certificates.nodeKeyFile, caFile: certificates.caFile });
});

afterAll(() => fs.rmSync(certificates.dir, { recursive: true, force: true }));

afterEach(() => pool.closeAll());

it('carries requests between peers holding certificates of the cluster CA, with the secret on top', async () => {
  // Proves TLS both ways, and the cluster-secret handshake inside it, with many requests on one connection.
  const secret = Buffer.from('a secret on top of the certificates');
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { tls: nodeTls, clusterSecret: secret });
  const clientTls = readTlsMaterial({ certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile, caFile: certificates.caFile });
  const requester = client({ tls: clientTls, clusterSecret: secret });
  const replies = await Promise.all(Array.from({ length: 20 }, () => requester.request(server.address, { type: 'nodeInfo' }, timeoutMs)));
  expect(replies.every((reply) => reply.type === 'stored')).toBe(true);
  expect(handled).toHaveLength(20);
  expect(server.servedConnections).toBe(1);
});

it('hears nothing from a plain TCP peer', async () => {
  // Proves a peer that does not speak TLS never gets a frame read.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { tls: nodeTls });
  const error = await rejection(client().request(server.address, { type: 'nodeInfo' }, timeoutMs));
  expect(error.code).toBe('KAI_PEER_UNREACHABLE');
  expect(handled).toHaveLength(0);
});

it("refuses a peer whose certificate another CA signed, and one with no certificate", async () => {
  // Proves the acceptor checks the dialer's certificate against the cluster CA.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { tls: nodeTls });
  const stranger = readTlsMaterial({ certFile: certificates.strangerCertFile, keyFile: certificates.strangerKeyFile, caFile: certificates.caFile });
  expect((await rejection(client({ tls: stranger }).request(server.address, { type: 'nodeInfo' }, timeoutMs))).code).toBe('KAI_PEER_UNREACHABLE');
  const withoutCertificate = tls.connect({ host: loopbackHost, port: server.port, ca: nodeTls.ca, checkServerIdentity: () => undefined });
  withoutCertificate.on('error', () => undefined);
  const received: Buffer[] = [];
  withoutCertificate.on('data', (chunk: Buffer) => received.push(chunk));
  withoutCertificate.on('secureConnect', () => withoutCertificate.write(Buffer.alloc(64)));
  await new Promise((resolve) => withoutCertificate.once('close', resolve));
  expect(received).toHaveLength(0);
  expect(handled).toHaveLength(0);
});

it("refuses to talk to a node whose certificate does not chain to the dialer's CA", async () => {
  // Proves the dialer checks the acceptor too: TLS here is mutual.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { tls: nodeTls });
  const trustsOther = readTlsMaterial({ certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile, caFile: path.join(certificates.dir, 'other-ca.pem') });
  const error = await rejection(client({ tls: trustsOther }).request(server.address, { type: 'nodeInfo' }, timeoutMs));
  expect(error.detail).toMatch(/certificate/);
  expect(handled).toHaveLength(0);
});
