import { resolveVersions, type SiblingPolicy } from '../../../src/coordinator/siblings';
import { addFailure, addSuccess, startQuorum } from '../../../src/quorum';
import { coversAll, getFinalAction, getResponse, type GetState } from '../../../src/quorum/get';
import type { Version } from '../../../src/storage/record';
import { compare, type VClock } from '../../../src/vclock';
import { checkProperty, ensure, type Random } from '../../support/property';

const siblings: SiblingPolicy = { conflictResolution: 'siblings', siblingsMax: 25 };
const lww: SiblingPolicy = { conflictResolution: 'lww', siblingsMax: 25 };

function clockOf(entries: Record<string, number>): VClock {
  return Object.entries(entries)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([node, counter]) => ({ node, counter, timestampMs: 1000 + counter }));
}

function version(value: string, clock: Record<string, number>, writtenAtMs: number, tombstone = false): Version {
  return { clock: clockOf(clock), value: Buffer.from(value), flags: 0, expiresAtMs: 0, tombstone, writtenAtMs };
}

/** A read of `asked` replicas needing `needed`, with the given replies added in order. */
function readWith(asked: string[], needed: number, replies: [string, readonly Version[] | Error][]): GetState {
  let state: GetState = startQuorum<readonly Version[]>(asked, needed);
  for (const [node, reply] of replies) {
    state = reply instanceof Error ? addFailure(state, node, reply.message) : addSuccess(state, node, reply);
  }
  return state;
}

const values = (versions: readonly Version[]): string[] => versions.map((v) => v.value.toString());

const one = version('one', { a: 1 }, 10);
const two = version('two', { a: 2 }, 20);
const left = version('left', { a: 2, b: 1 }, 30);
const right = version('right', { a: 2, c: 1 }, 25);
const deleted = version('', { a: 3 }, 40, true);

describe('getResponse', () => {
  // The answer reconciles every reply so far: dominated versions go, concurrent ones stay siblings.
  test('reconciles the replies so far', () => {
    expect(getResponse(readWith(['x', 'y', 'z'], 2, []))).toEqual([]);
    expect(getResponse(readWith(['x', 'y', 'z'], 2, [['x', [one]]]))).toEqual([one]);
    expect(getResponse(readWith(['x', 'y', 'z'], 2, [['x', [one]], ['y', [two]]]))).toEqual([two]);
    expect(values(getResponse(readWith(['x', 'y', 'z'], 2, [['x', [left]], ['y', [right]], ['z', [one]]])))).toEqual(['left', 'right']);
    expect(getResponse(readWith(['x', 'y'], 2, [['x', [two]], ['y', [deleted]]]))).toEqual([deleted]);
    // A failure adds nothing to the answer.
    expect(getResponse(readWith(['x', 'y'], 1, [['x', new Error('down')], ['y', [one]]]))).toEqual([one]);
  });

  // The same write seen by two replicas is one version, the later-written copy of it.
  test('the same write from two replicas is one version', () => {
    const copy = { ...two, writtenAtMs: 21 };
    expect(getResponse(readWith(['x', 'y'], 2, [['x', [two]], ['y', [copy]]]))).toEqual([copy]);
  });
});

describe('coversAll', () => {
  // A replica covers what it wants when it holds each wanted version or one that descends from it.
  test('holds every wanted version or a descendant', () => {
    expect(coversAll([], [])).toBe(true);
    expect(coversAll([one], [])).toBe(true);
    expect(coversAll([], [one])).toBe(false);
    expect(coversAll([one], [one])).toBe(true);
    expect(coversAll([two], [one])).toBe(true);
    expect(coversAll([one], [two])).toBe(false);
    expect(coversAll([left], [left, right])).toBe(false);
    expect(coversAll([left, right], [right, left])).toBe(true);
    expect(coversAll([left, right], [two])).toBe(true);
    expect(coversAll([deleted], [one, two])).toBe(true);
    const resolving = version('resolved', { a: 3, b: 1, c: 1 }, 50);
    expect(coversAll([resolving], [left, right])).toBe(true);
    expect(coversAll([left], [resolving])).toBe(false);
  });
});

