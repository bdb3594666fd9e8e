/**
 * Who owns which bucket, and how ownership changes: pure, after Riak's claimant. The ring state is
 * gossiped beside the member list. It holds the owner of every bucket and, while the ring changes,
 * the planned owners (`next`); buckets move to their new replicas (src/transfer) before requests
 * do, and only then does the plan become the ring.
 *
 * One member at a time plans: the claimant, the lowest id among the ring's members that are up and
 * staying. It plans only when the ring is ready: every staying member of the ring is up and has seen
 * the current version, so two sides of a partition never plan at once. A plan or a finished plan is
 * a new version; the highest (version, claimant) wins everywhere, and what members report about a
 * version (who has seen it, which transfers are done) only grows within it, so gossip in any order
 * converges.
 *
 * While a bucket moves, writes go to its old replicas and its new ones, and must be met by each
 * list (joint quorum); reads stay on the old replicas until every new replica has the bucket, then
 * switch. The old replicas thus hold every write until the plan is finished, which is what makes a
 * plan safe to abandon when one of its members leaves.
 */
import { assert } from '../errors';
import { preferenceList, ringFromOwners, type Ring, type RingMember } from '../ring';
import { claim, claimSpacingDefault } from '../ring/claim';

export interface RingState {
  /** Raised by each plan and each finished plan; with `claimant`, orders states. */
  readonly version: number;
  /** The member that made this version. */
  readonly claimant: string;
  /** Every member that owns buckets in `owners` or `next`, sorted by id. */
  readonly members: readonly RingMember[];
  /** The owner of each bucket. */
  readonly owners: readonly string[];
  /** The planned owner of each bucket while the ring changes, else null. */
  readonly next: readonly string[] | null;
  /** Buckets each member has received in full under this version's plan, sorted. */
  readonly done: Readonly<Record<string, readonly number[]>>;
  /** Members that hold this version, sorted. */
  readonly seenBy: readonly string[];
  /**
   * Leave requests, as a register per member merged by its highest count across versions: odd
   * while the member is asked out of the ring (`kai leave`, `kai remove`), even once a `kai join`
   * asked it back. Each request or cancellation takes the next count, so the latest wins.
   */
  readonly leaving: Readonly<Record<string, number>>;
  /** Replacements asked (`kai replace`): the old member's buckets go to the new one. Merged across versions. */
  readonly replacing: Readonly<Record<string, string>>;
}

/** A member as the claimant needs to know it, from the membership. */
export interface ClusterMember extends RingMember {
  /** Whether the failure detector holds it up. */
  readonly up: boolean;
  /** Gone for good (a former id of a node, or a member that finished leaving). */
  readonly gone: boolean;
  readonly incarnation: number;
  /**
   * Whether this node has heard the member speak for itself (membership Member.vouched); absent
   * counts as yes. Only a vouched member joins the ring: an entry a peer invented for an address
   * nobody answers at must not take buckets.
   */
  readonly vouched?: boolean;
}

export interface ClusterView {
  readonly selfId: string;
  /** Confirmed members, this node included. */
  readonly members: readonly ClusterMember[];
  /** Replicas of each key (N, before capping at the ring's size). */
  readonly replicas: number;
  /** This node knows no other member and waits for no seed: it may found a cluster of its own. */
  readonly alone?: boolean;
  /** This node waits for no seed: every member it was told of has been heard from, or timed out. */
  readonly seedsHeard?: boolean;
}

/** One bucket whose replicas a plan changes. */
export interface BucketMove {
  readonly bucket: number;
  /** The replicas before and after the plan, in preference order, each capped at its ring's size. */
  readonly from: readonly string[];
  readonly to: readonly string[];
  /** Members in `to` but not in `from`: each must receive the bucket before reads switch to `to`. */
  readonly receivers: readonly string[];
}

/** A plan's rings and the buckets it moves. */
export interface Transition {
  readonly current: Ring;
  readonly next: Ring;
  /** By bucket. */
  readonly moves: ReadonlyMap<number, BucketMove>;
}

