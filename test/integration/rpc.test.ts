/**
 * The internal API over real TCP on 127.0.0.1: two TcpTransports in this process, one serving
 * and one requesting, plus raw sockets playing a careless peer.
 */
import { Packr } from 'msgpackr';
import net from 'node:net';
import { KaiError } from '../../src/errors';
import { frameLengthBytes } from '../../src/rpc/frames';
import type { RpcReply, RpcRequest, WireVersion } from '../../src/rpc/messages';
import type { RequestHandler } from '../../src/rpc/transport';
import { ManualEnv } from '../support/manual-env';
import { getFreePort, loopbackHost } from '../support/servers';
import { TransportPool, rejection, waitFor as waitUntil } from '../support/transports';

const frameBytesMax = 1024 * 1024;
const timeoutMs = 2_000;
const waitStepMs = 5;
/** Fast backoff, so a reconnect is seen within the test's bounded polling. */
const fastBackoff = { backoffBaseMs: 20, backoffMaxMs: 100 };

const pool = new TransportPool({ frameBytesMax });
const serving = pool.serving.bind(pool);
const client = pool.client.bind(pool);

afterEach(() => pool.closeAll());

/** Polls `condition` every few ms, failing after `limitMs`. */
function waitFor(condition: () => boolean, limitMs = timeoutMs): Promise<void> {
  return waitUntil(condition, limitMs, waitStepMs);
}

function versionOf(value: Buffer): WireVersion {
  return { clock: [['n1', 1, 1_700_000_000_000]], value, flags: 0, expiresAtMs: 0, tombstone: false, writtenAtMs: 1_700_000_000_000 };
}

/** Answers a fetch with one version whose value is the key, so each reply names its request. */
const echo: RequestHandler = (request) => {
  if (request.type !== 'replicaFetch') return { type: 'stored' };
  return { type: 'versions', versions: [versionOf(request.key)] };
};

/** A frame around any value, unchecked, as a careless peer might send it. */
function framed(value: unknown): Buffer {
  const body = new Packr({ useRecords: false }).pack(value);
  const prefix = Buffer.alloc(frameLengthBytes);
  prefix.writeUInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}

const fetch = (key: string): RpcRequest => ({ type: 'replicaFetch', key: Buffer.from(key) });

function echoedKey(reply: RpcReply): string {
  if (reply.type !== 'versions') throw new Error(`unexpected reply ${reply.type}`);
  return reply.versions[0].value.toString();
}

it('answers a request with the handler reply, Buffers intact', async () => {
  // Proves the request/reply round trip over real TCP between two transports.
  const server = await serving(echo);
  const requester = await serving(echo, { port: 0 });
  expect(requester.port).toBeGreaterThan(0);
  const reply = await requester.request(server.address, { type: 'replicaFetch', key: Buffer.from([0, 0xff, 0x0a]) }, timeoutMs);
  expect(reply).toEqual({ type: 'versions', versions: [versionOf(Buffer.from([0, 0xff, 0x0a]))] });
  if (reply.type === 'versions') expect(Buffer.isBuffer(reply.versions[0].value)).toBe(true);
  expect(await requester.request(server.address, { type: 'nodeInfo' }, timeoutMs)).toEqual({ type: 'stored' });
});

it('matches 1,000 concurrent requests on one connection to their replies, answered out of order', async () => {
  // Proves many requests share one pooled connection and replies are matched by id, not order.
  const requestCount = 1_000;
  const held: (() => void)[] = [];
  const server = await serving(
    (request) =>
      new Promise<RpcReply>((resolve) => {
        held.push(() => resolve(echo(request) as RpcReply));
      }),
  );
  const requester = client();
  const replies = Array.from({ length: requestCount }, (_, index) => requester.request(server.address, fetch(`key-${index}`), timeoutMs));
  await waitFor(() => held.length === requestCount);
  expect(server.servedConnections).toBe(1);
  for (const release of held.reverse()) release();
  const keys = (await Promise.all(replies)).map(echoedKey);
  expect(keys).toEqual(Array.from({ length: requestCount }, (_, index) => `key-${index}`));
});

it('turns a handler error into the same KaiError on the requesting side', async () => {
  // Proves an operating error crosses the wire with its code and detail; other throws are internal.
  const server = await serving((request) => {
    if (request.type === 'nodeInfo') throw new Error('a bug');
    throw new KaiError('KAI_QUORUM_UNMET', 'W=2, 1 replica answered');
  });
  const requester = client();
  const quorum = await rejection(requester.request(server.address, fetch('k'), timeoutMs));
  expect(quorum.code).toBe('KAI_QUORUM_UNMET');
  expect(quorum.detail).toBe('W=2, 1 replica answered');
  const internal = await rejection(requester.request(server.address, { type: 'nodeInfo' }, timeoutMs));
  expect(internal.code).toBe('KAI_INTERNAL');
  expect(internal.detail).toBe('a bug');
});

