// memtier_benchmark against memcached and kai: each target is started on free ports (as the load
// benchmark starts them, bench/targets.ts), filled, then driven by memtier with the same
// parameters, one target after the other; prints ops/s and latency per target and the ratios.
// Usage: npm run bench:memtier -- [--test-time-s 10] [--clients 50] [--targets memcached,kai]  (see --help)

import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { integerFlag } from './flags';
import { build, decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { RawClient } from '../test/support/raw-client';
import { spawnTracked, stopProcess, withTimeout } from '../test/support/servers';
import { latencySummaryUs, type LatencySummaryUs } from './latency';
import { benchEachTarget, machineInfo, stopStartedProcessesOnExit, type MachineInfo, type TargetFailure } from './run';
import {
  Address,
  RunningTarget,
  comparedTargets,
  formatAddress,
  killStartedProcessesNow,
  targetFactories,
} from './targets';

// Built by ../shared/tools/memtier/build.sh unless MEMTIER_BENCHMARK or --memtier says otherwise.
const memtierPathDefault = process.env.MEMTIER_BENCHMARK ?? path.join(os.homedir(), '.cache', 'memtier', 'memtier_benchmark');
const defaultTargets = ['memcached', 'kai', 'kai-cluster'];
// Filling 10,000 keys over one connection takes about a second; a cluster on a busy machine more.
const preloadTimeoutMs = 300_000;
// Sets in flight on the fill's one connection: a million keys fill in minutes, not in a
// million commit round trips.
const fillPipeline = 64;
// The fill may take this long per key beyond preloadTimeoutMs.
const preloadTimeoutMsPerKey = 1;
// memtier stops itself after --test-time; beyond this margin it is stuck and is killed.
const runTimeoutMarginMs = 60_000;
const stopTimeoutMs = 5_000;
const testTimeSecondsMax = 3600;
const clientsMax = 1000;
const threadsMax = 64;
const keysMax = 10_000_000;
const dataBytesMax = 1_000_000;
const multiKeyGetMax = 10_000;
// memtier's JSON output directories not yet removed, removed on exit too (an interrupted run).
const outputDirectories = new Set<string>();

function removeOutputDirectories(): void {
  for (const directory of outputDirectories) rmSync(directory, { recursive: true, force: true });
  outputDirectories.clear();
}

interface MemtierSettings {
  memtierPath: string;
  targets: string[];
  testTimeSeconds: number;
  warmupSeconds: number;
  threads: number;
  clients: number;
  ratio: string;
  dataBytes: number;
  keys: number;
  multiKeyGet: number;
  json: boolean;
}

// The figures of one memtier process, from its --json-out-file.
interface MemtierTotals {
  opsPerSecond: number;
  getsPerSecond: number;
  setsPerSecond: number;
  connectionErrors: number;
  histogramBase64: string;
}

interface TargetResult {
  target: string;
  version: string;
  addresses: string[];
  // One memtier process per address, run at the same time; their rates are summed.
  opsPerSecond: number;
  getsPerSecond: number;
  setsPerSecond: number;
  // get_misses from the servers' own stats, summed over a cluster's nodes: every key was filled
  // first, so any miss is a lost value. (memtier's own miss count counts a reply with two
  // siblings as 2^32 - 1 misses: it subtracts hits from keys in an unsigned int.)
  misses: number;
  connectionErrors: number;
  latencyUs: LatencySummaryUs;
  // Resident memory of the target's processes at the end of the measurement (VmRSS), summed,
  // and of the largest one, in MiB.
  residentMiB: number;
  residentMiBMax: number;
}

function parseSettings(argv: string[]): MemtierSettings {
  const program = new Command('bench:memtier')
    .description('memtier_benchmark against memcached -t 1 and kai, the same parameters for each target')
    .option('--memtier <path>', 'memtier_benchmark binary (../shared/tools/memtier/build.sh builds it)', memtierPathDefault)
    .option('--targets <names>', `comma-separated, from: ${[...targetFactories.keys()].join(', ')}`, defaultTargets.join(','))
    .option('--test-time-s <seconds>', 'measured seconds per target (memtier --test-time)', integerFlag(1, testTimeSecondsMax), 10)
    .option('--warmup-s <seconds>', 'unmeasured seconds of the same load after the fill (0: none)', integerFlag(0, testTimeSecondsMax), 2)
    .option('--threads <count>', 'memtier --threads', integerFlag(1, threadsMax), 1)
    .option('--clients <count>', 'memtier --clients: connections per thread, spread over a cluster\'s nodes', integerFlag(1, clientsMax), 50)
    .option('--ratio <set:get>', 'memtier --ratio', '1:9')
    .option('--data-bytes <bytes>', 'memtier --data-size', integerFlag(1, dataBytesMax), 100)
    .option('--keys <count>', 'memtier --key-maximum (keys 1 to this)', integerFlag(1, keysMax), 10_000)
    .option('--multi-key-get <keys>', 'memtier --multi-key-get: each get asks for up to this many keys (0: single-key gets)', integerFlag(0, multiKeyGetMax), 0)
    .option('--json', 'print one machine-readable JSON document on stdout', false);
  program.parse(argv);
  const options = program.opts<{
    memtier: string;
    targets: string;
    testTimeS: number;
    warmupS: number;
    threads: number;
    clients: number;
    ratio: string;
    dataBytes: number;
    keys: number;
    multiKeyGet: number;
    json: boolean;
  }>();
  if (!/^[0-9]+:[0-9]+$/.test(options.ratio)) program.error(`--ratio: expected <set>:<get>, got "${options.ratio}"`);
  const targets = options.targets.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
  for (const name of targets) if (!targetFactories.has(name)) program.error(`unknown target "${name}"`);
  try {
    accessSync(options.memtier, constants.X_OK);
  } catch {
    program.error(`no memtier_benchmark at ${options.memtier}: build it with ../shared/tools/memtier/build.sh, or pass --memtier`);
  }
  return {
    memtierPath: options.memtier,
    targets,
    testTimeSeconds: options.testTimeS,
    warmupSeconds: options.warmupS,
    threads: options.threads,
    clients: options.clients,
    ratio: options.ratio,
    dataBytes: options.dataBytes,
    keys: options.keys,
    multiKeyGet: options.multiKeyGet,
    json: options.json,
  };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function memtierProtocol(target: RunningTarget): string {
  return target.protocol === 'binary' ? 'memcache_binary' : 'memcache_text';
}

// The fill: every key set once, in order, over one connection with fillPipeline sets in flight.
function preloadArguments(settings: MemtierSettings): string[] {
  return [
    '-t', '1',
    '-c', '1',
    `--pipeline=${fillPipeline}`,
    '--ratio=1:0',
    '-d', String(settings.dataBytes),
    '--key-pattern=P:P', '--key-minimum=1', `--key-maximum=${settings.keys}`,
    '-n', 'allkeys',
  ];
}

// The measured mix: uniformly random keys, every client with its own random sequence.
function loadArguments(settings: MemtierSettings, clients: number, testTimeSeconds: number): string[] {
  return [
    '-t', String(settings.threads),
    '-c', String(clients),
    `--ratio=${settings.ratio}`,
    '-d', String(settings.dataBytes),
    '--key-pattern=R:R', '--key-minimum=1', `--key-maximum=${settings.keys}`,
    `--test-time=${testTimeSeconds}`,
    '--distinct-client-seed',
    '--print-percentiles=50,99,99.9',
    ...(settings.multiKeyGet > 0 ? [`--multi-key-get=${settings.multiKeyGet}`] : []),
  ];
}

// The exact command line, for the record.
function memtierCommand(settings: MemtierSettings, address: Address, protocol: string, phaseArguments: string[]): string[] {
  return [settings.memtierPath, '-s', address.host, '-p', String(address.port), '-P', protocol, '--hide-histogram', ...phaseArguments];
}

interface MemtierJsonTotals {
  'Ops/sec': number;
  'Connection Errors'?: number;
  'Percentile Latencies': { 'Histogram log format': { 'Compressed Histogram': string } };
}

// Runs one memtier process to its end; any exit status but 0, or an error it prints, fails it.
async function runMemtier(command: string[], outputDirectory: string, label: string, timeoutMs: number): Promise<MemtierTotals> {
  const jsonPath = path.join(outputDirectory, `${label}.json`);
  const started = spawnTracked({ command: command[0], args: [...command.slice(1), `--json-out-file=${jsonPath}`] });
  const status = await withTimeout(started.exited, timeoutMs, () => new Error(`memtier (${label}) still running after ${timeoutMs} ms`)).catch(
    async (error: unknown) => {
      await stopProcess(started, 'SIGTERM', stopTimeoutMs);
      throw error;
    },
  );
  // memtier reports a reply it cannot parse as "error: response parsing failed." and carries on.
  const errorLines = started.stderr().split(/[\r\n]+/).filter((line) => /error/i.test(line));
  if (status.code !== 0 || errorLines.length > 0) {
    throw new Error(`memtier (${label}) exited with ${status.signal ?? status.code}: ${errorLines.slice(0, 3).join('; ') || started.stderr().slice(-500)}`);
  }
  const stats = (JSON.parse(readFileSync(jsonPath, 'utf8')) as { 'ALL STATS': Record<string, MemtierJsonTotals> })['ALL STATS'];
  const totals = stats.Totals;
  return {
    opsPerSecond: totals['Ops/sec'],
    getsPerSecond: stats.Gets['Ops/sec'],
    setsPerSecond: stats.Sets['Ops/sec'],
    connectionErrors: totals['Connection Errors'] ?? 0,
    histogramBase64: totals['Percentile Latencies']['Histogram log format']['Compressed Histogram'],
  };
}

// `clients` split over the addresses as evenly as it goes; an address with no share gets no process.
function clientsPerAddress(clients: number, addressCount: number): number[] {
  return Array.from({ length: addressCount }, (_, index) => Math.floor(clients / addressCount) + (index < clients % addressCount ? 1 : 0));
}

// One memtier process per address at once, so that each of a cluster's nodes coordinates its share.
// Every process is waited for (each is bounded by its timeout) before a failure is reported, so
// none is left running into the next target's measurement.
async function runLoad(target: RunningTarget, settings: MemtierSettings, testTimeSeconds: number, outputDirectory: string, label: string): Promise<MemtierTotals[]> {
  const shares = clientsPerAddress(settings.clients, target.addresses.length);
  const runs = target.addresses.flatMap((address, index) => {
    if (shares[index] === 0) return [];
    const command = memtierCommand(settings, address, memtierProtocol(target), loadArguments(settings, shares[index], testTimeSeconds));
    if (label === 'measure') log(`  ${command.join(' ')}`);
    return [runMemtier(command, outputDirectory, `${target.name}-${label}-${index}`, testTimeSeconds * 1000 + runTimeoutMarginMs)];
  });
  const totals: MemtierTotals[] = [];
  for (const outcome of await Promise.allSettled(runs)) {
    if (outcome.status === 'rejected') throw outcome.reason;
    totals.push(outcome.value);
  }
  return totals;
}

// get_misses as the server counts them, summed over the addresses.
async function serverMisses(addresses: Address[]): Promise<number> {
  let misses = 0;
  for (const address of addresses) {
    const client = await RawClient.connect(address.port, address.host);
    try {
      const reply = await client.request('stats\r\n', 'END\r\n');
      const match = /^STAT get_misses (\d+)\r$/m.exec(reply);
      if (match === null) throw new Error(`no get_misses in the stats of ${formatAddress(address)}`);
      misses += Number(match[1]);
    } finally {
      client.close();
    }
  }
  return misses;
}

// VmRSS of a process, in MiB; 0 when it is gone.
function residentMiBOf(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match === null ? 0 : Math.round(Number(match[1]) / 1024);
  } catch {
    return 0;
  }
}

function summarize(target: RunningTarget, runs: MemtierTotals[], misses: number): TargetResult {
  const resident = target.pids.map(residentMiBOf);
  const histogram = build({ useWebAssembly: false, numberOfSignificantValueDigits: 3 });
  // memtier records latencies in microseconds.
  for (const run of runs) histogram.add(decodeFromCompressedBase64(run.histogramBase64, 32, false));
  const sum = (pick: (run: MemtierTotals) => number): number => Math.round(runs.reduce((total, run) => total + pick(run), 0));
  return {
    target: target.name,
    version: target.version,
    addresses: target.addresses.map(formatAddress),
    opsPerSecond: sum((run) => run.opsPerSecond),
    getsPerSecond: sum((run) => run.getsPerSecond),
    setsPerSecond: sum((run) => run.setsPerSecond),
    misses,
    connectionErrors: sum((run) => run.connectionErrors),
    latencyUs: latencySummaryUs(histogram),
    residentMiB: resident.reduce((total, each) => total + each, 0),
    residentMiBMax: Math.max(0, ...resident),
  };
}

async function benchTarget(name: string, settings: MemtierSettings): Promise<TargetResult> {
  const factory = targetFactories.get(name);
  if (factory === undefined) throw new Error(`unknown target "${name}"`);
  const outputDirectory = mkdtempSync(path.join(os.tmpdir(), 'kai-memtier-'));
  outputDirectories.add(outputDirectory);
  try {
    const target = await factory({ repositoryRoot: path.resolve(__dirname, '..', '..') });
    try {
      log(`${name} (${target.version}) on ${target.addresses.map(formatAddress).join(', ')}`);
      const fill = memtierCommand(settings, target.addresses[0], memtierProtocol(target), preloadArguments(settings));
      log(`  ${fill.join(' ')}`);
      await runMemtier(fill, outputDirectory, `${name}-preload`, preloadTimeoutMs + settings.keys * preloadTimeoutMsPerKey);
      if (settings.warmupSeconds > 0) {
        log(`  warming up for ${settings.warmupSeconds} s`);
        await runLoad(target, settings, settings.warmupSeconds, outputDirectory, 'warmup');
      }
      log(`  measuring for ${settings.testTimeSeconds} s`);
      const runs = await runLoad(target, settings, settings.testTimeSeconds, outputDirectory, 'measure');
      return summarize(target, runs, await serverMisses(target.addresses));
    } finally {
      await target.stop();
    }
  } finally {
    removeOutputDirectories();
  }
}

function ratios(results: TargetResult[]): Record<string, number> {
  const found: Record<string, number> = {};
  for (const pair of comparedTargets) {
    const kai = results.find((result) => result.target === pair.kai);
    const memcached = results.find((result) => result.target === pair.memcached);
    if (kai === undefined || memcached === undefined || memcached.opsPerSecond === 0) continue;
    found[`${pair.kai}/${pair.memcached}`] = Math.round((kai.opsPerSecond / memcached.opsPerSecond) * 1000) / 1000;
  }
  return found;
}

function machineDescription(machine: MachineInfo): string {
  return `${machine.cpuModel}, ${machine.cores} cores, ${machine.os}, node ${machine.node}, ${machine.memcached}`;
}

function printHuman(machine: MachineInfo, settings: MemtierSettings, results: TargetResult[], failures: TargetFailure[]): void {
  const lines = [
    `machine: ${machineDescription(machine)}`,
    `memtier: ${settings.threads} thread(s) x ${settings.clients} clients, ratio set:get ${settings.ratio}, ${settings.dataBytes}-byte values, ` +
      `keys 1-${settings.keys}, ${settings.warmupSeconds} s warm-up, ${settings.testTimeSeconds} s measured`,
    '',
    `${'target'.padEnd(18)}${'ops/s'.padStart(10)}${'gets/s'.padStart(10)}${'sets/s'.padStart(10)}${'p50 µs'.padStart(10)}` +
      `${'p99 µs'.padStart(10)}${'p99.9 µs'.padStart(10)}${'misses'.padStart(10)}${'RSS MiB'.padStart(10)}`,
  ];
  for (const result of results) {
    const { p50, p99, p999 } = result.latencyUs;
    const cells = [result.opsPerSecond, result.getsPerSecond, result.setsPerSecond, p50, p99, p999, result.misses, result.residentMiB];
    lines.push(`${result.target.padEnd(18)}${cells.map((cell) => String(cell).padStart(10)).join('')}`);
  }
  for (const failure of failures) lines.push(`${failure.target.padEnd(18)}failed: ${failure.failure}`);
  const measured = Object.entries(ratios(results));
  if (measured.length > 0) lines.push('');
  for (const [pair, ratio] of measured) lines.push(`${pair} ops/s: ${ratio}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv);
  // Servers and memtier processes are stopped by PID even when the run is interrupted.
  stopStartedProcessesOnExit(removeOutputDirectories);
  const machine = machineInfo();
  const { results, failures } = await benchEachTarget(settings.targets, (name) => benchTarget(name, settings), log);
  if (settings.json) {
    const document = { machine: machineDescription(machine), settings, results, failures, ratios: ratios(results) };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    printHuman(machine, settings, results, failures);
  }
  // Every key was filled first, so a miss is a lost value, as in the load benchmark.
  const anyErrors = results.some((result) => result.misses > 0 || result.connectionErrors > 0);
  if (failures.length > 0 || anyErrors) process.exitCode = 1;
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  killStartedProcessesNow();
  process.exitCode = 1;
});
