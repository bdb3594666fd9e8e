/**
 * Server processes on 127.0.0.1, for the integration tests, the differential tests and the
 * benchmark alike: free ports, spawning a server and waiting until its port accepts connections,
 * stopping it by signal with a SIGKILL after a bound, and killing leftovers by PID. It uses plain
 * Node only (no jest), so that bench/ can import it as well as test/.
 *
 *   const server = await spawnServer({ label: 'memcached', command, args, readyPort: port });
 *   // ... talk to 127.0.0.1:port ...
 *   const { status, forced } = await server.stop();   // SIGTERM, then SIGKILL after the timeout
 *   afterAll(killStartedProcesses);                    // SIGKILLs whatever a failed test left running
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export const loopbackHost = '127.0.0.1';
/** How long spawnServer waits for the port, and stop for the process to exit, unless told otherwise. */
export const readyTimeoutMsDefault = 15_000;
export const exitTimeoutMsDefault = 15_000;
/** Output kept per stream; a chatty process must not grow the caller's memory without bound. */
export const capturedOutputBytesMax = 1024 * 1024;
/** One connection attempt; on loopback a refusal is immediate, so this only bounds a stuck handshake. */
const connectAttemptTimeoutMs = 1_000;
/** A stats reply is a few kilobytes; anything longer is not the server we started. */
const statsReplyBytesMax = 64 * 1024;
const connectRetryDelayMs = 25;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Ports tests pick from: below Linux's ephemeral range (32768 and up), so that neither the OS's
 * own choices for outgoing connections nor bind(0), which hands a just-freed port to the next
 * caller, collide with a port another test process picked a moment ago.
 */
export const testPortMin = 12_000;
export const testPortMax = 32_000;
const portAttemptsMax = 100;
/**
 * jest's workers pick at the same time, each with its own record of what it handed out: each takes
 * its ports from its own slice of the range, so two workers never pick the same port. A process
 * that is no jest worker picks from the whole range.
 */
const workerSlices = 10;
const workerPorts = ((): { readonly min: number; readonly max: number } => {
  const worker = Number(process.env.JEST_WORKER_ID);
  if (!Number.isInteger(worker) || worker < 1) return { min: testPortMin, max: testPortMax };
  const sliceSize = Math.floor((testPortMax - testPortMin) / workerSlices);
  const min = testPortMin + ((worker - 1) % workerSlices) * sliceSize;
  return { min, max: min + sliceSize };
})();
/** Ports this process has handed out; never handed out twice. */
const portsHandedOut = new Set<number>();

/**
 * A TCP port free on 127.0.0.1 right now, chosen at random from this worker's slice of the test
 * range. Another process (not a jest worker of this run) could still take it before it is used;
 * that is rare, and the readiness check (`answersWithPid`) never mistakes another server for ours.
 */
