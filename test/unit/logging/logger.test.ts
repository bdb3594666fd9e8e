// The node's logger end to end on a real file: repeated warnings are rate limited per message with a summary, info lines are not, and counters follow.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closeLogger, createLogger, logCounters, setLogLevel } from '../../../src/log';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-logger-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly suppressed?: number;
  readonly component?: string;
}

test('a flood of one warning writes its first lines and one summary; other messages and info lines are not held back', async () => {
  const file = path.join(dir, 'kai.log');
  const log = createLogger({ level: 'info', file, rateLimit: { linesPerInterval: 5, intervalMs: 60_000, keysMax: 16 } });
  const child = log.child({ component: 'rpc' });
  for (let index = 0; index < 200; index++) child.warn({ peer: `p${index}` }, 'closing internal API connection');
  for (let index = 0; index < 3; index++) log.error({ index }, 'storage commit failed');
  for (let index = 0; index < 20; index++) log.info({ index }, 'member up');
  expect(logCounters(child)).toMatchObject({ linesSuppressed: 195, linesDropped: 0 });
  await closeLogger(log);
  const lines = fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((text) => JSON.parse(text) as LogLine);
  const flood = lines.filter((line) => line.msg === 'closing internal API connection');
  expect(flood).toHaveLength(5);
  expect(flood.every((line) => line.component === 'rpc' && line.level === 40)).toBe(true);
  // The summary comes at close at the latest, at the level and with the fields of the lines it stands for.
  expect(lines.filter((line) => line.msg === 'closing internal API connection (195 more suppressed)')).toEqual([
    expect.objectContaining({ level: 40, component: 'rpc', suppressed: 195 }),
  ]);
  expect(lines.filter((line) => line.msg === 'storage commit failed')).toHaveLength(3);
  expect(lines.filter((line) => line.msg === 'member up')).toHaveLength(20);
});

test('setLogLevel changes the level of the logger and of the children made from it', async () => {
  const file = path.join(dir, 'kai.log');
  const log = createLogger({ level: 'info', file });
  const child = log.child({ component: 'gossip' });
  const grandchild = child.child({ peer: 'p' });
  grandchild.debug('before');
  setLogLevel(log, 'debug');
  grandchild.debug('after');
  expect([log.level, child.level, grandchild.level]).toEqual(['debug', 'debug', 'debug']);
  await closeLogger(log);
  const messages = fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((text) => (JSON.parse(text) as LogLine).msg);
  expect(messages).toEqual(['after']);
});
