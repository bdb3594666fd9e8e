/**
 * Real `kai` processes for integration tests: starting bin/kai and waiting until its memcache port
 * accepts connections, stopping it by signal, and killing leftovers by PID. The process handling
 * itself lives in ./servers, shared with the differential tests and the benchmark.
 *
 *   const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-test-'));
 *   const kai = await startKai({ dataDir });
 *   // ... talk to 127.0.0.1:kai.memcachePort ...
 *   expect((await kai.stop()).code).toBe(0);
 *   afterAll(killStartedKai);   // SIGKILLs any process a failed test left running
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  exitTimeoutMsDefault,
  getFreePort,
  killByPid,
  killStartedProcesses,
  spawnServer,
  spawnTracked,
  withTimeout,
  type ExitStatus,
  type TextCredentials,
} from './servers';

export {
  capturedOutputBytesMax,
  exitTimeoutMsDefault,
  getFreePort,
  readyTimeoutMsDefault,
  textAuthRequest,
  type ExitStatus,
  type TextCredentials,
} from './servers';

/** The repository root, from dist/test/support where this file runs once compiled. */
export const repoRoot = path.resolve(__dirname, '../../..');
export const kaiBin = path.join(repoRoot, 'bin', 'kai');

/**
 * SIGKILLs every process this test file started that is still running (kai, and memcached in the
 * differential tests). For afterAll.
 */
export const killStartedKai: () => Promise<void> = killStartedProcesses;

export interface KaiRun extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `kai <args>` to completion: for commands that exit by themselves (help, bad settings).
 * A process still running after `timeoutMs` is killed and the promise rejects.
 */
export async function runKai(args: readonly string[], options: { cwd: string; timeoutMs?: number }): Promise<KaiRun> {
  const started = spawnTracked({ command: process.execPath, args: [kaiBin, ...args], cwd: options.cwd });
  const timeoutMs = options.timeoutMs ?? exitTimeoutMsDefault;
  const status = await withTimeout(started.exited, timeoutMs, () => {
    killByPid(started.child.pid);
    return new Error(`kai ${args.join(' ')} still running after ${timeoutMs} ms; killed`);
  });
  return { ...status, stdout: started.stdout(), stderr: started.stderr() };
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
  /** With `--auth-file` among the args: credentials from it, for the readiness probe. */
  readonly readyCredentials?: TextCredentials;
  /** Environment variables for the process besides this one's (KAI_FAULT_INJECTION). */
  readonly env?: Readonly<Record<string, string>>;
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
    kaiBin,
    'start',
    ...['--hostname', '127.0.0.1', '--port', String(port), '--memcache-port', String(memcachePort)],
    ...['--data-dir', dataDir],
    ...(options.args ?? []),
  ];
  const server = await spawnServer({
    label: 'kai',
    command: process.execPath,
    args,
    cwd: options.cwd ?? path.dirname(dataDir),
    readyPort: memcachePort,
    readyTimeoutMs: options.readyTimeoutMs,
    readyCredentials: options.readyCredentials,
    env: options.env,
  });
  return {
    pid: server.pid,
    memcachePort,
    port,
    exited: server.exited,
    stdout: server.stdout,
    stderr: server.stderr,
    stop: async (signal = 'SIGTERM', timeoutMs = exitTimeoutMsDefault) => {
      const { status, forced } = await server.stop(signal, timeoutMs);
      if (forced) throw new Error(`kai (pid ${server.pid}) did not exit within ${timeoutMs} ms of ${signal}; killed`);
      return status;
    },
    kill: server.kill,
  };
}

/** A running process's resident memory (VmRSS), in bytes. */
export function residentBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** The `msg` of every line a node wrote to its --log-file, in order; complete once the node has exited. */
export function logMessages(logFile: string): string[] {
  return fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
}