/**
 * Leave and replace requests one state carries at most, each kind: a request stays for the life
 * of the cluster (requests merge by their highest count), so this bounds the members ever asked
 * out. Past it a new request is refused (`requestsFull`).
 */
export const requestsMax = 4096;

/** Whether a new leave or replace request would not fit in the state. */
export function requestsFull(state: RingState, id: string): boolean {
  return state.leaving[id] === undefined && Object.keys(state.leaving).length >= requestsMax
    || state.replacing[id] === undefined && Object.keys(state.replacing).length >= requestsMax;
}

function byId<T extends { readonly id: string }>(a: T, b: T): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function sortedUnique<T extends string | number>(values: readonly T[]): T[] {
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The state a node starts from when it knows no ring: `members` (itself alone, or the members it
 * saved before ring states existed) claimed afresh, at version 0. A node that never held a ring
 * starts with no claimant (the empty id), so the ring of any cluster it meets wins over its own;
 * the claimant founds its ring (`claimantStep`) once it knows it is alone. `claimant` names one
 * for a ring every starting member agrees on (the same members claimed alike).
 */
export function initialRingState(selfId: string, members: readonly RingMember[], buckets: number, claimant = ''): RingState {
  assert(members.some((m) => m.id === selfId), 'a new ring holds its own node');
  const sorted = [...members].sort(byId);
  const owners = claim(null, sorted, { buckets, spacing: claimSpacingDefault });
  const owning = new Set(owners);
  return {
    version: 0,
    claimant,
    members: sorted.filter((m) => owning.has(m.id)),
    owners,
    next: null,
    done: {},
    seenBy: [selfId],
    leaving: {},
    replacing: {},
  };
}

function compareOrder(a: RingState, b: RingState): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.claimant !== b.claimant) return a.claimant < b.claimant ? -1 : 1;
  // Two unfounded first rings (no claimant) with different owners: the larger table, so every
  // node picks the same one.
  const ownersA = a.owners.join(',');
  const ownersB = b.owners.join(',');
  return ownersA < ownersB ? -1 : ownersA > ownersB ? 1 : 0;
}

function mergeLeaving(a: RingState['leaving'], b: RingState['leaving']): Record<string, number> {
  const merged: Record<string, number> = { ...a };
  for (const [id, count] of Object.entries(b)) merged[id] = Math.max(merged[id] ?? count, count);
  return merged;
}

function mergeReplacing(a: RingState['replacing'], b: RingState['replacing']): Record<string, string> {
  const merged: Record<string, string> = { ...a };
  // Two different replacements of one member: the larger id, so every node picks the same.
  for (const [old, replacement] of Object.entries(b)) merged[old] = merged[old] === undefined || replacement > merged[old] ? replacement : merged[old];
  return merged;
}

/** The join of two views of the ring state: commutative, associative and idempotent. */
export function mergeRingStates(a: RingState, b: RingState): RingState {
  const order = compareOrder(a, b);
  const leaving = mergeLeaving(a.leaving, b.leaving);
  const replacing = mergeReplacing(a.replacing, b.replacing);
  if (order !== 0) return { ...(order > 0 ? a : b), leaving, replacing };
  const done: Record<string, number[]> = {};
  for (const id of sortedUnique([...Object.keys(a.done), ...Object.keys(b.done)])) {
    done[id] = sortedUnique([...(a.done[id] ?? []), ...(b.done[id] ?? [])]);
  }
  return { ...a, done, seenBy: sortedUnique([...a.seenBy, ...b.seenBy]), leaving, replacing };
}

/** Whether two states say the same; what decides if a merge changed anything. */
export function sameRingState(a: RingState, b: RingState): boolean {
  if (compareOrder(a, b) !== 0) return false;
  // Keys in a fixed order: two states that say the same may have learned their entries in another order.
  const sortedEntries = (map: Readonly<Record<string, unknown>>): [string, unknown][] =>
    Object.entries(map).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  const canonical = (state: RingState): string =>
    JSON.stringify([sortedEntries(state.done), sortedEntries(state.leaving), sortedEntries(state.replacing), state.seenBy]);
  return canonical(a) === canonical(b);
}

