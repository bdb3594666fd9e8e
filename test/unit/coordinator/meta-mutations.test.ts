// The meta writes as pure decisions: mg's T, N and R and the recache claim, the stale store of ms I, and md I.
import { fetchMutation, type FetchResult, type FetchStep } from '../../../src/coordinator/meta-mutations';
import {
  casOfVersions,
  deleteMutation,
  storeMutation,
  type Decision,
  type MutationContext,
  type StoreRequest,
  type VersionContent,
} from '../../../src/coordinator/mutations';
import { versionMarks, type Version } from '../../../src/storage/record';
import { version, versionTimeMs } from '../../support/versions';

const nowMs = versionTimeMs + 1_000;
const context: MutationContext = { nowMs, valueBytesMax: 1024, actor: 'node-a' };
const { stale, winTokenSent, keyBase64 } = versionMarks;

const expiringInTenSeconds = version('cached', { flags: 3, expiresAtMs: nowMs + 10_000 });
const neverExpiring = version('cached', { flags: 3 });

function fetch(steps: readonly FetchStep[], versions: readonly Version[]): Decision<FetchResult> {
  return fetchMutation(steps)(versions, context);
}

/** The version a decision writes, as the replica would stamp it: a later write time and a clock past the old one. */
function written(write: VersionContent | undefined, counter = 2): Version {
  if (!write) throw new Error('the decision writes nothing');
  return { ...write, clock: [{ node: 'node-a', counter, timestampMs: nowMs }], writtenAtMs: nowMs + counter };
}

