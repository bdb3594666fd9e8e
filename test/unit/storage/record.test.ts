import { recordPurgeAtMs, tombstoneRetentionMs, type Version } from '../../../src/storage/record';

const nowMs = 1_700_000_000_000;

function version(overrides: Partial<Version>): Version {
  return { clock: [], value: Buffer.from('v'), flags: 0, expiresAtMs: 0, tombstone: false, writtenAtMs: nowMs, ...overrides };
}

const tombstone = (writtenAtMs: number): Version => version({ value: Buffer.alloc(0), tombstone: true, writtenAtMs });

describe('recordPurgeAtMs', () => {
  test('a record with a value that never expires is never purged', () => {
    // Proves one immortal version keeps the whole row, whatever its siblings.
    expect(recordPurgeAtMs([version({}), tombstone(nowMs)])).toBe(0);
  });

  test('values that expire are purged after the last expiry', () => {
    // Proves the purge time of expiring values is the latest expiry.
    expect(recordPurgeAtMs([version({ expiresAtMs: nowMs + 5 }), version({ expiresAtMs: nowMs + 9 })])).toBe(nowMs + 9);
  });

  test('tombstones are kept for the retention time after the latest delete', () => {
    // Proves a record of tombstones gets a purge time, and the latest tombstone decides it.
    expect(recordPurgeAtMs([tombstone(nowMs - 10), tombstone(nowMs)])).toBe(nowMs + tombstoneRetentionMs);
    expect(recordPurgeAtMs([tombstone(nowMs)], 3000)).toBe(nowMs + 3000);
  });

  test('a record of tombstones and expiring values waits for both', () => {
    // Proves neither an early expiry nor an early delete shortens the other's wait.
    const lateExpiry = nowMs + tombstoneRetentionMs + 1;
    expect(recordPurgeAtMs([version({ expiresAtMs: lateExpiry }), tombstone(nowMs)])).toBe(lateExpiry);
    expect(recordPurgeAtMs([version({ expiresAtMs: nowMs + 1 }), tombstone(nowMs)])).toBe(nowMs + tombstoneRetentionMs);
  });
});
