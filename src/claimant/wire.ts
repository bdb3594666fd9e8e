/**
 * The ring state as gossip carries it and a node saves it: owners as indexes into the member list,
 * so 1024 buckets take about a kilobyte; and the check of one that came from a peer or from disk,
 * which is input until it passes.
 */
import { memberIdLengthMax, memberWeightMax, membersMax, zoneLengthMax } from '../membership';
import type { RingMember } from '../ring';
import { requestsMax, type RingState } from './index';

export interface WireRingState {
  readonly version: number;
  readonly claimant: string;
  readonly members: readonly (readonly [id: string, weight: number, zone: string])[];
  readonly owners: readonly number[];
  readonly next: readonly number[] | null;
  readonly done: readonly (readonly [id: string, buckets: readonly number[]])[];
  readonly seenBy: readonly string[];
  readonly leaving: readonly (readonly [id: string, count: number])[];
  readonly replacing: readonly (readonly [old: string, replacement: string])[];
}

export function ringStateToWire(state: RingState): WireRingState {
  const index = new Map(state.members.map((m, i) => [m.id, i]));
  const indexOf = (id: string): number => index.get(id)!;
  return {
    version: state.version,
    claimant: state.claimant,
    members: state.members.map((m) => [m.id, m.weight, m.zone ?? ''] as const),
    owners: state.owners.map(indexOf),
    next: state.next === null ? null : state.next.map(indexOf),
    done: Object.entries(state.done),
    seenBy: state.seenBy,
    leaving: Object.entries(state.leaving),
    replacing: Object.entries(state.replacing),
  };
}

/**
 * The highest ring version, and leave count, a state may carry. Each plan and each finished plan
 * raises the version by one, and each leave or join request a member's count: 2^47 changes is more
 * than any cluster makes, and one more never leaves the exact integers.
 */
export const ringCountMax = 2 ** 47;

function isBoundedCount(value: unknown): value is number {
  return isCount(value) && value <= ringCountMax;
}

export type RingStateResult = { readonly ok: true; readonly state: RingState } | { readonly ok: false; readonly reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= memberIdLengthMax;
}

function isPair(value: unknown): value is readonly [unknown, unknown] {
  return Array.isArray(value) && value.length === 2;
}

function ownersFrom(value: unknown, members: readonly RingMember[], buckets: number): string[] | string {
  if (!Array.isArray(value) || value.length !== buckets) return `not one owner for each of ${buckets} buckets`;
  const owners: string[] = [];
  for (const index of value) {
    if (!isCount(index) || index >= members.length) return 'an owner that is not a member';
    owners.push(members[index].id);
  }
  return owners;
}

function membersFrom(value: unknown): RingMember[] | string {
  if (!Array.isArray(value) || value.length === 0 || value.length > membersMax) return 'members';
  const members: RingMember[] = [];
  for (const item of value) {
    if (!Array.isArray(item) || item.length !== 3) return 'a member is not [id, weight, zone]';
    const [id, weight, zone] = item as unknown[];
    if (!isId(id)) return 'a member id';
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0 || weight > memberWeightMax) return 'a member weight';
    if (typeof zone !== 'string' || zone.length > zoneLengthMax) return 'a member zone';
    if (members.length > 0 && members[members.length - 1].id >= id) return 'members are not sorted and distinct';
    members.push(zone === '' ? { id, weight } : { id, weight, zone });
  }
  return members;
}

function doneFrom(value: unknown, buckets: number): Record<string, number[]> | string {
  if (!Array.isArray(value) || value.length > membersMax) return 'done';
  const done: Record<string, number[]> = {};
  for (const entry of value) {
    if (!isPair(entry) || !isId(entry[0]) || !Array.isArray(entry[1]) || entry[1].length > buckets) return 'a done entry';
    const list = entry[1] as unknown[];
    if (!list.every((bucket, i) => isCount(bucket) && bucket < buckets && (i === 0 || bucket > (list[i - 1] as number)))) {
      return 'done buckets are not sorted, distinct and in range';
    }
    done[entry[0]] = list as number[];
  }
  return done;
}

function pairsFrom<T>(value: unknown, second: (item: unknown) => item is T): Record<string, T> | string {
  if (!Array.isArray(value) || value.length > requestsMax) return 'requests';
  const pairs: Record<string, T> = {};
  for (const entry of value) {
    if (!isPair(entry) || !isId(entry[0]) || !second(entry[1])) return 'a request';
    pairs[entry[0]] = entry[1];
  }
  return pairs;
}

/** Validates a ring state from a peer or from disk against this node's bucket count. */
export function ringStateFromWire(value: unknown, buckets: number): RingStateResult {
  const fail = (reason: string): RingStateResult => ({ ok: false, reason: `ring state: ${reason}` });
  if (!isRecord(value)) return fail('not a map');
  if (!isBoundedCount(value.version) || !isId(value.claimant)) return fail('version or claimant');
  const members = membersFrom(value.members);
  if (typeof members === 'string') return fail(members);
  const owners = ownersFrom(value.owners, members, buckets);
  if (typeof owners === 'string') return fail(owners);
  const next = value.next === null ? null : ownersFrom(value.next, members, buckets);
  if (typeof next === 'string') return fail(`planned ${next}`);
  const done = doneFrom(value.done, buckets);
  if (typeof done === 'string') return fail(done);
  if (!Array.isArray(value.seenBy) || value.seenBy.length > membersMax || !value.seenBy.every(isId)) return fail('seen by');
  const leaving = pairsFrom(value.leaving, isBoundedCount);
  if (typeof leaving === 'string') return fail(leaving);
  const replacing = pairsFrom(value.replacing, isId);
  if (typeof replacing === 'string') return fail(replacing);
  if (Object.entries(replacing).some(([old, replacement]) => old === replacement)) return fail('a member replacing itself');
  const owning = new Set([...owners, ...(next ?? [])]);
  if (owning.size !== members.length) return fail('a member that owns nothing');
  return {
    ok: true,
    state: {
      version: value.version,
      claimant: value.claimant,
      members,
      owners,
      next,
      done,
      seenBy: [...new Set(value.seenBy as string[])].sort(),
      leaving,
      replacing,
    },
  };
}
