// The claimant plans only members heard from themselves into the ring, and ring states carry bounded counts.
import { claimantStep, initialRingState, observe, type ClusterMember, type RingState } from '../../../src/claimant';
import { ringCountMax, ringStateFromWire, ringStateToWire } from '../../../src/claimant/wire';

const buckets = 64;

function member(id: string, overrides: Partial<ClusterMember> = {}): ClusterMember {
  return { id, weight: 1, up: true, gone: false, incarnation: 0, ...overrides };
}

function established(...ids: string[]): RingState {
  return ids.reduce(observe, initialRingState(ids[0], ids.map((id) => ({ id, weight: 1 })), buckets, ids[0]));
}

// The measured attack: a member one gossip frame invented (weight 16) was planned into the ring.
test('an unvouched member does not join; vouched, it does', () => {
  const state = established('a', 'b');
  const members = (vouched: boolean) => [member('a'), member('b'), member('z', { weight: 16, vouched })];
  expect(claimantStep(state, { selfId: 'a', members: members(false), replicas: 2 })).toBeUndefined();
  const planned = claimantStep(state, { selfId: 'a', members: members(true), replicas: 2 });
  expect(planned?.next).toContain('z');
});

// A version or leave count past its bound would leave the claimant no next version to make.
test('ring counts within ringCountMax', () => {
  const wire = ringStateToWire(established('a', 'b'));
  expect(ringStateFromWire({ ...wire, version: ringCountMax }, buckets).ok).toBe(true);
  expect(ringStateFromWire({ ...wire, version: ringCountMax + 1 }, buckets)).toEqual({ ok: false, reason: 'ring state: version or claimant' });
  expect(ringStateFromWire({ ...wire, version: Number.MAX_SAFE_INTEGER }, buckets).ok).toBe(false);
  expect(ringStateFromWire({ ...wire, leaving: [['b', ringCountMax + 1]] }, buckets)).toEqual({ ok: false, reason: 'ring state: a request' });
});
