// How long a node that missed writes takes to hold them all again, on real processes.
//
//   returning: 3 nodes (N=3 R=2 W=2); node 3 is killed -9, K keys are written through nodes 1
//              and 2, node 3 restarts on its data dir; anti-entropy refills it (no client reads).
//   handoff:   5 nodes (N=3 R=2 W=2); nodes 4 and 5 are killed -9, K keys are written (fallbacks
//              take the copies for the down primaries, with hints), nodes 4 and 5 restart;
//              hinted handoff delivers the copies.
//
// The clock starts when the returning nodes' memcache ports accept connections again and stops
// when the condition holds: node 3's file holds all K keys (returning); no node holds a hint and
// each returning node's file holds every key it is a primary of (handoff).
// Usage: npm run build && node dist/bench/convergence.js [--keys 10000] [--mode returning|handoff]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Command, InvalidArgumentError } from 'commander';
import { integerFlag } from './flags';
import { bucketOfKey, buildRing, preferenceList } from '../src/ring';
import { pollStatus, restartNode, startCluster, statuses, type ClusterNode } from '../test/support/cluster';
import { killStartedProcessesNow } from '../test/support/servers';
import { RawClient } from '../test/support/raw-client';

const keysMax = 10_000_000;
/** Sets sent at once on one connection, and connections writing at once. */
const setsPerBatch = 200;
const writerConnections = 4;
const pollIntervalMs = 250;
const convergeTimeoutMs = 30 * 60 * 1000;
const detectTimeoutMs = 20_000;
const valueBytes = 100;

interface Settings {
  keys: number;
  mode: 'returning' | 'handoff';
  json: boolean;
}

function parseSettings(argv: string[]): Settings {
  const program = new Command('convergence')
    .description('time for a returning node to hold every write it missed')
    .option('--keys <count>', 'keys written while the node is away', integerFlag(1, keysMax), 10_000)
    .option('--mode <mode>', 'returning (anti-entropy) or handoff', (text) => {
      if (text !== 'returning' && text !== 'handoff') throw new InvalidArgumentError('returning or handoff');
      return text;
    }, 'returning')
    .option('--json', 'print one JSON line', false);
  program.parse(argv);
  return program.opts<Settings>();
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function keyName(index: number): string {
  return `convergence:${index}`;
}

/** Writes keys [start, end) through one connection, `setsPerBatch` at a time; every one must be STORED. */
async function writeRange(node: ClusterNode, start: number, end: number): Promise<void> {
  const client = await RawClient.connect(node.memcachePort);
  try {
    const value = 'v'.repeat(valueBytes);
    for (let batchStart = start; batchStart < end; batchStart += setsPerBatch) {
      const batchEnd = Math.min(end, batchStart + setsPerBatch);
      let request = '';
      for (let index = batchStart; index < batchEnd; index++) request += `set ${keyName(index)} 0 0 ${valueBytes}\r\n${value}\r\n`;
      const expected = batchEnd - batchStart;
      client.send(request);
      const reply = await client.readUntil((received) => received.toString('latin1').split('\r\n').length - 1 >= expected, 60_000);
      const lines = reply.toString('latin1').split('\r\n').filter((line) => line !== '');
      if (lines.length !== expected || lines.some((line) => line !== 'STORED')) throw new Error(`a set was not stored: ${lines.find((line) => line !== 'STORED')}`);
    }
  } finally {
    client.close();
  }
}

async function writeKeys(writers: readonly ClusterNode[], keys: number): Promise<number> {
  const startedMs = Date.now();
  const perConnection = Math.ceil(keys / writerConnections);
  await Promise.all(
    Array.from({ length: writerConnections }, (_, connection) =>
      writeRange(writers[connection % writers.length], connection * perConnection, Math.min(keys, (connection + 1) * perConnection)),
    ),
  );
  return Date.now() - startedMs;
}

function rowsHeld(node: ClusterNode, keys: readonly string[] | undefined): number {
  const db = new Database(path.join(node.dataDir, 'kai.sqlite3'), { readonly: true, fileMustExist: true });
  try {
    if (keys === undefined) return (db.prepare('SELECT COUNT(*) AS count FROM items').get() as { count: number }).count;
    const select = db.prepare('SELECT 1 FROM items WHERE key = ?');
    return keys.filter((key) => select.get(Buffer.from(key)) !== undefined).length;
  } finally {
    db.close();
  }
}

async function hintsPending(node: ClusterNode): Promise<number> {
  const client = await RawClient.connect(node.memcachePort);
  try {
    const reply = await client.request('stats kai\r\n', 'END\r\n');
    const match = /^STAT hints_pending (\d+)\r$/m.exec(reply);
    if (match === null) throw new Error('stats kai has no hints_pending');
    return Number(match[1]);
  } finally {
    client.close();
  }
}

async function waitFor(condition: () => Promise<boolean> | boolean, what: string): Promise<number> {
  const startedMs = Date.now();
  while (!(await condition())) {
    if (Date.now() - startedMs > convergeTimeoutMs) throw new Error(`${what} did not happen within ${convergeTimeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
  return Date.now() - startedMs;
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv);
  process.on('exit', killStartedProcessesNow);
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-convergence-'));
  const args = ['--n', '3', '--r', '2', '--w', '2', '--log-level', 'warn'];
  try {
    const size = settings.mode === 'returning' ? 3 : 5;
    const nodes = await startCluster({ baseDir, size, args, convergeTimeoutMs: 60_000 });
    const away = settings.mode === 'returning' ? [nodes[2]] : [nodes[3], nodes[4]];
    const writers = nodes.filter((node) => !away.includes(node));
    for (const node of away) await node.kill();
    // Every writer must know, or it would forward writes to a node that is gone.
    for (const writer of writers) {
      await pollStatus(writer.port, (members) => away.every((node) => statuses(members)[node.id] === 'down'), detectTimeoutMs, baseDir);
    }
    log(`${settings.mode}: writing ${settings.keys} keys with ${away.map((node) => node.id).join(', ')} down`);
    const writeMs = await writeKeys(writers, settings.keys);
    log(`  written in ${writeMs} ms; restarting`);
    const returned = await Promise.all(away.map((node) => restartNode(node, args)));
    let convergedMs: number;
    if (settings.mode === 'returning') {
      convergedMs = await waitFor(() => rowsHeld(returned[0], undefined) >= settings.keys, 'the returning node holding every key');
    } else {
      const ring = buildRing(
        nodes.map((node) => ({ id: node.id, weight: 1 })),
        { buckets: 1024 },
      );
      const keysOf = (node: ClusterNode): string[] =>
        Array.from({ length: settings.keys }, (_, index) => keyName(index)).filter((key) =>
          preferenceList(ring, bucketOfKey(Buffer.from(key), 1024), 3).includes(node.id),
        );
      const owned = returned.map((node) => keysOf(node));
      convergedMs = await waitFor(async () => {
        const pending = await Promise.all([...writers, ...returned].map(hintsPending));
        return pending.every((count) => count === 0) && returned.every((node, index) => rowsHeld(node, owned[index]) === owned[index].length);
      }, 'every hint delivered');
    }
    const result = { mode: settings.mode, keys: settings.keys, writeMs, convergedMs, cores: os.cpus().length, node: process.version };
    if (settings.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${settings.mode}: ${settings.keys} keys written in ${writeMs} ms; converged ${convergedMs} ms after the return\n`);
  } finally {
    killStartedProcessesNow();
    fs.rmSync(baseDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  killStartedProcessesNow();
  process.exitCode = 1;
});
