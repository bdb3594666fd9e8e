// A 3-node cluster of real processes with --cluster-secret-file: frames from a process without the secret change nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as memjs from 'memjs';
import { Packr } from 'msgpackr';
import { frameLengthBytes } from '../../src/rpc/frames';
import { eventually } from '../support/admin';
import { startCluster, statusOf, type ClusterNode } from '../support/cluster';
import { kaiBin, killStartedKai, residentBytes, runKai, startKai } from '../support/process';
import { RawClient } from '../support/raw-client';
import { getFreePort, spawnServer } from '../support/servers';

const quietLogger = { log: (): void => undefined };
/** A quorum write through a loaded cluster can take longer than memjs's default of half a second. */
const clientTimeoutSeconds = 8;
const membersUpTimeoutMs = 30_000;
const secretValue = 'the value only clients may read';

let baseDir: string;
let nodes: ClusterNode[];
let client: memjs.Client;

/** A frame around `body`, as any process that knows the wire format can build one. */
function framed(body: unknown): Buffer {
  const packed = new Packr({ useRecords: false }).pack({ id: 1, kind: 'request', body });
  const prefix = Buffer.alloc(frameLengthBytes);
  prefix.writeUInt32BE(packed.length, 0);
  return Buffer.concat([prefix, packed]);
}

const now = Date.now();
const tampered = { clock: [['intruder', 2 ** 40, now]], value: Buffer.from('TAMPERED'), flags: 0, expiresAtMs: 0, tombstone: false, writtenAtMs: now };
const attacks: Record<string, unknown> = {
  replicaFetch: { type: 'replicaFetch', key: Buffer.from('secret') },
  replicaStore: { type: 'replicaStore', key: Buffer.from('secret'), bucket: 0, versions: [tampered] },
  storeMany: { type: 'storeMany', items: [{ key: Buffer.from('planted'), bucket: 0, versions: [tampered] }] },
  flushAll: { type: 'flushAll', deadlineMs: 0 },
  gossip: { type: 'gossip', members: [] },
  addSeed: { type: 'addSeed', address: '127.0.0.1:9' },
  nodeInfo: { type: 'nodeInfo' },
};

beforeAll(async () => {
  baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-cluster-secret-'));
  fs.writeFileSync(path.join(baseDir, 'cluster-secret'), 'a secret shared by the three nodes\n');
  // Nodes and the kai commands the helpers run both start in baseDir, so both read this file.
  fs.writeFileSync(path.join(baseDir, 'kai.config.json'), JSON.stringify({ cluster_secret_file: 'cluster-secret' }));
  nodes = await startCluster({ baseDir, size: 3, args: ['--n', '3', '--r', '2', '--w', '2', '--gossip-interval', '200'] });
  client = memjs.Client.create(`127.0.0.1:${nodes[0].memcachePort}`, { logger: quietLogger, retries: 0, timeout: clientTimeoutSeconds });
  await client.set('secret', secretValue, {});
}, 120_000);

afterAll(async () => {
  client?.close();
  await killStartedKai();
  fs.rmSync(baseDir, { recursive: true, force: true });
});

it.each(Object.keys(attacks))('closes a connection that sends %s without the secret, unanswered', async (name) => {
  // Proves each request the measured attacks used is never read, on every node.
  for (const node of nodes) {
    const intruder = await RawClient.connect(node.port);
    intruder.send(framed(attacks[name]));
    const received = await intruder.readUntil(() => intruder.closed);
    expect(received).toHaveLength(0);
  }
});

it('leaves the data and the membership as they were', async () => {
  // Proves none of the frames above took effect: the value, the key never planted, three members.
  expect((await client.get('secret')).value?.toString()).toBe(secretValue);
  expect((await client.get('planted')).value).toBeNull();
  // A node starved of the CPU for a moment may suspect a peer; all three must be up again soon.
  for (const node of nodes) {
    let statuses: string[] = [];
    const allUp = await eventually(async () => {
      statuses = (await statusOf(node.port, baseDir)).map((member) => member.status);
      return statuses.every((status) => status === 'up');
    }, membersUpTimeoutMs);
    expect({ allUp, statuses }).toEqual({ allUp: true, statuses: ['up', 'up', 'up'] });
  }
});

it('lets kai commands in with the secret and refuses them without it', async () => {
  // Proves the CLI proves the same secret, from its flag as from the config file, and fails plainly without it.
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-no-config-'));
  try {
    const withFlag = await runKai(
      ['status', '--node', nodes[1].id, '--json', '--cluster-secret-file', path.join(baseDir, 'cluster-secret')],
      { cwd: elsewhere },
    );
    expect(withFlag.code).toBe(0);
    expect((JSON.parse(withFlag.stdout) as { members: unknown[] }).members).toHaveLength(3);
    const without = await runKai(['status', '--node', nodes[1].id], { cwd: elsewhere });
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/cannot reach .*cluster-secret-file/);
    fs.writeFileSync(path.join(elsewhere, 'wrong-secret'), 'not the secret of this cluster');
    const wrong = await runKai(['status', '--node', nodes[1].id, '--cluster-secret-file', 'wrong-secret'], { cwd: elsewhere });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/wrong cluster secret/);
  } finally {
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});

