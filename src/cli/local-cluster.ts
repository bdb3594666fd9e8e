/**
 * `kai cluster --nodes 3`: a local cluster in the foreground, to try kai in one command. Each node
 * is its own `kai start` process on 127.0.0.1 with a data dir under the base dir and its log in
 * that dir; every node after the first joins through the first with `--seed`. The nodes share
 * the secret in <base dir>/cluster-secret, made on the first run. SIGINT or SIGTERM
 * stops them all gracefully; every node that ends on its own is reported, with its exit code or
 * the signal that ended it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readClusterSecret } from '../auth/cluster-secret';
import { ConfigError } from '../config/fields';
import { clusterStatus } from './status-command';

export const clusterNodesMax = 16;
/** How long a node may take to accept memcache connections before the cluster gives up. */
export const nodeReadyTimeoutMs = 15_000;
/** How long the nodes of a new cluster may take to see each other up through gossip. */
export const linkTimeoutMs = 30_000;
const readyPollIntervalMs = 100;
/** How long the cluster waits for its nodes to stop before killing them. */
export const stopTimeoutMs = 10_000;

const clusterHost = '127.0.0.1';

export interface LocalClusterOptions {
  readonly nodes: number;
  readonly baseDir: string;
  /** First internal port; consecutive for the next nodes. When absent, the last run's or free ones. */
  readonly firstPort?: number;
  /** First memcache port; consecutive for the next nodes. When absent, the last run's or free ones. */
  readonly firstMemcachePort?: number;
}

interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly memcachePort: number;
  /** The admin HTTP port on 127.0.0.1 (/metrics, /health, /ready, /status). */
  readonly adminPort: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<NodeExit>;
}

/** How a node's process ended: its exit code, or the signal that ended it. */
export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** `exited with code 1`, `was killed by SIGKILL`: a node's end in words. */
export function describeExit(exit: NodeExit): string {
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return 'could not be started';
}

export function parseNodeCount(text: string): number {
  const count = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(count >= 1 && count <= clusterNodesMax)) {
    throw new ConfigError(`--nodes: must be an integer from 1 to ${clusterNodesMax}, got ${text}`);
  }
  return count;
}

export function parseFirstPort(text: string, flag: string, nodes: number): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port + nodes - 1 <= 65535)) throw new ConfigError(`${flag}: must leave ${nodes} ports below 65536, got ${text}`);
  return port;
}

/** A port free on 127.0.0.1 now; another process may still take it before the node binds it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, clusterHost, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function portsFor(nodes: number, first: number | undefined): Promise<number[]> {
  const ports: number[] = [];
  for (let index = 0; index < nodes; index++) ports.push(first === undefined ? await freePort() : first + index);
  return ports;
}

/** Where the ports of the last run are kept, next to the nodes' data dirs. */
const portsFileName = 'cluster-ports.json';

interface ClusterPorts {
  readonly ports: number[];
  readonly memcachePorts: number[];
  readonly adminPorts: number[];
}

function isPortList(value: unknown, nodes: number): value is number[] {
  return Array.isArray(value) && value.length === nodes && value.every((port) => Number.isInteger(port) && port >= 1 && port <= 65535);
}

/**
 * The ports of the last run in this base dir, when it had as many nodes. A node's id is its
 * internal address and its data dir keeps the member list: with new ports on every run, old ids
 * would stay in that list as members that are down for good.
 */
async function savedPorts(baseDir: string, nodes: number): Promise<ClusterPorts | undefined> {
  try {
    const saved = JSON.parse(fs.readFileSync(path.join(baseDir, portsFileName), 'utf8')) as Partial<Record<string, unknown>>;
    if (isPortList(saved.ports, nodes) && isPortList(saved.memcachePorts, nodes)) {
      // A run from before admin ports were saved gets new ones.
      const adminPorts = isPortList(saved.adminPorts, nodes) ? saved.adminPorts : await portsFor(nodes, undefined);
      return { ports: saved.ports, memcachePorts: saved.memcachePorts, adminPorts };
    }
  } catch {
    // No saved ports (a first run) or an unreadable file: new ports are picked.
  }
  return undefined;
}

