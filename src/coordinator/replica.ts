/**
 * A replica of a key: where the coordinator reads versions from and writes them to. The local
 * replica works on this node's store; remote replicas (over the internal API) share the interface.
 */
import type { Env } from '../env';
import type { KaiError } from '../errors';
import type { ReplicaStore } from '../storage';
import type { Version } from '../storage/record';
import { increment, merge, prune, reconcile } from '../vclock';
import type { Mutation } from './mutations';

/**
 * What a mutation did on the replica that applied it: the client's result, or the operating error
 * the mutation decided on instead (nothing is written then).
 */
export type Applied<R> = {
  /** Every version the replica holds after the mutation. */
  readonly versions: readonly Version[];
} & (
  | {
      readonly result: R;
      readonly error?: undefined;
      /** The version the mutation wrote, to be sent to the other replicas. */
      readonly written: Version | undefined;
    }
  | { readonly result?: undefined; readonly error: KaiError; readonly written: undefined }
);

export interface Replica {
  readonly nodeId: string;
  /** Every version held for the key: siblings, tombstones and expired ones alike. */
  fetch(key: Buffer): Promise<readonly Version[]>;
  /** The same, answered at once; only a replica on this node can. */
  fetchNow?(key: Buffer): readonly Version[];
  /** Reads, decides and writes atomically on this replica; acts as the write's coordinator. */
  apply<R>(key: Buffer, bucket: number, mutation: Mutation<R>): Promise<Applied<R>>;
  /** Merges versions written elsewhere into what the replica holds. */
  store(key: Buffer, bucket: number, versions: readonly Version[]): Promise<void>;
}

export class LocalReplica implements Replica {
  constructor(
    readonly nodeId: string,
    private readonly storage: ReplicaStore,
    private readonly env: Env,
    private readonly valueBytesMax: number,
  ) {}

  /** Synchronous read for the coordinator's fast path. */
  fetchNow(key: Buffer): readonly Version[] {
    return this.storage.read(key)?.versions ?? [];
  }

  fetch(key: Buffer): Promise<readonly Version[]> {
    return Promise.resolve(this.fetchNow(key));
  }

  async apply<R>(key: Buffer, bucket: number, mutation: Mutation<R>): Promise<Applied<R>> {
    // Read, decide and queue the write in one synchronous step, so no other request interleaves.
    const held = this.fetchNow(key);
    const nowMs = this.env.nowMs();
    const decision = mutation(held, { nowMs, valueBytesMax: this.valueBytesMax });
    if (decision.error) return { error: decision.error, versions: held, written: undefined };
    if (!decision.write) return { result: decision.result, versions: held, written: undefined };
    const clock = prune(increment(merge(held.map((v) => v.clock)), this.nodeId, nowMs), nowMs);
    const written: Version = { ...decision.write, clock, writtenAtMs: nowMs };
    const versions = reconcile([...held, written]);
    await this.storage.write({ key, bucket, versions });
    return { result: decision.result, versions, written };
  }

  async store(key: Buffer, bucket: number, incoming: readonly Version[]): Promise<void> {
    const versions = reconcile([...this.fetchNow(key), ...incoming]);
    await this.storage.write({ key, bucket, versions });
  }
}
