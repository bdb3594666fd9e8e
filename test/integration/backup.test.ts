// Proves kai backup copies a running node's SQLite file under steady writes into a file that opens, and that a node started on the copy holds every write acknowledged before the backup began.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getFreePort, killStartedKai, runKai, startKai } from '../support/process';
import { RawClient } from '../support/raw-client';

const singleNode = ['--n', '1', '--r', '1', '--w', '1', '--log-level', 'warn'];
/** Writes acknowledged before the backup starts: enough that the copy is more than an empty file. */
const writesBeforeBackup = 1000;
const writers = 2;
/** Keys asked per get when reading the copy back. */
const keysPerGet = 50;

let workDir: string;

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-backup-'));
});

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

/** Sets `w<writer>-<n>` for n = 0, 1, ... until stopped, one at a time; counts what was acknowledged. */
function startWriter(port: number, writer: number): { acknowledged: () => number; stop: () => Promise<void> } {
  let acknowledged = 0;
  let stopping = false;
  const done = (async () => {
    const client = await RawClient.connect(port);
    try {
      while (!stopping) {
        const value = `value-${writer}-${acknowledged}`;
        const reply = await client.request(`set w${writer}-${acknowledged} 0 0 ${value.length}\r\n${value}\r\n`);
        if (reply !== 'STORED\r\n') throw new Error(`set answered ${reply}`);
        acknowledged++;
      }
    } finally {
      client.close();
    }
  })();
  return {
    acknowledged: () => acknowledged,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

test('a copy taken while the node writes opens and holds every write acknowledged before it began', async () => {
  const dataDir = path.join(workDir, 'node');
  const port = await getFreePort();
  const node = await startKai({ dataDir, port, args: singleNode });
  const running = Array.from({ length: writers }, (_, writer) => startWriter(node.memcachePort, writer));
  while (running.reduce((sum, writer) => sum + writer.acknowledged(), 0) < writesBeforeBackup) await new Promise((resolve) => setTimeout(resolve, 10));
  const acknowledgedBefore = running.map((writer) => writer.acknowledged());
  const copy = path.join(workDir, 'copy.sqlite3');
  const backup = await runKai(['backup', copy, '--data-dir', dataDir], { cwd: workDir });
  const acknowledgedAfter = running.map((writer) => writer.acknowledged());
  await Promise.all(running.map((writer) => writer.stop()));
  expect(backup.stderr).toBe('');
  expect(backup.code).toBe(0);
  expect(backup.stdout).toMatch(
    new RegExp(`^${path.join(dataDir, 'kai.sqlite3')} \\(node 127\\.0\\.0\\.1:${port}\\) copied to ${copy}: .*, \\d+ keys; the copy opens and passes SQLite's check\\n$`),
  );
  // The writers went on while the copy was taken.
  expect(acknowledgedAfter.reduce((sum, count) => sum + count, 0)).toBeGreaterThan(writesBeforeBackup);
  expect((await runKai(['backup', copy, '--data-dir', dataDir], { cwd: workDir })).stderr).toBe(`kai: ${copy} exists already: name a new file\n`);
  expect(await node.stop()).toEqual({ code: 0, signal: null });

  // Restored as the same node (the copy names its address) in a data dir of its own.
  const restoredDir = path.join(workDir, 'restored');
  fs.mkdirSync(restoredDir);
  fs.copyFileSync(copy, path.join(restoredDir, 'kai.sqlite3'));
  const restored = await startKai({ dataDir: restoredDir, port, args: singleNode });
  const client = await RawClient.connect(restored.memcachePort);
  try {
    for (const [writer, count] of acknowledgedBefore.entries()) {
      for (let first = 0; first < count; first += keysPerGet) {
        const indexes = Array.from({ length: Math.min(keysPerGet, count - first) }, (_, offset) => first + offset);
        const reply = await client.request(`get ${indexes.map((index) => `w${writer}-${index}`).join(' ')}\r\n`, 'END\r\n');
        const expected = indexes.map((index) => `VALUE w${writer}-${index} 0 ${`value-${writer}-${index}`.length}\r\nvalue-${writer}-${index}\r\n`);
        expect(reply).toBe(`${expected.join('')}END\r\n`);
      }
    }
  } finally {
    client.close();
  }
  expect(await restored.stop()).toEqual({ code: 0, signal: null });
}, 120_000);
