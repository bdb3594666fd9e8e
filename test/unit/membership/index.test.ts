import {
  addSeed,
  createMembership,
  defaultFailureDetector,
  detectFailures,
  findMember,
  fromWire,
  isUp,
  joinMember,
  leave,
  membersMax,
  mergeGossip,
  pickDownPeer,
  pickGossipTarget,
  quietPeers,
  restoreMembership,
  ringMembers,
  selfMember,
  tick,
  toWire,
  updateSelf,
  wireMembersMax,
  type MembershipState,
  type SelfDescription,
} from '../../../src/membership';
import type { WireMember } from '../../../src/rpc/messages';

const startMs = 1_000_000;
const downAfterMs = defaultFailureDetector.downAfterMs;

function node(index: number, zone = 'zone-a'): SelfDescription {
  const address = `127.0.0.1:${7100 + index}`;
  return { id: address, address, zone, weight: 1 };
}

function wire(overrides: Partial<WireMember> & { id: string }): WireMember {
  return { address: overrides.id, zone: 'zone-a', weight: 1, status: 'up', incarnation: 0, heartbeat: 0, ...overrides };
}

/**
 * One push-pull exchange: `to` merges what `from` sends, and `from` merges the reply, which comes
 * from the address it dialled, as the gossip shell's does.
 */
function exchange(from: MembershipState, to: MembershipState, nowMs: number): [MembershipState, MembershipState] {
  const receiver = mergeGossip(to, toWire(from), nowMs).state;
  return [mergeGossip(from, toWire(receiver), nowMs, undefined, selfMember(receiver).address).state, receiver];
}

// A new node knows only itself, up, at incarnation 0, and each tick raises its heartbeat alone.
test('createMembership and tick', () => {
  const state = createMembership(node(1), startMs);
  expect(toWire(state)).toEqual([{ ...node(1), status: 'up', incarnation: 0, heartbeat: 0 }]);
  const later = tick(tick(state, startMs + 1000), startMs + 2000);
  expect(selfMember(later)).toMatchObject({ heartbeat: 2, incarnation: 0 });
  expect(selfMember(state).heartbeat).toBe(0);
  expect(ringMembers(later)).toEqual([{ id: node(1).id, weight: 1, zone: 'zone-a' }]);
});

// check-node: a seed is gossiped to but neither gossiped on nor in the ring until its own entry arrives.
test('a seed entry is filled in by the first gossip', () => {
  let a = addSeed(createMembership(node(1), startMs), node(2).address, startMs).state;
  let b = tick(createMembership(node(2, 'zone-b'), startMs), startMs);
  expect(toWire(a).map((m) => m.id)).toEqual([node(1).id]);
  expect(ringMembers(a).map((m) => m.id)).toEqual([node(1).id]);
  expect(pickGossipTarget(a, 0.5)?.address).toBe(node(2).address);
  expect(addSeed(a, node(2).address, startMs).state).toBe(a);

  const reply = mergeGossip(b, toWire(a), startMs + 10);
  b = reply.state;
  expect(reply.events).toEqual([{ kind: 'joined', id: node(1).id }]);
  const merged = mergeGossip(a, toWire(b), startMs + 20);
  a = merged.state;
  expect(merged.events).toEqual([{ kind: 'joined', id: node(2).id }]);
  expect(findMember(a, node(2).id)).toMatchObject({
    zone: 'zone-b',
    heartbeat: 1,
    confirmed: true,
    lastHeardMs: startMs + 20,
  });
  expect(ringMembers(a).map((m) => m.zone)).toEqual(['zone-a', 'zone-b']);
});

// A seed named by an address whose node has another id is replaced by that node's entry.
test('a seed is replaced by the entry of the node at its address', () => {
  const seeded = addSeed(createMembership(node(1), startMs), '127.0.0.1:7200', startMs).state;
  const other = wire({ id: 'node-b', address: '127.0.0.1:7200', heartbeat: 3 });
  const merged = mergeGossip(seeded, [other], startMs).state;
  expect(merged.members.map((m) => m.id)).toEqual([node(1).id, 'node-b']);
});

