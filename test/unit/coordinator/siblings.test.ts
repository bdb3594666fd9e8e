import { newerFirst, resolveVersions } from '../../../src/coordinator/siblings';
import type { Version } from '../../../src/storage/record';
import { defaultPruneLimits, descends } from '../../../src/vclock';

function sibling(node: string, writtenAtMs: number, value = node): Version {
  return {
    clock: [{ node, counter: 1, timestampMs: writtenAtMs }],
    value: Buffer.from(value),
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs,
  };
}

const values = (versions: readonly Version[]): string[] => versions.map((v) => v.value.toString()).sort();

describe('resolveVersions', () => {
  // Under the cap every concurrent version is kept, newest first (the order records are stored in).
  test('siblings are kept up to the cap', () => {
    const versions = [sibling('a', 1), sibling('b', 2), sibling('c', 3)];
    expect(resolveVersions(versions, { conflictResolution: 'siblings', siblingsMax: 3 })).toEqual({
      versions: [...versions].reverse(),
      dropped: 0,
    });
  });

  // Past the cap the oldest by write time go, and are counted.
  test('the oldest siblings are dropped past the cap', () => {
    const versions = [sibling('a', 30), sibling('b', 10), sibling('c', 20), sibling('d', 40)];
    const resolved = resolveVersions(versions, { conflictResolution: 'siblings', siblingsMax: 2 });
    expect(values(resolved.versions)).toEqual(['a', 'd']);
    expect(resolved.dropped).toBe(2);
  });

  // Last write wins keeps one version, which dominates every version it beat.
  test('lww keeps the latest with the merged clock', () => {
    const versions = [sibling('a', 30), sibling('b', 10), sibling('c', 20)];
    const { versions: [winner], dropped } = resolveVersions(versions, { conflictResolution: 'lww', siblingsMax: 25 });
    expect(winner.value.toString()).toBe('a');
    expect(dropped).toBe(0);
    for (const version of versions) expect(descends(winner.clock, version.clock)).toBe(true);
  });

  // The merged clock of many concurrent writers is pruned, so it stays within what peers accept.
  test('lww prunes the merged clock of many writers', () => {
    const versions = Array.from({ length: 80 }, (_, index) => sibling(`node-${index}`, 1_000 + index));
    const { versions: [winner] } = resolveVersions(versions, { conflictResolution: 'lww', siblingsMax: 25 });
    expect(winner.value.toString()).toBe('node-79');
    expect(winner.clock.length).toBe(defaultPruneLimits.entriesMax);
    expect(winner.clock.some((entry) => entry.node === 'node-79')).toBe(true);
  });

  // Ties in write time resolve the same way whatever order the versions arrive in.
  test('ties are broken deterministically', () => {
    const versions = [sibling('a', 10), sibling('b', 10), sibling('c', 10)];
    const orders = [versions, [...versions].reverse(), [versions[1], versions[2], versions[0]]];
    const winners = orders.map((order) => resolveVersions(order, { conflictResolution: 'lww', siblingsMax: 25 }).versions[0]);
    expect(new Set(winners.map((winner) => winner.value.toString())).size).toBe(1);
    const capped = orders.map((order) => values(resolveVersions(order, { conflictResolution: 'siblings', siblingsMax: 2 }).versions));
    expect(capped[1]).toEqual(capped[0]);
    expect(capped[2]).toEqual(capped[0]);
    expect([...versions].sort(newerFirst)).toEqual([...versions].reverse().sort(newerFirst));
  });
});
