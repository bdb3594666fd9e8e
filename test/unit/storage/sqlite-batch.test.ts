import { decodeBatch, encodeBatch, type CommitOperation } from '../../../src/storage/sqlite-batch';

describe('sqlite commit batches', () => {
  test('round-trip every operation kind, nulls, hints and binary bytes through one buffer', () => {
    // Proves the committer reads back exactly the batch the store encoded, in order.
    const operations: CommitOperation[] = [
      {
        kind: 'write',
        key: Buffer.from([0x00, 0xff, 0x0d, 0x0a]),
        bucket: 1023,
        deadAtMs: 1_700_000_000_123,
        itemBytes: 104,
        versionsBlob: Buffer.from(Array.from({ length: 256 }, (_, index) => index)),
        actor: 'n1.example:11011~kx2f9a',
        hintTarget: 'n2.example:11011',
        onlyIfPresent: false,
      },
      { kind: 'removeAll' },
      { kind: 'write', key: Buffer.from('k'), bucket: 0, deadAtMs: null, itemBytes: null, versionsBlob: Buffer.from([1]), actor: null, hintTarget: null, onlyIfPresent: true },
      { kind: 'purge', deadBeforeMs: 1_700_000_000_000, limit: 500 },
      { kind: 'reap', items: [{ key: Buffer.from('a'), expectedHash: 2 ** 53 - 1 }, { key: Buffer.from([0]), expectedHash: 0 }] },
      { kind: 'deferReap', untilMs: 1_700_000_060_000, items: [{ key: Buffer.from('b'), expectedHash: 12345 }] },
      { kind: 'handedOff', target: 'n3:1', dropCopy: true, items: [{ key: Buffer.from('c'), expectedHash: -1 }] },
      { kind: 'reap', items: [] },
    ];
    const encoded = encodeBatch(operations);
    expect(decodeBatch(encoded)).toEqual(operations);
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });

  test('a batch is laid out in one allocation of exactly its size', () => {
    // Proves the encoder sizes the batch before writing it: no slack travels to the committer.
    const write: CommitOperation = {
      kind: 'write',
      key: Buffer.from('key'),
      bucket: 3,
      deadAtMs: null,
      itemBytes: 8,
      versionsBlob: Buffer.from('blob'),
      actor: 'ä~1',
      hintTarget: 'ü:1',
      onlyIfPresent: false,
    };
    // kind, four numbers, two lengths, key, blob, and the target's and the actor's lengths and UTF-8 bytes.
    expect(encodeBatch([write]).byteLength).toBe(1 + 4 * 8 + 2 * 4 + 3 + 4 + 4 + Buffer.byteLength('ü:1') + 4 + Buffer.byteLength('ä~1'));
  });

  test('a batch with an unknown operation kind fails an assertion', () => {
    // Proves a corrupt batch is a programmer error, not silently skipped.
    expect(() => decodeBatch(new Uint8Array([0xee]).buffer)).toThrow(/assertion failed/);
  });
});
