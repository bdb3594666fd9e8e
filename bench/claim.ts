// How long the claimant takes to compute a ring table: new, after a join and after a leave, at
// the largest ring (65536 buckets among 256 members) and at a default one (1024 among 100).
// Each case runs once to warm up, then --runs times; the median, fastest and slowest are printed.
// Usage: npm run bench:claim [-- --runs 11] [-- --json]

import os from 'node:os';
import { Command } from 'commander';
import { integerFlag } from './flags';
import type { RingMember } from '../src/ring';
import { claim, claimSpacingDefault } from '../src/ring/claim';

const runsMax = 1000;

interface Settings {
  runs: number;
  json: boolean;
}

interface Timing {
  readonly case: string;
  readonly medianMs: number;
  readonly fastestMs: number;
  readonly slowestMs: number;
}

function parseSettings(argv: string[]): Settings {
  const program = new Command('claim')
    .description('time to compute a ring table')
    .option('--runs <count>', 'timed runs per case', integerFlag(1, runsMax), 11)
    .option('--json', 'print one JSON line', false);
  program.parse(argv);
  return program.opts<Settings>();
}

/** Runs `run` once to warm up, then `runs` times, timing each. */
function time(name: string, runs: number, run: () => void): Timing {
  run();
  const timings: number[] = [];
  for (let i = 0; i < runs; i++) {
    const startedMs = performance.now();
    run();
    timings.push(performance.now() - startedMs);
  }
  timings.sort((a, b) => a - b);
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  return { case: name, medianMs: round(timings[runs >> 1]), fastestMs: round(timings[0]), slowestMs: round(timings[runs - 1]) };
}

function main(): void {
  const settings = parseSettings(process.argv);
  // Weights 1 to 3, as a mixed fleet has; the 257th member is the one that joins.
  const members: RingMember[] = Array.from({ length: 257 }, (_, i) => ({ id: `node-${i}`, weight: 1 + (i % 3) }));
  const large = { buckets: 65536, spacing: claimSpacingDefault };
  const largeOwners = claim(null, members.slice(0, 256), large);
  const small = { buckets: 1024, spacing: claimSpacingDefault };
  const hundred = members.slice(0, 100);
  const smallOwners = claim(null, hundred, small);
  const timings = [
    time('65536 buckets, 256 members, new', settings.runs, () => claim(null, members.slice(0, 256), large)),
    time('65536 buckets, 256 members, one joins', settings.runs, () => claim(largeOwners, members, large)),
    time('65536 buckets, 256 members, one leaves', settings.runs, () => claim(largeOwners, members.slice(1, 256), large)),
    time('1024 buckets, 100 members, new', settings.runs, () => claim(null, hundred, small)),
    time('1024 buckets, 100 members, one joins', settings.runs, () => claim(smallOwners, members.slice(0, 101), small)),
    time('1024 buckets, 100 members, one leaves', settings.runs, () => claim(smallOwners, members.slice(1, 100), small)),
  ];
  const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version };
  if (settings.json) {
    process.stdout.write(`${JSON.stringify({ machine, runs: settings.runs, timings })}\n`);
    return;
  }
  process.stdout.write(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; ${settings.runs} runs per case\n`);
  process.stdout.write('| Case | Median ms | Fastest ms | Slowest ms |\n| --- | --- | --- | --- |\n');
  for (const timing of timings) process.stdout.write(`| ${timing.case} | ${timing.medianMs} | ${timing.fastestMs} | ${timing.slowestMs} |\n`);
}

main();
