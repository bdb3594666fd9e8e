/**
 * Membership: pure. One node's view of the cluster's members and how it changes: its own
 * heartbeat, gossip merged in, seeds, and a heartbeat failure detector. Time is an argument and
 * randomness a number passed in; the gossip shell carries out the exchanges.
 *
 * The design is Scuttlebutt's (each member alone raises its own heartbeat and incarnation, and
 * every node keeps the highest it has heard) with SWIM's refutation: a node that hears it is down,
 * or sees any view of itself newer than its own, raises its incarnation, and the new incarnation
 * wins everywhere. Merging member views is a join: commutative, associative and idempotent, so
 * gossip in any order converges.
 */
import { assert } from '../errors';
import type { RingMember } from '../ring';
import type { WireMember } from '../rpc/messages';

export type MemberStatus = WireMember['status'];

/** A member as this node knows it: what gossip carries, plus what only this node observed. */
export interface Member extends WireMember {
  /** When this node last saw the member's incarnation or heartbeat advance. Never gossiped. */
  readonly lastHeardMs: number;
  /**
   * False for a seed entry made from an address alone (`addSeed`): its zone, weight and
   * incarnation are placeholders until the member's own entry arrives. Never gossiped.
   */
  readonly confirmed: boolean;
  /**
   * This node has heard the member speak for itself: its entry came in the reply to an exchange
   * this node opened to the member's address (or the member was known before a restart). Only a
   * vouched member joins the ring (claimant joiners), so an entry a peer invents for an address
   * nobody answers at never takes buckets. Never gossiped.
   */
  readonly vouched: boolean;
}

export interface MembershipState {
  readonly selfId: string;
  /** Every known member, this node included, sorted by id. */
  readonly members: readonly Member[];
}

/** What a node says about itself when it starts. */
export interface SelfDescription {
  readonly id: string;
  readonly address: string;
  readonly zone: string;
  readonly weight: number;
}

export type MembershipEvent =
  /** A member's own entry was seen for the first time. */
  | { readonly kind: 'joined'; readonly id: string }
  | { readonly kind: 'up'; readonly id: string }
  | { readonly kind: 'down'; readonly id: string }
  | { readonly kind: 'leaving'; readonly id: string }
  /** Address, zone or weight changed: the ring may have to be rebuilt. */
  | { readonly kind: 'changed'; readonly id: string }
  /** This node raised its incarnation to refute a rumour about itself. */
  | { readonly kind: 'refuted'; readonly incarnation: number }
  /** A member was not added because the list is full. */
  | { readonly kind: 'dropped'; readonly id: string }
  /** A view of another member was not taken: it claimed an incarnation too far ahead (incarnationStepMax). */
  | { readonly kind: 'implausible'; readonly id: string; readonly incarnation: number };

export interface MembershipUpdate {
  readonly state: MembershipState;
  readonly events: readonly MembershipEvent[];
}

export interface FailureDetectorOptions {
  /** A member whose heartbeat has not advanced for longer than this is marked down. */
  readonly downAfterMs: number;
}

/** Members one node tracks, itself included: bounds the list, the ring and every gossip message. */
export const membersMax = 1024;
/** Members one gossip message or persisted list may carry. */
export const wireMembersMax = membersMax;
export const memberIdLengthMax = 255;
export const zoneLengthMax = 64;
/** A heavier member would claim more than 16 times a member of weight 1. */
export const memberWeightMax = 16;
/**
 * The highest incarnation an entry may carry. A member raises its own by one per restart, per
 * change of itself and per refutation: at a million a second that takes four years to reach
 * 2^47, and an incarnation taken from a start time in ms (as some gossip designs do) stays below
 * it until the year 6429. Raising it stops there (`raised`), and an entry above it is refused, so
 * the arithmetic on incarnations never leaves the exact integers.
 */
