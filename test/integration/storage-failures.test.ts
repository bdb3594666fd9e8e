// A replica's storage failing in a real 3-node cluster: a full disk is logged, counted and reported; a store that cannot commit takes its node down, loudly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import { killStartedKai, runKai } from '../support/process';
import { linkCluster, pollStatus, showsStatuses, startNode, statuses, type ClusterNode } from '../support/cluster';
import { fillDisk, mountTmpfs, type Tmpfs } from '../support/tmpfs';

jest.setTimeout(180_000);

const args = ['--n', '3', '--r', '2', '--w', '2', '--gossip-interval', '300'];
/** Down after five silent rounds of 300 ms, plus rounds for the news to spread. */
const downSeenWithinMs = 15_000;
const convergeTimeoutMs = 30_000;
const valueBytes = 8 * 1024;

let workDir: string;
let disk: Tmpfs | undefined;
const clients: RawClient[] = [];

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-storage-failures-'));
});

afterAll(async () => {
  for (const client of clients.splice(0)) client.close();
  await killStartedKai();
  disk?.unmount();
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function connect(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
}

async function kaiStats(node: ClusterNode): Promise<Map<string, string>> {
  const client = await connect(node.memcachePort);
  const reply = await client.request('stats kai\r\n', 'END\r\n');
  client.close();
  return new Map([...reply.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((match) => [match[1], match[2]]));
}

async function pollStats(node: ClusterNode, accept: (stats: Map<string, string>) => boolean, timeoutMs = 20_000): Promise<Map<string, string>> {
  const deadlineMs = Date.now() + timeoutMs;
  let stats = await kaiStats(node);
  while (!accept(stats) && Date.now() < deadlineMs) {
    await delay(100);
    stats = await kaiStats(node);
  }
  return stats;
}

/** `set` of `count` keys with this prefix through `node`; returns each reply line. */
async function setKeys(node: ClusterNode, prefix: string, count: number): Promise<string[]> {
  const client = await connect(node.memcachePort);
  const replies: string[] = [];
  for (let index = 0; index < count; index++) {
    replies.push(await client.request(`set ${prefix}-${index} 0 0 ${valueBytes}\r\n${'v'.repeat(valueBytes)}\r\n`));
  }
  return replies;
}

test('a replica on a full disk logs and counts its refused stores while writes go on; once it cannot commit at all it is down everywhere, and says why', async () => {
  disk = mountTmpfs(32 * 1024 * 1024);
  const env = { KAI_FAULT_INJECTION: '1' };
  const nodes = await Promise.all([
    startNode({ dataDir: path.join(workDir, 'node1'), args }),
    startNode({ dataDir: path.join(workDir, 'node2'), args }),
    startNode({ dataDir: path.join(disk.dir, 'node3'), args, env }),
  ]);
  await linkCluster(nodes, workDir, convergeTimeoutMs);
  const [first, , third] = nodes;

  // Regression: with only one replica's disk full, its failed replica stores were logged nowhere.
  fillDisk(disk.dir);
  expect(await setKeys(first, 'full', 20)).toEqual(Array(20).fill('STORED\r\n'));
  const stats = await pollStats(third, (current) => Number(current.get('storage_disk_full_failures')) > 0);
  expect(stats.get('storage_state')).toBe('ok');
  expect(Number(stats.get('storage_disk_full_failures'))).toBeGreaterThan(0);
  expect(Number(stats.get('storage_operations_failed'))).toBeGreaterThan(0);
  expect(third.stdout()).toMatch(/"code":"SQLITE_FULL".*"msg":"storage commit failed"/);
  const okStatus = await runKai(['status', '--node', third.id], { cwd: workDir });
  expect(okStatus.stdout).toMatch(/storage ok on this node: \d+ failed commits \([1-9]\d* for a full disk\).*last error: SQLITE_FULL/);

  // A database file the worker can no longer open: every restart fails, and the store gives up.
  const databaseFile = path.join(third.dataDir, 'kai.sqlite3');
  fs.renameSync(databaseFile, `${databaseFile}.moved`);
  fs.mkdirSync(databaseFile);
  process.kill(third.pid, 'SIGUSR2');
  await pollStats(third, (current) => current.get('storage_state') === 'failed');
  const expectedView = { [nodes[0].id]: 'up', [nodes[1].id]: 'up', [third.id]: 'down' };
  const seenByFirst = await pollStatus(first.port, showsStatuses(expectedView), downSeenWithinMs, workDir);
  expect(statuses(seenByFirst)).toEqual(expectedView);
  const failedStatus = await runKai(['status', '--node', third.id, '--json'], { cwd: workDir });
  const parsed = JSON.parse(failedStatus.stdout) as { members: { id: string; status: string }[]; storage: { state: string; reason: string } };
  expect(parsed.members.find((member) => member.id === third.id)?.status).toBe('failed');
  expect(parsed.storage).toMatchObject({ state: 'failed', reason: expect.stringMatching(/commit worker lost 6 times/) as unknown });
  expect(third.stdout()).toMatch(/"msg":"storage failed: this node refuses every write and is down until restarted"/);
  // Coordinators route around the failed node, its own included: writes through either are stored on the two others.
  expect(await setKeys(first, 'after-first', 5)).toEqual(Array(5).fill('STORED\r\n'));
  expect(await setKeys(third, 'after-third', 5)).toEqual(Array(5).fill('STORED\r\n'));
});
