// The statistics and tooling command lines read as memcached 1.6.18 reads them, and their lines written in its words.
import { parseCommandLine } from '../../../src/protocol/text/command-line';
import { cachedumpLine, metadumpLine, printableInCachedump } from '../../../src/protocol/text/key-dump-lines';
import { uriEncode } from '../../../src/protocol/text/uri-encode';
import { itemGetLine, itemStoreLine } from '../../../src/protocol/text/watch-lines';

const parse = (line: string) => parseCommandLine(Buffer.from(line, 'latin1'));
const refused = (code: string, silent = false) => ({ kind: 'error', code, silent });
const tool = (value: object) => ({ kind: 'command', command: { op: 'tool', tool: value } });

test.each([
  ['stats', { kind: 'command', command: { op: 'stats', group: '' } }],
  ['stats settings extra', { kind: 'command', command: { op: 'stats', group: 'settings' } }],
  ['stats detail', { kind: 'command', command: { op: 'stats', group: 'detail', args: [] } }],
  ['stats detail dump', { kind: 'command', command: { op: 'stats', group: 'detail', args: ['dump'] } }],
  ['stats cachedump 1 0', tool({ kind: 'cachedump', slabClass: 1, limit: 0 })],
  ['stats cachedump 4294967297 2', tool({ kind: 'cachedump', slabClass: 1, limit: 2 })],
  ['stats cachedump 1', refused('KAI_MISSING_ARGUMENTS')],
  ['stats cachedump 1 -1', refused('KAI_BAD_COMMAND_LINE')],
  ['stats cachedump 64 0', refused('KAI_ILLEGAL_SLAB_CLASS')],
  ['lru_crawler metadump all', tool({ kind: 'metadump', slabClasses: 'all' })],
  ['lru_crawler metadump hash', tool({ kind: 'metadump', slabClasses: 'all' })],
  ['lru_crawler metadump 3,,1', tool({ kind: 'metadump', slabClasses: [3, 1] })],
  ['lru_crawler metadump ,', refused('KAI_NOTHING_TO_CRAWL')],
  ['lru_crawler metadump 0', refused('KAI_BAD_SLAB_CLASS_LIST')],
  ['lru_crawler metadump 1,64', refused('KAI_BAD_SLAB_CLASS_LIST')],
  ['lru_crawler metadump', refused('KAI_UNKNOWN_COMMAND')],
  ['lru_crawler metadump all noreply', refused('KAI_UNKNOWN_COMMAND')],
  ['lru_crawler crawl 1', refused('KAI_UNKNOWN_COMMAND')],
  ['watch', tool({ kind: 'watch', streams: ['fetchers'] })],
  ['watch mutations evictions', tool({ kind: 'watch', streams: ['mutations', 'evictions'] })],
  ['watch bogus', refused('KAI_UNKNOWN_COMMAND')],
  ['watch fetchers noreply', refused('KAI_UNKNOWN_COMMAND', true)],
])('%s', (line, outcome) => {
  expect(parse(line)).toEqual(outcome);
});

test('keys are URL-encoded as memcached does: ASCII letters, digits and -._~ stay', () => {
  expect(uriEncode(Buffer.from('aZ09-._~ :%\r\n\xff', 'latin1'))).toBe('aZ09-._~%20%3A%25%0D%0A%FF');
});

test('metadump and cachedump lines', () => {
  const item = { key: Buffer.from('a:b'), expiresAtMs: 1_700_000_100_999, writtenAtMs: 1_700_000_000_500, cas: 42n, valueBytes: 5 };
  expect(metadumpLine(item)).toBe('key=a%3Ab exp=1700000100 la=1700000000 cas=42 fetch=no cls=1 size=8\n');
  expect(metadumpLine({ ...item, expiresAtMs: 0 })).toContain(' exp=-1 ');
  expect(cachedumpLine(item)).toBe('ITEM a:b [5 b; 1700000100 s]\r\n');
  expect(cachedumpLine({ ...item, expiresAtMs: 0 })).toBe('ITEM a:b [5 b; 0 s]\r\n');
  expect([printableInCachedump(Buffer.from('a b')), printableInCachedump(Buffer.from('a\r')), printableInCachedump(Buffer.from('ab'))]).toEqual([false, false, true]);
});

test('watch lines: the time with unpadded microseconds, then the event', () => {
  const stamp = { nowMs: 1_700_000_000_005, gid: 7 };
  expect(itemGetLine(stamp, { key: Buffer.from('k 1'), status: 'found', slabClass: 1, clientId: 0, valueBytes: 3 })).toBe(
    'ts=1700000000.5000 gid=7 type=item_get key=k%201 status=found clsid=1 cfd=0 size=3\n',
  );
  expect(itemStoreLine(stamp, { key: Buffer.from('k'), status: 'not_stored', command: 'add', ttlSeconds: 9, slabClass: 1, clientId: 0, valueBytes: 2 })).toBe(
    'ts=1700000000.5000 gid=7 type=item_store key=k status=not_stored cmd=add ttl=9 clsid=1 cfd=0 size=2\n',
  );
});
