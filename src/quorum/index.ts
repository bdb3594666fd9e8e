/**
 * Quorum bookkeeping for one request, pure, after riak_kv_get_core / put_core: each replica's
 * reply is added as it arrives, and the state says when enough have succeeded, or when too many
 * failed for the quorum ever to be met. The get core (./get.ts) adds the read's final action.
 */

export interface Success<T> {
  readonly node: string;
  readonly result: T;
  /**
   * Whether the success counts toward the quorum on its own. One that does not (a stand-in that
   * holds nothing for the key knows nothing of it) counts only once every replica asked has
   * answered: it then adds to what the others said, not in place of them.
   */
  readonly counted: boolean;
}

export interface Failure {
  readonly node: string;
  readonly reason: string;
}

export interface QuorumState<T> {
  /** Replicas asked, by node id. */
  readonly asked: readonly string[];
  /** Successes needed. */
  readonly needed: number;
  /**
   * While the ring moves a bucket, a write must be met by the bucket's old replicas and by its new
   * ones alike (joint consensus): each group needs its own count of successes among its members.
   * Absent, the quorum is `needed` successes among all asked.
   */
  readonly groups?: readonly QuorumGroup[];
  readonly successes: readonly Success<T>[];
  readonly failures: readonly Failure[];
}

/** Members of one replica list and how many of them must succeed. */
export interface QuorumGroup {
  readonly members: readonly string[];
  readonly needed: number;
}

export type QuorumVerdict = 'pending' | 'met' | 'unmet';

export function startQuorum<T>(asked: readonly string[], needed: number): QuorumState<T> {
  return { asked, needed: Math.min(needed, asked.length), successes: [], failures: [] };
}

/**
 * A quorum met only when every group is: each group's members are among `asked`, and a group
 * needs at most as many successes as it has members.
 */
export function startJointQuorum<T>(asked: readonly string[], groups: readonly QuorumGroup[]): QuorumState<T> {
  const capped = groups.map((group) => {
    const members = group.members.filter((member) => asked.includes(member));
    return { members, needed: Math.min(group.needed, members.length) };
  });
  const needed = capped.reduce((most, group) => Math.max(most, group.needed), 0);
  return { asked, needed, groups: capped, successes: [], failures: [] };
}

function answered(state: QuorumState<unknown>, node: string): boolean {
  return state.successes.some((success) => success.node === node) || state.failures.some((failure) => failure.node === node);
}

/** A replica's success; a second answer from one replica changes nothing. */
export function addSuccess<T>(state: QuorumState<T>, node: string, result: T, counted = true): QuorumState<T> {
  if (answered(state, node)) return state;
  return { ...state, successes: [...state.successes, { node, result, counted }] };
}

export function addFailure<T>(state: QuorumState<T>, node: string, reason: string): QuorumState<T> {
  if (answered(state, node)) return state;
  return { ...state, failures: [...state.failures, { node, reason }] };
}

export function verdict(state: QuorumState<unknown>): QuorumVerdict {
  if (state.groups !== undefined) return jointVerdict(state, state.groups);
  return groupVerdict(state, state.asked, state.needed);
}

function jointVerdict(state: QuorumState<unknown>, groups: readonly QuorumGroup[]): QuorumVerdict {
  const verdicts = groups.map((group) => groupVerdict(state, group.members, group.needed));
  if (verdicts.includes('unmet')) return 'unmet';
  return verdicts.every((each) => each === 'met') ? 'met' : 'pending';
}

/** The verdict over `members` alone: `needed` successes among them, counted as `verdict` says. */
function groupVerdict(state: QuorumState<unknown>, members: readonly string[], needed: number): QuorumVerdict {
  const inGroup = members.length === state.asked.length ? () => true : (node: string) => members.includes(node);
  const successes = state.successes.filter((success) => inGroup(success.node));
  const failures = state.failures.filter((failure) => inGroup(failure.node)).length;
  const counted = successes.filter((success) => success.counted).length;
  if (counted >= needed) return 'met';
  const outstanding = members.length - successes.length - failures;
  if (outstanding === 0 && successes.length >= needed) return 'met';
  return successes.length + outstanding < needed ? 'unmet' : 'pending';
}

/** Whether every replica asked has answered, one way or the other. */
export function allAnswered(state: QuorumState<unknown>): boolean {
  return state.successes.length + state.failures.length >= state.asked.length;
}

/** N, R and W capped at the ring size, so a cluster smaller than N still serves. */
export function effectiveQuorum(
  settings: { readonly n: number; readonly r: number; readonly w: number },
  ringSize: number,
): { readonly n: number; readonly r: number; readonly w: number } {
  const n = Math.min(settings.n, ringSize);
  return { n, r: Math.min(settings.r, n), w: Math.min(settings.w, n) };
}
