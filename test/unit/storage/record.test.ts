import { deadPastGrace, newerFirst, recordDeadAtMs, type Version } from '../../../src/storage/record';

const nowMs = 1_700_000_000_000;

function version(overrides: Partial<Version>): Version {
  return { clock: [], value: Buffer.from('v'), flags: 0, expiresAtMs: 0, tombstone: false, writtenAtMs: nowMs, ...overrides };
}

const tombstone = (writtenAtMs: number): Version => version({ value: Buffer.alloc(0), tombstone: true, writtenAtMs });

describe('recordDeadAtMs', () => {
  test('a record with a value that never expires never dies', () => {
    // Proves one immortal version keeps the whole record alive, whatever its siblings.
    expect(recordDeadAtMs([version({}), tombstone(nowMs)])).toBeNull();
  });

  test('values that expire die with the last expiry', () => {
    // Proves the dead time of expiring values is the latest expiry.
    expect(recordDeadAtMs([version({ expiresAtMs: nowMs + 5 }), version({ expiresAtMs: nowMs + 9 })])).toBe(nowMs + 9);
  });

  test('tombstones are dead from their delete, the latest one deciding', () => {
    // Proves a record of tombstones is dead from its latest delete.
    expect(recordDeadAtMs([tombstone(nowMs - 10), tombstone(nowMs)])).toBe(nowMs);
  });

  test('a record of tombstones and expiring values dies with the later of both', () => {
    // Proves neither an early expiry nor an early delete ends the other's life.
    expect(recordDeadAtMs([version({ expiresAtMs: nowMs + 50 }), tombstone(nowMs)])).toBe(nowMs + 50);
    expect(recordDeadAtMs([version({ expiresAtMs: nowMs - 50 }), tombstone(nowMs)])).toBe(nowMs);
  });
});

describe('deadPastGrace', () => {
  test('is true only once every version has been dead for the grace period', () => {
    // Proves the grace is counted from the moment nothing is live any more.
    const versions = [version({ expiresAtMs: nowMs + 100 }), tombstone(nowMs)];
    expect(deadPastGrace(versions, nowMs + 100 + 999, 1000)).toBe(false);
    expect(deadPastGrace(versions, nowMs + 100 + 1000, 1000)).toBe(true);
    expect(deadPastGrace([version({})], nowMs + 10 ** 9, 1000)).toBe(false);
  });
});

describe('newerFirst', () => {
  test('orders by write time, then by clock and content, the same whatever the input order', () => {
    // Proves the canonical order that makes replicas store identical bytes for identical versions.
    const a = version({ writtenAtMs: nowMs + 1, clock: [{ node: 'a', counter: 1, timestampMs: 1 }] });
    const b = version({ writtenAtMs: nowMs, clock: [{ node: 'b', counter: 1, timestampMs: 1 }] });
    const c = version({ writtenAtMs: nowMs, clock: [{ node: 'c', counter: 1, timestampMs: 1 }] });
    expect([b, c, a].sort(newerFirst)).toEqual([a, c, b]);
    expect([c, a, b].sort(newerFirst)).toEqual([a, c, b]);
  });
});