describe('getFinalAction', () => {
  // Replicas that all answered with the same versions need nothing, and agree.
  test('all answered alike: no repair, and they agree', () => {
    const action = getFinalAction(readWith(['x', 'y', 'z'], 2, [['x', [two]], ['y', [two]], ['z', [two]]]), siblings);
    expect(action).toEqual({ repairs: [], allReplicasAgree: true });
    expect(getFinalAction(readWith(['x', 'y'], 2, [['x', []], ['y', []]]), siblings)).toEqual({ repairs: [], allReplicasAgree: true });
    const bothSiblings = getFinalAction(readWith(['x', 'y'], 2, [['x', [left, right]], ['y', [right, left]]]), siblings);
    expect(bothSiblings).toEqual({ repairs: [], allReplicasAgree: true });
  });

  // A replica that answered with an older version, or nothing, is sent the newer one; the others are left alone.
  test('stale and empty replicas are repaired with the newest versions', () => {
    const action = getFinalAction(readWith(['x', 'y', 'z'], 2, [['x', [two]], ['y', [one]], ['z', []]]), siblings);
    expect(action).toEqual({
      repairs: [
        { node: 'y', versions: [two] },
        { node: 'z', versions: [two] },
      ],
      allReplicasAgree: false,
    });
    // A tombstone supersedes the value it deleted: the replica still holding the value is sent it.
    const afterDelete = getFinalAction(readWith(['x', 'y'], 2, [['x', [deleted]], ['y', [two]]]), siblings);
    expect(afterDelete.repairs).toEqual([{ node: 'y', versions: [deleted] }]);
  });

  // Concurrent versions stay siblings: each replica missing one is sent both, newest first, and one holding both is not.
  test('siblings are kept and sent to each replica missing one', () => {
    const action = getFinalAction(readWith(['x', 'y', 'z'], 3, [['x', [left]], ['y', [right]], ['z', [right, left]]]), siblings);
    expect(action.repairs.map((repair) => repair.node)).toEqual(['x', 'y']);
    for (const repair of action.repairs) expect(values(repair.versions)).toEqual(['left', 'right']);
    expect(action.allReplicasAgree).toBe(false);
    // What is sent is what each replica would keep itself: the policy's resolution of the replies.
    expect(action.repairs[0].versions).toEqual(resolveVersions([left, right], siblings).versions);
  });

  // Under lww every replica lacking the winner with the merged clock of what it beat is sent exactly that.
  test('lww repairs with the winner carrying the merged clock', () => {
    const state = readWith(['x', 'y', 'z'], 2, [['x', [left]], ['y', [right]], ['z', [left]]]);
    const action = getFinalAction(state, lww);
    expect(action.repairs.map((repair) => repair.node)).toEqual(['x', 'y', 'z']);
    const [winner] = action.repairs[0].versions;
    expect(action.repairs.every((repair) => repair.versions.length === 1 && repair.versions[0] === winner)).toBe(true);
    expect(values([winner])).toEqual(['left']);
    expect(compare(winner.clock, left.clock)).toBe('after');
    expect(compare(winner.clock, right.clock)).toBe('after');
    // Once a replica holds the resolved winner, it is not repaired again, and lww replicas agree.
    const resolved = getFinalAction(readWith(['x', 'y'], 2, [['x', [winner]], ['y', [right]]]), lww);
    expect(resolved).toEqual({ repairs: [{ node: 'y', versions: [winner] }], allReplicasAgree: false });
    expect(getFinalAction(readWith(['x', 'y'], 2, [['x', [winner]], ['y', [winner]]]), lww)).toEqual({
      repairs: [],
      allReplicasAgree: true,
    });
  });

  // A replica that failed is left to handoff and anti-entropy, and agreement needs every replica's answer.
  test('a replica that failed is not repaired, and agreement needs every answer', () => {
    const withFailure = readWith(['x', 'y', 'z'], 2, [['x', [two]], ['y', new Error('timeout')], ['z', [two]]]);
    expect(getFinalAction(withFailure, siblings)).toEqual({ repairs: [], allReplicasAgree: false });
    const failedAndStale = readWith(['x', 'y', 'z'], 2, [['x', [two]], ['y', new Error('timeout')], ['z', [one]]]);
    expect(getFinalAction(failedAndStale, siblings).repairs).toEqual([{ node: 'z', versions: [two] }]);
    // Still waiting for a replica: they may agree so far, but not all have answered.
    const waiting = readWith(['x', 'y', 'z'], 2, [['x', [two]], ['z', [two]]]);
    expect(getFinalAction(waiting, siblings)).toEqual({ repairs: [], allReplicasAgree: false });
  });

  // A replica holding a newer version than the others is the source of the repair, not its target.
  test('a replica ahead of the others is not repaired', () => {
    const action = getFinalAction(readWith(['x', 'y', 'z'], 2, [['x', [one]], ['y', [deleted]], ['z', [two]]]), siblings);
    expect(action.repairs).toEqual([
      { node: 'x', versions: [deleted] },
      { node: 'z', versions: [deleted] },
    ]);
  });

  // The siblings cap applies to what is sent: the newest siblingsMax versions by write time.
  test('repairs respect the siblings cap', () => {
    const capped: SiblingPolicy = { conflictResolution: 'siblings', siblingsMax: 2 };
    const third = version('third', { d: 1 }, 5);
    const action = getFinalAction(readWith(['x', 'y'], 2, [['x', [left, right, third]], ['y', [one]]]), capped);
    expect(action.repairs).toEqual([{ node: 'y', versions: [left, right] }]);
  });

  /** A random history of writes, each a version descending from some earlier ones or concurrent. */
  function randomVersions(random: Random): Version[] {
    const versions: Version[] = [];
    for (let i = 0; i < random.int(1, 8); i++) {
      const clock: Record<string, number> = {};
      for (const parent of versions) {
        if (!random.chance(0.4)) continue;
        for (const entry of parent.clock) clock[entry.node] = Math.max(clock[entry.node] ?? 0, entry.counter);
      }
      const node = random.pick(['a', 'b', 'c', 'd']);
      clock[node] = (clock[node] ?? 0) + 1 + i;
      versions.push(version(`v${i}`, clock, 100 + random.int(0, 50), random.chance(0.15)));
    }
    return versions;
  }

  // Over random replies, once each replica stores its repair a second read finds nothing to repair and agreement.
  test('property: applying the repairs makes every answering replica agree', () => {
    checkProperty(80, (random) => {
      const history = randomVersions(random);
      const policy = random.chance(0.5) ? siblings : lww;
      const asked = ['x', 'y', 'z'];
      const held = new Map(asked.map((node) => [node, resolveVersions(history.filter(() => random.chance(0.5)), policy).versions]));
      const state = readWith(asked, 2, asked.map((node) => [node, held.get(node)!]));
      const action = getFinalAction(state, policy);
      const merged = resolveVersions(asked.flatMap((node) => held.get(node)!), policy).versions;
      for (const node of asked) {
        const repair = action.repairs.find((r) => r.node === node);
        ensure((repair === undefined) === coversAll(held.get(node)!, merged), `${node}: repaired ${repair !== undefined} wrongly`);
        // A replica stores a repair by merging it into what it holds, under the same policy.
        if (repair) held.set(node, resolveVersions([...held.get(node)!, ...repair.versions], policy).versions);
      }
      const again = getFinalAction(readWith(asked, 2, asked.map((node) => [node, held.get(node)!])), policy);
      ensure(again.repairs.length === 0, `second read repairs ${again.repairs.map((r) => r.node).join(',')}`);
      ensure(again.allReplicasAgree, 'replicas do not agree after their repairs');
    });
  });
});