export async function getFreePort(): Promise<number> {
  for (let attempt = 0; attempt < portAttemptsMax; attempt++) {
    const port = workerPorts.min + Math.floor(Math.random() * (workerPorts.max - workerPorts.min));
    if (portsHandedOut.has(port)) continue;
    if (await canBind(port)) {
      portsHandedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${portAttemptsMax} attempts`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, loopbackHost, () => server.close(() => resolve(true)));
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

/**
 * `capture` keeps stdout and stderr for the caller and for error messages; `stderr-to-parent`
 * drops stdout and shows stderr as it comes, for a tool run by hand where a failure must be seen.
 */
export type OutputMode = 'capture' | 'stderr-to-parent';

export interface SpawnOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** The process's working directory; this process's own when absent. */
  readonly cwd?: string;
  readonly output?: OutputMode;
  /** Variables added to this process's environment for the child (jest's process.env does not reach it). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface StartedProcess {
  readonly child: ChildProcess;
  /** Resolves when the process exits, however it ends; rejects when it could not be spawned. */
  readonly exited: Promise<ExitStatus>;
  stdout(): string;
  stderr(): string;
}

/** Every child started here that has not exited yet, for killStartedProcesses. */
const runningChildren = new Set<ChildProcess>();

/** Spawns a process, tracked until it exits so that a failed run can still kill it by PID. */
export function spawnTracked(options: SpawnOptions): StartedProcess {
  const capture = (options.output ?? 'capture') === 'capture';
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env === undefined ? undefined : { ...process.env, ...options.env },
    stdio: capture ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', 'inherit'],
  });
  runningChildren.add(child);
  const stdout = new OutputCapture(child.stdout);
  const stderr = new OutputCapture(child.stderr);
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    child.once('error', (error) => {
      runningChildren.delete(child);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      runningChildren.delete(child);
      resolve({ code, signal });
    });
  });
  // A caller that never awaits `exited` must not see an unhandled rejection from a failed spawn.
  exited.catch(() => undefined);
  return { child, exited, stdout: () => stdout.toString(), stderr: () => stderr.toString() };
}

export interface StopOutcome {
  readonly status: ExitStatus;
  /** The process ignored the signal for the whole timeout and was SIGKILLed. */
  readonly forced: boolean;
}

/** Sends `signal` and waits for the exit; after `timeoutMs` SIGKILLs and waits for that exit. */
export async function stopProcess(
  started: StartedProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs: number = exitTimeoutMsDefault,
): Promise<StopOutcome> {
  const { child, exited } = started;
  if (child.exitCode !== null || child.signalCode !== null) return { status: await exited, forced: false };
  killByPid(child.pid, signal);
  let forced = false;
  const timer = setTimeout(() => {
    forced = true;
    killByPid(child.pid);
  }, timeoutMs);
  try {
    return { status: await exited, forced };
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` (SIGKILL by default) to `pid`; a process already gone is not an error. */
export function killByPid(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: nothing to kill.
  }
}

/** SIGKILLs every process started by this module that is still running, and waits for the exits. */
export async function killStartedProcesses(): Promise<void> {
  const children = [...runningChildren];
  const exits = children.map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
  for (const child of children) killByPid(child.pid);
  await Promise.all(exits);
}

/** The same, synchronously, for exit and signal handlers where nothing can be awaited. */
export function killStartedProcessesNow(): void {
  for (const child of runningChildren) killByPid(child.pid);
  runningChildren.clear();
}

/** A user and password from a server's auth file, sent as memcached's ascii auth `set`. */
export interface TextCredentials {
  readonly user: string;
  readonly password: string;
}

/** The ascii auth request for `credentials`: a `set` whose data is `<user> <password>`. */
export function textAuthRequest(credentials: TextCredentials, key = 'auth'): string {
  const data = `${credentials.user} ${credentials.password}`;
  return `set ${key} 0 0 ${Buffer.byteLength(data, 'latin1')}\r\n${data}\r\n`;
}

export interface ReadyOptions {
  readonly port: number;
  readonly host?: string;
  /** Settles when the process exits: waiting stops early, since nothing will ever accept. */
  readonly exited: Promise<ExitStatus>;
  readonly timeoutMs: number;
  /** Names the server in error messages. */
  readonly label: string;
  /**
   * The process that must be the one answering: a port picked as free can be taken by another
   * test's server in the meantime, and a connection to that one proves nothing about ours.
   */
  readonly pid: number;
  /** For a server with an auth file: the probe authenticates before asking for `stats`. */
  readonly credentials?: TextCredentials;
}

/**
 * Polls host:port until our server answers `stats` with its own pid, the process exits, or time
 * runs out. kai and memcached both report `STAT pid`.
 */
export async function waitUntilAccepting(options: ReadyOptions): Promise<void> {
  const { port, host = loopbackHost, timeoutMs, label } = options;
  let exitStatus: ExitStatus | undefined;
  void options.exited.then(
    (status) => (exitStatus = status),
    () => undefined,
  );
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    if (exitStatus !== undefined) {
      throw new Error(`${label} exited (code ${exitStatus.code}, signal ${exitStatus.signal}) before accepting on port ${port}`);
    }
    const attemptTimeoutMs = Math.max(1, Math.min(connectAttemptTimeoutMs, deadlineMs - Date.now()));
    if (await answersWithPid(port, host, options.pid, attemptTimeoutMs, options.credentials)) return;
    await delay(connectRetryDelayMs);
  }
  throw new Error(`${label} did not accept connections on ${host}:${port} within ${timeoutMs} ms`);
}

function answersWithPid(
  port: number,
  host: string,
  pid: number,
  timeoutMs: number,
  credentials: TextCredentials | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let received = '';
    const done = (ours: boolean): void => {
      socket.destroy();
      resolve(ours);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    const authenticate = credentials === undefined ? '' : textAuthRequest(credentials);
    socket.once('connect', () => socket.write(`${authenticate}stats\r\n`));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.length > statsReplyBytesMax) done(false);
      else if (received.endsWith('END\r\n') || received.includes('ERROR')) done(received.includes(`STAT pid ${pid}\r\n`));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settles as `promise` does, or rejects with `onTimeout()` once `timeoutMs` has passed. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
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

export interface ServerOptions extends SpawnOptions {
  /** Names the server in error messages. */
  readonly label: string;
  /** The server is ready once this port accepts a connection. */
  readonly readyPort: number;
  readonly readyHost?: string;
  readonly readyTimeoutMs?: number;
  /** For a server with an auth file: how the readiness probe authenticates. */
  readonly readyCredentials?: TextCredentials;
}

export interface ServerProcess extends StartedProcess {
  readonly pid: number;
  /** Sends `signal` (SIGTERM by default) and waits for exit, SIGKILLing after the timeout. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<StopOutcome>;
  /** SIGKILL, as a crash would; resolves on exit. */
  kill(): Promise<ExitStatus>;
}

/**
 * Spawns a server and resolves once its port accepts a connection. A server that exits first or
 * is not ready in time is killed, and the error carries what it printed.
 */
export async function spawnServer(options: ServerOptions): Promise<ServerProcess> {
  const started = spawnTracked(options);
  const pid = started.child.pid;
  if (pid === undefined) {
    throw new Error(`${options.label} did not start: ${String(await started.exited.catch((error: unknown) => error))}`);
  }
  const timeoutMs = options.readyTimeoutMs ?? readyTimeoutMsDefault;
  try {
    await waitUntilAccepting({
      port: options.readyPort,
      host: options.readyHost,
      exited: started.exited,
      timeoutMs,
      label: options.label,
      pid,
      credentials: options.readyCredentials,
    });
  } catch (error) {
    killByPid(pid);
    // Wait for the exit so that nothing the caller removes next (a data directory) is still in use.
    await withTimeout(started.exited, exitTimeoutMsDefault, () => new Error('no exit after SIGKILL')).catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${reason}${printedOutput(options.label, started)}`);
  }
  return {
    ...started,
    pid,
    stop: (signal, stopTimeoutMs) => stopProcess(started, signal, stopTimeoutMs),
    kill: () => {
      killByPid(pid);
      return started.exited;
    },
  };
}

function printedOutput(label: string, started: StartedProcess): string {
  const stderr = started.stderr();
  const stdout = started.stdout();
  if (stderr === '' && stdout === '') return '';
  return `\n${label} stderr:\n${stderr}\n${label} stdout:\n${stdout}`;
}
