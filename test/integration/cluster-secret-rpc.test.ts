// The internal API with a cluster secret, over real TCP: only peers that prove the secret are heard.
import net from 'node:net';
import { KaiError } from '../../src/errors';
import { encodeFrame } from '../../src/rpc/frames';
import { handshakeMagic, nonceBytes } from '../../src/rpc/handshake';
import type { RpcRequest } from '../../src/rpc/messages';
import { loopbackHost } from '../support/servers';
import { TransportPool, countingHandler, rejection, waitFor as waitUntil } from '../support/transports';

const frameBytesMax = 1024 * 1024;
const timeoutMs = 2_000;
const waitStepMs = 5;
const secret = Buffer.from('the secret of this test cluster');
const fastBackoff = { backoffBaseMs: 20, backoffMaxMs: 100 };

const pool = new TransportPool({ frameBytesMax }, fastBackoff);
const serving = pool.serving.bind(pool);
const client = pool.client.bind(pool);
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await pool.closeAll();
});

const waitFor = (condition: () => boolean): Promise<void> => waitUntil(condition, timeoutMs * 5, waitStepMs);

/** A raw socket to `port`, resolved once connected; it records whether the server closed it. */
async function rawSocket(port: number): Promise<{ socket: net.Socket; received: Buffer[]; closed: () => boolean }> {
  const socket = net.connect({ host: loopbackHost, port });
  sockets.push(socket);
  const received: Buffer[] = [];
  let closed = false;
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return { socket, received, closed: () => closed };
}

const flushAll: RpcRequest = { type: 'flushAll', deadlineMs: 0 };

it('serves a peer that holds the same secret', async () => {
  // Proves the handshake completes both ways over TCP and requests then flow as without one.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { clusterSecret: secret });
  const requester = client({ clusterSecret: secret });
  const replies = await Promise.all(Array.from({ length: 50 }, () => requester.request(server.address, { type: 'nodeInfo' }, timeoutMs)));
  expect(replies.every((reply) => reply.type === 'stored')).toBe(true);
  expect(handled).toHaveLength(50);
  expect(server.servedConnections).toBe(1);
});

it('closes a peer without the secret before reading any of its frames', async () => {
  // Proves a secret-less requester is refused and its request never reaches the handler.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { clusterSecret: secret });
  const error = await rejection(client().request(server.address, flushAll, timeoutMs));
  expect(error.code).toBe('KAI_PEER_UNREACHABLE');
  expect(error.detail).toMatch(/closed by peer/);
  expect(handled).toHaveLength(0);
});

it('refuses a peer with another secret, each side on its own proof', async () => {
  // Proves neither side accepts the other's proof when the secrets differ.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { clusterSecret: secret });
  const error = await rejection(client({ clusterSecret: Buffer.from('not the secret of this cluster') }).request(server.address, flushAll, timeoutMs));
  expect(error.detail).toMatch(/wrong cluster secret/);
  expect(error.undelivered).toBe(true);
  expect(handled).toHaveLength(0);
});

it('says so when the peer has no secret and this node has one', async () => {
  // Proves the mismatch the other way round is refused with a message naming it.
  const { handler, handled } = countingHandler();
  const server = await serving(handler);
  const error = await rejection(client({ clusterSecret: secret }).request(server.address, { type: 'nodeInfo' }, timeoutMs));
  expect(error.detail).toMatch(/cluster-secret handshake/);
  expect(handled).toHaveLength(0);
});

it('closes a raw connection that sends a well-formed frame instead of the handshake', async () => {
  // Proves frames from a process that knows the protocol but not the secret are never decoded.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { clusterSecret: secret });
  const raw = await rawSocket(server.port);
  const frame = encodeFrame({ id: 1, kind: 'request', body: flushAll }, frameBytesMax);
  if (frame instanceof KaiError) throw frame;
  raw.socket.write(frame);
  await waitFor(raw.closed);
  expect(Buffer.concat(raw.received)).toHaveLength(0);
  expect(handled).toHaveLength(0);
});

it('closes a connection that does not finish the handshake in time', async () => {
  // Proves a half-done handshake (hello sent, never a proof) holds its place only for handshakeTimeoutMs.
  const server = await serving(countingHandler().handler, { clusterSecret: secret, handshakeTimeoutMs: 200 });
  const raw = await rawSocket(server.port);
  raw.socket.write(Buffer.concat([handshakeMagic, Buffer.alloc(nonceBytes, 9)]));
  await waitFor(() => Buffer.concat(raw.received).length === 2 * nonceBytes);
  expect(server.handshakingConnections).toBe(1);
  await waitFor(raw.closed);
  expect(server.handshakingConnections).toBe(0);
});