// Heartbeats that stop advancing mark a member down; a later heartbeat brings it up again.
test('failure detector marks down after the timeout and up on a new heartbeat', () => {
  let a = mergeGossip(createMembership(node(1), startMs), [wire({ id: node(2).id, heartbeat: 5 })], startMs).state;
  expect(detectFailures(a, startMs + downAfterMs, defaultFailureDetector).events).toEqual([]);
  // The same heartbeat again is no sign of life.
  a = mergeGossip(a, [wire({ id: node(2).id, heartbeat: 5 })], startMs + downAfterMs).state;
  const detected = detectFailures(a, startMs + downAfterMs + 1, defaultFailureDetector);
  expect(detected.events).toEqual([{ kind: 'down', id: node(2).id }]);
  a = detected.state;
  expect(isUp(a, node(2).id)).toBe(false);
  expect(ringMembers(a).map((m) => m.id)).toContain(node(2).id);
  expect(pickGossipTarget(a, 0)?.id).toBe(node(2).id);
  const back = mergeGossip(a, [wire({ id: node(2).id, heartbeat: 6 })], startMs + downAfterMs + 2);
  expect(back.events).toEqual([{ kind: 'up', id: node(2).id }]);
  expect(isUp(back.state, node(2).id)).toBe(true);
});

// A rumour that this node is down makes it raise its incarnation, and the new incarnation wins.
test('a node refutes a rumour of its own failure', () => {
  const a = tick(createMembership(node(1), startMs), startMs);
  const rumour = wire({ id: node(1).id, status: 'down', heartbeat: 1 });
  const refuted = mergeGossip(a, [rumour], startMs + 1);
  expect(refuted.events).toEqual([{ kind: 'refuted', incarnation: 1 }]);
  expect(selfMember(refuted.state)).toMatchObject({ status: 'up', incarnation: 1 });
  expect(joinMember(rumour, toWire(refuted.state)[0]).status).toBe('up');
  // An old rumour, from before the new incarnation, changes nothing.
  expect(mergeGossip(refuted.state, [rumour], startMs + 2).events).toEqual([]);
});

// A node that restarted without its heartbeat sees its old, higher heartbeat and moves past it.
test('a newer view of oneself raises the incarnation', () => {
  const fresh = createMembership(node(1), startMs);
  const remembered = wire({ id: node(1).id, heartbeat: 900 });
  const merged = mergeGossip(fresh, [remembered], startMs);
  expect(selfMember(merged.state).incarnation).toBe(1);
  expect(joinMember(remembered, toWire(merged.state)[0])).toEqual(toWire(merged.state)[0]);
});

// 'leaving' is final for the incarnation: later heartbeats and 'down' marks do not undo it.
test('leaving is sticky until the member comes back with a new incarnation', () => {
  let a = createMembership(node(1), startMs);
  let b = leave(createMembership(node(2), startMs), startMs);
  [b, a] = exchange(b, a, startMs);
  expect(findMember(a, node(2).id)?.status).toBe('leaving');
  expect(ringMembers(a).map((m) => m.id)).toEqual([node(1).id]);
  expect(pickGossipTarget(a, 0)).toBeNull();
  const later = wire({ id: node(2).id, incarnation: 1, heartbeat: 50, status: 'up' });
  const afterLater = mergeGossip(a, [later], startMs).state;
  expect(findMember(afterLater, node(2).id)).toMatchObject({ status: 'leaving', heartbeat: 50 });
  expect(detectFailures(a, startMs + 10 * downAfterMs, defaultFailureDetector).events).toEqual([]);
  const back = wire({ id: node(2).id, incarnation: 2, heartbeat: 0, status: 'up' });
  const rejoined = mergeGossip(a, [back], startMs);
  expect(rejoined.events).toEqual([{ kind: 'up', id: node(2).id }]);
  expect(ringMembers(rejoined.state).map((m) => m.id)).toEqual([node(1).id, node(2).id]);
});

// A new zone or weight is announced with a new incarnation and reported as a change.
test('updateSelf announces a change that peers adopt', () => {
  let a = createMembership(node(1), startMs);
  let b = createMembership(node(2), startMs);
  [a, b] = exchange(a, b, startMs);
  a = updateSelf(a, { zone: 'zone-c', weight: 2 }, startMs);
  const merged = mergeGossip(b, toWire(a), startMs);
  expect(merged.events).toEqual([{ kind: 'changed', id: node(1).id }]);
  expect(ringMembers(merged.state)[0]).toEqual({ id: node(1).id, weight: 2, zone: 'zone-c' });
  expect(() => updateSelf(a, { weight: 0 }, startMs)).toThrow(/assertion failed/);
});

