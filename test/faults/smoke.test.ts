/**
 * The fault harness end to end: three real `bin/kai` processes, each in its own network namespace
 * on one bridge, linked by `kai check-node` from the root namespace. A key written through one
 * node reads back through the others; node 3 cut off by iptables is seen down while writes still
 * meet W=2; healed, it is seen up again. Needs root, iproute2 and iptables (test/faults/README.md).
 */
import path from 'node:path';
import { allUp, showsStatuses, statuses } from '../support/cluster';
import { linkNodes, memcacheGet, memcacheRequest, memcacheSet, pollStatusAt } from './cluster';
import { useFaultSuite } from './fault-suite';
import { type NamespacedKai } from './netns';

/** Fast gossip keeps the file short: a silent node is marked down after 5 intervals (1 s). */
const gossipIntervalMs = 200;
const nodeArgs = ['--n', '3', '--r', '2', '--w', '2', '--gossip-interval', String(gossipIntervalMs), '--log-level', 'warn'];
const convergeTimeoutMs = 15_000;
/** Down after 1 s, plus rounds for the mark to spread and a status command to run. */
const detectTimeoutMs = 10_000;
/** After a heal a peer connection may sit in its reconnect backoff (at most 5 s) before gossip resumes. */
const healTimeoutMs = 15_000;

const suite = useFaultSuite('faults', 3);
let nodes: NamespacedKai[] = [];

beforeAll(async () => {
  const { network, workDir } = suite();
  nodes = await Promise.all(
    network.hosts.map((host) => network.startKaiIn(host, { dataDir: path.join(workDir, `node${host.index}`), args: nodeArgs })),
  );
  await linkNodes(nodes, workDir, convergeTimeoutMs);
}, 40_000);

test('nodes in separate namespaces serve one key: set through node 1, read through nodes 2 and 3', async () => {
  // Proves the bridge carries kai's replication between namespaces and the test reaches every node.
  const [first, second, third] = nodes;
  expect(new Set(nodes.map((node) => node.address)).size).toBe(3);
  expect(await memcacheSet(first, 'smoke:k', 'across-namespaces')).toBe('STORED\r\n');
  for (const reader of [second, third]) {
    expect(await memcacheGet(reader, 'smoke:k')).toBe('VALUE smoke:k 0 17\r\nacross-namespaces\r\nEND\r\n');
  }
});

test('node 3 isolated by iptables is seen down, writes still meet W=2, and healed it is seen up', async () => {
  // Proves isolate() cuts node links both ways while the host still reaches the node, and heal() undoes it.
  const { network: faults, workDir: cwd } = suite();
  const [first, second, third] = nodes;
  const ids = nodes.map((node) => node.id);
  const thirdDown = { [first.id]: 'up', [second.id]: 'up', [third.id]: 'down' };
  const othersDown = { [first.id]: 'down', [second.id]: 'down', [third.id]: 'up' };

  await faults.isolate(third);
  const firstView = await pollStatusAt(first, showsStatuses(thirdDown), detectTimeoutMs, cwd);
  expect(statuses(firstView)).toEqual(thirdDown);
  // The cut is symmetric: node 3 hears from neither other node.
  const thirdView = await pollStatusAt(third, showsStatuses(othersDown), detectTimeoutMs, cwd);
  expect(statuses(thirdView)).toEqual(othersDown);
  // The host is not cut: node 3 still answers the test process.
  expect(await memcacheRequest(third, 'version\r\n')).toMatch(/^VERSION \S+\r\n$/);

  expect(await memcacheSet(first, 'smoke:during', 'two-of-three')).toBe('STORED\r\n');
  expect(await memcacheGet(second, 'smoke:during')).toBe('VALUE smoke:during 0 12\r\ntwo-of-three\r\nEND\r\n');

  await faults.heal();
  for (const observer of [first, third]) {
    const view = await pollStatusAt(observer, (members) => allUp(members, ids), healTimeoutMs, cwd);
    expect(statuses(view)).toEqual({ [first.id]: 'up', [second.id]: 'up', [third.id]: 'up' });
  }
}, 45_000);
