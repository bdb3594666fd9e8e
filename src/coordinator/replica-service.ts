/**
 * The internal API requests about keys, answered for peers: a fetch or store on this node's
 * replica, a write forwarded for this node to coordinate, and a flush_all another node received.
 * The node mounts `handleReplicaRequest` on its transport next to the gossip handler; what peers
 * send is checked here (wire.ts, specs.ts) before it reaches the store.
 */
import { KaiError } from '../errors';
import type { RpcReply, RpcRequest } from '../rpc/messages';
import type { Coordinator } from './index';
import type { LocalReplica } from './replica';
import { siblingsMaxLimit } from './siblings';
import { outcomeToWire, type SpecKind, type SpecOf } from './specs';
import { versionsFromWire, versionsToWire, versionToWire } from './wire';

export type ReplicaRequest = Extract<RpcRequest, { readonly type: 'replicaFetch' | 'replicaStore' | 'coordinate' | 'flushAll' }>;

const replicaRequestTypes: ReadonlySet<string> = new Set<ReplicaRequest['type']>([
  'replicaFetch',
  'replicaStore',
  'coordinate',
  'flushAll',
]);

export function isReplicaRequest(request: RpcRequest): request is ReplicaRequest {
  return replicaRequestTypes.has(request.type);
}

export interface ReplicaServiceOptions {
  readonly coordinator: Coordinator;
  /** This node's replica: the coordinator's replica for its own node id. */
  readonly local: LocalReplica;
  /**
   * Applies a flush_all another node received: Dispatcher.flushUntil, which sets the deadline
   * and removes the node's data once it has come. Resolves once done (or armed, for a later one).
   */
  readonly flushUntil: (deadlineMs: number) => Promise<void>;
}

/** Versions one store request may carry: a key's siblings at the cap, plus the write. */
export const versionsPerStoreMax = siblingsMaxLimit + 1;

export class ReplicaService {
  constructor(private readonly options: ReplicaServiceOptions) {}

  /** Answers one request; an operating error is thrown as a KaiError, which the transport answers. */
  async handleReplicaRequest(request: ReplicaRequest): Promise<RpcReply> {
    const { local } = this.options;
    switch (request.type) {
      case 'replicaFetch':
        return { type: 'versions', versions: versionsToWire(local.fetchNow(request.key)) };
      case 'replicaStore': {
        if (request.versions.length > versionsPerStoreMax) {
          throw new KaiError('KAI_BAD_FRAME', `a store of ${request.versions.length} versions is over ${versionsPerStoreMax}`);
        }
        const versions = versionsFromWire(request.versions, local.valueBytesMax);
        await local.store(request.key, request.bucket, versions);
        return { type: 'stored' };
      }
      case 'coordinate':
        return this.coordinate(request.key, request.mutation);
      case 'flushAll':
        await this.options.flushUntil(request.deadlineMs);
        return { type: 'flushed' };
    }
  }

  private async coordinate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<RpcReply> {
    const applied = await this.options.coordinator.coordinate(key, spec);
    if (applied.error) throw applied.error;
    return {
      type: 'coordinated',
      result: outcomeToWire(spec.kind as K, applied.result),
      versions: versionsToWire(applied.versions),
      written: applied.written ? versionToWire(applied.written) : null,
    };
  }
}
