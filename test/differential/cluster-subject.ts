/**
 * A 3-node kai cluster (N=3, R=2, W=2) as a differential subject: the streams go to one node,
 * which coordinates every key through the others, so replies that pass through quorum reads and
 * writes are compared with memcached's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type ClusterNode } from '../support/cluster';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import type { RunningServer, ServerOptions } from './harness';

const clusterSize = 3;
const clusterQuorumArgs = ['--n', '3', '--r', '2', '--w', '2'] as const;
/** How long the nodes may take to see each other up; a loaded 2-core machine starts three slowly. */
const convergeTimeoutMs = 60_000;
/** How long each node may take, once every view is complete, to store a key through the ring. */
const serveTimeoutMs = 30_000;
const serveRetryDelayMs = 100;
const serveAttemptTimeoutMs = 5_000;

/**
 * Starts the cluster, links it with `kai check-node`, and resolves once every node has stored a
 * key of its own (so the ring is founded and every node coordinates writes). The stream is played
 * to the first node.
 */
export async function startKaiCluster(options: ServerOptions): Promise<RunningServer> {
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-differential-cluster-'));
  let nodes: ClusterNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
    fs.rmSync(baseDir, { recursive: true, force: true });
  };
  try {
    nodes = await startCluster({
      baseDir,
      size: clusterSize,
      args: [
        ...clusterQuorumArgs,
        ...['--log-level', 'warn', '--max-item-size', String(options.valueBytesMax)],
        ...(options.extraArgs?.kai ?? []),
      ],
      convergeTimeoutMs,
    });
    for (const node of nodes) await waitUntilStoring(node);
  } catch (error) {
    // Nodes of a startCluster that failed stay tracked: the test file's killStartedKai ends them.
    await stop().catch(() => undefined);
    throw error;
  }
  const [entry] = nodes;
  return { name: 'kai-cluster', port: entry.memcachePort, pid: entry.pid, stop };
}

/** Retries a `set` through `node` until it answers STORED: a node joining the ring refuses writes for a while. */
async function waitUntilStoring(node: ClusterNode): Promise<void> {
  const deadlineMs = Date.now() + serveTimeoutMs;
  const request = `set cluster_ready_${node.port} 0 0 1\r\nx\r\n`;
  let lastReply = '';
  while (Date.now() < deadlineMs) {
    const client = await RawClient.connect(node.memcachePort);
    try {
      lastReply = await client.request(request, '\r\n', serveAttemptTimeoutMs);
    } catch (error) {
      lastReply = String(error);
    } finally {
      client.close();
    }
    if (lastReply === 'STORED\r\n') return;
    await delay(serveRetryDelayMs);
  }
  throw new Error(`${node.id} did not store a key within ${serveTimeoutMs} ms; last reply: ${JSON.stringify(lastReply)}`);
}