/** The state with `selfId` among those that have seen its version. */
export function observe(state: RingState, selfId: string): RingState {
  if (state.seenBy.includes(selfId)) return state;
  return { ...state, seenBy: sortedUnique([...state.seenBy, selfId]) };
}

/** The state with `buckets` received in full by `receiver` under this version's plan. */
export function markReceived(state: RingState, receiver: string, buckets: readonly number[]): RingState {
  assert(state.next !== null, 'transfers belong to a plan');
  const held = state.done[receiver] ?? [];
  const merged = sortedUnique([...held, ...buckets]);
  if (merged.length === held.length) return state;
  return { ...state, done: { ...state.done, [receiver]: merged } };
}

/** `kai leave` / `kai remove`: asks `id` to leave the ring. */
export function requestLeave(state: RingState, id: string): RingState {
  const count = state.leaving[id] ?? 0;
  if (count % 2 === 1) return state;
  return { ...state, leaving: { ...state.leaving, [id]: count + 1 } };
}

/** `kai join` of a member that was asked out: it may join again. */
export function cancelLeave(state: RingState, id: string): RingState {
  const count = state.leaving[id];
  if (count === undefined || count % 2 === 0) return state;
  return { ...state, leaving: { ...state.leaving, [id]: count + 1 } };
}

/** `kai replace old new`: `replacement` takes every bucket of `old`. */
export function requestReplace(state: RingState, old: string, replacement: string): RingState {
  assert(old !== replacement, 'a member does not replace itself');
  if (state.replacing[old] === replacement) return state;
  return { ...state, replacing: mergeReplacing(state.replacing, { [old]: replacement }) };
}

/** ringMemberIds per state: states are immutable, and the ids come from sorting every bucket's owner. */
const memberIdsOfState = new WeakMap<RingState, readonly string[]>();

/** The ring's members: owners, and planned owners while a plan runs. */
export function ringMemberIds(state: RingState): readonly string[] {
  let ids = memberIdsOfState.get(state);
  if (ids === undefined) {
    ids = sortedUnique([...state.owners, ...(state.next ?? [])]);
    memberIdsOfState.set(state, ids);
  }
  return ids;
}

/** Whether `id` is asked out of the ring (and not asked back since), or is gone from the membership. */
export function isLeaving(state: RingState, view: ClusterView, id: string): boolean {
  if (view.members.find((m) => m.id === id)?.gone) return true;
  return (state.leaving[id] ?? 0) % 2 === 1;
}

/** Leaving, or being replaced: such a member neither plans nor holds up a plan. */
function departing(state: RingState, view: ClusterView, id: string): boolean {
  return isLeaving(state, view, id) || state.replacing[id] !== undefined;
}

function isUpIn(view: ClusterView, id: string): boolean {
  return view.members.find((m) => m.id === id)?.up === true;
}

/** The member that plans: the lowest id among the ring's members that are up and staying. */
export function claimantOf(state: RingState, view: ClusterView): string | undefined {
  return ringMemberIds(state).find((id) => (id === view.selfId || isUpIn(view, id)) && !departing(state, view, id));
}

/**
 * Why the ring cannot change now, or undefined when it can: every staying member of the ring must
 * be up and have seen this version. A member that is down blocks plans until it is back or removed.
 */
export function notReady(state: RingState, view: ClusterView): string | undefined {
  for (const id of ringMemberIds(state)) {
    const up = id === view.selfId || isUpIn(view, id);
    if (!up && !departing(state, view, id)) return `${id} is down`;
    if (up && !state.seenBy.includes(id)) return `${id} has not seen ring version ${state.version}`;
  }
  return undefined;
}

function ringSizeOf(owners: readonly string[]): number {
  return new Set(owners).size;
}

/** The replicas of `bucket` in `ring`, N capped at the ring's size. */
function replicasIn(ring: Ring, bucket: number, replicas: number): readonly string[] {
  return preferenceList(ring, bucket, Math.min(replicas, ring.members.length));
}

