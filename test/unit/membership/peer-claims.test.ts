// What a peer may claim about another member: bounded incarnations, no second-hand eviction, refutation always possible, seeds that name a machine.
import {
  addSeed,
  createMembership,
  findMember,
  incarnationMax,
  incarnationStepMax,
  mergeGossip,
  pickGossipTarget,
  raised,
  restoreMembership,
  seedAddressProblem,
  seedsMax,
  selfMember,
  type MembershipState,
  type SelfDescription,
} from '../../../src/membership';
import type { WireMember } from '../../../src/rpc/messages';

const startMs = 1_000_000;
const downAfterMs = 5_000;

function node(index: number): SelfDescription {
  const address = `127.0.0.1:${7100 + index}`;
  return { id: address, address, zone: 'zone-a', weight: 1 };
}

function wire(overrides: Partial<WireMember> & { id: string }): WireMember {
  return { address: overrides.id, zone: 'zone-a', weight: 1, status: 'up', incarnation: 0, heartbeat: 0, ...overrides };
}

/** Node 1's view with node 2 heard from itself, at incarnation 3 and heartbeat 10. */
function knowingNode2(): MembershipState {
  const state = createMembership(node(1), startMs);
  return mergeGossip(state, [wire({ id: node(2).id, incarnation: 3, heartbeat: 10 })], startMs, downAfterMs, node(2).address).state;
}

// Raising an incarnation stops at its bound rather than leave the exact integers.
test('raised stops at incarnationMax', () => {
  expect(raised(0)).toBe(1);
  expect(raised(incarnationMax - 1)).toBe(incarnationMax);
  expect(raised(incarnationMax)).toBe(incarnationMax);
});

// A view of a known member far ahead of what this node holds is a forgery: it is not taken.
test('a second-hand view more than incarnationStepMax ahead is ignored', () => {
  const state = knowingNode2();
  const far = mergeGossip(state, [wire({ id: node(2).id, incarnation: 3 + incarnationStepMax + 1, status: 'leaving' })], startMs + 1, downAfterMs);
  expect(far.events).toEqual([{ kind: 'implausible', id: node(2).id, incarnation: 3 + incarnationStepMax + 1 }]);
  expect(findMember(far.state, node(2).id)).toMatchObject({ incarnation: 3, status: 'up' });
  const near = mergeGossip(state, [wire({ id: node(2).id, incarnation: 3 + incarnationStepMax })], startMs + 1, downAfterMs);
  expect(findMember(near.state, node(2).id)?.incarnation).toBe(3 + incarnationStepMax);
  // The member's own word is taken at any incarnation: a node that was away hears it so.
  const own = mergeGossip(state, [wire({ id: node(2).id, incarnation: 3 + 10 * incarnationStepMax })], startMs + 1, downAfterMs, node(2).address);
  expect(findMember(own.state, node(2).id)?.incarnation).toBe(3 + 10 * incarnationStepMax);
});

// The measured attack: one frame said a live node was leaving. While this node hears the member,
// the word waits; once the member falls silent for downAfterMs, it is taken.
test('a second-hand leave of a member heard lately does not take it out', () => {
  const state = knowingNode2();
  const rumour = [wire({ id: node(2).id, incarnation: 4, heartbeat: 0, status: 'leaving' })];
  const heard = mergeGossip(state, rumour, startMs + 10, downAfterMs);
  expect(heard.events).toEqual([]);
  expect(findMember(heard.state, node(2).id)).toMatchObject({ status: 'up', incarnation: 4 });
  // Node 2 itself announcing its leave is taken at once.
  const own = mergeGossip(state, rumour, startMs + 10, downAfterMs, node(2).address);
  expect(own.events).toEqual([{ kind: 'leaving', id: node(2).id }]);
  // A member silent past the timeout: the word is taken.
  const silent = mergeGossip(state, rumour, startMs + downAfterMs, downAfterMs);
  expect(findMember(silent.state, node(2).id)?.status).toBe('leaving');
});

// Node 2 hears the rumour about itself and refutes it; the refutation wins on node 1.
test('the member refutes a rumour about itself, and node 1 takes the refutation', () => {
  const observer = knowingNode2();
  let member = restoreMembership(node(2), [wire({ id: node(2).id, incarnation: 2 })], startMs);
  expect(selfMember(member).incarnation).toBe(3);
  const rumour = wire({ id: node(2).id, incarnation: 3 + incarnationStepMax, status: 'leaving' });
  const refuted = mergeGossip(member, [rumour], startMs + 1, downAfterMs);
  expect(refuted.events).toEqual([{ kind: 'refuted', incarnation: 4 + incarnationStepMax }]);
  member = refuted.state;
  const fooled = mergeGossip(observer, [rumour], startMs + downAfterMs, downAfterMs).state;
  expect(findMember(fooled, node(2).id)?.status).toBe('leaving');
  const { id, address, zone, weight, status, incarnation, heartbeat } = selfMember(member);
  const healed = mergeGossip(fooled, [{ id, address, zone, weight, status, incarnation, heartbeat }], startMs + downAfterMs + 1, downAfterMs);
  expect(findMember(healed.state, node(2).id)).toMatchObject({ status: 'up', incarnation: 4 + incarnationStepMax });
});

