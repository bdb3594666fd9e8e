/**
 * Quorum bookkeeping for one request, pure, after riak_kv_get_core / put_core: replies are added as
 * they arrive, and the state says when enough have succeeded, or when too many failed for the
 * quorum ever to be met.
 */

export interface QuorumState<T> {
  /** Replicas asked. */
  readonly asked: number;
  /** Successes needed. */
  readonly needed: number;
  readonly successes: readonly T[];
  readonly failures: readonly string[];
}

export type QuorumVerdict = 'pending' | 'met' | 'unmet';

export function startQuorum<T>(asked: number, needed: number): QuorumState<T> {
  return { asked, needed: Math.min(needed, asked), successes: [], failures: [] };
}

export function addSuccess<T>(state: QuorumState<T>, result: T): QuorumState<T> {
  return { ...state, successes: [...state.successes, result] };
}

export function addFailure<T>(state: QuorumState<T>, reason: string): QuorumState<T> {
  return { ...state, failures: [...state.failures, reason] };
}

export function verdict(state: QuorumState<unknown>): QuorumVerdict {
  if (state.successes.length >= state.needed) return 'met';
  const outstanding = state.asked - state.successes.length - state.failures.length;
  return state.successes.length + outstanding < state.needed ? 'unmet' : 'pending';
}

/** N, R and W capped at the ring size, so a cluster smaller than N still serves. */
export function effectiveQuorum(
  settings: { readonly n: number; readonly r: number; readonly w: number },
  ringSize: number,
): { readonly n: number; readonly r: number; readonly w: number } {
  const n = Math.min(settings.n, ringSize);
  return { n, r: Math.min(settings.r, n), w: Math.min(settings.w, n) };
}
