// Closed-loop load benchmark: memcached against kai over the memcache text and binary protocols.
// Starts each target in turn, drives it from worker threads with one workload (gets and sets,
// counters, or deletes), prints throughput and latency.
// Usage: npm run bench -- [--workload counters] [--targets memcached,kai] [--json] ...  (see --help)

import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Command } from 'commander';
import { integerFlag, numberFlag } from './flags';
import { build, decodeFromCompressedBase64 } from 'hdr-histogram-js';
import {
  Address,
  RunningTarget,
  comparedTargets,
  defaultTargets,
  formatAddress,
  killStartedProcessesNow,
  parseAddress,
  targetFactories,
  targetProtocol,
} from './targets';
import { latencySummaryUs, type LatencySummaryUs } from './latency';
import { benchEachTarget, machineInfo, stopStartedProcessesOnExit, type MachineInfo, type TargetFailure } from './run';
import type { ControlMessage, ErrorKind, WorkerConfig, WorkerMessage, WorkerResult } from './worker';
import { Operation, WorkloadName, operations, workloads } from './workloads';

export const connectionsMax = 10_000;
export const workersMax = 64;
export const keysMax = 10_000_000;
// Below memcached's default 1 MiB item size, which also counts the key and item header.
export const valueBytesMax = 1_000_000;
export const durationSecondsMax = 3600;
const preloadTimeoutMs = 120_000;
const resultTimeoutMs = 30_000;
const requestTimeoutMs = 5_000;

interface BenchSettings {
  workload: WorkloadName;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  workers: number;
  keys: number;
  valueBytes: number;
  getRatio: number;
  targets: string[];
  json: boolean;
  externalAddresses: Map<string, Address>;
}

interface TargetResult {
  target: string;
  version: string;
  addresses: string[];
  opsPerSecond: number;
  // Requests completed in the measurement window, by operation.
  operations: Record<Operation, number>;
  misses: number;
  // Gets answered with several VALUE lines (a cluster's siblings), each value checked: not errors.
  siblingReplies: number;
  errors: number;
  errorsByKind: Record<ErrorKind, number>;
  errorSamples: string[];
  preloadErrors: number;
  connectionsLost: number;
  latencyUs: LatencySummaryUs;
}

