// Servers under test: how to start each one, find its address, and stop it again.
// A target is a name bound to a factory; the load generator only sees the addresses
// it gets back and the protocol they speak, so a binary-protocol target or a
// multi-node cluster is one more entry in `targetFactories`.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// Process handling is shared with the integration and differential tests; that module is plain
// Node without jest, so the benchmark runs without any test framework loaded.
import { startCluster, type ClusterNode } from '../test/support/cluster';
import {
  getFreePort,
  killStartedProcessesNow as killServersNow,
  spawnServer,
  type ServerProcess,
} from '../test/support/servers';

export type WireProtocol = 'text' | 'binary';

export interface Address {
  host: string;
  port: number;
}

export interface RunningTarget {
  name: string;
  protocol: WireProtocol;
  // Connections are spread round-robin over these, so a cluster can expose every node.
  addresses: Address[];
  version: string;
  // The server processes, whose memory the benchmark reads from /proc; none for an external one.
  pids: number[];
  stop(): Promise<void>;
}

export interface TargetOptions {
  // When set, the target is already running there and is not started or stopped.
  address?: Address;
  repositoryRoot: string;
}

export type TargetFactory = (options: TargetOptions) => Promise<RunningTarget>;

export const memcachedBinaryPath = '/usr/bin/memcached';
export const memcachedMemoryMb = 1024;
export const startupTimeoutMs = 30_000;
export const stopTimeoutMs = 10_000;

// Data directories of started nodes, removed by killStartedProcessesNow too.
const temporaryDirectories = new Set<string>();

export function parseAddress(text: string): Address {
  const separator = text.lastIndexOf(':');
  const port = Number(text.slice(separator + 1));
  if (separator <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`invalid address "${text}", expected host:port`);
  }
  return { host: text.slice(0, separator), port };
}

export function formatAddress(address: Address): string {
  return `${address.host}:${address.port}`;
}

// Synchronous last resort for signal and exit handlers, where nothing can be awaited.
export function killStartedProcessesNow(): void {
  killServersNow();
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.clear();
}

function removeTemporaryDirectory(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.delete(directory);
}

// Starts a server and waits until it accepts connections on `address`. stdout is ignored and
// stderr inherited so that a server's failure to start is visible.
function startAndWait(label: string, command: string, args: string[], cwd: string, address: Address): Promise<ServerProcess> {
  return spawnServer({
    label,
    command,
    args,
    cwd,
    output: 'stderr-to-parent',
    readyPort: address.port,
    readyHost: address.host,
    readyTimeoutMs: startupTimeoutMs,
  });
}

// SIGTERM by PID, then SIGKILL if the process has not exited within stopTimeoutMs.
async function stopServer(server: ServerProcess): Promise<void> {
  await server.stop('SIGTERM', stopTimeoutMs);
}

