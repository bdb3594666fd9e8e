/**
 * The coordinator: for each key, the ring gives the bucket and its preference list; writes are
 * decided on the first replica and sent to the others, reads gather versions from the replicas and
 * reconcile them. A request is answered once R (reads) or W (writes) replicas succeed.
 */
import type { Env } from '../env';
import { KaiError } from '../errors';
import { addFailure, addSuccess, effectiveQuorum, startQuorum, verdict, type QuorumState } from '../quorum';
import { bucketOfKey, preferenceList, type Ring } from '../ring';
import type { Version } from '../storage/record';
import { reconcile } from '../vclock';
import type { Mutation } from './mutations';
import type { Applied, Replica } from './replica';

export interface CoordinatorOptions {
  readonly nodeId: string;
  readonly env: Env;
  /** The current ring; membership changes replace it. */
  readonly ring: () => Ring;
  readonly replicaOf: (nodeId: string) => Replica;
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  readonly requestTimeoutMs: number;
}

interface Placement {
  readonly bucket: number;
  readonly replicas: readonly Replica[];
  readonly r: number;
  readonly w: number;
}

export class Coordinator {
  constructor(private readonly options: CoordinatorOptions) {}

  private place(key: Buffer): Placement {
    const ring = this.options.ring();
    const bucket = bucketOfKey(key, ring.config.buckets);
    const { n, r, w } = effectiveQuorum(this.options.quorum, ring.members.length);
    const replicas = preferenceList(ring, bucket, n).map((nodeId) => this.options.replicaOf(nodeId));
    return { bucket, replicas, r, w };
  }

  /**
   * The reconciled versions of a key, from R of its replicas. When the only replica is this node,
   * the answer is immediate (no promise), which keeps the single-node read path short.
   */
  read(key: Buffer): Promise<readonly Version[]> | readonly Version[] {
    const { replicas, r } = this.place(key);
    if (replicas.length === 1) return replicas[0].fetchNow?.(key) ?? replicas[0].fetch(key);
    return this.gather(
      replicas.map((replica) => () => replica.fetch(key)),
      r,
      'read',
    ).then((state) => reconcile(state.successes.flat()));
  }

  /**
   * Applies a mutation on the key's first replica, which orders it with its vector clock, then
   * sends the written version to the other replicas and waits until W replicas hold it.
   */
  async mutate<R>(key: Buffer, mutation: Mutation<R>): Promise<Applied<R>> {
    const { bucket, replicas, w } = this.place(key);
    const [first, ...others] = replicas;
    const applied = await first.apply(key, bucket, mutation);
    const written = applied.written;
    if (!written || others.length === 0) return applied;
    await this.gather(
      others.map((replica) => () => replica.store(key, bucket, [written])),
      w - 1,
      'write',
    );
    return applied;
  }

  /** Runs the calls in parallel and resolves once `needed` succeed; rejects when they cannot. */
  private gather<T>(calls: readonly (() => Promise<T>)[], needed: number, what: string): Promise<QuorumState<T>> {
    return new Promise((resolve, reject) => {
      let state = startQuorum<T>(calls.length, needed);
      let settled = false;
      const timer = this.options.env.after(this.options.requestTimeoutMs, () => {
        finish(new KaiError('KAI_QUORUM_UNMET', `${what} quorum ${needed} not met within timeout`));
      });
      const finish = (error?: KaiError): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        if (error) reject(error);
        else resolve(state);
      };
      const check = (): void => {
        const outcome = verdict(state);
        if (outcome === 'met') finish();
        else if (outcome === 'unmet') {
          finish(new KaiError('KAI_QUORUM_UNMET', `${what} quorum ${needed} of ${calls.length} unreachable`));
        }
      };
      check();
      for (const call of calls) {
        call().then(
          (result) => {
            state = addSuccess(state, result);
            check();
          },
          (error: unknown) => {
            state = addFailure(state, error instanceof Error ? error.message : String(error));
            check();
          },
        );
      }
    });
  }
}