function parseSettings(argv: string[]): BenchSettings {
  const program = new Command('bench')
    .description('closed-loop memcache load benchmark, text and binary protocols')
    .option('--workload <name>', `request mix, from: ${[...workloads.keys()].join(', ')}`, 'get-set')
    .option('--duration-s <seconds>', 'measured duration per target', numberFlag(0.1, durationSecondsMax), 10)
    .option('--warmup-s <seconds>', 'unmeasured load after the preload', numberFlag(0, durationSecondsMax), 2)
    .option('--connections <count>', 'concurrent connections, one request in flight each', integerFlag(1, connectionsMax), 50)
    .option('--workers <count>', 'load-generating worker threads', integerFlag(1, workersMax), 2)
    .option('--keys <count>', 'distinct keys (default: 10000, 1000 for counters)', integerFlag(1, keysMax))
    .option('--value-bytes <bytes>', 'value size', integerFlag(1, valueBytesMax), 100)
    .option('--get-ratio <ratio>', 'fraction of requests that are gets', numberFlag(0, 1), 0.9)
    .option('--targets <names>', `comma-separated, from: ${[...targetFactories.keys()].join(', ')} (default: ${defaultTargets.join(',')}, the text ones for a text-only workload)`)
    .option('--memcached-address <host:port>', 'bench an already-running memcached instead of starting one')
    .option('--kai-address <host:port>', 'bench an already-running kai node instead of starting one')
    .option('--json', 'print one machine-readable JSON document on stdout', false);
  program.parse(argv);
  const options = program.opts<{
    workload: string;
    durationS: number;
    warmupS: number;
    connections: number;
    workers: number;
    keys?: number;
    valueBytes: number;
    getRatio: number;
    targets?: string;
    memcachedAddress?: string;
    kaiAddress?: string;
    json: boolean;
  }>();
  const workloadName = options.workload as WorkloadName;
  const workload = workloads.get(workloadName) ?? program.error(`unknown workload "${options.workload}"`);
  const speaksProtocol = (name: string): boolean => workload.protocols.includes(targetProtocol(name));
  const targets =
    options.targets === undefined
      ? defaultTargets.filter(speaksProtocol)
      : options.targets.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
  for (const name of targets) {
    if (!targetFactories.has(name)) program.error(`unknown target "${name}"`);
    if (!speaksProtocol(name)) program.error(`workload ${workloadName} has no ${targetProtocol(name)} requests for target "${name}"`);
  }
  if (!workload.usesGetRatio && program.getOptionValueSource('getRatio') === 'cli') {
    program.error(`workload ${workloadName} sends no gets; --get-ratio does not apply`);
  }
  const keys = options.keys ?? workload.keysDefault;
  // Each connection of the deletes workload owns keys no other connection touches.
  if (workloadName === 'deletes' && keys < options.connections) {
    program.error(`workload deletes needs at least one key per connection (--keys >= ${options.connections})`);
  }
  const externalAddresses = new Map<string, Address>();
  // An external server is benched over both protocols, as one port serves both.
  if (options.memcachedAddress !== undefined) {
    for (const name of ['memcached', 'memcached-binary']) externalAddresses.set(name, parseAddress(options.memcachedAddress));
  }
  if (options.kaiAddress !== undefined) {
    for (const name of ['kai', 'kai-binary']) externalAddresses.set(name, parseAddress(options.kaiAddress));
  }
  return {
    workload: workloadName,
    durationSeconds: options.durationS,
    warmupSeconds: options.warmupS,
    connections: options.connections,
    // More threads than connections would leave some idle.
    workers: Math.min(options.workers, options.connections),
    keys,
    valueBytes: options.valueBytes,
    getRatio: options.getRatio,
    targets,
    json: options.json,
    externalAddresses,
  };
}

function sleep(durationMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, durationMs));
}

function workerConfigs(target: RunningTarget, settings: BenchSettings): WorkerConfig[] {
  const configs: WorkerConfig[] = [];
  let firstConnectionIndex = 0;
  for (let workerIndex = 0; workerIndex < settings.workers; workerIndex++) {
    const connectionCount =
      Math.floor(settings.connections / settings.workers) + (workerIndex < settings.connections % settings.workers ? 1 : 0);
    configs.push({
      workerIndex,
      workload: settings.workload,
      protocol: target.protocol,
      addresses: target.addresses,
      connectionCount,
      firstConnectionIndex,
      connectionsTotal: settings.connections,
      keyCount: settings.keys,
      valueBytes: settings.valueBytes,
      getRatio: settings.getRatio,
      preloadKeyStart: Math.floor((settings.keys * workerIndex) / settings.workers),
      preloadKeyEnd: Math.floor((settings.keys * (workerIndex + 1)) / settings.workers),
      requestTimeoutMs,
    });
    firstConnectionIndex += connectionCount;
  }
  return configs;
}

