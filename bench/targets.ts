// Servers under test: how to start each one, find its address, and stop it again.
// A target is a name bound to a factory; the load generator only sees the addresses
// it gets back and the protocol they speak, so a binary-protocol target or a
// multi-node cluster is one more entry in `targetFactories`.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export type WireProtocol = 'text';

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
const readinessPollIntervalMs = 50;

// Every process this module starts, so a SIGINT or a crash can still stop them by PID.
const startedProcesses = new Set<ChildProcess>();
// Data directories of started nodes, removed on the same paths.
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

export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tryConnect(address: Address): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(address.port, address.host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

// Polls until the port accepts a connection; fails early if the process died meanwhile.
async function waitUntilAccepting(address: Address, child: ChildProcess, label: string): Promise<void> {
  const deadline = Date.now() + startupTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${label} exited (code ${child.exitCode}, signal ${child.signalCode}) before accepting connections`);
    }
    if (await tryConnect(address)) return;
    await new Promise((resolve) => setTimeout(resolve, readinessPollIntervalMs));
  }
  throw new Error(`${label} did not accept connections on ${formatAddress(address)} within ${startupTimeoutMs} ms`);
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

// SIGTERM by PID, then SIGKILL if the process has not exited within stopTimeoutMs.
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || hasExited(child)) {
    startedProcesses.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && !hasExited(child)) process.kill(child.pid, 'SIGKILL');
  }, stopTimeoutMs);
  await exited;
  clearTimeout(timer);
  startedProcesses.delete(child);
}

// Synchronous last resort for signal and exit handlers, where nothing can be awaited.
export function killStartedProcessesNow(): void {
  for (const child of startedProcesses) {
    if (child.pid !== undefined && !hasExited(child)) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone between the check and the kill.
      }
    }
  }
  startedProcesses.clear();
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.clear();
}

function removeTemporaryDirectory(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
  temporaryDirectories.delete(directory);
}

function startProcess(command: string, args: string[], cwd: string): ChildProcess {
  // stdout is ignored and stderr inherited so that a server's failure to start is visible.
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  startedProcesses.add(child);
  child.once('exit', () => startedProcesses.delete(child));
  return child;
}

async function startAndWait(
  label: string,
  command: string,
  args: string[],
  cwd: string,
  address: Address,
): Promise<ChildProcess> {
  const child = startProcess(command, args, cwd);
  try {
    await waitUntilAccepting(address, child, label);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return child;
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
  return { name, protocol: 'text', addresses: [address], version: `${version} (external)`, stop: async () => {} };
}

const startMemcached: TargetFactory = async (options) => {
  const version = memcachedVersion();
  if (options.address !== undefined) return alreadyRunning('memcached', options.address, version);
  const address = { host: '127.0.0.1', port: await findFreePort() };
  // One worker thread and no UDP, so the comparison is one core against one event loop.
  const args = ['-t', '1', '-U', '0', '-l', address.host, '-p', String(address.port), '-m', String(memcachedMemoryMb)];
  // memcached refuses to run as root unless told which user to stay.
  if (process.getuid?.() === 0) args.push('-u', os.userInfo().username);
  const child = await startAndWait('memcached', memcachedBinaryPath, args, options.repositoryRoot, address);
  return { name: 'memcached', protocol: 'text', addresses: [address], version, stop: () => stopProcess(child) };
};

const startKai: TargetFactory = async (options) => {
  const version = kaiVersion(options.repositoryRoot);
  if (options.address !== undefined) return alreadyRunning('kai', options.address, version);
  const address = { host: '127.0.0.1', port: await findFreePort() };
  const peerPort = await findFreePort();
  const dataDirectory = mkdtempSync(path.join(os.tmpdir(), 'kai-bench-'));
  temporaryDirectories.add(dataDirectory);
  const args = [
    path.join(options.repositoryRoot, 'bin', 'kai'),
    'start',
    '--memcache-port', String(address.port),
    '--port', String(peerPort),
    '--data-dir', dataDirectory,
    '--log-level', 'warn',
  ];
  let child: ChildProcess;
  try {
    child = await startAndWait('kai', process.execPath, args, options.repositoryRoot, address);
  } catch (error) {
    removeTemporaryDirectory(dataDirectory);
    throw error;
  }
  const stop = async (): Promise<void> => {
    await stopProcess(child);
    removeTemporaryDirectory(dataDirectory);
  };
  return { name: 'kai', protocol: 'text', addresses: [address], version, stop };
};

export const targetFactories: ReadonlyMap<string, TargetFactory> = new Map([
  ['memcached', startMemcached],
  ['kai', startKai],
]);
