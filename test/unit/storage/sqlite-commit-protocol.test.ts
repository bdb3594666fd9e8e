import { decodeBatch, encodeBatch, type CommitOperation } from '../../../src/storage/sqlite-commit-protocol';

describe('sqlite commit batches', () => {
  test('round-trip every operation kind, nulls and binary bytes through one buffer', () => {
    // Proves the worker reads back exactly the batch the store encoded, in order.
    const operations: CommitOperation[] = [
      {
        kind: 'write',
        key: Buffer.from([0x00, 0xff, 0x0d, 0x0a]),
        bucket: 1023,
        purgeAtMs: 1_700_000_000_123,
        itemBytes: 104,
        versionsBlob: Buffer.from(Array.from({ length: 256 }, (_, index) => index)),
      },
      { kind: 'removeAll' },
      {
        kind: 'write',
        key: Buffer.from('k'),
        bucket: 0,
        purgeAtMs: null,
        itemBytes: null,
        versionsBlob: Buffer.from([1]),
      },
      { kind: 'purge', nowMs: 1_700_000_000_000, limit: 500 },
    ];
    const encoded = encodeBatch(operations);
    expect(encoded.byteLength).toBe(33 + 4 + 256 + 1 + 33 + 1 + 1 + 17);
    expect(decodeBatch(encoded)).toEqual(operations);
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });

  test('a batch with an unknown operation kind fails an assertion', () => {
    // Proves a corrupt batch is a programmer error, not silently skipped.
    expect(() => decodeBatch(new Uint8Array([0xee]).buffer)).toThrow(/assertion failed/);
  });
});
