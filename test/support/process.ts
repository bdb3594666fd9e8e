/**
 * Real `kai` processes for integration tests: free ports, starting bin/kai and waiting until its
 * memcache port accepts connections, stopping it by signal, and killing leftovers by PID.
 *
 *   const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-test-'));
 *   const kai = await startKai({ dataDir });
 *   // ... talk to 127.0.0.1:kai.memcachePort ...
 *   expect((await kai.stop()).code).toBe(0);
 *   afterAll(killStartedKai);   // SIGKILLs any process a failed test left running
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

/** The repository root, from dist/test/support where this file runs once compiled. */
export const repoRoot = path.resolve(__dirname, '../../..');
export const kaiBin = path.join(repoRoot, 'bin', 'kai');

/** How long startKai waits for the memcache port, and stop for the process to exit. */
export const readyTimeoutMsDefault = 15_000;
export const exitTimeoutMsDefault = 15_000;
/** Output kept per stream; a chatty process must not grow a test's memory without bound. */
export const capturedOutputBytesMax = 1024 * 1024;
const connectRetryDelayMs = 25;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A TCP port free on 127.0.0.1 right now: the OS picks it, the probe socket is closed. Another
 * process could take it before it is used; with ports picked from the ephemeral range that race
 * is rare, and a test failing on EADDRINUSE says so plainly.
 */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port assigned'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Collects a stream's text up to capturedOutputBytesMax, dropping the rest. */
class OutputCapture {
  private text = '';

  constructor(stream: NodeJS.ReadableStream | null) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      if (this.text.length < capturedOutputBytesMax) this.text += chunk.slice(0, capturedOutputBytesMax - this.text.length);
    });
  }

  toString(): string {
    return this.text;
  }
}

/** Every child started here that has not exited yet, for killStartedKai. */
const runningChildren = new Set<ChildProcess>();

function spawnKai(args: readonly string[], cwd: string) {
  const child = spawn(process.execPath, [kaiBin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  runningChildren.add(child);
  const stdout = new OutputCapture(child.stdout);
  const stderr = new OutputCapture(child.stderr);
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      runningChildren.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout, stderr, exited };
}

export interface KaiRun extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `kai <args>` to completion: for commands that exit by themselves (help, bad settings).
 * A process still running after `timeoutMs` is killed and the promise rejects.
 */
export async function runKai(args: readonly string[], options: { cwd: string; timeoutMs?: number }): Promise<KaiRun> {
  const { child, stdout, stderr, exited } = spawnKai(args, options.cwd);
  const timeoutMs = options.timeoutMs ?? exitTimeoutMsDefault;
  const status = await withTimeout(exited, timeoutMs, () => {
    killByPid(child.pid);
    return new Error(`kai ${args.join(' ')} still running after ${timeoutMs} ms; killed`);
  });
  return { ...status, stdout: stdout.toString(), stderr: stderr.toString() };
}

export interface StartKaiOptions {
  /** Passed as --data-dir. */
  readonly dataDir: string;
  /** More flags, after the ones set here. Give ports and the data dir through the options instead. */
  readonly args?: readonly string[];
  /** Free ports are picked when absent. */
  readonly memcachePort?: number;
  readonly port?: number;
  /** The process's working directory; by default the data dir's parent, where no kai.config.json is expected. */
  readonly cwd?: string;
  readonly readyTimeoutMs?: number;
}

export interface KaiProcess {
  readonly pid: number;
  readonly memcachePort: number;
  /** The internal API port. */
  readonly port: number;
  /** Resolves when the process exits, however it ends. */
  readonly exited: Promise<ExitStatus>;
  stdout(): string;
  stderr(): string;
  /** Sends `signal` (SIGTERM by default) and waits for exit; SIGKILLs and rejects after the timeout. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL, as a crash would; resolves on exit. */
  kill(): Promise<ExitStatus>;
}

/** Starts `kai start` on 127.0.0.1 and resolves once its memcache port accepts a connection. */
export async function startKai(options: StartKaiOptions): Promise<KaiProcess> {
  const memcachePort = options.memcachePort ?? (await getFreePort());
  const port = options.port ?? (await getFreePort());
  const dataDir = path.resolve(options.dataDir);
  const args = [
    'start',
    ...['--hostname', '127.0.0.1', '--port', String(port), '--memcache-port', String(memcachePort)],
    ...['--data-dir', dataDir],
    ...(options.args ?? []),
  ];
  const { child, stdout, stderr, exited } = spawnKai(args, options.cwd ?? path.dirname(dataDir));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`kai did not start: ${String(await exited.catch((error: unknown) => error))}`);
  const kai: KaiProcess = {
    pid,
    memcachePort,
    port,
    exited,
    stdout: () => stdout.toString(),
    stderr: () => stderr.toString(),
    stop: (signal = 'SIGTERM', timeoutMs = exitTimeoutMsDefault) => stopProcess(child, exited, signal, timeoutMs),
    kill: () => {
      killByPid(pid);
      return exited;
    },
  };
  const timeoutMs = options.readyTimeoutMs ?? readyTimeoutMsDefault;
  try {
    await waitUntilAccepting(memcachePort, exited, timeoutMs);
  } catch (error) {
    killByPid(pid);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${reason}\nkai stderr:\n${stderr.toString()}\nkai stdout:\n${stdout.toString()}`);
  }
  return kai;
}

async function stopProcess(
  child: ChildProcess,
  exited: Promise<ExitStatus>,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill(signal);
  return withTimeout(exited, timeoutMs, () => {
    killByPid(child.pid);
    return new Error(`kai (pid ${child.pid}) did not exit within ${timeoutMs} ms of ${signal}; killed`);
  });
}

/** SIGKILLs every kai process started by this module that is still running. For afterAll. */
export async function killStartedKai(): Promise<void> {
  const children = [...runningChildren];
  const exits = children.map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
  for (const child of children) killByPid(child.pid);
  await Promise.all(exits);
}

function killByPid(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone: nothing to kill.
  }
}

/** Polls connections to 127.0.0.1:port until one succeeds, the process exits, or time runs out. */
async function waitUntilAccepting(port: number, exited: Promise<ExitStatus>, timeoutMs: number): Promise<void> {
  let exitStatus: ExitStatus | undefined;
  void exited.then(
    (status) => (exitStatus = status),
    () => undefined,
  );
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    if (exitStatus !== undefined) {
      throw new Error(`kai exited (code ${exitStatus.code}, signal ${exitStatus.signal}) before accepting on port ${port}`);
    }
    if (await canConnect(port, Math.max(1, deadlineMs - Date.now()))) return;
    await new Promise((resolve) => setTimeout(resolve, connectRetryDelayMs));
  }
  throw new Error(`kai did not accept connections on port ${port} within ${timeoutMs} ms`);
}

function canConnect(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (connected: boolean): void => {
      socket.destroy();
      resolve(connected);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