describe('fetchMutation: T, N and R', () => {
  // Without N, a miss writes nothing and reports no item, whatever else the mg asked.
  test('a miss without N', () => {
    const expired = version('gone', { expiresAtMs: nowMs - 1 });
    const tombstone = version('', { tombstone: true });
    for (const versions of [[], [expired], [tombstone]]) {
      for (const steps of [[], [['T', nowMs + 5_000]], [['R', nowMs + 5_000]]] as FetchStep[][]) {
        expect(fetch(steps, versions)).toEqual({ write: undefined, result: { created: false, won: false } });
      }
    }
  });

  // N on a miss creates an empty item with no flags, already claimed, and this client wins its recache.
  test('N vivifies a miss and wins', () => {
    const decision = fetch([['N', nowMs + 30_000]], []);
    expect(decision.result).toEqual({
      item: { flags: 0, value: Buffer.alloc(0), expiresAtMs: 0, marks: 0, writtenAtMs: 0 },
      created: true,
      won: true,
    });
    const empty = Buffer.alloc(0);
    expect(decision.write).toEqual({ value: empty, flags: 0, expiresAtMs: nowMs + 30_000, tombstone: false, marks: winTokenSent });
    // An expired value or a tombstone is a miss too.
    expect(fetch([['N', nowMs + 30_000]], [version('gone', { expiresAtMs: nowMs })]).result?.created).toBe(true);
  });

  // The created item takes N's expiry, or that of a T after it: the steps act in request order, R not at all.
  test('the vivified expiry comes from N, then T', () => {
    const n = nowMs + 30_000;
    const t = nowMs + 60_000;
    expect(fetch([['N', n], ['T', t]], []).write?.expiresAtMs).toBe(t);
    expect(fetch([['T', t], ['N', n]], []).write?.expiresAtMs).toBe(n);
    expect(fetch([['N', n], ['R', t]], []).write?.expiresAtMs).toBe(n);
    expect(fetch([['R', t], ['N', n]], []).write?.expiresAtMs).toBe(n);
  });

  // A hit with no step writes nothing and reports the item as it is.
  test('a plain hit', () => {
    expect(fetch([], [neverExpiring])).toEqual({
      write: undefined,
      result: {
        item: { flags: 3, value: Buffer.from('cached'), expiresAtMs: 0, marks: 0, writtenAtMs: versionTimeMs },
        created: false,
        won: false,
      },
    });
    // N on a hit does nothing.
    expect(fetch([['N', nowMs + 30_000]], [neverExpiring]).write).toBeUndefined();
  });

  // T rewrites the item with the new expiry, content and marks kept; the result shows the expiry before it.
  test('T touches', () => {
    const marked = version('cached', { flags: 3, expiresAtMs: nowMs + 10_000, marks: keyBase64 });
    const decision = fetch([['T', nowMs + 99_000]], [marked]);
    const touched = { value: Buffer.from('cached'), flags: 3, expiresAtMs: nowMs + 99_000, tombstone: false, marks: keyBase64 };
    expect(decision.write).toEqual(touched);
    expect(decision.result?.item?.expiresAtMs).toBe(nowMs + 10_000);
    expect(decision.result?.won).toBe(false);
  });

  // R wins when the item has less TTL left than R names, compared in whole seconds; an item that never expires never does.
  test('R wins below its TTL', () => {
    const r = (ms: number): FetchStep[] => [['R', ms]];
    expect(fetch(r(nowMs + 30_000), [expiringInTenSeconds]).result?.won).toBe(true);
    expect(fetch(r(nowMs + 5_000), [expiringInTenSeconds]).result?.won).toBe(false);
    expect(fetch(r(nowMs + 30_000), [neverExpiring]).result?.won).toBe(false);
    // 10.9 s and 10.1 s from now fall in the same second: not below.
    const inTenPointNine = version('cached', { expiresAtMs: nowMs + 10_900 });
    expect(fetch(r(nowMs + 10_100), [inTenPointNine]).result?.won).toBe(false);
    expect(fetch(r(nowMs + 11_000), [inTenPointNine]).result?.won).toBe(true);
    // A win is written: the same content, its expiry kept, claimed.
    expect(fetch(r(nowMs + 30_000), [expiringInTenSeconds]).write).toEqual({
      value: Buffer.from('cached'),
      flags: 3,
      expiresAtMs: nowMs + 10_000,
      tombstone: false,
      marks: winTokenSent,
    });
  });

  // A T before R moves the expiry R compares; after R it does not.
  test('T before R moves the expiry R compares', () => {
    const t = (ms: number): FetchStep => ['T', ms];
    const r = (ms: number): FetchStep => ['R', ms];
    // A never-expiring item touched to 10 s is then below R's 30 s; touched after R, R saw no expiry.
    expect(fetch([t(nowMs + 10_000), r(nowMs + 30_000)], [neverExpiring]).result?.won).toBe(true);
    expect(fetch([r(nowMs + 30_000), t(nowMs + 10_000)], [neverExpiring]).result?.won).toBe(false);
    // An item with 10 s left touched to 60 s first is no longer below R's 30 s.
    expect(fetch([t(nowMs + 60_000), r(nowMs + 30_000)], [expiringInTenSeconds]).result?.won).toBe(false);
    expect(fetch([r(nowMs + 30_000), t(nowMs + 60_000)], [expiringInTenSeconds]).result?.won).toBe(true);
    // Both the touch and the win are in the one write.
    expect(fetch([t(nowMs + 10_000), r(nowMs + 30_000)], [neverExpiring]).write).toMatchObject({
      expiresAtMs: nowMs + 10_000,
      marks: winTokenSent,
    });
  });

  // The item is the live sibling written last, and what a step writes starts from it.
  test('siblings: the one written last', () => {
    const older = version('older', { writtenAtMs: versionTimeMs - 10, clock: [{ node: 'node-b', counter: 1, timestampMs: 1 }] });
    const newer = version('newer', { writtenAtMs: versionTimeMs });
    const decision = fetch([['T', nowMs + 5_000]], [newer, older]);
    expect(decision.result?.item?.value.toString()).toBe('newer');
    expect(decision.write?.value.toString()).toBe('newer');
  });
});

describe('fetchMutation: the stale recache claim', () => {
  // The first mg on a stale item wins it (and writes the claim); each after it sees the claim (Z) and does not win.
  test('who wins, and Z after', () => {
    const staleItem = version('old', { expiresAtMs: nowMs + 10_000, marks: stale });
    const first = fetch([], [staleItem]);
    expect(first.result?.won).toBe(true);
    expect(first.result?.item?.marks).toBe(stale);
    const claim = { value: Buffer.from('old'), flags: 0, expiresAtMs: nowMs + 10_000, tombstone: false, marks: stale | winTokenSent };
    expect(first.write).toEqual(claim);
    const claimed = written(first.write);
    for (const steps of [[], [['R', nowMs + 60_000]], [['N', nowMs + 60_000]]] as FetchStep[][]) {
      const later = fetch(steps, [claimed]);
      expect(later.result?.won).toBe(false);
      expect(later.result?.item?.marks).toBe(stale | winTokenSent);
      expect(later.write).toBeUndefined();
    }
    // A T after the claim still touches, and the claim stays.
    expect(fetch([['T', nowMs + 60_000]], [claimed]).write?.marks).toBe(stale | winTokenSent);
  });

  // An R win on a fresh item is a claim too: a second R below the TTL then loses.
  test('an R claim is seen by the next R', () => {
    const first = fetch([['R', nowMs + 30_000]], [expiringInTenSeconds]);
    expect(first.result?.won).toBe(true);
    const second = fetch([['R', nowMs + 30_000]], [written(first.write)]);
    expect(second.result).toMatchObject({ won: false, item: { marks: winTokenSent } });
    expect(second.write).toBeUndefined();
  });
});

