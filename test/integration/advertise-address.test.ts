// Proves --advertise-address: three nodes listening on 127.0.0.1 but known by other loopback addresses, reached there only through forwarders as through NAT, form a cluster under those ids and serve.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allUp, pollStatusAt } from '../support/cluster';
import { startForwarder, type Forwarder } from '../support/forwarder';
import { getFreePort, killStartedKai, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

/** How long three fresh nodes may take to see each other up and own their buckets on a loaded machine. */
const formedMsMax = 40_000;

let workDir: string;
const forwarders: Forwarder[] = [];
const running: KaiProcess[] = [];

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-advertise-'));
});

afterAll(async () => {
  await Promise.all(running.map((node) => node.stop().catch(() => undefined)));
  await killStartedKai();
  await Promise.all(forwarders.map((forwarder) => forwarder.close()));
  fs.rmSync(workDir, { recursive: true, force: true });
});

test('nodes bound to 127.0.0.1 and advertising 127.0.0.2 to .4 form a cluster under the advertised ids and serve', async () => {
  const ports = [await getFreePort(), await getFreePort(), await getFreePort()];
  const advertised = ports.map((_, index) => `127.0.0.${index + 2}`);
  const ids = ports.map((port, index) => `${advertised[index]}:${port}`);
  // Nothing listens on the advertised addresses but these forwarders to the nodes' own.
  for (const [index, port] of ports.entries()) {
    forwarders.push(await startForwarder({ host: advertised[index], port }, { host: '127.0.0.1', port }));
  }
  for (const [index, port] of ports.entries()) {
    const seed = index === 0 ? [] : ['--seed', ids[0]];
    const args = ['--advertise-address', advertised[index], ...seed, '--gossip-interval', '200', '--log-level', 'warn'];
    running.push(await startKai({ dataDir: path.join(workDir, `node${index + 1}`), port, args }));
  }
  // Each node is asked where it listens; each names the others by their advertised ids.
  for (const port of ports) {
    const view = await pollStatusAt(`127.0.0.1:${port}`, (members) => allUp(members, ids), formedMsMax, workDir);
    expect(view.map((member) => [member.id, member.address, member.status, member.ring])).toEqual(
      [...ids].sort().map((id) => [id, id, 'up', 'owner']),
    );
  }
  // The advertised address reaches the node as well, through its forwarder.
  expect((await pollStatusAt(ids[2], (members) => allUp(members, ids), formedMsMax, workDir)).map((member) => member.id).sort()).toEqual(
    [...ids].sort(),
  );
  // Peers dialled one another at the advertised addresses only.
  for (const forwarder of forwarders) expect(forwarder.connections).toBeGreaterThan(0);

  const writer = await RawClient.connect(running[0].memcachePort);
  const reader = await RawClient.connect(running[2].memcachePort);
  try {
    expect(await writer.request('set advertised 0 0 5\r\nhello\r\n')).toBe('STORED\r\n');
    expect(await reader.request('get advertised\r\n', 'END\r\n')).toBe('VALUE advertised 0 5\r\nhello\r\nEND\r\n');
  } finally {
    writer.close();
    reader.close();
  }
}, 90_000);