// At the very bound, the refutation and a restart keep the incarnation rather than overflow.
test('a rumour at incarnationMax neither overflows the refutation nor a restart', () => {
  const member = createMembership(node(2), startMs);
  const rumour = wire({ id: node(2).id, incarnation: incarnationMax, status: 'leaving' });
  const refuted = mergeGossip(member, [rumour], startMs + 1);
  expect(selfMember(refuted.state).incarnation).toBe(incarnationMax);
  const again = mergeGossip(refuted.state, [rumour], startMs + 2);
  expect(again.events).toEqual([]);
  const restarted = restoreMembership(node(2), [wire({ id: node(2).id, incarnation: incarnationMax })], startMs);
  expect(selfMember(restarted).incarnation).toBe(incarnationMax);
});

// A member first heard of second-hand is not vouched for; its own word vouches for it.
test('vouched only by the member itself', () => {
  let state = createMembership(node(1), startMs);
  state = mergeGossip(state, [wire({ id: node(3).id, heartbeat: 1 })], startMs).state;
  expect(findMember(state, node(3).id)).toMatchObject({ confirmed: true, vouched: false });
  state = mergeGossip(state, [wire({ id: node(3).id, heartbeat: 2 })], startMs + 1, undefined, node(3).address).state;
  expect(findMember(state, node(3).id)).toMatchObject({ confirmed: true, vouched: true });
  // A list from a dialled address vouches only for the member at that address.
  state = mergeGossip(state, [wire({ id: node(4).id })], startMs + 2, undefined, node(3).address).state;
  expect(findMember(state, node(4).id)?.vouched).toBe(false);
  expect(selfMember(state).vouched).toBe(true);
  // Another id planted at the dialled address is not the member there speaking.
  state = mergeGossip(state, [wire({ id: 'planted', address: node(3).address, weight: 16 })], startMs + 3, undefined, node(3).address).state;
  expect(findMember(state, 'planted')?.vouched).toBe(false);
});

// An unknown member claimed far past any start is kept as an address to dial, not as a member.
test('an unknown member beyond incarnationStepMax waits as a seed for its own word', () => {
  let state = createMembership(node(1), startMs);
  const claim = wire({ id: node(5).id, incarnation: incarnationStepMax + 1, status: 'leaving' });
  const update = mergeGossip(state, [claim], startMs);
  expect(update.events).toEqual([{ kind: 'implausible', id: node(5).id, incarnation: incarnationStepMax + 1 }]);
  expect(findMember(update.state, node(5).id)).toMatchObject({ confirmed: false, status: 'up', incarnation: 0 });
  state = mergeGossip(update.state, [{ ...claim, status: 'up' }], startMs + 1, undefined, node(5).address).state;
  expect(findMember(state, node(5).id)).toMatchObject({ confirmed: true, vouched: true, incarnation: incarnationStepMax + 1 });
});

// addSeed waits for at most seedsMax addresses at once.
test('seeds are bounded', () => {
  let state = createMembership(node(1), startMs);
  for (let index = 0; index < seedsMax; index++) state = addSeed(state, `10.0.0.1:${1000 + index}`, startMs).state;
  const full = addSeed(state, '10.0.0.2:1', startMs);
  expect(full.events).toEqual([{ kind: 'dropped', id: '10.0.0.2:1' }]);
  expect(full.state).toBe(state);
});

// What a node may be asked to dial: one machine's host:port.
test('seedAddressProblem', () => {
  for (const good of ['127.0.0.1:7001', 'kai-2.example.com:11311', 'node3:1', '[::1]:7001', '::1:7001', '[fe80::1]:65535', '10.1.2.3:80']) {
    expect(seedAddressProblem(good)).toBeUndefined();
  }
  const bad: [string, RegExp][] = [
    ['127.0.0.1', /host:port/],
    ['127.0.0.1:0', /host:port/],
    ['127.0.0.1:65536', /host:port/],
    [':7001', /host:port/],
    ['0.0.0.0:7001', /unspecified/],
    ['[::]:7001', /unspecified/],
    ['255.255.255.255:7001', /broadcast/],
    ['224.0.0.1:7001', /multicast/],
    ['[ff02::1]:7001', /multicast/],
    ['300.1.1.1:7001', /IPv4/],
    ['1.2.3:7001', /IPv4/],
    ['host name:7001', /DNS name/],
    ['http://x:7001', /not an IPv6 address/],
    ['-bad.example:7001', /DNS name/],
    ['[zz::1]:7001', /IPv6/],
  ];
  for (const [address, reason] of bad) expect(seedAddressProblem(address)).toMatch(reason);
});

// A member heard of only second-hand is dialled every other round, so the claimant soon hears it.
test('pickGossipTarget draws an unvouched member half the time', () => {
  let state = knowingNode2();
  state = mergeGossip(state, [wire({ id: node(3).id })], startMs).state;
  expect(pickGossipTarget(state, 0)?.id).toBe(node(3).id);
  expect(pickGossipTarget(state, 0.49)?.id).toBe(node(3).id);
  // The other half draws among every member up, as before: the lower quarter is node 2.
  expect(pickGossipTarget(state, 0.5)?.id).toBe(node(2).id);
  expect(pickGossipTarget(state, 0.99)?.id).toBe(node(3).id);
});
