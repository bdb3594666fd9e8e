// Proves kai transfers draws each member's progress: a bar, buckets, keys, bytes, rate, time left, and why it waits.
import { transfersTable } from '../../../src/cli/ring-commands';

const base = { version: 7, keysMoved: 0, bytesMoved: 0, startedAtMs: 0, nowMs: 1_000_000 };

test('a change in progress shows a line per member', () => {
  const table = transfersTable({
    version: 7,
    changing: true,
    rows: [
      { member: 'a:1', progress: { ...base, bucketsToReceive: 200, bucketsReceived: 50, keysMoved: 1234, bytesMoved: 3 * 1024 * 1024, startedAtMs: 990_000 } },
      { member: 'b:1', progress: { ...base, bucketsToReceive: 0, bucketsReceived: 0 } },
      { member: 'c:1', progress: { ...base, bucketsToReceive: 10, bucketsReceived: 0, waiting: 'waiting for every member to hold the plan' } },
      { member: 'd:1', progress: undefined, unreachable: 'cannot reach d:1' },
    ],
  });
  const lines = table.split('\n');
  expect(lines[0]).toBe('ring version 7: buckets move to their new replicas before requests do');
  // 50 of 200 buckets in 10 s: a quarter of the bar, 5 buckets/s so 30 s left, 3 MiB at 0.3 MiB/s.
  expect(lines[1]).toBe('a:1  [#####...............]  50/200 buckets  1234 keys  3.0 MiB  307.2 KiB/s  30 s left');
  expect(lines[2]).toBe('b:1  receives nothing');
  expect(lines[3]).toBe('c:1  [....................]  0/10 buckets  0 keys  0 B  0 B/s  time left unknown  (waiting for every member to hold the plan)');
  expect(lines[4]).toBe('d:1  cannot reach d:1');
});

test('no change in progress says so', () => {
  expect(transfersTable({ version: 3, changing: false, rows: [] })).toBe('ring version 3: no ring change in progress, nothing to transfer');
});
