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
  readonly successes: readonly Success<T>[];
  readonly failures: readonly Failure[];
}

export type QuorumVerdict = 'pending' | 'met' | 'unmet';

export function startQuorum<T>(asked: readonly string[], needed: number): QuorumState<T> {
  return { asked, needed: Math.min(needed, asked.length), successes: [], failures: [] };
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
  const counted = state.successes.filter((success) => success.counted).length;
  if (counted >= state.needed) return 'met';
  const outstanding = state.asked.length - state.successes.length - state.failures.length;
  if (outstanding === 0 && state.successes.length >= state.needed) return 'met';
  return state.successes.length + outstanding < state.needed ? 'unmet' : 'pending';
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