it('serves a peer with the secret while connections without it keep the waiting room full', async () => {
  // Proves idle unauthenticated connections cannot lock out a real peer: the longest waiting makes way.
  const server = await serving(countingHandler().handler, { clusterSecret: secret, handshakingConnectionsMax: 8, peerConnectionsMax: 2 });
  const raws: Awaited<ReturnType<typeof rawSocket>>[] = [];
  for (let index = 0; index < 20; index++) raws.push(await rawSocket(server.port));
  await waitFor(() => raws.filter((raw) => raw.closed()).length === 12 && server.handshakingConnections === 8);
  expect(raws.slice(12).every((raw) => !raw.closed())).toBe(true);
  expect(await client({ clusterSecret: secret }).request(server.address, { type: 'nodeInfo' }, timeoutMs)).toEqual({ type: 'stored' });
  expect(server.servedConnections).toBe(1);
  await waitFor(() => raws.filter((raw) => raw.closed()).length === 13);
});

it('closes handshaking connections past the per-address bound as they arrive', async () => {
  // Proves one address cannot hold more than its share of the waiting room.
  const server = await serving(countingHandler().handler, { clusterSecret: secret, handshakingConnectionsPerAddressMax: 3 });
  const raws: Awaited<ReturnType<typeof rawSocket>>[] = [];
  for (let index = 0; index < 6; index++) raws.push(await rawSocket(server.port));
  await waitFor(() => raws.filter((raw) => raw.closed()).length === 3);
  expect(raws.slice(0, 3).every((raw) => !raw.closed())).toBe(true);
  expect(server.handshakingConnections).toBe(3);
});

it('closes a connection idle past idleTimeoutMs, and the peer dials again without a failure', async () => {
  // Proves idle connections are closed and that the requester treats that close as no failure.
  const server = await serving(countingHandler().handler, { clusterSecret: secret, idleTimeoutMs: 150 });
  const requester = client({ clusterSecret: secret, reuseIdleMsMax: 60_000 });
  expect(await requester.request(server.address, { type: 'nodeInfo' }, timeoutMs)).toEqual({ type: 'stored' });
  expect(server.servedConnections).toBe(1);
  await waitFor(() => server.servedConnections === 0 && requester.openPeerConnections === 0);
  expect(await requester.request(server.address, { type: 'nodeInfo' }, timeoutMs)).toEqual({ type: 'stored' });
});

it('dials afresh rather than reuse a connection unused past reuseIdleMsMax', async () => {
  // Proves a requester does not send on a connection the peer may be closing as idle.
  const { handler, handled } = countingHandler();
  const server = await serving(handler, { idleTimeoutMs: 60_000 });
  const requester = client({ reuseIdleMsMax: 50 });
  await requester.request(server.address, { type: 'nodeInfo' }, timeoutMs);
  await new Promise((resolve) => setTimeout(resolve, 120));
  await requester.request(server.address, { type: 'nodeInfo' }, timeoutMs);
  expect(handled).toHaveLength(2);
  await waitFor(() => server.servedConnections === 1);
});

it('holds partly received frames within the node-wide budget, and gives it back when they close', async () => {
  // Proves peers that start large frames and never finish them hold one budget, not a frame cap each.
  const megabyte = 1024 * 1024;
  const server = await serving(countingHandler().handler, { frameBytesMax: 4 * megabyte, receivingBytesMax: megabyte });
  const raws: Awaited<ReturnType<typeof rawSocket>>[] = [];
  for (let index = 0; index < 10; index++) {
    const raw = await rawSocket(server.port);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(3 * megabyte, 0);
    raw.socket.write(Buffer.concat([prefix, Buffer.alloc(megabyte)]));
    raws.push(raw);
  }
  await waitFor(() => server.receiving.waiting === 9);
  expect(server.receiving.bytes).toBe(3 * megabyte);
  // A peer with an ordinary request is still answered: a complete frame needs no reservation.
  expect(await client().request(server.address, { type: 'nodeInfo' }, timeoutMs)).toEqual({ type: 'stored' });
  for (const raw of raws) raw.socket.destroy();
  await waitFor(() => server.receiving.bytes === 0 && server.receiving.waiting === 0);
});