it('refuses to start with a secret file too short to be one', async () => {
  // Proves a weak secret is a settings error, said before anything opens.
  fs.writeFileSync(path.join(baseDir, 'short-secret'), 'short\n');
  const run = await runKai(['start', '--data-dir', path.join(baseDir, 'never'), '--cluster-secret-file', 'short-secret'], { cwd: baseDir });
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/short-secret: 5 bytes, fewer than 16/);
});

it('answers the same frame on a node started without a secret', async () => {
  // Proves the frames above are ones a node reads: the refusal comes from the secret alone.
  // Away from baseDir, whose config file names the secret.
  const openDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-open-'));
  try {
    const open = await startKai({ dataDir: path.join(openDir, 'data') });
    const peer = await RawClient.connect(open.port);
    peer.send(framed(attacks.nodeInfo));
    const reply = await peer.readUntil((received) => received.length >= frameLengthBytes && received.length >= frameLengthBytes + received.readUInt32BE(0));
    expect(new Packr({ useRecords: false }).unpack(reply.subarray(frameLengthBytes))).toMatchObject({ kind: 'reply', body: { type: 'nodeInfo' } });
    peer.close();
    await open.stop();
  } finally {
    fs.rmSync(openDir, { recursive: true, force: true });
  }
});

it('listens for clients and for peers on the interfaces it is given', async () => {
  // Proves --memcache-host and --internal-host bind each port apart from --hostname.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-interfaces-'));
  const [memcachePort, port] = [await getFreePort(), await getFreePort()];
  try {
    const server = await spawnServer({
      label: 'kai',
      command: process.execPath,
      args: [kaiBin, 'start', '--hostname', '127.0.0.1', '--port', String(port), '--memcache-port', String(memcachePort)]
        .concat(['--memcache-host', '127.0.0.2', '--internal-host', '127.0.0.3', '--data-dir', path.join(dir, 'data')]),
      cwd: dir,
      readyPort: memcachePort,
      readyHost: '127.0.0.2',
    });
    await expect(RawClient.connect(memcachePort, '127.0.0.1')).rejects.toThrow(/ECONNREFUSED/);
    await expect(RawClient.connect(port, '127.0.0.1')).rejects.toThrow(/ECONNREFUSED/);
    const peer = await RawClient.connect(port, '127.0.0.3');
    peer.send(framed(attacks.nodeInfo));
    const reply = await peer.readUntil((received) => received.length >= frameLengthBytes && received.length >= frameLengthBytes + received.readUInt32BE(0));
    // The node's id stays hostname:port, whatever interface it listens on.
    expect(new Packr({ useRecords: false }).unpack(reply.subarray(frameLengthBytes))).toMatchObject({ body: { id: `127.0.0.1:${port}` } });
    peer.close();
    await server.stop();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('holds no more than its receive budget for peers that start large frames and never finish them', async () => {
  // Proves, on a real node without a secret, that 20 half-sent frames of 20 MiB cost one budget, not 400 MiB.
  const megabyte = 1024 * 1024;
  const openDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-half-frames-'));
  const holders: RawClient[] = [];
  try {
    const open = await startKai({ dataDir: path.join(openDir, 'data'), args: ['--max-item-size', '16m', '--siblings-max', '1'] });
    const before = residentBytes(open.pid);
    const prefix = Buffer.alloc(frameLengthBytes);
    prefix.writeUInt32BE(20 * megabyte, 0);
    for (let index = 0; index < 20; index++) {
      const holder = await RawClient.connect(open.port);
      holder.send(Buffer.concat([prefix, Buffer.alloc(8 * megabyte, index)]));
      holders.push(holder);
    }
    // Another peer is answered meanwhile: a complete frame needs no room in the budget.
    const peer = await RawClient.connect(open.port);
    peer.send(framed(attacks.nodeInfo));
    await peer.readUntil((received) => received.length >= frameLengthBytes && received.length >= frameLengthBytes + received.readUInt32BE(0));
    peer.close();
    // Held without the budget: 160 MiB. With it: one frame reserved, a socket read per other connection.
    const grownBytes = residentBytes(open.pid) - before;
    expect(grownBytes).toBeLessThan(80 * megabyte);
    for (const holder of holders) holder.close();
    await open.stop();
  } finally {
    for (const holder of holders) holder.close();
    fs.rmSync(openDir, { recursive: true, force: true });
  }
});
