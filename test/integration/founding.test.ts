/**
 * Three fresh nodes at the default gossip interval, linked with `kai check-node` as soon as they
 * listen, before any of them has founded a ring: one founds it, the others join it, and a key set
 * through one node reads back through each of the others. (Before, none founded a ring: each
 * served keys alone, and a key set through one node read as missing through the others.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type ClusterNode } from '../support/cluster';
import { killStartedKai } from '../support/process';
import { RawClient } from '../support/raw-client';

let workDir: string;
let nodes: ClusterNode[];

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-founding-'));
  // No --gossip-interval: the default (1 s) leaves check-node time to link the nodes first.
  nodes = await startCluster({ baseDir: workDir, size: 3, args: ['--n', '3', '--r', '2', '--w', '2', '--log-level', 'warn'], convergeTimeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

test('a key set through one node reads back through every other', async () => {
  const writer = await RawClient.connect(nodes[0].memcachePort);
  try {
    for (let index = 0; index < 50; index++) expect(await writer.request(`set founded:${index} 0 0 5\r\nvalue\r\n`)).toBe('STORED\r\n');
  } finally {
    writer.close();
  }
  for (const node of nodes.slice(1)) {
    const reader = await RawClient.connect(node.memcachePort);
    try {
      for (let index = 0; index < 50; index++) {
        expect(await reader.request(`get founded:${index}\r\n`, 'END\r\n')).toBe(`VALUE founded:${index} 0 5\r\nvalue\r\nEND\r\n`);
      }
    } finally {
      reader.close();
    }
  }
}, 60_000);