export const incarnationMax = 2 ** 47;
/**
 * The highest heartbeat: one per gossip round, which is at least a millisecond long, so 2^45
 * lasts over a thousand years of one incarnation.
 */
export const heartbeatMax = 2 ** 45;
/**
 * How far ahead of the incarnation this node holds a peer's view of another member may be. A
 * member's incarnation rises one at a time, a few times between two rounds at most; a view far
 * ahead is a forged one, which would leave the member no incarnation to refute it with. A node
 * that was away while a member really went further hears the member's own entry when it next
 * exchanges with it, which is taken whatever its incarnation (`mergeGossip`'s `heardFrom`).
 */
export const incarnationStepMax = 1024;
/**
 * Seeds (`addSeed`) one node waits for at once: each is dialled every round until it answers or
 * the failure detector gives up on it, so a burst of seeds must not crowd out the real members.
 */
export const seedsMax = 64;
/** Five missed rounds at the default one-second gossip interval. */
export const defaultFailureDetector: FailureDetectorOptions = { downAfterMs: 5000 };

const statuses: readonly MemberStatus[] = ['up', 'down', 'leaving'];

function byId(a: { readonly id: string }, b: { readonly id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function assertValidSelf(self: SelfDescription): void {
  assert(checkWireMember({ ...self, status: 'up', incarnation: 0, heartbeat: 0 }) === null, 'valid self description');
}

export function createMembership(self: SelfDescription, nowMs: number): MembershipState {
  assertValidSelf(self);
  const entry: Member = { ...self, status: 'up', incarnation: 0, heartbeat: 0, lastHeardMs: nowMs, confirmed: true, vouched: true };
  return { selfId: self.id, members: [entry] };
}

/**
 * A node restarting from its persisted list: it knows the others again at once, and starts a new
 * incarnation, so its fresh heartbeat (counted from 0 again) wins over what peers remember.
 * Every restored member counts as just heard, so the failure detector gives each a full timeout.
 */
/**
 * The state of a restarted node from its saved list. When the node comes back under another id
 * (a new hostname or port for the same data), `previousSelfId` names the id it had: that member
 * is this node's old identity, not a peer, so it is announced as leaving with a newer
 * incarnation, which every member adopts and which takes it out of the ring.
 */
export function restoreMembership(
  self: SelfDescription,
  saved: readonly WireMember[],
  nowMs: number,
  previousSelfId?: string,
): MembershipState {
  assertValidSelf(self);
  const savedSelf = saved.find((m) => m.id === self.id);
  const incarnation = savedSelf ? raised(savedSelf.incarnation) : 0;
  const selfEntry: Member = { ...self, status: 'up', incarnation, heartbeat: 0, lastHeardMs: nowMs, confirmed: true, vouched: true };
  const others = saved
    .filter((m) => m.id !== self.id)
    .slice(0, membersMax - 1)
    .map((m): Member => {
      const member: Member = { ...memberToWire(m), lastHeardMs: nowMs, confirmed: true, vouched: true };
      if (previousSelfId === undefined || m.id !== previousSelfId) return member;
      return { ...member, status: 'leaving', incarnation: raised(m.incarnation) };
    });
  return { selfId: self.id, members: [selfEntry, ...others].sort(byId) };
}

/**
 * The incarnation after `incarnation`, stopping at incarnationMax: a member there (only a forged
 * view can take it there within a lifetime) keeps its incarnation rather than send one no peer takes.
 */
export function raised(incarnation: number): number {
  return Math.min(incarnation + 1, incarnationMax);
}

export function selfMember(state: MembershipState): Member {
  const self = state.members.find((m) => m.id === state.selfId);
  assert(self !== undefined, 'membership holds its own entry');
  return self;
}

export function findMember(state: MembershipState, id: string): Member | undefined {
  return state.members.find((m) => m.id === id);
}

function replaceSelf(state: MembershipState, change: (self: Member) => Member): MembershipState {
  return { ...state, members: state.members.map((m) => (m.id === state.selfId ? change(m) : m)) };
}

/** One gossip round's own step: the heartbeat goes up, so peers can see this node is alive. */
export function tick(state: MembershipState, nowMs: number): MembershipState {
  return replaceSelf(state, (self) => ({ ...self, heartbeat: Math.min(self.heartbeat + 1, heartbeatMax), lastHeardMs: nowMs }));
}

/** Announces a new address, zone or weight: a new incarnation makes it win over the old entry. */
export function updateSelf(
  state: MembershipState,
  changes: Partial<Omit<SelfDescription, 'id'>>,
  nowMs: number,
): MembershipState {
  const next = replaceSelf(state, (self) => ({
    ...self,
    ...changes,
    incarnation: raised(self.incarnation),
    lastHeardMs: nowMs,
  }));
  assertValidSelf(selfMember(next));
  return next;
}

/** Announces that this node leaves the cluster: its buckets move to the others. */
export function leave(state: MembershipState, nowMs: number): MembershipState {
  return replaceSelf(state, (self) => ({
    ...self,
    status: 'leaving',
    incarnation: raised(self.incarnation),
    lastHeardMs: nowMs,
  }));
}

/**
 * Announces that this node takes no requests, though it runs: its storage can no longer commit.
 * The new incarnation makes 'down' win everywhere, so coordinators route around the node and
 * hold hints for it; its heartbeat goes on, and only a restart (a new incarnation, up) undoes it.
 */
export function declareSelfDown(state: MembershipState, nowMs: number): MembershipState {
  if (selfMember(state).status !== 'up') return state;
  return replaceSelf(state, (self) => ({ ...self, status: 'down', incarnation: self.incarnation + 1, lastHeardMs: nowMs }));
}

/**
 * `kai check-node`: this node learns another's address. The entry holds placeholders until the
 * member's own entry arrives by gossip; it is a gossip target, but is neither gossiped on nor in
 * the ring. The id of a kai node is its internal address, so the address stands in for it.
 */
export function addSeed(state: MembershipState, address: string, nowMs: number): MembershipUpdate {
  assert(checkAddress(address) === null, 'seed address is host:port');
  if (state.members.some((m) => m.address === address || m.id === address)) return { state, events: [] };
  const seeds = state.members.filter((m) => !m.confirmed).length;
  if (state.members.length >= membersMax || seeds >= seedsMax) return { state, events: [{ kind: 'dropped', id: address }] };
  return { state: { ...state, members: [...state.members, placeholderFor(address, address, nowMs)].sort(byId) }, events: [] };
}

/** A seed's entry: an address to dial, with placeholders until the member's own entry arrives. */
function placeholderFor(id: string, address: string, nowMs: number): Member {
  return { id, address, zone: '', weight: 1, status: 'up', incarnation: 0, heartbeat: 0, lastHeardMs: nowMs, confirmed: false, vouched: false };
}

/**
 * `kai remove` of a seed never heard from (a mistyped address): its placeholder goes, so the node
 * no longer waits for it. A confirmed member is not a seed and stays.
 */
export function forgetSeed(state: MembershipState, address: string): MembershipState {
  const members = state.members.filter((m) => m.confirmed || (m.address !== address && m.id !== address));
  return members.length === state.members.length ? state : { ...state, members };
}

function memberToWire(member: WireMember): WireMember {
  const { id, address, zone, weight, status, incarnation, heartbeat } = member;
  return { id, address, zone, weight, status, incarnation, heartbeat };
}

function compareDetails(a: WireMember, b: WireMember): number {
  if (a.heartbeat !== b.heartbeat) return a.heartbeat - b.heartbeat;
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  if (a.zone !== b.zone) return a.zone < b.zone ? -1 : 1;
  return a.weight - b.weight;
}

function statusRank(status: MemberStatus): number {
  return status === 'up' ? 0 : 1;
}

/**
 * The join of two views of one member. A higher incarnation wins whole. Within an incarnation:
 * the highest heartbeat is kept; 'leaving' is sticky (only the member's next incarnation clears
 * it); otherwise the status that goes with the higher heartbeat wins, 'down' over 'up' at equal
 * heartbeats, since it is the later observation of that same heartbeat. Address, zone and weight
 * cannot differ within an incarnation unless the member lost its state; they are then chosen by a
 * fixed order so the join stays commutative.
 */
export function joinMember(a: WireMember, b: WireMember): WireMember {
  assert(a.id === b.id, 'join views of one member');
  if (a.incarnation !== b.incarnation) return memberToWire(a.incarnation > b.incarnation ? a : b);
  const details = compareDetails(a, b) >= 0 ? a : b;
  let status: MemberStatus;
  if (a.status === 'leaving' || b.status === 'leaving') status = 'leaving';
  else if (a.heartbeat !== b.heartbeat) status = a.heartbeat > b.heartbeat ? a.status : b.status;
  else status = statusRank(a.status) >= statusRank(b.status) ? a.status : b.status;
  return { ...memberToWire(details), heartbeat: Math.max(a.heartbeat, b.heartbeat), status };
}

function sameView(a: WireMember, b: WireMember): boolean {
  return (
    a.address === b.address &&
    a.zone === b.zone &&
    a.weight === b.weight &&
    a.status === b.status &&
    a.incarnation === b.incarnation &&
    a.heartbeat === b.heartbeat
  );
}

/** The join of two member lists, by id: the algebra that gossip relies on. Sorted by id. */
export function joinViews(a: readonly WireMember[], b: readonly WireMember[]): WireMember[] {
  const joined = new Map<string, WireMember>();
  for (const member of [...a, ...b]) {
    const known = joined.get(member.id);
    joined.set(member.id, known ? joinMember(known, member) : memberToWire(member));
  }
  return [...joined.values()].sort(byId);
}

function advanced(before: WireMember, after: WireMember): boolean {
  if (after.incarnation !== before.incarnation) return after.incarnation > before.incarnation;
  return after.heartbeat > before.heartbeat;
}

function statusEvent(id: string, status: MemberStatus): MembershipEvent {
  return { kind: status, id };
}

/**
 * Merges one remote view of another member into the local entry, with the events it causes. A
 * peer's mark of a member as down, at the very heartbeat this node holds, is that peer's own
 * timeout: while this node saw that heartbeat arrive less than `downAfterMs` ago, it keeps the
 * member up, and its own failure detector decides. So one node that fell behind (a stalled event
 * loop, a link of its own cut) cannot mark a live member down for the whole cluster; a member that
 * is really gone is marked down by every node's own detector at most `downAfterMs` later.
 */
function mergeOther(
  local: Member | undefined,
  remote: WireMember,
  nowMs: number,
  events: MembershipEvent[],
  downAfterMs: number | undefined,
  ownVoice: boolean,
): Member {
  if (local === undefined || !local.confirmed) {
    events.push({ kind: 'joined', id: remote.id });
    return { ...memberToWire(remote), lastHeardMs: nowMs, confirmed: true, vouched: ownVoice };
  }
  if (!ownVoice && remote.incarnation > local.incarnation + incarnationStepMax) {
    events.push({ kind: 'implausible', id: remote.id, incarnation: remote.incarnation });
    return local;
  }
  const vouched = local.vouched || ownVoice;
  let joined = joinMember(local, remote);
  const heardLately = downAfterMs !== undefined && local.status === 'up' && nowMs - local.lastHeardMs < downAfterMs;
  const peersTimeoutOnly =
    heardLately && joined.status === 'down' && joined.incarnation === local.incarnation && joined.heartbeat === local.heartbeat;
  // Only a member announces its own leave, and none announces itself down. While this node hears
  // the member, a peer's word that it is out (at any incarnation) waits: the member, hearing it,
  // refutes it within a round or two; a member that really left, or went down, falls silent and
  // this node's own detector marks it down within downAfterMs, after which the word is taken.
  const secondHandOut = heardLately && !ownVoice && joined.status !== 'up';
  if (peersTimeoutOnly || secondHandOut) joined = { ...joined, status: 'up' };
  if (sameView(joined, local)) return vouched === local.vouched ? local : { ...local, vouched };
  if (joined.status !== local.status) events.push(statusEvent(joined.id, joined.status));
  if (joined.address !== local.address || joined.zone !== local.zone || joined.weight !== local.weight) {
    events.push({ kind: 'changed', id: joined.id });
  }
  return { ...joined, lastHeardMs: advanced(local, joined) ? nowMs : local.lastHeardMs, confirmed: true, vouched };
}

/**
 * A view of this node from elsewhere is refuted when it says this node is down or leaving at its
 * current incarnation or later (SWIM), or when it is in any way newer than the node's own entry,
 * as after a restart that lost the heartbeat. The new incarnation wins over every such view.
 */
function refutes(self: Member, remote: WireMember): boolean {
  // A node that leaves, or declared itself down (declareSelfDown), does not argue about being down.
  const rumourOfFailure = self.status === 'up' && remote.incarnation >= self.incarnation && remote.status !== 'up';
  return rumourOfFailure || !sameView(joinMember(self, remote), self);
}

/**
 * Merges a list received by gossip. Entries about other members join the local ones; an entry
 * about this node never replaces its own, but may make it raise its incarnation. A confirmed
 * entry replaces the seed entry that had its address. New members beyond `membersMax` are
 * dropped (reported as events). The caller validates the list first (`fromWire`).
 *
 * A view of another member is taken only within incarnationStepMax of the incarnation this node
 * holds, unless it is the member's own word: the entry whose id and address are `heardFrom`, the
 * address this node dialled for the exchange that brought the list. That entry also vouches for
 * the member.
 */
export function mergeGossip(
  state: MembershipState,
  remoteMembers: readonly WireMember[],
  nowMs: number,
  /** This node's failure timeout: a peer's down mark is weighed against it (mergeOther). */
  downAfterMs?: number,
  /** The address this node dialled and got the list from; absent for a list a peer sent unasked. */
  heardFrom?: string,
): MembershipUpdate {
  assert(remoteMembers.length <= wireMembersMax, 'gossip list within its bound');
  const events: MembershipEvent[] = [];
  const byMemberId = new Map(state.members.map((m) => [m.id, m]));
  for (const remote of remoteMembers) {
    if (remote.id === state.selfId) {
      mergeAboutSelf(byMemberId, state.selfId, remote, nowMs, events);
      continue;
    }
    const local = byMemberId.get(remote.id);
    // A kai node's id is its internal address: only the entry named by the dialled address, and
    // at it, is the member speaking; another id at that address is someone else's claim.
    const ownVoice = heardFrom !== undefined && remote.id === heardFrom && remote.address === heardFrom;
    if (!ownVoice && (local === undefined || !local.confirmed) && remote.incarnation > incarnationStepMax) {
      // Far ahead of any start: maybe a forgery, maybe a member that has lived long. Its address
      // is kept as a seed's, and its own entry, heard when this node dials it, decides.
      events.push({ kind: 'implausible', id: remote.id, incarnation: remote.incarnation });
      if (local === undefined && seedCount(byMemberId) < seedsMax && byMemberId.size < membersMax) {
        byMemberId.set(remote.id, placeholderFor(remote.id, remote.address, nowMs));
      }
      continue;
    }
    if (local === undefined) dropSeedsAt(byMemberId, remote.address);
    if (local === undefined && byMemberId.size >= membersMax) {
      events.push({ kind: 'dropped', id: remote.id });
      continue;
    }
    byMemberId.set(remote.id, mergeOther(local, remote, nowMs, events, downAfterMs, ownVoice));
  }
  return { state: { selfId: state.selfId, members: [...byMemberId.values()].sort(byId) }, events };
}

function mergeAboutSelf(
  byMemberId: Map<string, Member>,
  selfId: string,
  remote: WireMember,
  nowMs: number,
  events: MembershipEvent[],
): void {
  const self = byMemberId.get(selfId);
  assert(self !== undefined, 'membership holds its own entry');
  if (!refutes(self, remote)) return;
  // Incarnations above incarnationMax are refused on the way in, and peers take a view of this
  // node only within incarnationStepMax of theirs: a rumour never gets so far that this stops.
  const incarnation = raised(Math.max(self.incarnation, remote.incarnation));
  if (incarnation === self.incarnation) return;
  byMemberId.set(selfId, { ...self, incarnation, lastHeardMs: nowMs });
  events.push({ kind: 'refuted', incarnation });
}

function seedCount(byMemberId: ReadonlyMap<string, Member>): number {
  let count = 0;
  for (const member of byMemberId.values()) if (!member.confirmed) count++;
  return count;
}

function dropSeedsAt(byMemberId: Map<string, Member>, address: string): void {
  for (const [id, member] of byMemberId) if (!member.confirmed && member.address === address) byMemberId.delete(id);
}

/**
 * The failure detector: every other member that is up and whose heartbeat has not advanced
 * within `downAfterMs` is marked down, at its current incarnation and heartbeat, so that the
 * mark spreads by gossip and any later heartbeat clears it. Up again is decided by `mergeGossip`,
 * when a higher heartbeat or incarnation arrives. Leaving members are left as they are: their
 * status is final for the incarnation.
 */
export function detectFailures(
  state: MembershipState,
  nowMs: number,
  options: FailureDetectorOptions,
): MembershipUpdate {
  assert(Number.isFinite(options.downAfterMs) && options.downAfterMs > 0, 'failure timeout is positive');
  const events: MembershipEvent[] = [];
  const members = state.members.map((member): Member => {
    if (member.id === state.selfId || member.status !== 'up') return member;
    if (nowMs - member.lastHeardMs <= options.downAfterMs) return member;
    events.push({ kind: 'down', id: member.id });
    return { ...member, status: 'down' };
  });
  return events.length === 0 ? { state, events } : { state: { ...state, members }, events };
}

/**
 * The members that own ring positions: confirmed members that are up or down. As in Dynamo, a
 * failure is usually transient, so a down member keeps its buckets and requests route around it
 * through the preference list (`preferenceListUp`); recomputing the ring on every failure would
 * move data back and forth. Only an announced leave takes a member out. Seeds are out until their
 * own entry (with their zone and weight) arrives.
 */
export function ringMembers(state: MembershipState): RingMember[] {
  return state.members
    .filter((m) => m.confirmed && m.status !== 'leaving')
    .map((m) => ({ id: m.id, weight: m.weight, zone: m.zone }));
}

/**
 * Seeds this node was given and has neither heard from nor given up on: until their own entries
 * arrive (or the failure detector marks them down) the ring this node builds may lack members.
 */
export function seedsAwaited(state: MembershipState): string[] {
  return state.members.filter((m) => !m.confirmed && m.status === 'up').map((m) => m.address);
}

/** Confirmed members this node has not heard from themselves: the ring does not take them yet. */
export function membersUnvouched(state: MembershipState): string[] {
  return state.members.filter((m) => m.confirmed && !m.vouched).map((m) => m.id);
}

/** Whether the member takes requests now: the coordinator skips the others. */
export function isUp(state: MembershipState, id: string): boolean {
  const member = findMember(state, id);
  return member !== undefined && member.status === 'up';
}

/**
 * The peer to gossip with this round, from `random` in [0, 1), or null when there is none.
 * A fresh seed (not yet confirmed, not yet timed out) goes first: an operator's check-node should
 * take effect in the next round, not whenever chance picks it; a wrong address costs rounds only
 * until the failure detector marks it down. Otherwise a peer that is up: were down peers drawn as
 * often, a node cut off with one partner from most of the cluster would spend most rounds on peers
 * that cannot answer, hear its partner too rarely, and mark it down though it is alive. Down peers
 * are reached by pickDownPeer besides; only when no peer is up is any peer not leaving drawn here.
 */
export function pickGossipTarget(state: MembershipState, random: number): Member | null {
  assert(random >= 0 && random < 1, 'random number in [0, 1)');
  const peers = state.members.filter((m) => m.id !== state.selfId && m.status !== 'leaving');
  const freshSeeds = peers.filter((m) => !m.confirmed && m.status === 'up');
  const up = peers.filter((m) => m.status === 'up');
  // A member heard of only second-hand is drawn every other round until it speaks for itself, so
  // a new member is vouched for (and may join the ring) within a few rounds; only every other,
  // so that entries invented for addresses nobody answers at cannot take every round.
  const unvouched = freshSeeds.length === 0 ? up.filter((m) => !m.vouched) : [];
  if (unvouched.length > 0) {
    if (random < 0.5) return unvouched[Math.floor(random * 2 * unvouched.length)];
    random = (random - 0.5) * 2;
  }
  const candidates = freshSeeds.length > 0 ? freshSeeds : up.length > 0 ? up : peers;
  if (candidates.length === 0) return null;
  return candidates[Math.floor(random * candidates.length)];
}

/**
 * A down peer to gossip with too this round, or null: with probability down / (up + 1), drawn
 * with `chance`, as Cassandra's gossiper does. The two sides of a healed partition, each believing
 * the other down, thus find each other within a few rounds, and a cluster that is mostly up spends
 * few exchanges on the peers that are not.
 */
export function pickDownPeer(state: MembershipState, chance: number, random: number): Member | null {
  assert(chance >= 0 && chance < 1 && random >= 0 && random < 1, 'random numbers in [0, 1)');
  const peers = state.members.filter((m) => m.id !== state.selfId && m.status !== 'leaving');
  const down = peers.filter((m) => m.status === 'down');
  if (down.length === 0) return null;
  const upCount = peers.length - down.length;
  if (upCount === 0 || chance >= down.length / (upCount + 1)) return null;
  return down[Math.floor(random * down.length)];
}

/**
 * The peers still up in this view that this node has not heard of for `quietAfterMs`, most
 * recently heard first: each gets an exchange of its own before the failure detector judges it.
 * Drawing gossip partners at random alone can pass over a live peer for rounds on end (two nodes
 * left of three each draw the unreachable third half the time), and it would be marked down
 * though one exchange would have shown it alive; a peer really gone only costs those exchanges
 * until it is marked down. The most recently heard come first, since they are the likeliest alive.
 */
export function quietPeers(state: MembershipState, nowMs: number, quietAfterMs: number): Member[] {
  return state.members
    .filter((m) => m.id !== state.selfId && m.status === 'up' && nowMs - m.lastHeardMs >= quietAfterMs)
    .sort((a, b) => b.lastHeardMs - a.lastHeardMs);
}

/** The list this node gossips and persists: confirmed members only, so no placeholder spreads. */
export function toWire(state: MembershipState): WireMember[] {
  return state.members.filter((m) => m.confirmed).map(memberToWire);
}

export type WireMembersResult =
  | { readonly ok: true; readonly members: readonly WireMember[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Validates a member list that came from a peer or from disk. Bad input is an operating error
 * (a peer of another version, a damaged file), returned as a value for the caller to log.
 */
export function fromWire(value: unknown): WireMembersResult {
  if (!Array.isArray(value)) return { ok: false, reason: 'member list is not an array' };
  if (value.length > wireMembersMax) return { ok: false, reason: `more than ${wireMembersMax} members` };
  const ids = new Set<string>();
  const members: WireMember[] = [];
  for (const [index, item] of value.entries()) {
    const problem = checkWireMember(item);
    if (problem !== null) return { ok: false, reason: `member ${index}: ${problem}` };
    const member = memberToWire(item as WireMember);
    if (ids.has(member.id)) return { ok: false, reason: `member ${index}: duplicate id` };
    ids.add(member.id);
    members.push(member);
  }
  return { ok: true, members };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCounter(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function checkAddress(address: unknown): string | null {
  if (typeof address !== 'string' || address.length === 0 || address.length > memberIdLengthMax) return 'address';
  const colon = address.lastIndexOf(':');
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (colon <= 0 || !/^\d+$/.test(portText) || port < 1 || port > 65535) return 'address is not host:port';
  return null;
}

/** A DNS name: dot-separated labels of letters, digits and inner hyphens, each at most 63 long. */
const hostnamePattern = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const ipv6Pattern = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * Why this node must not dial `address` as a seed (`addSeed`, which a peer asks for), or
 * undefined. It must be host:port with a port from 1, its host a DNS name or an IP literal, and
 * name one machine: not the unspecified address (which dials this host
 * itself), a broadcast or a multicast group, none of which a kai node listens at.
 */
export function seedAddressProblem(address: string): string | undefined {
  const problem = checkAddress(address);
  if (problem !== null) return problem;
  const rawHost = address.slice(0, address.lastIndexOf(':'));
  // An IPv6 host may come bare, as a node names itself (`${host}:${port}`), or in brackets.
  const bracketed = /^\[(.*)\]$/.exec(rawHost);
  if (bracketed || rawHost.includes(':')) {
    const host = (bracketed ? bracketed[1] : rawHost).toLowerCase();
    if (!ipv6Pattern.test(host) || !host.includes(':')) return 'host is not an IPv6 address';
    if (/^[0:]+$/.test(host)) return 'host is the unspecified address';
    if (host.startsWith('ff')) return 'host is a multicast address';
    return undefined;
  }
  const ipv4 = ipv4Pattern.exec(rawHost);
  if (ipv4) {
    const octets = ipv4.slice(1).map(Number);
    if (octets.some((octet) => octet > 255)) return 'host is not an IPv4 address';
    if (octets[0] === 0) return 'host is the unspecified address';
    if (octets[0] >= 224 && octets[0] <= 239) return 'host is a multicast address';
    if (octets[0] >= 240) return 'host is a reserved or broadcast address';
    return undefined;
  }
  if (/^[\d.]+$/.test(rawHost)) return 'host is not an IPv4 address';
  if (!hostnamePattern.test(rawHost)) return 'host is not a DNS name';
  return undefined;
}

/** Null when `value` is a valid WireMember, else what is wrong with it. */
export function checkWireMember(value: unknown): string | null {
  if (!isRecord(value)) return 'not an object';
  const { id, address, zone, weight, status, incarnation, heartbeat } = value;
  if (typeof id !== 'string' || id.length === 0 || id.length > memberIdLengthMax) return 'id';
  const addressProblem = checkAddress(address);
  if (addressProblem !== null) return addressProblem;
  if (typeof zone !== 'string' || zone.length > zoneLengthMax) return 'zone';
  if (typeof weight !== 'number' || !Number.isFinite(weight)) return 'weight';
  if (weight <= 0 || weight > memberWeightMax) return 'weight';
  if (typeof status !== 'string' || !statuses.includes(status as MemberStatus)) return 'status';
  if (!isCounter(incarnation) || incarnation > incarnationMax) return 'incarnation';
  if (!isCounter(heartbeat) || heartbeat > heartbeatMax) return 'heartbeat';
  return null;
}
