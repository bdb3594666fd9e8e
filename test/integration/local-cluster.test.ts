// Proves kai cluster reports every node that ends by itself, with the signal that killed it or its exit code, and ends once no node is left.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kaiBin, killStartedKai } from '../support/process';
import { delay, killByPid, spawnTracked, withTimeout } from '../support/servers';

/** How long three nodes may take to start and own their buckets on a loaded machine. */
const readyMsMax = 60_000;
const reportedMsMax = 15_000;
const pollMs = 50;

let workDir: string;
/** The cluster's nodes: its own children, which the tracked-process cleanup does not see. */
const nodePids: number[] = [];

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-local-cluster-'));
});

afterAll(async () => {
  await killStartedKai();
  for (const pid of nodePids) killByPid(pid);
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function waitForOutput(output: () => string, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!pattern.test(output()) && Date.now() < deadlineMs) await delay(pollMs);
  return output();
}

test('a node killed by a signal and one that exits are each reported; the cluster ends when none is left', async () => {
  const baseDir = path.join(workDir, 'cluster');
  const cluster = spawnTracked({ command: process.execPath, args: [kaiBin, 'cluster', '--nodes', '3', '--base-dir', baseDir], cwd: workDir });
  const printed = await waitForOutput(cluster.stdout, /stop: Ctrl-C/, readyMsMax);
  const pids = [...printed.matchAll(/^node\d: .* pid (\d+)$/gm)].map((match) => Number(match[1]));
  nodePids.push(...pids);
  expect(pids).toHaveLength(3);

  process.kill(pids[1], 'SIGKILL');
  const killed = `node2 (pid ${pids[1]}) was killed by SIGKILL; see ${path.join(baseDir, 'node2')}/kai.log; 2 still running; Ctrl-C stops them`;
  expect(await waitForOutput(cluster.stdout, /node2 \(pid/, reportedMsMax)).toContain(killed);

  // SIGTERM stops a node gracefully: it exits by itself with code 0, and that too is reported.
  process.kill(pids[2], 'SIGTERM');
  const stopped = `node3 (pid ${pids[2]}) exited with code 0; see ${path.join(baseDir, 'node3')}/kai.log; 1 still running; Ctrl-C stops them`;
  expect(await waitForOutput(cluster.stdout, /node3 \(pid/, reportedMsMax)).toContain(stopped);

  process.kill(pids[0], 'SIGKILL');
  const status = await withTimeout(cluster.exited, reportedMsMax, () => new Error('kai cluster did not end once every node had'));
  expect(cluster.stdout()).toContain(`node1 (pid ${pids[0]}) was killed by SIGKILL; see ${path.join(baseDir, 'node1')}/kai.log; no node is left`);
  expect(status).toEqual({ code: 1, signal: null });
}, 120_000);
