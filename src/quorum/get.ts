/**
 * The pure core of a read, after riak_kv_get_core: replies from the key's replicas are added as
 * they arrive; the client is answered once R have succeeded (`response`), and the core keeps
 * listening until every replica asked has answered or the shell's timeout ends the wait. Then
 * `finalAction` says, as data, which replicas are stale or missing versions and what to send
 * them (read repair), and whether every replica answered alike.
 */
import { resolveVersions, type SiblingPolicy } from '../coordinator/siblings';
import type { Version } from '../storage/record';
import { compare, reconcile } from '../vclock';
import type { QuorumState } from './index';

export type GetState = QuorumState<readonly Version[]>;

/** The versions the replies so far reconcile to: the read's answer once R have succeeded. */
export function getResponse(state: GetState): Version[] {
  return reconcile(state.successes.flatMap((success) => success.result));
}

/** A replica to repair and the versions it lacks. */
export interface Repair {
  readonly node: string;
  readonly versions: readonly Version[];
}

export interface GetFinalAction {
  /** Replicas that answered with less than the reconciled versions, and what to send each. */
  readonly repairs: readonly Repair[];
  /** Every replica asked answered, and they all held the same versions. */
  readonly allReplicasAgree: boolean;
}

/** Whether `held` has every version of `wanted`, or one that descends from it. */
export function coversAll(held: readonly Version[], wanted: readonly Version[]): boolean {
  return wanted.every((version) =>
    held.some((mine) => {
      const order = compare(mine.clock, version.clock);
      return order === 'after' || order === 'equal';
    }),
  );
}

/**
 * What the read leaves to do once its replies are in: the versions every replica should hold
 * (the replies reconciled and resolved by the node's sibling policy, as each replica would resolve
 * them when storing), and each replica that answered without them. A replica that failed to answer
 * is not repaired: hinted handoff and anti-entropy reach it.
 */
export function getFinalAction(state: GetState, policy: SiblingPolicy): GetFinalAction {
  const merged = resolveVersions(
    state.successes.flatMap((success) => success.result),
    policy,
  ).versions;
  const repairs: Repair[] = [];
  for (const success of state.successes) {
    if (!coversAll(success.result, merged)) repairs.push({ node: success.node, versions: merged });
  }
  const everyoneAnswered = state.successes.length === state.asked.length;
  const agree = state.successes.every((success) => coversAll(success.result, merged) && coversAll(merged, success.result));
  return { repairs, allReplicasAgree: everyoneAnswered && agree };
}