function casStore(casUnique: bigint, overrides: Partial<StoreRequest> = {}): StoreRequest {
  return { mode: 'cas', value: Buffer.from('fresh'), flags: 9, expiresAtMs: nowMs + 500_000, casUnique, invalidate: true, ...overrides };
}

describe('storeMutation: the stale store of ms I', () => {
  const current = version('current', { expiresAtMs: nowMs + 10_000 });

  // A cas that does not match still stores with I, marked stale, keeping the item's expiry; without I it is EXISTS.
  test('a mismatched cas stores a stale value', () => {
    const decision = storeMutation(casStore(casOfVersions([current]) + 1n))([current], context);
    expect(decision.result).toBe('STORED');
    expect(decision.write).toEqual({ value: Buffer.from('fresh'), flags: 9, expiresAtMs: nowMs + 10_000, tombstone: false, marks: stale });
    const refused = storeMutation(casStore(casOfVersions([current]) + 1n, { invalidate: false }))([current], context);
    expect(refused).toEqual({ write: undefined, result: 'EXISTS' });
  });

  // A matching cas stores a fresh value, with its own expiry and no mark; a missing key is NOT_FOUND either way.
  test('a matching cas stores as cas does', () => {
    const decision = storeMutation(casStore(casOfVersions([current])))([current], context);
    expect(decision.result).toBe('STORED');
    expect(decision.write).toEqual({ value: Buffer.from('fresh'), flags: 9, expiresAtMs: nowMs + 500_000, tombstone: false });
    expect(storeMutation(casStore(5n))([], context)).toEqual({ write: undefined, result: 'NOT_FOUND' });
  });

  // A recache already claimed stays claimed on the stale value; the base64 mark comes from the request.
  test('the claim is kept and the key form comes from the request', () => {
    const claimed = version('current', { marks: stale | winTokenSent | keyBase64 });
    const plain = storeMutation(casStore(1n))([claimed], context);
    expect(plain.write?.marks).toBe(stale | winTokenSent);
    const binary = storeMutation(casStore(1n, { keyBase64: true }))([current], context);
    expect(binary.write?.marks).toBe(stale | keyBase64);
  });

  // A plain set over a stale, claimed item writes a fresh one: the marks are gone.
  test('a plain set clears the marks', () => {
    const claimed = version('current', { marks: stale | winTokenSent });
    const set = storeMutation({ mode: 'set', value: Buffer.from('new'), flags: 0, expiresAtMs: 0, casUnique: 0n })([claimed], context);
    expect(set.write?.marks).toBeUndefined();
  });
});

describe('deleteMutation: md I', () => {
  const current = version('current', { flags: 4, expiresAtMs: nowMs + 10_000, marks: winTokenSent | keyBase64 });

  // md I keeps the item, marked stale, its recache open again, its other marks and expiry kept unless T names one.
  test('marks stale instead of removing', () => {
    const decision = deleteMutation(0n, {})([current], context);
    expect(decision.result).toBe('DELETED');
    expect(decision.write).toEqual({
      value: Buffer.from('current'),
      flags: 4,
      expiresAtMs: nowMs + 10_000,
      tombstone: false,
      marks: stale | keyBase64,
    });
    expect(deleteMutation(0n, { expiresAtMs: nowMs + 77_000 })([current], context).write?.expiresAtMs).toBe(nowMs + 77_000);
    // The next mg wins the recache.
    expect(fetch([], [written(decision.write)]).result?.won).toBe(true);
  });

  // md I with a cas compares it as md does; a missing key is NOT_FOUND and nothing is written.
  test('cas and a missing key', () => {
    expect(deleteMutation(casOfVersions([current]) + 1n, {})([current], context)).toEqual({ write: undefined, result: 'EXISTS' });
    expect(deleteMutation(casOfVersions([current]), {})([current], context).write?.marks).toBe(stale | keyBase64);
    expect(deleteMutation(0n, {})([], context)).toEqual({ write: undefined, result: 'NOT_FOUND' });
  });

  // Without I, md writes a tombstone as delete does.
  test('without I, a tombstone', () => {
    expect(deleteMutation(0n)([current], context).write).toEqual({ value: Buffer.alloc(0), flags: 0, expiresAtMs: 0, tombstone: true });
  });
});
