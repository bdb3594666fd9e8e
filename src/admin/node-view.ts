/**
 * What a node knows of itself and its cluster, gathered for the admin server: its readiness
 * (readiness.ts over the quorum availability of the buckets it serves) and the /status document.
 * The metrics read the same view, so /ready, /status and `kai_ready` agree.
 */
import { ringMemberIds, ringRole, type RingRole } from '../claimant';
import type { RingKeeper } from '../claimant/keeper';
import type { Gossip } from '../gossip';
import { isUp, seedsAwaited } from '../membership';
import { quorumAvailability, type QuorumAvailability } from '../quorum/availability';
import type { TransferProgress } from '../rpc/messages';
import type { StorageHealth } from '../storage/health';
import type { HintCount } from '../storage/sqlite';
import { readinessOf, type Readiness } from './readiness';

export interface NodeViewParts {
  readonly nodeId: string;
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  readonly gossip: Pick<Gossip, 'membership'>;
  readonly keeper: Pick<RingKeeper, 'state' | 'ring' | 'view'>;
  readonly store: { readonly serving: boolean; health(): StorageHealth; hintCounts(): HintCount[] };
  readonly transfer: { progress(): TransferProgress };
  /** Why the coordinator refuses every request for now, or undefined once it places keys. */
  readonly notReady: () => string | undefined;
}

/** One member in /status. */
export interface StatusMember {
  readonly id: string;
  readonly address: string;
  readonly status: 'up' | 'down' | 'leaving';
  /** Its part in the ring: owner, joining, leaving or outside. */
  readonly ring: RingRole;
  readonly zone: string;
  readonly weight: number;
}

/** The /status document (docs/operations.md, *Health checks*). */
export interface StatusDocument {
  readonly id: string;
  readonly ready: boolean;
  /** Why the node is not ready; absent when it is. */
  readonly notReady?: { readonly reason: string; readonly detail: string };
  readonly ring: { readonly founded: boolean; readonly version: number; readonly claimant: string; readonly changing: boolean };
  readonly members: readonly StatusMember[];
  /** Seeds given at start and not yet heard from. */
  readonly seedsAwaited: readonly string[];
  readonly quorum: {
    readonly n: number;
    readonly r: number;
    readonly w: number;
    /** N, R and W as requests use them: capped at the ring's size. */
    readonly effective: { readonly n: number; readonly r: number; readonly w: number };
  };
  readonly buckets: { readonly total: number; readonly served: number; readonly belowR: number; readonly belowW: number };
  readonly hints: {
    readonly pending: number;
    readonly bytes: number;
    readonly byTarget: readonly { readonly target: string; readonly count: number; readonly bytes: number }[];
  };
  readonly transfers: TransferProgress;
  readonly storage: StorageHealth;
}

export class NodeView {
  private stoppingNow = false;

  constructor(private readonly parts: NodeViewParts) {}

  /** From now on the node is not ready: it has begun to stop. */
  markStopping(): void {
    this.stoppingNow = true;
  }

  /** Whether a claimant has founded the ring this node routes by (its first ring has none). */
  ringFounded(): boolean {
    return this.parts.keeper.state.claimant !== '';
  }

  availability(): QuorumAvailability {
    const { nodeId, quorum, gossip, keeper, store } = this.parts;
    const membership = gossip.membership;
    // This node counts itself up while its store commits, as the coordinator does.
    const up = (memberId: string): boolean => (memberId === nodeId ? store.serving : isUp(membership, memberId));
    return quorumAvailability(keeper.ring(), quorum, nodeId, up);
  }

  readiness(availability: QuorumAvailability = this.availability()): Readiness {
    const health = this.parts.store.health();
    return readinessOf({
      stopping: this.stoppingNow,
      storageFailure: health.state === 'failed' ? (health.reason ?? 'unknown') : undefined,
      joining: this.parts.notReady(),
      ringFounded: this.ringFounded(),
      availability,
    });
  }

  status(): StatusDocument {
    const { nodeId, quorum, gossip, keeper, store, transfer } = this.parts;
    const availability = this.availability();
    const readiness = this.readiness(availability);
    const state = keeper.state;
    const view = keeper.view();
    const membership = gossip.membership;
    const inRing = new Set(ringMemberIds(state));
    const members = membership.members
      .filter((member) => member.confirmed && (member.status !== 'leaving' || inRing.has(member.id)))
      .map(
        (member): StatusMember => ({
          id: member.id,
          address: member.address,
          status: member.status,
          ring: ringRole(state, view, member.id),
          zone: member.zone,
          weight: member.weight,
        }),
      );
    const byTarget = store.hintCounts().map((hint) => ({ target: hint.target, count: hint.count, bytes: hint.bytes }));
    byTarget.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
    return {
      id: nodeId,
      ready: readiness.ready,
      ...(readiness.ready ? {} : { notReady: { reason: readiness.reason, detail: readiness.detail } }),
      ring: { founded: this.ringFounded(), version: state.version, claimant: state.claimant, changing: state.next !== null },
      members,
      seedsAwaited: seedsAwaited(membership),
      quorum: { n: quorum.n, r: quorum.r, w: quorum.w, effective: availability.quorum },
      buckets: {
        total: state.owners.length,
        served: availability.bucketsServed,
        belowR: availability.bucketsBelowR,
        belowW: availability.bucketsBelowW,
      },
      hints: {
        pending: byTarget.reduce((sum, hint) => sum + hint.count, 0),
        bytes: byTarget.reduce((sum, hint) => sum + hint.bytes, 0),
        byTarget,
      },
      transfers: transfer.progress(),
      storage: store.health(),
    };
  }
}