it('times out a request the peer never answers, and keeps the connection for others', async () => {
  // Proves the per-request timeout bounds the wait, and one slow request does not fail the rest.
  const server = await serving((request) => (request.type === 'nodeInfo' ? new Promise<RpcReply>(() => undefined) : echo(request)));
  const requester = client();
  const startedAt = Date.now();
  const error = await rejection(requester.request(server.address, { type: 'nodeInfo' }, 100));
  expect(error.code).toBe('KAI_PEER_UNREACHABLE');
  expect(error.detail).toMatch(/no reply within 100 ms/);
  // Far below the 10 s the other requests allow, with room for a loaded machine.
  expect(Date.now() - startedAt).toBeLessThan(5_000);
  expect(echoedKey(await requester.request(server.address, fetch('after'), timeoutMs))).toBe('after');
  expect(server.servedConnections).toBe(1);
});

it('fails fast when the peer is down, and at once while backing off', async () => {
  // Proves a refused connection rejects long before the request timeout, and the next one without dialling.
  const requester = client({ backoffBaseMs: 10_000, backoffMaxMs: 10_000 });
  const address = `${loopbackHost}:${await getFreePort()}`;
  const startedAt = Date.now();
  const refused = await rejection(requester.request(address, fetch('k'), 10_000));
  expect(refused.code).toBe('KAI_PEER_UNREACHABLE');
  expect(refused.detail).toMatch(/ECONNREFUSED/);
  // Neither reached the peer, which a forwarding coordinator may then try elsewhere.
  expect(refused.undelivered).toBe(true);
  const backingOff = await rejection(requester.request(address, fetch('k'), 10_000));
  expect(backingOff.detail).toMatch(/backing off after 1 failures/);
  expect(backingOff.undelivered).toBe(true);
  // Far below the 10 s request timeout, with room for a loaded machine.
  expect(Date.now() - startedAt).toBeLessThan(5_000);
});

it('reconnects once the backoff has passed, not before', async () => {
  // Proves backoff timing comes from the injected Env: the peer is back, yet requests fail until it ends.
  const env = new ManualEnv();
  const port = await getFreePort();
  const address = `${loopbackHost}:${port}`;
  const requester = client({ env, ...fastBackoff });
  expect((await rejection(requester.request(address, fetch('k'), timeoutMs))).detail).toMatch(/ECONNREFUSED/);
  await serving(echo, { port });
  expect((await rejection(requester.request(address, fetch('k'), timeoutMs))).detail).toMatch(/backing off/);
  env.advance(fastBackoff.backoffBaseMs);
  expect(echoedKey(await requester.request(address, fetch('back'), timeoutMs))).toBe('back');
});