// A restarted node knows its peers from disk and starts an incarnation above the saved one.
test('restoreMembership from the persisted list', () => {
  const saved = [
    wire({ id: node(1).id, incarnation: 3, heartbeat: 77 }),
    wire({ id: node(2).id, heartbeat: 9, status: 'down' }),
  ];
  const parsed = fromWire(JSON.parse(JSON.stringify(saved)));
  expect(parsed.ok).toBe(true);
  if (!parsed.ok) return;
  const state = restoreMembership(node(1), parsed.members, startMs);
  expect(selfMember(state)).toMatchObject({ incarnation: 4, heartbeat: 0, status: 'up' });
  expect(findMember(state, node(2).id)).toMatchObject({
    status: 'down',
    heartbeat: 9,
    lastHeardMs: startMs,
    confirmed: true,
  });
});

// The list never grows past membersMax; what does not fit is reported.
test('members beyond membersMax are dropped', () => {
  let state = createMembership(node(0), startMs);
  const others = Array.from({ length: membersMax + 5 }, (_, i) => wire({ id: `10.0.${i >> 8}.${i & 255}:7000` }));
  const merged = mergeGossip(state, others.slice(0, wireMembersMax), startMs);
  state = merged.state;
  expect(state.members.length).toBe(membersMax);
  expect(merged.events.filter((e) => e.kind === 'dropped').length).toBe(1);
  expect(addSeed(state, '10.9.9.9:7000', startMs).events).toEqual([{ kind: 'dropped', id: '10.9.9.9:7000' }]);
});

// Lists from peers or disk are validated at the boundary; bad input is a value, not a throw.
test('fromWire rejects malformed member lists', () => {
  const good = wire({ id: node(1).id });
  const bad: unknown[] = [
    null,
    'members',
    { 0: good },
    Array.from({ length: wireMembersMax + 1 }, (_, i) => wire({ id: `10.0.0.${i}:7000` })),
    [good, good],
    [{ ...good, id: '' }],
    [{ ...good, address: 'no-port' }],
    [{ ...good, address: 'host:70000' }],
    [{ ...good, zone: 'z'.repeat(65) }],
    [{ ...good, weight: 0 }],
    [{ ...good, weight: 17 }],
    [{ ...good, weight: '1' }],
    [{ ...good, status: 'suspect' }],
    [{ ...good, incarnation: -1 }],
    [{ ...good, heartbeat: 1.5 }],
    [{ ...good, heartbeat: undefined }],
  ];
  for (const value of bad) expect(fromWire(value).ok).toBe(false);
  const parsed = fromWire([{ ...good, extra: 'dropped' }]);
  expect(parsed).toEqual({ ok: true, members: [good] });
});

// The gossip target is drawn from the random number: a fresh seed first, else any peer not leaving.
test('pickGossipTarget', () => {
  let state = createMembership(node(1), startMs);
  expect(pickGossipTarget(state, 0.3)).toBeNull();
  const peers = [wire({ id: node(2).id }), wire({ id: node(3).id }), wire({ id: node(4).id, status: 'leaving' })];
  // Each heard from itself, so none is drawn first to be vouched for.
  for (const peer of peers) state = mergeGossip(state, [peer], startMs, undefined, peer.address).state;
  expect(pickGossipTarget(state, 0)?.id).toBe(node(2).id);
  expect(pickGossipTarget(state, 0.49)?.id).toBe(node(2).id);
  expect(pickGossipTarget(state, 0.5)?.id).toBe(node(3).id);
  expect(pickGossipTarget(state, 0.999)?.id).toBe(node(3).id);
  expect(() => pickGossipTarget(state, 1)).toThrow(/assertion failed/);
  // A fresh seed goes first, until the failure detector gives up on it.
  state = addSeed(state, '127.0.0.1:7999', startMs).state;
  expect(pickGossipTarget(state, 0)?.id).toBe('127.0.0.1:7999');
  expect(pickGossipTarget(state, 0.99)?.id).toBe('127.0.0.1:7999');
  state = detectFailures(state, startMs + downAfterMs + 1, defaultFailureDetector).state;
  // Every member is down now (no heartbeat came): then any peer not leaving is drawn.
  expect(pickGossipTarget(state, 0)?.id).toBe(node(2).id);
  expect(pickGossipTarget(state, 0.99)?.id).toBe('127.0.0.1:7999');
});

