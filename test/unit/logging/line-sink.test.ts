// The log line sink on real files: lines in order, a full disk (a real tmpfs) drops and counts lines without blocking, and close is bounded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LineSink } from '../../../src/logging/line-sink';
import { fillDisk, mountTmpfs, type Tmpfs } from '../../support/tmpfs';

let dir: string;
let disk: Tmpfs | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-line-sink-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  disk?.unmount();
  disk = undefined;
});

/** Waits for `condition`, polling every few ms, for `timeoutMs` at most. */
async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('lines reach the file in order and close writes out every queued line', async () => {
  const file = path.join(dir, 'kai.log');
  const sink = LineSink.open(file);
  const lines = Array.from({ length: 5000 }, (_, index) => `{"n":${index},"pad":"${'x'.repeat(index % 50)}"}\n`);
  for (const line of lines) expect(sink.write(line)).toBe(true);
  await sink.close(5000);
  expect(fs.readFileSync(file, 'utf8')).toBe(lines.join(''));
  expect(sink.counters()).toMatchObject({ linesWritten: 5000, linesDropped: 0, writeFailures: 0 });
  // After close, lines are dropped and counted, never written.
  expect(sink.write('late\n')).toBe(false);
  expect(sink.counters().linesDropped).toBe(1);
});

test('past the queue bound new lines are dropped and counted, and the loss is reported in the log once it drains', async () => {
  const file = path.join(dir, 'kai.log');
  const sink = LineSink.open(file, 100);
  const accepted = Array.from({ length: 10 }, (_, index) => sink.write(`line ${index} ${'y'.repeat(20)}\n`));
  // Each line is 29 bytes: three fit in 100 bytes before the first write takes them.
  expect(accepted.filter((ok) => !ok).length).toBeGreaterThan(0);
  await sink.close(5000);
  const dropped = accepted.filter((ok) => !ok).length;
  expect(sink.counters().linesDropped).toBe(dropped);
  expect(sink.counters().linesWritten).toBe(10 - dropped);
});

test('a full disk drops lines and counts them without blocking; space back, logging resumes and says how many were lost', async () => {
  disk = mountTmpfs(256 * 1024);
  const file = path.join(disk.dir, 'kai.log');
  const sink = LineSink.open(file);
  fs.writeFileSync(path.join(disk.dir, 'ballast'), Buffer.alloc(64 * 1024));
  fillDisk(disk.dir);
  const startedAtMs = Date.now();
  for (let index = 0; index < 1000; index++) sink.write(`{"lost":${index}}\n`);
  // Writing never waits for the disk.
  expect(Date.now() - startedAtMs).toBeLessThan(1000);
  await waitFor(() => sink.counters().writeFailures > 0, 5000);
  expect(sink.counters().lastFailure).toBe('ENOSPC');
  expect(sink.counters().linesDropped).toBeGreaterThan(0);
  fs.rmSync(path.join(disk.dir, 'ballast'));
  fs.rmSync(path.join(disk.dir, 'fill'));
  // The sink waits a moment after a failure before it writes again.
  await waitFor(() => sink.write('{"back":true}\n') && fs.readFileSync(file, 'utf8').includes('"back":true'), 10_000);
  const text = fs.readFileSync(file, 'utf8');
  expect(text).toMatch(/"dropped":\d+,"failure":"ENOSPC","msg":"log lines dropped"/);
  await sink.close(1000);
});

test('close on a disk that stays full ends within its timeout and counts what it could not write', async () => {
  disk = mountTmpfs(128 * 1024);
  const file = path.join(disk.dir, 'kai.log');
  const sink = LineSink.open(file);
  fillDisk(disk.dir);
  for (let index = 0; index < 100; index++) sink.write(`{"n":${index}}\n`);
  const startedAtMs = Date.now();
  await sink.close(2000);
  expect(Date.now() - startedAtMs).toBeLessThan(3000);
  expect(sink.counters().linesDropped).toBe(100);
  expect(sink.counters().linesWritten).toBe(0);
});
