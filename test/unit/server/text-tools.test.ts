// The streamed tools' producers: a key dump reads its next page only once the page before is written, and ends as memcached's tools expect.
import { KaiError } from '../../../src/errors';
import type { ListedKey } from '../../../src/listing';
import type { StreamWriter } from '../../../src/server/connection';
import { KeyDumpSlots, streamKeyDump, type ConnectionTools } from '../../../src/server/text-tools';
import { Watchers } from '../../../src/server/watchers';

const listed = (key: string): ListedKey => ({ key: Buffer.from(key), expiresAtMs: 0, writtenAtMs: 1_700_000_000_000, cas: 1n, valueBytes: 1 });

/** A writer whose writes complete only when the test lets them, recording what was written and how it ended. */
class HeldWriter implements StreamWriter {
  readonly written: string[] = [];
  ended: { text: string; closeAfter: boolean } | undefined;
  private release: (() => void) | undefined;

  ready(): Promise<void> {
    return Promise.resolve();
  }

  write(chunks: readonly Buffer[]): Promise<void> {
    this.written.push(Buffer.concat(chunks).toString('latin1'));
    return new Promise((resolve) => (this.release = resolve));
  }

  end(chunks: readonly Buffer[], closeAfter = false): void {
    this.ended = { text: Buffer.concat(chunks).toString('latin1'), closeAfter };
  }

  /** Lets the pending write complete. */
  flush(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}

function toolsOver(pages: (readonly ListedKey[] | Error)[], pulled: { count: number }, slots = new KeyDumpSlots()): ConnectionTools {
  return {
    watchers: new Watchers(() => 0),
    keyDumps: slots,
    async *listKeys() {
      for (const page of pages) {
        pulled.count++;
        if (page instanceof Error) throw page;
        yield page;
      }
    },
  };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a dump pulls the next page only after the page before is written, then ends with END', async () => {
  const pulled = { count: 0 };
  const out = new HeldWriter();
  const done = streamKeyDump(out, { kind: 'metadump', slabClasses: 'all' }, toolsOver([[listed('a')], [listed('b')]], pulled));
  await settle();
  expect([pulled.count, out.written.length]).toEqual([1, 1]);
  await settle();
  expect(pulled.count).toBe(1);
  out.flush();
  await settle();
  expect([pulled.count, out.written.length]).toEqual([2, 2]);
  out.flush();
  await done;
  expect(out.written.map((text) => text.split(' ')[0])).toEqual(['key=a', 'key=b']);
  expect(out.ended).toEqual({ text: 'END\r\n', closeAfter: false });
});

test('a cachedump stops at its limit; a class other than 1 lists nothing', async () => {
  const pulled = { count: 0 };
  const out = new HeldWriter();
  const done = streamKeyDump(out, { kind: 'cachedump', slabClass: 1, limit: 1 }, toolsOver([[listed('a'), listed('b')], [listed('c')]], pulled));
  await settle();
  out.flush();
  await done;
  expect([out.written, pulled.count]).toEqual([['ITEM a [1 b; 0 s]\r\n'], 1]);
  const empty = new HeldWriter();
  await streamKeyDump(empty, { kind: 'cachedump', slabClass: 2, limit: 0 }, toolsOver([[listed('a')]], { count: 0 }));
  expect([empty.written, empty.ended]).toEqual([[], { text: 'END\r\n', closeAfter: false }]);
});

test('a dump that fails part way ends with the error and closes; a dump past the bound answers BUSY', async () => {
  const failing = new HeldWriter();
  const slots = new KeyDumpSlots(1);
  await streamKeyDump(failing, { kind: 'metadump', slabClasses: 'all' }, toolsOver([new KaiError('KAI_QUORUM_UNMET', 'listing bucket 3: no replica answered')], { count: 0 }, slots));
  expect(failing.ended).toEqual({ text: 'SERVER_ERROR quorum not met (listing bucket 3: no replica answered)\r\n', closeAfter: true });
  expect(slots.inUse).toBe(0);
  expect(slots.tryTake()).toBe(true);
  const busy = new HeldWriter();
  await streamKeyDump(busy, { kind: 'metadump', slabClasses: 'all' }, toolsOver([], { count: 0 }, slots));
  expect(busy.ended).toEqual({ text: 'BUSY currently processing crawler request\r\n', closeAfter: false });
});