// With peers up, only they are drawn; a down peer is reached besides, with probability down / (up + 1).
test('pickGossipTarget prefers up peers, and pickDownPeer reaches the down ones now and then', () => {
  let state = createMembership(node(1), startMs);
  const peers = [wire({ id: node(2).id }), wire({ id: node(3).id }), wire({ id: node(4).id }), wire({ id: node(5).id, status: 'leaving' })];
  for (const peer of peers) state = mergeGossip(state, [peer], startMs, undefined, peer.address).state;
  expect(pickDownPeer(state, 0, 0)).toBeNull();
  // Node 2 stays silent; nodes 3 and 4 keep gossiping.
  const later = startMs + downAfterMs + 1;
  state = mergeGossip(state, [wire({ id: node(3).id, heartbeat: 5 }), wire({ id: node(4).id, heartbeat: 5 })], later - 1).state;
  state = detectFailures(state, later, defaultFailureDetector).state;
  expect(state.members.find((member) => member.id === node(2).id)?.status).toBe('down');
  for (const random of [0, 0.3, 0.6, 0.99]) expect(pickGossipTarget(state, random)?.id).not.toBe(node(2).id);
  // One down, two up: a down peer is drawn when chance < 1 / 3.
  expect(pickDownPeer(state, 0.33, 0.5)?.id).toBe(node(2).id);
  expect(pickDownPeer(state, 0.34, 0.5)).toBeNull();
});

// A peer's down mark at the heartbeat this node holds is only that peer's timeout: a node that saw
// the heartbeat arrive recently keeps the member up, until its own detector decides.
test("one node's timeout does not mark a live member down for a node that heard it recently", () => {
  let state = createMembership(node(1), startMs);
  state = mergeGossip(state, [wire({ id: node(2).id, heartbeat: 7 })], startMs, downAfterMs).state;
  const rumour = [wire({ id: node(2).id, heartbeat: 7, status: 'down' })];
  const recent = mergeGossip(state, rumour, startMs + downAfterMs - 1, downAfterMs);
  expect(recent.events).toEqual([]);
  expect(recent.state.members.find((member) => member.id === node(2).id)?.status).toBe('up');
  // Heard long enough ago, the mark is taken, as this node's own detector would take it.
  const stale = mergeGossip(state, rumour, startMs + downAfterMs, downAfterMs);
  expect(stale.events).toEqual([{ kind: 'down', id: node(2).id }]);
  // A down mark at a later heartbeat brings the heartbeat, not the mark: this node heard the
  // member lately, and its own detector decides. Without a timeout given, every mark is taken.
  const later = mergeGossip(state, [wire({ id: node(2).id, heartbeat: 8, status: 'down' })], startMs + 1, downAfterMs);
  expect(later.events).toEqual([]);
  expect(findMember(later.state, node(2).id)).toMatchObject({ status: 'up', heartbeat: 8 });
  expect(mergeGossip(state, rumour, startMs + 1).events).toEqual([{ kind: 'down', id: node(2).id }]);
});

// Peers up but unheard of for a while are each asked directly, most recently heard first.
test('quietPeers', () => {
  let state = createMembership(node(1), startMs);
  const heardAtMs = [startMs, startMs + 300, startMs + 100];
  for (const [index, atMs] of heardAtMs.entries()) {
    const peer = wire({ id: node(index + 2).id, heartbeat: 1 });
    state = mergeGossip(state, [peer], atMs, undefined, peer.address).state;
  }
  const quietAfterMs = 2500;
  expect(quietPeers(state, startMs + 2000, quietAfterMs)).toEqual([]);
  expect(quietPeers(state, startMs + 2500, quietAfterMs).map((m) => m.id)).toEqual([node(2).id]);
  expect(quietPeers(state, startMs + 2800, quietAfterMs).map((m) => m.id)).toEqual([node(3).id, node(4).id, node(2).id]);
  // A peer marked down is left to pickDownPeer; this node itself is never quiet.
  const judged = detectFailures(state, startMs + downAfterMs + 1, defaultFailureDetector).state;
  expect([2, 3, 4].map((index) => isUp(judged, node(index).id))).toEqual([false, true, true]);
  expect(quietPeers(judged, startMs + downAfterMs + 1, quietAfterMs).map((m) => m.id)).toEqual([node(3).id, node(4).id]);
});
