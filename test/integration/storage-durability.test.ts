import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/storage/sqlite';
import { valueOf } from '../support/storage-writer';

const writerPath = path.join(__dirname, '..', 'support', 'storage-writer.js');
/** Acknowledged writes to wait for before the kill. */
const acknowledgedTarget = 2000;
const acknowledgedWaitMsMax = 20_000;

let dataDir: string;
let child: ChildProcess | undefined;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-durability-test-'));
});

afterEach(() => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, 'SIGKILL');
  }
  child = undefined;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Collects complete stdout lines; `onLine` may ask for the kill once enough have arrived. */
function readLines(writer: ChildProcess, onLine: (count: number) => void): Promise<string[]> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    let partial = '';
    writer.stdout!.setEncoding('utf8');
    writer.stdout!.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) lines.push(line);
      onLine(lines.length);
    });
    // A line cut short by the kill was never fully acknowledged: it is dropped with `partial`.
    writer.stdout!.on('close', () => resolve(lines));
  });
}

test('every write acknowledged before a SIGKILL is present after reopening the store', async () => {
  // Proves an acknowledged write survives kill -9: write resolves only after its commit is durable.
  const writer = spawn(process.execPath, [writerPath, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = writer;
  let stderr = '';
  writer.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => writer.on('exit', (_code, signal) => resolve(signal)));

  let killed = false;
  const kill = () => {
    if (killed || writer.pid === undefined) return;
    killed = true;
    process.kill(writer.pid, 'SIGKILL');
  };
  const deadline = setTimeout(kill, acknowledgedWaitMsMax);
  const lines = readLines(writer, (count) => {
    if (count >= acknowledgedTarget) kill();
  });
  const acknowledged = await lines;
  const signal = await exited;
  clearTimeout(deadline);

  expect(stderr).toBe('');
  expect(signal).toBe('SIGKILL');
  expect(acknowledged.length).toBeGreaterThanOrEqual(acknowledgedTarget);

  const store = openSqliteStore({ dataDir });
  try {
    const missing = acknowledged.filter((key) => store.read(Buffer.from(key)) === undefined);
    expect(missing).toEqual([]);
    for (const key of acknowledged) {
      expect(store.read(Buffer.from(key))!.versions[0].value.equals(valueOf(key))).toBe(true);
    }
    expect(store.counts().items).toBeGreaterThanOrEqual(acknowledged.length);
  } finally {
    await store.close();
  }
});
