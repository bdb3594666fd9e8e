// Listing the cluster's keys: bucket by bucket, page by page, from the first replica that answers, live keys only, each once.
import { listClusterKeys, listedKeyOf, type KeyListingOptions, type PagedRecord, type RecordPage } from '../../../src/listing';
import { everythingVisible } from '../../../src/coordinator/specs';
import { KaiError } from '../../../src/errors';
import type { Version } from '../../../src/storage/record';
import { version as storedVersion, versionTimeMs } from '../../support/versions';

const nowMs = versionTimeMs + 10;
const version = (overrides: Partial<Version> = {}): Version => storedVersion('v', overrides);

function record(key: string, versions: Version[] = [version()]): PagedRecord {
  return { key: Buffer.from(key), versions };
}

/** A replica serving `buckets` (bucket -> records in key order) in pages, or failing every read. */
function replica(buckets: Map<number, PagedRecord[]> | 'down'): (bucket: number, afterKey: Buffer, limit: number) => Promise<RecordPage> {
  return async (bucket, afterKey, limit) => {
    if (buckets === 'down') throw new KaiError('KAI_PEER_UNREACHABLE');
    const after = (buckets.get(bucket) ?? []).filter((item) => Buffer.compare(item.key, afterKey) > 0);
    return { items: after.slice(0, limit), more: after.length > limit };
  };
}

function options(fields: Partial<KeyListingOptions> & Pick<KeyListingOptions, 'readPage' | 'sourcesOf' | 'buckets'>): KeyListingOptions {
  return { visible: everythingVisible, nowMs: () => nowMs, notReady: () => undefined, ...fields };
}

async function keysOf(listing: AsyncIterable<readonly { key: Buffer }[]>): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listing) for (const item of page) keys.push(item.key.toString());
  return keys;
}

test('every bucket is read page by page; a replica that fails hands over to the next, from the last key', async () => {
  const many = Array.from({ length: 250 }, (_, index) => record(`k${String(index).padStart(3, '0')}`));
  const data = new Map([
    [0, many],
    [1, [record('x')]],
  ]);
  let readsOfA = 0;
  const serveA = replica(data);
  const readPage: KeyListingOptions['readPage'] = async (member, bucket, afterKey, limit) => {
    // A serves the first page of bucket 0, then goes down.
    if (member === 'a' && readsOfA++ > 0) throw new KaiError('KAI_PEER_UNREACHABLE');
    return member === 'a' ? serveA(bucket, afterKey, limit) : replica(data)(bucket, afterKey, limit);
  };
  const keys = await keysOf(listClusterKeys(options({ buckets: 2, sourcesOf: () => ['a', 'b'], readPage })));
  expect(keys).toEqual([...many.map((item) => item.key.toString()), 'x']);
});

test('no replica answering a bucket, or a node not ready, fails the listing with the quorum error', async () => {
  const down = options({ buckets: 1, sourcesOf: () => ['a'], readPage: () => replica('down')(0, Buffer.alloc(0), 1) });
  await expect(keysOf(listClusterKeys(down))).rejects.toMatchObject({ code: 'KAI_QUORUM_UNMET', detail: 'listing bucket 0: no replica answered' });
  const joining = options({ buckets: 1, sourcesOf: () => ['a'], readPage: () => replica(new Map())(0, Buffer.alloc(0), 1), notReady: () => 'joining' });
  await expect(keysOf(listClusterKeys(joining))).rejects.toMatchObject({ code: 'KAI_QUORUM_UNMET', detail: 'joining' });
});

test('a key shows its newest live value; one holding only tombstones or expired values is left out', () => {
  const newer = version({ value: Buffer.from('newest'), writtenAtMs: nowMs - 1, expiresAtMs: nowMs + 5000 });
  const listed = listedKeyOf(record('k', [newer, version()]), everythingVisible, nowMs);
  expect(listed).toMatchObject({ expiresAtMs: nowMs + 5000, writtenAtMs: nowMs - 1, valueBytes: 6 });
  expect(typeof listed?.cas).toBe('bigint');
  expect(listedKeyOf(record('t', [version({ tombstone: true, value: Buffer.alloc(0) })]), everythingVisible, nowMs)).toBeUndefined();
  expect(listedKeyOf(record('e', [version({ expiresAtMs: nowMs - 1 })]), everythingVisible, nowMs)).toBeUndefined();
  expect(listedKeyOf(record('f', [version()]), () => [], nowMs)).toBeUndefined();
});
