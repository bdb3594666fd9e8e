import type { StoredRecord } from '../../../src/storage';
import { RecordCache, cachedBytesOf, compactRecord } from '../../../src/storage/record-cache';

function record(key: string, value: string): StoredRecord {
  return {
    key: Buffer.from(key),
    bucket: 3,
    versions: [
      {
        clock: [{ node: 'node-a', counter: 1, timestampMs: 5 }],
        value: Buffer.from(value),
        flags: 0,
        expiresAtMs: 0,
        tombstone: false,
        writtenAtMs: 5,
      },
    ],
  };
}

describe('RecordCache', () => {
  test('tells a cached absence from an unknown key', () => {
    // Proves absent keys are remembered as such, distinct from a miss.
    const cache = new RecordCache(1024 * 1024);
    cache.put('absent', undefined);
    expect(cache.lookup('absent')).toEqual({ record: undefined, bytes: cachedBytesOf('absent', undefined) });
    expect(cache.lookup('unknown')).toBeUndefined();
  });

  test('keeps its estimated bytes within the budget, evicting in least-recently-used order', () => {
    // Proves the byte accounting and the LRU order across lookups, replacements and deletes.
    const entryBytes = cachedBytesOf('k1', record('k1', 'value'));
    const cache = new RecordCache(3 * entryBytes);
    for (const key of ['k1', 'k2', 'k3']) cache.put(key, record(key, 'value'));
    expect(cache.bytes).toBe(3 * entryBytes);
    cache.lookup('k1');
    cache.put('k2', record('k2', 'value'));
    cache.put('k4', record('k4', 'value'));
    expect(cache.lookup('k3')).toBeUndefined();
    expect(cache.lookup('k1')).toBeDefined();
    cache.put('k5', record('k5', 'value'));
    expect(cache.lookup('k2')).toBeUndefined();
    expect(cache.size).toBe(3);
    expect(cache.bytes).toBe(3 * entryBytes);
    cache.delete('k1');
    expect(cache.bytes).toBe(2 * entryBytes);
    cache.clear();
    expect([cache.size, cache.bytes]).toEqual([0, 0]);
  });

  test('a budget of 0 caches nothing', () => {
    // Proves 0 disables the cache.
    const cache = new RecordCache(0);
    cache.put('k', record('k', 'v'));
    expect([cache.enabled, cache.size, cache.bytes]).toEqual([false, 0, 0]);
  });

  test('compactRecord copies key and values into one exact-size allocation', () => {
    // Proves a compact copy is equal to the original and shares no memory with it.
    const single = record('key', 'value');
    const second = { ...single.versions[0], value: Buffer.from('second') };
    const original = { ...single, versions: [...single.versions, second] };
    const compact = compactRecord(original);
    expect(compact).toEqual(original);
    expect(compact.key.buffer.byteLength).toBe('key'.length + 'value'.length + 'second'.length);
    expect(compact.versions[1].value.buffer).toBe(compact.key.buffer);
    original.versions[0].value.fill(0);
    expect(compact.versions[0].value.toString()).toBe('value');
  });
});