// One load thread seen from the main thread: waits for its next message of a given type.
class WorkerHandle {
  private readonly worker: Worker;
  private readonly received: WorkerMessage[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(config: WorkerConfig) {
    this.worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: config });
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'failed') this.failure = new Error(`load worker failed: ${message.message}`);
      else this.received.push(message);
      this.waiter?.();
    });
    this.worker.on('error', (error) => {
      this.failure = error;
      this.waiter?.();
    });
    this.worker.on('exit', (code) => {
      this.failure ??= new Error(`load worker exited with code ${code}`);
      this.waiter?.();
    });
  }

  send(message: ControlMessage): void {
    this.worker.postMessage(message);
  }

  async next<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex((message) => message.type === type);
      if (index !== -1) return this.received.splice(index, 1)[0] as Extract<WorkerMessage, { type: T }>;
      if (this.failure !== undefined) throw this.failure;
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new Error(`load worker sent no "${type}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remainingMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function driveLoad(target: RunningTarget, settings: BenchSettings): Promise<TargetResult> {
  const handles = workerConfigs(target, settings).map((config) => new WorkerHandle(config));
  try {
    const ready = await Promise.all(handles.map((handle) => handle.next('ready', preloadTimeoutMs)));
    log(`  preloaded ${settings.keys} keys; warming up for ${settings.warmupSeconds} s`);
    handles.forEach((handle) => handle.send({ type: 'warmup' }));
    await sleep(settings.warmupSeconds * 1000);
    log(`  measuring for ${settings.durationSeconds} s`);
    handles.forEach((handle) => handle.send({ type: 'measure' }));
    await sleep(settings.durationSeconds * 1000);
    handles.forEach((handle) => handle.send({ type: 'stop' }));
    const results = await Promise.all(handles.map((handle) => handle.next('result', resultTimeoutMs)));
    const preloadErrors = ready.reduce((sum, message) => sum + message.preloadErrors, 0);
    return summarize(target, results.map((message) => message.result), preloadErrors);
  } finally {
    await Promise.all(handles.map((handle) => handle.terminate()));
  }
}

function summarize(target: RunningTarget, results: WorkerResult[], preloadErrors: number): TargetResult {
  const histogram = build({ useWebAssembly: false, numberOfSignificantValueDigits: 3 });
  const errorsByKind: Record<ErrorKind, number> = { protocol: 0, value: 0, connection: 0, timeout: 0 };
  const operationCounts = Object.fromEntries(operations.map((operation) => [operation, 0])) as Record<Operation, number>;
  let opsPerSecond = 0;
  for (const result of results) {
    histogram.add(decodeFromCompressedBase64(result.histogramBase64, 32, false));
    let completed = 0;
    for (const operation of operations) {
      operationCounts[operation] += result.operations[operation];
      completed += result.operations[operation];
    }
    // Each worker's own window, so a late 'stop' message does not inflate the rate.
    opsPerSecond += result.windowMs > 0 ? (completed * 1000) / result.windowMs : 0;
    for (const kind of Object.keys(errorsByKind) as ErrorKind[]) errorsByKind[kind] += result.errors[kind];
  }
  const sum = (pick: (result: WorkerResult) => number): number => results.reduce((total, result) => total + pick(result), 0);
  return {
    target: target.name,
    version: target.version,
    addresses: target.addresses.map(formatAddress),
    opsPerSecond: Math.round(opsPerSecond),
    operations: operationCounts,
    misses: sum((result) => result.misses),
    siblingReplies: sum((result) => result.siblingReplies),
    errors: Object.values(errorsByKind).reduce((total, count) => total + count, 0),
    errorsByKind,
    errorSamples: results.flatMap((result) => result.errorSamples).slice(0, 5),
    preloadErrors,
    connectionsLost: sum((result) => result.connectionsLost),
    latencyUs: latencySummaryUs(histogram),
  };
}

async function benchTarget(name: string, settings: BenchSettings): Promise<TargetResult> {
  const factory = targetFactories.get(name);
  if (factory === undefined) throw new Error(`unknown target "${name}"`);
  const repositoryRoot = path.resolve(__dirname, '..', '..');
  const target = await factory({ address: settings.externalAddresses.get(name), repositoryRoot });
  try {
    log(`${name} (${target.version}) on ${target.addresses.map(formatAddress).join(', ')}`);
    return await driveLoad(target, settings);
  } finally {
    await target.stop();
  }
}

function kaiToMemcachedRatio(results: TargetResult[], kaiName = 'kai', memcachedName = 'memcached'): number | undefined {
  const memcached = results.find((result) => result.target === memcachedName);
  const kai = results.find((result) => result.target === kaiName);
  if (memcached === undefined || kai === undefined || memcached.opsPerSecond === 0) return undefined;
  return Math.round((kai.opsPerSecond / memcached.opsPerSecond) * 1000) / 1000;
}

// kai/memcached for each pair measured in this run, keyed `kai/memcached`, `kai-binary/memcached-binary`.
function ratios(results: TargetResult[]): Record<string, number> {
  const found: Record<string, number> = {};
  for (const pair of comparedTargets) {
    const ratio = kaiToMemcachedRatio(results, pair.kai, pair.memcached);
    if (ratio !== undefined) found[`${pair.kai}/${pair.memcached}`] = ratio;
  }
  return found;
}

function describeWorkload(settings: BenchSettings): string {
  const workload = workloads.get(settings.workload);
  return workload === undefined ? 'unknown' : workload.describe(settings);
}

function printHuman(machine: MachineInfo, settings: BenchSettings, results: TargetResult[], failures: TargetFailure[]): void {
  const lines = [
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`,
    `node ${machine.node}, ${machine.memcached}`,
    `workload ${settings.workload}: ${describeWorkload(settings)}`,
    `load: ${settings.connections} connections over ${settings.workers} workers, ${settings.keys} keys, ` +
      `${settings.warmupSeconds} s warm-up, ${settings.durationSeconds} s measured`,
    '',
    `${'target'.padEnd(18)}${'ops/s'.padStart(10)}${'p50 µs'.padStart(10)}${'p99 µs'.padStart(10)}` +
      `${'p99.9 µs'.padStart(10)}${'errors'.padStart(8)}${'misses'.padStart(8)}${'siblings'.padStart(10)}`,
  ];
  for (const result of results) {
    lines.push(
      `${result.target.padEnd(18)}${String(result.opsPerSecond).padStart(10)}${String(result.latencyUs.p50).padStart(10)}` +
        `${String(result.latencyUs.p99).padStart(10)}${String(result.latencyUs.p999).padStart(10)}` +
        `${String(result.errors).padStart(8)}${String(result.misses).padStart(8)}${String(result.siblingReplies).padStart(10)}`,
    );
    for (const sample of result.errorSamples) lines.push(`  ${result.target} error: ${sample}`);
  }
  for (const failure of failures) lines.push(`${failure.target.padEnd(18)}failed: ${failure.failure}`);
  const measured = Object.entries(ratios(results));
  if (measured.length > 0) lines.push('');
  for (const [pair, ratio] of measured) lines.push(`${pair} ops/s: ${ratio}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv);
  // Started servers are stopped by PID even when the run is interrupted.
  stopStartedProcessesOnExit();
  const machine = machineInfo();
  const { results, failures } = await benchEachTarget(settings.targets, (name) => benchTarget(name, settings), log);
  if (settings.json) {
    const loadSettings = {
      workload: settings.workload,
      mix: describeWorkload(settings),
      durationSeconds: settings.durationSeconds,
      warmupSeconds: settings.warmupSeconds,
      connections: settings.connections,
      workers: settings.workers,
      keys: settings.keys,
      valueBytes: settings.valueBytes,
      getRatio: settings.getRatio,
      targets: settings.targets,
    };
    const document = { machine, settings: loadSettings, results, failures, kaiToMemcachedRatio: kaiToMemcachedRatio(results) ?? null, ratios: ratios(results) };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    printHuman(machine, settings, results, failures);
  }
  // A failed target or any error is a failed run, never a quiet one.
  const anyErrors = results.some((result) => result.errors > 0 || result.misses > 0 || result.preloadErrors > 0 || result.connectionsLost > 0);
  if (failures.length > 0 || anyErrors) process.exitCode = 1;
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  killStartedProcessesNow();
  process.exitCode = 1;
});