/** The rings of the current plan and the buckets it moves; undefined when no plan runs. */
export function transitionOf(state: RingState, replicas: number): Transition | undefined {
  if (state.next === null) return undefined;
  const config = { buckets: state.owners.length };
  const current = ringFromOwners(state.members, state.owners, config);
  const next = ringFromOwners(state.members, state.next, config);
  const moves = new Map<number, BucketMove>();
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    const from = replicasIn(current, bucket, replicas);
    const to = replicasIn(next, bucket, replicas);
    const receivers = to.filter((id) => !from.includes(id));
    if (receivers.length > 0 || from.length !== to.length || from.some((id, i) => to[i] !== id)) {
      moves.set(bucket, { bucket, from, to, receivers });
    }
  }
  return { current, next, moves };
}

/** Whether reads of a moving bucket have switched to its new replicas: each has received it. */
export function hasSwitched(state: RingState, move: BucketMove): boolean {
  return move.receivers.every((receiver) => state.done[receiver]?.includes(move.bucket) === true);
}

/** Whether every bucket of the plan has switched. */
export function planComplete(state: RingState, transition: Transition): boolean {
  for (const move of transition.moves.values()) if (!hasSwitched(state, move)) return false;
  return true;
}

function memberOf(state: RingState, view: ClusterView, id: string): RingMember {
  const known = state.members.find((m) => m.id === id) ?? view.members.find((m) => m.id === id);
  assert(known !== undefined, 'a ring member is known');
  return { id: known.id, weight: known.weight, ...(known.zone ? { zone: known.zone } : {}) };
}

function newVersion(state: RingState, selfId: string, owners: readonly string[], next: readonly string[] | null, view: ClusterView): RingState {
  const ids = sortedUnique([...owners, ...(next ?? [])]);
  return {
    version: state.version + 1,
    claimant: selfId,
    members: ids.map((id) => memberOf(state, view, id)),
    owners,
    next,
    done: {},
    seenBy: [selfId],
    leaving: state.leaving,
    replacing: state.replacing,
  };
}

/** Members that should join: confirmed, vouched for, up, staying, and not yet in the ring. */
function joiners(state: RingState, view: ClusterView): ClusterMember[] {
  const inRing = new Set(ringMemberIds(state));
  return view.members.filter(
    (m) => !inRing.has(m.id) && (m.up || m.id === view.selfId) && m.vouched !== false && !m.gone && !departing(state, view, m.id),
  );
}

/** Members named to replace one still in the ring: they join by the replacement, not the claim. */
function pendingReplacements(state: RingState): string[] {
  const inRing = new Set(ringMemberIds(state));
  return Object.entries(state.replacing)
    .filter(([old]) => inRing.has(old))
    .map(([, replacement]) => replacement);
}

/** Replacements whose old member owns buckets and whose new member is up to take them. */
function readyReplacements(state: RingState, view: ClusterView): [string, string][] {
  const ready = new Set(joiners(state, view).map((m) => m.id));
  return Object.entries(state.replacing).filter(([old, replacement]) => state.owners.includes(old) && ready.has(replacement));
}

/** The planned owners: replacements first (one for one), else the claim for the staying members and the joiners. */
function plannedOwners(state: RingState, view: ClusterView): readonly string[] | undefined {
  const owners = state.owners;
  const inRing = new Set(owners);
  const replaced = readyReplacements(state, view);
  if (replaced.length > 0) {
    const substitute = new Map(replaced);
    return owners.map((id) => substitute.get(id) ?? id);
  }
  // A member being replaced keeps its buckets until its replacement is up to take them.
  const staying = [...inRing].filter((id) => !isLeaving(state, view, id));
  const incoming = joiners(state, view).filter((m) => !pendingReplacements(state).includes(m.id));
  if (incoming.length === 0 && staying.length === inRing.size) return undefined;
  const members = [...staying.map((id) => memberOf(state, view, id)), ...incoming.map((m) => memberOf(state, view, m.id))];
  if (members.length === 0) return undefined;
  return claim(owners, members, { buckets: owners.length, spacing: claimSpacingDefault });
}

