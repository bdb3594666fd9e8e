// What both load generators (load.ts, memtier.ts) share around their targets: the machine they
// describe, the servers stopped by PID however the run ends, and one target after the other with
// each failure kept rather than ending the run.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { killStartedProcessesNow, memcachedVersion } from './targets';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  memcached: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match !== null) cpuModel = match[1].trim();
  } catch {
    // Not Linux: keep what os.cpus() reported.
  }
  return {
    cpuModel,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    memcached: memcachedVersion(),
  };
}

export interface TargetFailure {
  target: string;
  failure: string;
}

/** Stops every started process by PID at exit and on SIGINT or SIGTERM, after `cleanup`. */
export function stopStartedProcessesOnExit(cleanup: () => void = () => undefined): void {
  process.on('exit', () => {
    killStartedProcessesNow();
    cleanup();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killStartedProcessesNow();
      process.exit(130);
    });
  }
}

/** Benches each target in turn; a target that fails is logged and kept, and the next one runs. */
export async function benchEachTarget<R>(
  names: readonly string[],
  bench: (name: string) => Promise<R>,
  log: (line: string) => void,
): Promise<{ results: R[]; failures: TargetFailure[] }> {
  const results: R[] = [];
  const failures: TargetFailure[] = [];
  for (const name of names) {
    try {
      results.push(await bench(name));
    } catch (error) {
      const failure = error instanceof Error ? error.message : String(error);
      log(`${name}: ${failure}`);
      failures.push({ target: name, failure });
    }
  }
  return { results, failures };
}
