/**
 * Whether a node is ready to take client requests, decided from what it knows of itself: pure,
 * so /ready, the `kai_ready` gauge and /status say the same thing for the same reasons. A load
 * balancer or Kubernetes sends clients only to a ready node; a node that is not ready still runs
 * and still answers, with `SERVER_ERROR quorum not met` where it must.
 */
import type { QuorumAvailability } from '../quorum/availability';

/** Why a node is not ready, as /ready and /status name it; stable, for scripts and alerts. */
export type NotReadyReason = 'stopping' | 'storage_failed' | 'joining' | 'ring_not_founded' | 'quorum_unmet';

export type Readiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: NotReadyReason; readonly detail: string };

export interface ReadinessInputs {
  /** The node has begun its graceful stop: clients should go elsewhere while it drains. */
  readonly stopping: boolean;
  /** Why the store refuses writes, once it has failed for good; undefined while it commits. */
  readonly storageFailure: string | undefined;
  /** Why the coordinator refuses every request for now (seeds not yet heard from); undefined once it places keys. */
  readonly joining: string | undefined;
  /** Whether a claimant has founded the ring this node routes by. */
  readonly ringFounded: boolean;
  readonly availability: QuorumAvailability;
}

/** The first reason in the order an operator fixes them: a stop, the disk, the cluster, the quorums. */
export function readinessOf(inputs: ReadinessInputs): Readiness {
  if (inputs.stopping) return { ready: false, reason: 'stopping', detail: 'the node is stopping' };
  if (inputs.storageFailure !== undefined) {
    return { ready: false, reason: 'storage_failed', detail: `storage failed: ${inputs.storageFailure}` };
  }
  if (inputs.joining !== undefined) return { ready: false, reason: 'joining', detail: inputs.joining };
  if (!inputs.ringFounded) return { ready: false, reason: 'ring_not_founded', detail: 'no ring founded yet' };
  const { bucketsServed, bucketsBelowR, bucketsBelowW, quorum, firstShort } = inputs.availability;
  if (firstShort === undefined) return { ready: true };
  return {
    ready: false,
    reason: 'quorum_unmet',
    detail:
      `of ${bucketsServed} buckets this node serves, ${bucketsBelowR} have fewer than R=${quorum.r} and ${bucketsBelowW} ` +
      `fewer than W=${quorum.w} replicas up (bucket ${firstShort.bucket}: ${firstShort.replicasUp} up of N=${quorum.n})`,
  };
}