it('drops a connection that stays silent through a request and a probe, and dials afresh', async () => {
  // Proves a cut path (packets vanish, nothing is refused) costs one timeout and one probe, not TCP's retransmission backoff.
  const sockets: net.Socket[] = [];
  let closed = 0;
  const silent = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => closed++);
  });
  await new Promise<void>((resolve) => silent.listen(0, loopbackHost, resolve));
  try {
    const address = `${loopbackHost}:${(silent.address() as net.AddressInfo).port}`;
    const requester = client({ ...fastBackoff, probeTimeoutMs: 100 });
    const silentRejection = await rejection(requester.request(address, fetch('k'), 100));
    expect(silentRejection.detail).toMatch(/no reply within 100 ms/);
    // Sent on a connected socket: it may have arrived, so it is not marked undelivered.
    expect(silentRejection.undelivered).toBe(false);
    // The probe goes unanswered, the connection is dropped, and after the backoff a new one is dialled.
    await waitFor(() => closed === 1);
    expect(sockets).toHaveLength(1);
    let dialled = false;
    for (let attempt = 0; attempt < 100 && !dialled; attempt++) {
      await rejection(requester.request(address, fetch('k'), 50));
      dialled = sockets.length >= 2;
      if (!dialled) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(sockets.length).toBeGreaterThanOrEqual(2);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

it('reconnects to a peer that restarts, within bounded polling', async () => {
  // Proves the pooled connection recovers by itself after the peer goes away and comes back.
  const port = await getFreePort();
  const address = `${loopbackHost}:${port}`;
  const first = await serving(echo, { port });
  const requester = client(fastBackoff);
  expect(echoedKey(await requester.request(address, fetch('one'), timeoutMs))).toBe('one');
  await first.close();
  await serving(echo, { port });
  let reply: RpcReply | undefined;
  const deadline = Date.now() + timeoutMs;
  while (!reply && Date.now() < deadline) {
    reply = await requester.request(address, fetch('two'), timeoutMs).catch(() => undefined);
    if (!reply) await new Promise((resolve) => setTimeout(resolve, waitStepMs));
  }
  expect(reply && echoedKey(reply)).toBe('two');
});

it('closes the connection of a peer sending garbage and keeps serving others', async () => {
  // Proves a malformed or oversize frame ends only that connection, never the server.
  const server = await serving(echo);
  const requester = client();
  for (const garbage of [
    Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    Buffer.from([0, 0, 0, 3, 0x83, 0xa2, 0x69]),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
    framed({ id: 1, kind: 'request', body: { type: 'explode' } }),
    framed({ id: 1, kind: 'reply', body: { type: 'stored' } }),
  ]) {
    const socket = net.connect({ host: loopbackHost, port: server.port });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(garbage);
    await closed;
    expect(echoedKey(await requester.request(server.address, fetch('still'), timeoutMs))).toBe('still');
  }
  await waitFor(() => server.servedConnections === 1);
});

it('rejects pending requests when the transport closes, and every request after', async () => {
  // Proves close() leaves no request waiting for its timeout.
  let received = 0;
  const server = await serving(() => {
    received++;
    return new Promise<RpcReply>(() => undefined);
  });
  const requester = client();
  const pending = requester.request(server.address, { type: 'nodeInfo' }, 60_000);
  await waitFor(() => received === 1);
  await requester.close();
  const error = await rejection(pending);
  expect(error.code).toBe('KAI_PEER_UNREACHABLE');
  expect(error.detail).toMatch(/transport closed/);
  expect((await rejection(requester.request(server.address, { type: 'nodeInfo' }, timeoutMs))).detail).toMatch(/transport closed/);
});

it('queues requests past requestsInFlightPerPeerMax and sends them as replies come back', async () => {
  // Proves the per-peer bound makes requests wait their turn instead of failing, in order.
  let running = 0;
  let runningMax = 0;
  const server = await serving(async (request) => {
    running++;
    runningMax = Math.max(runningMax, running);
    await new Promise((resolve) => setTimeout(resolve, 2));
    running--;
    return echo(request);
  });
  const requester = client({ requestsInFlightPerPeerMax: 2 });
  const keys = await Promise.all(Array.from({ length: 30 }, (_, index) => requester.request(server.address, fetch(`q${index}`), timeoutMs)));
  expect(keys.map(echoedKey)).toEqual(Array.from({ length: 30 }, (_, index) => `q${index}`));
  expect(runningMax).toBe(2);
});

it('fails a queued request at its timeout as never delivered, and refuses past the waiting bound', async () => {
  // Proves the waiting line is bounded by count and that its requests keep their deadline.
  const server = await serving(() => new Promise<RpcReply>(() => undefined));
  const requester = client({ requestsInFlightPerPeerMax: 1, requestsWaitingPerPeerMax: 2 });
  void requester.request(server.address, { type: 'nodeInfo' }, 60_000).catch(() => undefined);
  const queued = requester.request(server.address, { type: 'nodeInfo' }, 200);
  void requester.request(server.address, { type: 'nodeInfo' }, 60_000).catch(() => undefined);
  const refused = await rejection(requester.request(server.address, { type: 'nodeInfo' }, timeoutMs));
  expect(refused.detail).toMatch(/2 requests already waiting/);
  expect(refused.undelivered).toBe(true);
  const timedOut = await rejection(queued);
  expect(timedOut.code).toBe('KAI_PEER_UNREACHABLE');
  expect(timedOut.detail).toMatch(/not sent within 200 ms/);
  expect(timedOut.undelivered).toBe(true);
});

it('handles at most requestsInFlightPerConnectionMax requests of a connection at once', async () => {
  // Proves the served side bounds concurrency per connection and still answers everything.
  let running = 0;
  let runningMax = 0;
  const server = await serving(
    async (request) => {
      running++;
      runningMax = Math.max(runningMax, running);
      await new Promise((resolve) => setTimeout(resolve, 2));
      running--;
      return echo(request);
    },
    { requestsInFlightPerConnectionMax: 3 },
  );
  const requester = client();
  const keys = await Promise.all(Array.from({ length: 20 }, (_, index) => requester.request(server.address, fetch(`k${index}`), timeoutMs)));
  expect(keys.map(echoedKey)).toEqual(Array.from({ length: 20 }, (_, index) => `k${index}`));
  expect(runningMax).toBe(3);
});

it('closes connections past peerConnectionsMax', async () => {
  // Proves the served side bounds the connections peers hold open to it.
  const server = await serving(echo, { peerConnectionsMax: 1 });
  const first = client();
  expect(echoedKey(await first.request(server.address, fetch('a'), timeoutMs))).toBe('a');
  const second = client();
  const error = await rejection(second.request(server.address, fetch('b'), timeoutMs));
  expect(error.code).toBe('KAI_PEER_UNREACHABLE');
  expect(server.servedConnections).toBe(1);
});

it('answers with an error a reply too large to send, instead of timing out', async () => {
  // Proves an oversize reply is refused by its sender and the requester hears why.
  const server = await serving(() => ({ type: 'versions', versions: [versionOf(Buffer.alloc(frameBytesMax))] }));
  const requester = client();
  const error = await rejection(requester.request(server.address, fetch('k'), timeoutMs));
  expect(error.code).toBe('KAI_BAD_FRAME');
  expect(error.detail).toMatch(/over the frame cap/);
});