/**
 * Whether this node, on its first ring, founds the cluster's ring: when it is alone; or when it
 * waits for no seed and has the lowest id of the members up. The second case is fresh nodes linked
 * before any founded a ring: a member's ring travels with its first gossip reply, which is what
 * confirms it, so every member in the view has merged its ring into this node's, and none of them
 * has founded one either. The others take the founded ring as it reaches them and join it.
 */
function mayFound(view: ClusterView): boolean {
  if (view.alone === true) return true;
  if (view.seedsHeard !== true) return false;
  return view.members.every((member) => !member.up || member.gone || member.id >= view.selfId);
}

/**
 * The claimant's step: a new version when this node is the claimant and the ring is ready, else
 * undefined. A plan whose transfers are all done becomes the ring; a plan that holds a member now
 * leaving is abandoned for a new one from the current owners (who still hold every write); with
 * no plan running, joiners, leavers and replacements make one.
 */
export function claimantStep(
  state: RingState,
  view: ClusterView,
  /** The plan's transition when the caller has it already (it is pure, so it may be cached). */
  known?: Transition,
): RingState | undefined {
  // A node alone on its first ring, with no seed to wait for, founds its cluster: its ring now
  // wins over the first ring of any fresh node that meets it, so its data is never hidden.
  if (state.claimant === '' && mayFound(view)) return newVersion(state, view.selfId, state.owners, null, view);
  if (state.claimant === '') return undefined;
  if (claimantOf(state, view) !== view.selfId) return undefined;
  if (notReady(state, view) !== undefined) return undefined;
  if (state.next !== null) {
    const transition = known ?? transitionOf(state, view.replicas);
    assert(transition !== undefined, 'a plan has a transition');
    // Members that came while no bucket has moved yet join this plan rather than wait for the next.
    const nothingMoved = Object.keys(state.done).length === 0;
    // Checked before completion: a finished plan whose members are leaving must not become the ring.
    const abandoned =
      state.next.some((id) => isLeaving(state, view, id)) ||
      readyReplacements(state, view).length > 0 ||
      (nothingMoved && joiners(state, view).some((m) => !pendingReplacements(state).includes(m.id)));
    if (!abandoned) return planComplete(state, transition) ? newVersion(state, view.selfId, state.next, null, view) : undefined;
    const restart = { ...state, next: null };
    const owners = plannedOwners(restart, view);
    return owners === undefined ? newVersion(state, view.selfId, state.owners, null, view) : newVersion(state, view.selfId, state.owners, owners, view);
  }
  const owners = plannedOwners(state, view);
  if (owners === undefined) return undefined;
  if (owners.every((id, bucket) => id === state.owners[bucket])) return undefined;
  return newVersion(state, view.selfId, state.owners, owners, view);
}

/** A member's part in the ring, as `kai status` shows it. */
export type RingRole = 'joining' | 'owner' | 'leaving' | 'outside';

export function ringRole(state: RingState, view: ClusterView, id: string): RingRole {
  const owns = state.owners.includes(id);
  const planned = state.next?.includes(id) ?? false;
  if (departing(state, view, id)) return owns || planned ? 'leaving' : 'outside';
  if (owns) return 'owner';
  if (planned) return 'joining';
  return joiners(state, view).some((m) => m.id === id) ? 'joining' : 'outside';
}

/** The number of distinct owners: the ring's size for N, R and W. */
export function ownerCount(state: RingState): number {
  return ringSizeOf(state.owners);
}

/**
 * Whether every member of the ring that is up has seen this version: until then some node may
 * still route by an older one, so transfers do not start and copies are not dropped.
 */
export function seenByAllUp(state: RingState, view: ClusterView): boolean {
  return ringMemberIds(state).every((id) => (id !== view.selfId && !isUpIn(view, id)) || state.seenBy.includes(id));
}
