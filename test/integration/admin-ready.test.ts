// /ready on a 3-node cluster (N=3, R=2, W=2): every node ready, the survivor not ready once two nodes are killed -9, ready again once they return.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { adminRequest, eventually, scrape } from '../support/admin';
import { linkCluster, restartNode, startNode, type ClusterNode } from '../support/cluster';
import { getFreePort, killStartedKai } from '../support/process';

/** Fast gossip, so that a killed node is marked down within about a second (5 intervals). */
const gossipIntervalMs = 200;
/** How long the cluster may take to link, mark nodes down, or see them back: generous for a loaded machine. */
const convergeTimeoutMs = 30_000;

let baseDir: string;
const nodes: ClusterNode[] = [];
const argsOf = new Map<ClusterNode, string[]>();
const adminPortOf = new Map<ClusterNode, number>();

function nodeArgs(adminPort: number): string[] {
  return ['--n', '3', '--r', '2', '--w', '2', '--gossip-interval', String(gossipIntervalMs), '--log-level', 'warn', '--admin-port', String(adminPort)];
}

async function readiness(node: ClusterNode): Promise<{ status: number; body: { ready: boolean; reason?: string; code?: string; error?: string } }> {
  const response = await adminRequest(adminPortOf.get(node)!, '/ready');
  return { status: response.status, body: JSON.parse(response.body) };
}

async function allReady(of: readonly ClusterNode[]): Promise<boolean> {
  const answers = await Promise.all(of.map((node) => readiness(node)));
  return answers.every((answer) => answer.status === 200);
}

beforeAll(async () => {
  baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-admin-ready-'));
  for (let index = 1; index <= 3; index++) {
    const adminPort = await getFreePort();
    const args = nodeArgs(adminPort);
    const node = await startNode({ dataDir: path.join(baseDir, `node${index}`), args });
    nodes.push(node);
    argsOf.set(node, args);
    adminPortOf.set(node, adminPort);
  }
  await linkCluster(nodes, baseDir, convergeTimeoutMs);
}, 90_000);

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop().catch(() => undefined)));
  await killStartedKai();
  fs.rmSync(baseDir, { recursive: true, force: true });
}, 60_000);

test('goes false on the survivor when two of three nodes die, and true again when they return', async () => {
  expect(await eventually(() => allReady(nodes), convergeTimeoutMs)).toBe(true);
  const [survivor, second, third] = nodes;
  const survivorAdmin = adminPortOf.get(survivor)!;
  expect((await scrape(survivorAdmin)).get('kai_ready')).toBe(1);

  await second.kill();
  await third.kill();
  expect(await eventually(async () => (await readiness(survivor)).status === 503, convergeTimeoutMs)).toBe(true);
  const refused = await readiness(survivor);
  expect(refused.body).toEqual({ ready: false, code: 'KAI_NOT_READY', reason: 'quorum_unmet', error: expect.stringMatching(/fewer than W=2/) });
  const status = JSON.parse((await adminRequest(survivorAdmin, '/status')).body);
  expect(status.ready).toBe(false);
  expect(status.notReady.reason).toBe('quorum_unmet');
  expect(status.buckets.belowW).toBe(status.buckets.total);
  const metrics = await scrape(survivorAdmin);
  expect(metrics.get('kai_ready')).toBe(0);
  expect(metrics.get('kai_members{status="down"}')).toBe(2);
  expect(metrics.get('kai_buckets_below_quorum{quorum="w"}')).toBe(1024);
  // /health is about the process, which is fine.
  expect((await adminRequest(survivorAdmin, '/health')).status).toBe(200);

  // One back is enough for R=2 and W=2; the survivor says so as soon as it sees it up.
  const secondBack = await restartNode(second, argsOf.get(second)!);
  adminPortOf.set(secondBack, adminPortOf.get(second)!);
  nodes[1] = secondBack;
  expect(await eventually(() => allReady([survivor, secondBack]), convergeTimeoutMs)).toBe(true);

  const thirdBack = await restartNode(third, argsOf.get(third)!);
  adminPortOf.set(thirdBack, adminPortOf.get(third)!);
  nodes[2] = thirdBack;
  // Ready needs two of three; wait for all three seen up everywhere, then every node ready.
  const allSeenUp = async (): Promise<boolean> => {
    const scraped = await Promise.all(nodes.map((node) => scrape(adminPortOf.get(node)!)));
    return scraped.every((metrics) => metrics.get('kai_members{status="up"}') === 3);
  };
  expect(await eventually(allSeenUp, convergeTimeoutMs)).toBe(true);
  expect(await eventually(() => allReady(nodes), convergeTimeoutMs)).toBe(true);
}, 150_000);
