// Proves kai locate draws the preference lists with their stand-ins, names versions alike across replicas, and checks the key it is given.
import { locateTable, parseLocateKey, type Located } from '../../../src/cli/locate-command';
import type { WireVersionSummary } from '../../../src/rpc/messages';

const older: WireVersionSummary = { clock: [['a:1~x', 1, 1]], writtenAtMs: Date.UTC(2026, 0, 1), expiresAtMs: 0, tombstone: false, flags: 3, valueBytes: 5 };
const newer: WireVersionSummary = { ...older, clock: [['c:1~y', 1, 2]], writtenAtMs: Date.UTC(2026, 0, 2), valueBytes: 2048 };

const located: Located = {
  key: 'greeting',
  asked: 'a:1',
  bucket: 17,
  buckets: 64,
  quorum: { n: 3, r: 2, w: 2 },
  lists: [{ ring: 'current', reads: true, primaries: ['a:1', 'b:1', 'c:1'], targets: [{ node: 'a:1' }, { node: 'd:1', standsInFor: 'b:1' }, { node: 'c:1' }] }],
  replicas: [
    { node: 'a:1', up: true, versions: [older] },
    { node: 'b:1', up: false, error: 'down: not asked' },
    { node: 'd:1', up: true, versions: [] },
    { node: 'c:1', up: true, versions: [newer, older] },
  ],
};

test('a primary that is down shows its fallback; versions are named newest first across replicas', () => {
  expect(locateTable(located).split('\n')).toEqual([
    'key greeting: bucket 17 of 64, N=3 R=2 W=2, as a:1 routes it',
    '',
    'PREFERENCE LIST (reads and writes)',
    '#  PRIMARY  STATUS  REQUESTS GO TO',
    '1  a:1      up      a:1',
    '2  b:1      down    d:1 (fallback)',
    '3  c:1      up      c:1',
    '',
    'VERSIONS',
    'v1  written 2026-01-02T00:00:00.000Z  2.0 KiB, flags 3  no expiry  clock: c:1~y',
    'v2  written 2026-01-01T00:00:00.000Z  5 B, flags 3  no expiry  clock: a:1~x',
    '',
    'REPLICA  ROLE              HOLDS',
    'a:1      primary           v2',
    'b:1      primary           down: not asked',
    'd:1      fallback for b:1  nothing',
    'c:1      primary           v1, v2 (siblings)',
    'the replicas differ: read repair and anti-entropy bring them together',
  ]);
});

test('while the bucket moves both lists are shown, and which one reads', () => {
  const moving: Located = {
    ...located,
    lists: [
      { ring: 'current', reads: true, primaries: ['a:1'], targets: [{ node: 'a:1' }] },
      { ring: 'next', reads: false, primaries: ['e:1'], targets: [{ node: 'e:1' }] },
    ],
    replicas: [
      { node: 'a:1', up: true, versions: [older] },
      { node: 'e:1', up: true, versions: [older] },
    ],
  };
  const lines = locateTable(moving).split('\n');
  expect(lines).toContain('PREFERENCE LIST of the current ring (writes and reads)');
  expect(lines).toContain('PREFERENCE LIST of the next ring (writes; reads once the bucket has moved)');
  expect(lines).toContain('e:1      primary (next ring)     v1');
  expect(lines[lines.length - 1]).toBe('the replicas asked hold the same versions');
});

test('keys are checked as memcache keys, or taken in base64', () => {
  expect(parseLocateKey('user:42', false)).toEqual(Buffer.from('user:42'));
  expect(parseLocateKey(Buffer.from([0, 1, 2]).toString('base64'), true)).toEqual(Buffer.from([0, 1, 2]));
  expect(() => parseLocateKey('two words', false)).toThrow(/no spaces or control characters/);
  expect(() => parseLocateKey('k'.repeat(251), false)).toThrow(/1 to 250 bytes, got 251/);
  expect(() => parseLocateKey('not base64!', true)).toThrow(/not base64/);
});