async function clusterPorts(options: LocalClusterOptions): Promise<ClusterPorts> {
  const saved = await savedPorts(options.baseDir, options.nodes);
  const ports = options.firstPort === undefined && saved ? saved.ports : await portsFor(options.nodes, options.firstPort);
  const memcachePorts =
    options.firstMemcachePort === undefined && saved ? saved.memcachePorts : await portsFor(options.nodes, options.firstMemcachePort);
  // Kept from run to run too, so a Prometheus scraping them need not be told again.
  const adminPorts = saved?.adminPorts ?? (await portsFor(options.nodes, undefined));
  fs.mkdirSync(options.baseDir, { recursive: true });
  fs.writeFileSync(path.join(options.baseDir, portsFileName), `${JSON.stringify({ ports, memcachePorts, adminPorts })}\n`);
  return { ports, memcachePorts, adminPorts };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: clusterHost, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(readyPollIntervalMs * 5, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Waits until the first node sees every node up and owning its buckets, so that the cluster
 * printed as ready really replicates: before gossip links them, each node would refuse writes it
 * cannot replicate.
 */
async function waitUntilLinked(seed: string, nodeCount: number, clusterSecret: Buffer): Promise<void> {
  const deadlineMs = Date.now() + linkTimeoutMs;
  while (Date.now() < deadlineMs) {
    const rows = (await clusterStatus(seed, { clusterSecret }).catch(() => undefined))?.members ?? [];
    if (rows.length === nodeCount && rows.every((row) => row.status === 'up' && row.ring === 'owner')) return;
    await new Promise((resolve) => setTimeout(resolve, readyPollIntervalMs));
  }
  throw new Error(`the nodes did not all see each other up within ${linkTimeoutMs} ms`);
}

async function waitUntilReady(node: ClusterNode): Promise<void> {
  let exit: NodeExit | undefined;
  void node.exited.then((ended) => (exit = ended));
  const deadlineMs = Date.now() + nodeReadyTimeoutMs;
  while (Date.now() < deadlineMs) {
    if (exit !== undefined) {
      throw new Error(`${node.name} ${describeExit(exit)} before it was ready; see ${node.dataDir}/kai.log`);
    }
    if (await accepts(node.memcachePort)) return;
    await new Promise((resolve) => setTimeout(resolve, readyPollIntervalMs));
  }
  throw new Error(`${node.name} did not accept connections within ${nodeReadyTimeoutMs} ms`);
}

interface NodePlan {
  readonly index: number;
  readonly port: number;
  readonly memcachePort: number;
  readonly adminPort: number;
  /** The first node's internal address, for every node after it. */
  readonly seed: string | undefined;
}

/** The cluster's secret file under the base dir, made on the first run (32 random bytes, base64). */
function clusterSecretFile(baseDir: string): string {
  const file = path.resolve(baseDir, 'cluster-secret');
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return file;
}

function startClusterNode(kaiBin: string, plan: NodePlan, options: LocalClusterOptions, secretFile: string): ClusterNode {
  const { index, port, memcachePort, adminPort, seed } = plan;
  const name = `node${index + 1}`;
  const dataDir = path.resolve(options.baseDir, name);
  fs.mkdirSync(dataDir, { recursive: true });
  const args = [
    kaiBin,
    'start',
    ...['--hostname', clusterHost, '--port', String(port), '--memcache-port', String(memcachePort), '--admin-port', String(adminPort)],
    ...['--data-dir', dataDir, '--log-file', path.join(dataDir, 'kai.log'), '--cluster-secret-file', secretFile],
    ...(seed === undefined ? [] : ['--seed', seed]),
  ];
  // In a process group of its own, so a terminal's Ctrl-C reaches only this process, which then
  // sends each node one SIGTERM: a second signal would make a node skip its graceful stop.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  const exited = new Promise<NodeExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  return { name, port, memcachePort, adminPort, dataDir, child, exited };
}

function stopAll(nodes: readonly ClusterNode[]): Promise<void> {
  for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGTERM');
  const killer = setTimeout(() => {
    for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL');
  }, stopTimeoutMs);
  return Promise.all(nodes.map((node) => node.exited)).then(() => clearTimeout(killer));
}

/**
 * Starts the cluster and resolves with the exit code once it has stopped: 0 after SIGINT or
 * SIGTERM, 1 when a node failed to start or exited by itself.
 */
export async function runLocalCluster(kaiBin: string, options: LocalClusterOptions, print: (line: string) => void): Promise<number> {
  const { ports, memcachePorts, adminPorts } = await clusterPorts(options);
  const seed = `${clusterHost}:${ports[0]}`;
  fs.mkdirSync(options.baseDir, { recursive: true });
  const secretFile = clusterSecretFile(options.baseDir);
  const nodes: ClusterNode[] = [];
  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (): void => {
      if (stopping) return;
      stopping = true;
      print('stopping every node');
      void stopAll(nodes).then(() => resolve(0));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // Should this process die of an error, its nodes must not outlive it unseen.
  process.on('exit', () => {
    for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGTERM');
  });
  try {
    for (let index = 0; index < options.nodes; index++) {
      const plan = {
        index,
        port: ports[index],
        memcachePort: memcachePorts[index],
        adminPort: adminPorts[index],
        seed: index === 0 ? undefined : seed,
      };
      const node = startClusterNode(kaiBin, plan, options, secretFile);
      nodes.push(node);
      await waitUntilReady(node);
    }
    await waitUntilLinked(seed, nodes.length, readClusterSecret(secretFile));
  } catch (error) {
    await stopAll(nodes);
    throw error;
  }
  print(`kai cluster of ${nodes.length} nodes on ${clusterHost} (data and logs under ${path.resolve(options.baseDir)})`);
  for (const node of nodes) {
    print(
      `${node.name}: memcache ${clusterHost}:${node.memcachePort}  internal ${clusterHost}:${node.port}  ` +
        `admin http://${clusterHost}:${node.adminPort}/  pid ${node.child.pid}`,
    );
  }
  print(`status: kai status --node ${seed} --cluster-secret-file ${secretFile}    stop: Ctrl-C`);
  // Every node that ends by itself is reported as it ends; the cluster ends once all have.
  let running = nodes.length;
  let endedByItself = false;
  const allEnded = new Promise<number>((resolve) => {
    for (const node of nodes) {
      void node.exited.then((exit) => {
        running--;
        if (stopping) return;
        endedByItself = true;
        const others = running === 0 ? 'no node is left' : `${running} still running; Ctrl-C stops them`;
        print(`${node.name} (pid ${node.child.pid}) ${describeExit(exit)}; see ${node.dataDir}/kai.log; ${others}`);
        if (running === 0) resolve(1);
      });
    }
  });
  const code = await Promise.race([stopped, allEnded]);
  return endedByItself ? 1 : code;
}
