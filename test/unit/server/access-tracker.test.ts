// What a node remembers of its items' reads (meta h, l and me): per version read, bounded, carried over a rewrite.
import { AccessTracker, accessFactsOf, trackedKeysMax } from '../../../src/server/access-tracker';

const writtenAtMs = 1_700_000_000_000;
const rewrittenAtMs = writtenAtMs + 5_000;
const readAtMs = writtenAtMs + 1_000;
const laterMs = writtenAtMs + 3_000;
const key = (name: string): Buffer => Buffer.from(name, 'latin1');

/** Only the facts a reply shows: lookup may answer the remembered entry itself, version and all. */
function factsOf(tracker: AccessTracker, name: string, version: number): { fetched: boolean; lastAccessMs: number } {
  const { fetched, lastAccessMs } = tracker.lookup(key(name), version);
  return { fetched, lastAccessMs };
}

describe('AccessTracker', () => {
  // An item nobody read here is unread, last accessed when it was written.
  test('an unknown item', () => {
    const tracker = new AccessTracker();
    expect(factsOf(tracker, 'k', writtenAtMs)).toEqual({ fetched: false, lastAccessMs: writtenAtMs });
    expect(tracker.size).toBe(0);
  });

  // A read is remembered against the version read: a new write of the key starts unread.
  test('reads are known by the version read', () => {
    const tracker = new AccessTracker();
    tracker.recordRead(key('k'), writtenAtMs, readAtMs);
    expect(factsOf(tracker, 'k', writtenAtMs)).toEqual({ fetched: true, lastAccessMs: readAtMs });
    expect(factsOf(tracker, 'k', rewrittenAtMs)).toEqual({ fetched: false, lastAccessMs: rewrittenAtMs });
    expect(factsOf(tracker, 'other', writtenAtMs)).toEqual({ fetched: false, lastAccessMs: writtenAtMs });
  });

  // At most keysMax keys are remembered; the least recently read go first, and a read makes a key recent again.
  test('bounded, least recently read forgotten first', () => {
    const tracker = new AccessTracker(3);
    for (const name of ['a', 'b', 'c']) tracker.recordRead(key(name), writtenAtMs, readAtMs);
    tracker.recordRead(key('a'), writtenAtMs, laterMs);
    tracker.recordRead(key('d'), writtenAtMs, laterMs);
    expect(tracker.size).toBe(3);
    expect(tracker.entry(key('b'))).toBeUndefined();
    for (const name of ['a', 'c', 'd']) expect(tracker.entry(key(name))).toBeDefined();
    expect(factsOf(tracker, 'a', writtenAtMs)).toEqual({ fetched: true, lastAccessMs: laterMs });
  });

  // The default bound holds too: one key past it forgets the first.
  test('the default bound', () => {
    const tracker = new AccessTracker();
    for (let index = 0; index <= trackedKeysMax; index++) tracker.recordRead(key(`key${index}`), writtenAtMs, readAtMs);
    expect(tracker.size).toBe(trackedKeysMax);
    expect(tracker.entry(key('key0'))).toBeUndefined();
    expect(tracker.entry(key(`key${trackedKeysMax}`))).toBeDefined();
  });

  // A rewrite that keeps the item (a touch, md I, a recache won) carries what was known to the version it writes.
  test('rewrite carry-over', () => {
    const tracker = new AccessTracker();
    tracker.recordRead(key('k'), writtenAtMs, readAtMs);
    tracker.beginRewrite(key('k'), false, laterMs);
    // While it is in flight, whichever version is read next is the item the facts are about.
    expect(factsOf(tracker, 'k', rewrittenAtMs)).toEqual({ fetched: true, lastAccessMs: readAtMs });
    tracker.settleRewrite(key('k'), rewrittenAtMs);
    expect(factsOf(tracker, 'k', rewrittenAtMs)).toEqual({ fetched: true, lastAccessMs: readAtMs });
    // The version it replaced is no longer the one known.
    expect(factsOf(tracker, 'k', writtenAtMs)).toEqual({ fetched: false, lastAccessMs: writtenAtMs });
  });

  // A rewrite that reads (a touch, an mg that writes) counts as an access, even of an item not known before.
  test('a reading rewrite records the access', () => {
    const tracker = new AccessTracker();
    tracker.beginRewrite(key('k'), true, laterMs);
    tracker.settleRewrite(key('k'), rewrittenAtMs);
    expect(factsOf(tracker, 'k', rewrittenAtMs)).toEqual({ fetched: true, lastAccessMs: laterMs });
  });

  // A rewrite that neither reads nor finds anything known leaves nothing behind.
  test('an unknown item rewritten without a read stays unknown', () => {
    const tracker = new AccessTracker();
    tracker.beginRewrite(key('k'), false, laterMs);
    tracker.settleRewrite(key('k'), rewrittenAtMs);
    expect(tracker.size).toBe(0);
    expect(factsOf(tracker, 'k', rewrittenAtMs)).toEqual({ fetched: false, lastAccessMs: rewrittenAtMs });
  });

  // A rewrite that wrote nothing (the key was gone) forgets the key rather than pin the facts to any version.
  test('a rewrite that wrote nothing', () => {
    const tracker = new AccessTracker();
    tracker.recordRead(key('k'), writtenAtMs, readAtMs);
    tracker.beginRewrite(key('k'), false, laterMs);
    tracker.settleRewrite(key('k'), undefined);
    expect(tracker.size).toBe(0);
  });

  // A read recorded while the rewrite was in flight names its version: settling does not move it.
  test('a read during the rewrite wins over the settle', () => {
    const tracker = new AccessTracker();
    tracker.recordRead(key('k'), writtenAtMs, readAtMs);
    tracker.beginRewrite(key('k'), false, laterMs);
    tracker.recordRead(key('k'), rewrittenAtMs, laterMs);
    tracker.settleRewrite(key('k'), rewrittenAtMs + 1);
    expect(tracker.entry(key('k'))).toEqual({ writtenAtMs: rewrittenAtMs, fetched: true, lastAccessMs: laterMs });
  });

  // The facts taken before a write are judged against the version the write turned out to be about.
  test('accessFactsOf an entry taken earlier', () => {
    const tracker = new AccessTracker();
    tracker.recordRead(key('k'), writtenAtMs, readAtMs);
    const known = tracker.entry(key('k'));
    expect(accessFactsOf(known, writtenAtMs)).toMatchObject({ fetched: true, lastAccessMs: readAtMs });
    expect(accessFactsOf(known, rewrittenAtMs)).toEqual({ fetched: false, lastAccessMs: rewrittenAtMs });
    expect(accessFactsOf(undefined, writtenAtMs)).toEqual({ fetched: false, lastAccessMs: writtenAtMs });
  });
});
