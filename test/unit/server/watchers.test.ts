// Watchers: events reach those who asked for their stream, numbered; a full buffer drops lines and says so before the next.
import { Watchers } from '../../../src/server/watchers';

test('only watchers of a stream get its lines, numbered in order, with the time', async () => {
  const counters = { logWatcherSent: 0, logWatcherSkipped: 0 };
  const watchers = new Watchers(() => 1_700_000_000_250, counters);
  const fetchers = watchers.add(['fetchers'])!;
  const mutations = watchers.add(['mutations'])!;
  let rendered = 0;
  watchers.publish('evictions', () => `never${rendered++}\n`);
  watchers.publish('fetchers', (stamp) => `f ${stamp.gid} ${stamp.nowMs}\n`);
  watchers.publish('mutations', (stamp) => `m ${stamp.gid}\n`);
  expect(rendered).toBe(0);
  expect((await fetchers.take()).map(String)).toEqual(['f 1 1700000000250\n']);
  expect((await mutations.take()).map(String)).toEqual(['m 2\n']);
  expect(counters).toEqual({ logWatcherSent: 2, logWatcherSkipped: 0 });
});

test('a full buffer drops lines, counted, and the next line that fits follows a skipped notice', async () => {
  const counters = { logWatcherSent: 0, logWatcherSkipped: 0 };
  // Room for two 100-byte lines beside the notice's reserve of 128 bytes.
  const watchers = new Watchers(() => 0, counters, { watchersMax: 1, bufferBytesMax: 330 });
  const watcher = watchers.add(['fetchers'])!;
  const line = 'x'.repeat(99) + '\n';
  for (let index = 0; index < 5; index++) watchers.publish('fetchers', () => line);
  expect(counters).toEqual({ logWatcherSent: 2, logWatcherSkipped: 3 });
  expect(watcher.linesSkipped).toBe(3);
  expect((await watcher.take()).map(String)).toEqual([line, line]);
  watchers.publish('fetchers', () => line);
  expect((await watcher.take()).map(String)).toEqual(['skipped=3\n', line]);
});

test('a node keeps at most its watchers; a removed one frees its place and wakes its reader', async () => {
  const watchers = new Watchers(() => 0, undefined, { watchersMax: 1, bufferBytesMax: 1024 });
  const first = watchers.add(['fetchers'])!;
  expect(watchers.add(['fetchers'])).toBeUndefined();
  const waiting = first.take();
  watchers.remove(first);
  expect(await waiting).toEqual([]);
  expect(watchers.add(['fetchers'])).toBeDefined();
});