export function memcachedVersion(): string {
  try {
    return execFileSync(memcachedBinaryPath, ['-V'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function kaiVersion(repositoryRoot: string): string {
  try {
    const packageJson = require(path.join(repositoryRoot, 'package.json')) as { version?: string };
    return `kai ${packageJson.version ?? 'unknown'}`;
  } catch {
    return 'kai unknown';
  }
}

function alreadyRunning(name: string, address: Address, version: string): RunningTarget {
  return { name, protocol: 'text', addresses: [address], version: `${version} (external)`, pids: [], stop: async () => {} };
}

const startMemcached: TargetFactory = async (options) => {
  const version = memcachedVersion();
  if (options.address !== undefined) return alreadyRunning('memcached', options.address, version);
  const address = { host: '127.0.0.1', port: await getFreePort() };
  // One worker thread and no UDP, so the comparison is one core against one event loop.
  const args = ['-t', '1', '-U', '0', '-l', address.host, '-p', String(address.port), '-m', String(memcachedMemoryMb)];
  // memcached refuses to run as root unless told which user to stay.
  if (process.getuid?.() === 0) args.push('-u', os.userInfo().username);
  const server = await startAndWait('memcached', memcachedBinaryPath, args, options.repositoryRoot, address);
  return { name: 'memcached', protocol: 'text', addresses: [address], version, pids: [server.pid], stop: () => stopServer(server) };
};

// One kai node with its default settings but for `extraArgs`.
const kaiTarget = (name: string, extraArgs: readonly string[], description: string): TargetFactory => async (options) => {
  const version = `${kaiVersion(options.repositoryRoot)}${description}`;
  if (options.address !== undefined) return alreadyRunning(name, options.address, version);
  const address = { host: '127.0.0.1', port: await getFreePort() };
  const peerPort = await getFreePort();
  const dataDirectory = mkdtempSync(path.join(os.tmpdir(), 'kai-bench-'));
  temporaryDirectories.add(dataDirectory);
  const args = [
    path.join(options.repositoryRoot, 'bin', 'kai'),
    'start',
    '--memcache-port', String(address.port),
    '--port', String(peerPort),
    '--data-dir', dataDirectory,
    '--log-level', 'warn',
    ...extraArgs,
  ];
  let server: ServerProcess;
  try {
    server = await startAndWait('kai', process.execPath, args, options.repositoryRoot, address);
  } catch (error) {
    removeTemporaryDirectory(dataDirectory);
    throw error;
  }
  const stop = async (): Promise<void> => {
    await stopServer(server);
    removeTemporaryDirectory(dataDirectory);
  };
  return { name, protocol: 'text', addresses: [address], version, pids: [server.pid], stop };
};

const startKai = kaiTarget('kai', [], '');

// Nodes in the cluster target, and the quorum they run with: every key on all three nodes, a read
// or write answered once two of them have.
export const clusterSize = 3;
export const clusterQuorum = { n: 3, r: 2, w: 2 } as const;

// A cluster of kai nodes started and linked as an operator would (`kai check-node`), benched
// through every node's memcache port: the load generator spreads its connections over them, so
// each node coordinates its share of the requests. `extraArgs` go to every node: the variants
// below run anti-entropy more often, or only when a node comes back, to measure what it costs.
function kaiClusterTarget(name: string, extraArgs: readonly string[], description: string): TargetFactory {
  return async (options) => {
    const version = `${kaiVersion(options.repositoryRoot)} (${clusterSize} nodes, N=${clusterQuorum.n} R=${clusterQuorum.r} W=${clusterQuorum.w}${description})`;
    if (options.address !== undefined) throw new Error(`${name} starts its own nodes; it has no external address`);
    const baseDirectory = mkdtempSync(path.join(os.tmpdir(), 'kai-bench-cluster-'));
    temporaryDirectories.add(baseDirectory);
    const { n, r, w } = clusterQuorum;
    const args = ['--n', String(n), '--r', String(r), '--w', String(w), '--log-level', 'warn', ...extraArgs];
    let nodes: ClusterNode[];
    try {
      nodes = await startCluster({ baseDir: baseDirectory, size: clusterSize, args, convergeTimeoutMs: startupTimeoutMs });
    } catch (error) {
      // Targets run one at a time, so the only servers running now are this cluster's nodes.
      killServersNow();
      removeTemporaryDirectory(baseDirectory);
      throw error;
    }
    const stop = async (): Promise<void> => {
      await Promise.allSettled(nodes.map((node) => node.stop('SIGTERM', stopTimeoutMs)));
      removeTemporaryDirectory(baseDirectory);
    };
    const addresses = nodes.map((node) => ({ host: '127.0.0.1', port: node.memcachePort }));
    return { name, protocol: 'text', addresses, version, pids: nodes.map((node) => node.pid), stop };
  };
}

// The same server driven over the binary protocol (as memjs speaks it), under its own name.
function overBinary(name: string, factory: TargetFactory): TargetFactory {
  return async (options) => ({ ...(await factory(options)), name, protocol: 'binary' });
}

export const targetFactories: ReadonlyMap<string, TargetFactory> = new Map([
  ['memcached', startMemcached],
  ['kai', startKai],
  // Every commit fsynced before the reply: acknowledged writes survive power loss too.
  ['kai-power', kaiTarget('kai-power', ['--durability', 'power'], ' (--durability power)')],
  // Anti-entropy every 10 s (the default), hinted handoff and read repair on: as deployed.
  ['kai-cluster', kaiClusterTarget('kai-cluster', [], '')],
  // Anti-entropy exchanges every second: ten times the default's background work.
  ['kai-cluster-ae-1s', kaiClusterTarget('kai-cluster-ae-1s', ['--anti-entropy-interval', '1000'], ', anti-entropy every 1 s')],
  // Anti-entropy only when a peer comes back (none does here): the request path alone.
  ['kai-cluster-no-ae', kaiClusterTarget('kai-cluster-no-ae', ['--anti-entropy-interval', '0'], ', anti-entropy off')],
  ['memcached-binary', overBinary('memcached-binary', startMemcached)],
  ['kai-binary', overBinary('kai-binary', startKai)],
]);

// Targets driven over the binary protocol; every other one speaks text. Known before a target is
// started, so that a workload can refuse a protocol it has no requests for.
export const binaryTargets: ReadonlySet<string> = new Set(['memcached-binary', 'kai-binary']);

export function targetProtocol(name: string): WireProtocol {
  return binaryTargets.has(name) ? 'binary' : 'text';
}

// What `npm run bench` runs when no --targets is given: each server over text, then over binary.
export const defaultTargets: readonly string[] = ['memcached', 'kai', 'kai-cluster', 'memcached-binary', 'kai-binary'];

// Each kai target and the memcached target it is compared with.
export const comparedTargets: ReadonlyArray<{ kai: string; memcached: string }> = [
  { kai: 'kai', memcached: 'memcached' },
  { kai: 'kai-power', memcached: 'memcached' },
  // What syncing every commit costs.
  { kai: 'kai-power', memcached: 'kai' },
  { kai: 'kai-cluster', memcached: 'memcached' },
  { kai: 'kai-cluster-ae-1s', memcached: 'memcached' },
  { kai: 'kai-cluster-no-ae', memcached: 'memcached' },
  // What running anti-entropy costs the same workload.
  { kai: 'kai-cluster', memcached: 'kai-cluster-no-ae' },
  { kai: 'kai-cluster-ae-1s', memcached: 'kai-cluster-no-ae' },
  { kai: 'kai-binary', memcached: 'memcached-binary' },
];
