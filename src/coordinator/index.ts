/**
 * The coordinator: for each key, the ring gives the bucket and its preference list among the
 * members that are up. Reads gather versions from R replicas and reconcile them. A write is
 * coordinated by a node of the preference list: this node when it is in the list, else the first
 * up node of it, to which the write is forwarded as data (`coordinate`); so vector clock entries
 * name only nodes that hold the key. The coordinating node decides the write on its own replica,
 * sends the written version to the others and answers once W replicas hold it.
 */
import type { Env } from '../env';
import { KaiError } from '../errors';
import { addFailure, addSuccess, effectiveQuorum, startQuorum, verdict, type QuorumState } from '../quorum';
import { bucketOfKey, preferenceListUp, type Ring } from '../ring';
import type { Version } from '../storage/record';
import { reconcile } from '../vclock';
import { FlushDeadline } from './flush';
import type { Coordinated, Replica } from './replica';
import { defaultSiblingPolicy, resolveVersions, type SiblingPolicy } from './siblings';
import { casUniqueOf, mutationOf, type SpecKind, type SpecOf } from './specs';

export interface CoordinatorOptions {
  readonly nodeId: string;
  readonly env: Env;
  /** The current ring; membership changes replace it. */
  readonly ring: () => Ring;
  /** Whether a member takes requests now (the membership's up-view); every member when absent. */
  readonly isUp?: (nodeId: string) => boolean;
  /**
   * The replica on each member: for `nodeId`, this node's replica (one that can `apply`); for
   * the others, replicas that can `coordinate` (RemoteReplica).
   */
  readonly replicaOf: (nodeId: string) => Replica;
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  /** How long a read or write waits for its quorum. */
  readonly requestTimeoutMs: number;
  /**
   * How long a forwarded write waits for the node coordinating it, which itself waits up to
   * requestTimeoutMs for its quorum: by default twice requestTimeoutMs, room for both trips.
   */
  readonly forwardTimeoutMs?: number;
  /** How reads resolve concurrent versions; the replicas resolve writes with their own policy. */
  readonly siblings?: SiblingPolicy;
  /** Shared with the dispatcher, which sets it on flush_all; one per node. */
  readonly flushDeadline?: FlushDeadline;
  /**
   * How many nodes the cluster has as far as this node knows, counting seeds it was told about
   * but has not heard from yet; N, R and W are capped at it. By default the ring's size. A node
   * still joining thus refuses what it cannot replicate, instead of acting as a cluster of one.
   */
  readonly clusterSize?: () => number;
}

interface Placement {
  readonly bucket: number;
  /** The up members of the key's preference list, in order: at most N. */
  readonly replicas: readonly Replica[];
  readonly n: number;
  readonly r: number;
  readonly w: number;
}

/** kai's own counters, under `stats kai` (docs/protocol.md). */
export interface CoordinatorCounters {
  writesForwarded: number;
  /** Writes this node coordinated for a peer that forwarded them. */
  writesCoordinatedForPeers: number;
  /** Conditional writes that first read R replicas to know the client's context (docs/architecture.md). */
  contextReads: number;
  readQuorumUnmet: number;
  writeQuorumUnmet: number;
  /** Reads that answered more than one version. */
  readsWithSiblings: number;
  /** Siblings dropped for the cap while reconciling a read. */
  siblingsDroppedOnRead: number;
}

function unmet(detail: string): KaiError {
  return new KaiError('KAI_QUORUM_UNMET', detail);
}

export class Coordinator {
  readonly flushDeadline: FlushDeadline;
  readonly counters: CoordinatorCounters = {
    writesForwarded: 0,
    writesCoordinatedForPeers: 0,
    contextReads: 0,
    readQuorumUnmet: 0,
    writeQuorumUnmet: 0,
    readsWithSiblings: 0,
    siblingsDroppedOnRead: 0,
  };
  private readonly siblingPolicy: SiblingPolicy;

  constructor(private readonly options: CoordinatorOptions) {
    this.flushDeadline = options.flushDeadline ?? new FlushDeadline();
    this.siblingPolicy = options.siblings ?? defaultSiblingPolicy;
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** This node's replica, which applies the writes this node coordinates. */
  get local(): Replica {
    return this.options.replicaOf(this.options.nodeId);
  }

  private place(key: Buffer): Placement {
    const ring = this.options.ring();
    const bucket = bucketOfKey(key, ring.config.buckets);
    const clusterSize = Math.max(ring.members.length, this.options.clusterSize?.() ?? 0);
    const { n, r, w } = effectiveQuorum(this.options.quorum, clusterSize);
    const isUp = this.options.isUp ?? (() => true);
    // This node takes its own requests, whatever the membership says of it.
    const upOrSelf = (nodeId: string): boolean => nodeId === this.options.nodeId || isUp(nodeId);
    const replicas = preferenceListUp(ring, bucket, n, upOrSelf).map((nodeId) => this.options.replicaOf(nodeId));
    return { bucket, replicas, n, r, w };
  }

  /**
   * The reconciled versions of a key, from R of its replicas. When the only replica is this node,
   * the answer is immediate (no promise), which keeps the single-node read path short.
   */
  read(key: Buffer): Promise<readonly Version[]> | readonly Version[] {
    const placement = this.place(key);
    const { replicas, r, n } = placement;
    if (replicas.length === 1 && r === 1) {
      const only = replicas[0];
      const held = only.fetchNow?.(key);
      if (held) return held.length > 1 ? this.resolveRead(held) : held;
      return only.fetch(key).then((versions) => this.resolveRead(versions));
    }
    return this.gatherVersions(key, placement, `read ${r} of ${n}`).then(
      (versions) => this.resolveRead(versions),
      (error: unknown) => {
        this.counters.readQuorumUnmet++;
        throw error;
      },
    );
  }

  /** Versions from R of the placement's replicas, reconciled; KAI_QUORUM_UNMET when R cannot answer. */
  private async gatherVersions(key: Buffer, placement: Placement, what: string): Promise<Version[]> {
    const { replicas, r } = placement;
    if (replicas.length < r) throw unmet(`${what}: ${replicas.length} up`);
    const state = await this.gather(
      replicas.map((replica) => () => replica.fetch(key)),
      r,
      (answered) => `${what}: ${answered} answered`,
    );
    return reconcile(state.successes.flat());
  }

  private resolveRead(versions: readonly Version[]): readonly Version[] {
    const resolved = resolveVersions(versions, this.siblingPolicy);
    this.counters.siblingsDroppedOnRead += resolved.dropped;
    if (resolved.versions.length > 1) this.counters.readsWithSiblings++;
    return resolved.versions;
  }

  /**
   * Runs a write described by `spec`: here when this node is in the key's preference list (of up
   * members), else forwarded to the first node of it. A forwarded write is not retried on another
   * node: it may have been applied before its answer was lost, and an incr must not run twice.
   */
  async mutate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<Coordinated<K>> {
    const placement = this.place(key);
    const { replicas, w, n } = placement;
    if (replicas.some((replica) => replica.nodeId === this.options.nodeId)) return this.coordinateHere(key, spec, placement);
    const first = replicas[0];
    if (!first) {
      this.counters.writeQuorumUnmet++;
      throw unmet(`write ${w} of ${n}: 0 up`);
    }
    if (!first.coordinate) throw new Error(`assertion failed: the replica of ${first.nodeId} cannot coordinate`);
    this.counters.writesForwarded++;
    const timeoutMs = this.options.forwardTimeoutMs ?? 2 * this.options.requestTimeoutMs;
    try {
      return await first.coordinate(key, spec, timeoutMs);
    } catch (error) {
      if (error instanceof KaiError && error.code === 'KAI_PEER_UNREACHABLE') {
        this.counters.writeQuorumUnmet++;
        throw unmet(`write ${w} of ${n}: coordinator ${first.nodeId} unreachable`);
      }
      throw error;
    }
  }

  /** Coordinates a write a peer forwarded: never forwarded again, so a write cannot loop. */
  coordinate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<Coordinated<K>> {
    this.counters.writesCoordinatedForPeers++;
    return this.coordinateHere(key, spec, this.place(key));
  }

  /**
   * Applies the write on this node's replica, then sends the written version to the other up
   * replicas and waits until W replicas (this one included) hold it. Fewer than W up replicas
   * fail the write before anything is written.
   */
  private async coordinateHere<K extends SpecKind>(key: Buffer, spec: SpecOf<K>, first: Placement): Promise<Coordinated<K>> {
    const local = this.local;
    if (!local.apply) throw new Error(`assertion failed: the replica of ${this.options.nodeId} cannot apply`);
    let placement = first;
    let others = this.replicasToWrite(first);
    if (casUniqueOf(spec) !== 0n && others.length > 0) {
      await this.learnContext(key, first);
      // The context read waited on peers: membership may have moved meanwhile, so place again.
      placement = this.place(key);
      if (!placement.replicas.some((replica) => replica.nodeId === this.options.nodeId)) {
        this.counters.writeQuorumUnmet++;
        throw unmet(`write ${placement.w} of ${placement.n}: the key's replicas changed during the write`);
      }
      others = this.replicasToWrite(placement);
    }
    const { bucket, w, n } = placement;
    const applied = await local.apply(key, bucket, mutationOf(spec, this.flushDeadline.visible));
    const written = applied.written;
    if (!written || others.length === 0) return applied;
    try {
      await this.gather(
        others.map((replica) => () => replica.store(key, bucket, [written])),
        w - 1,
        (acknowledged) => `write ${w} of ${n}: ${acknowledged + 1} acknowledged`,
      );
    } catch (error) {
      this.counters.writeQuorumUnmet++;
      throw error;
    }
    return applied;
  }

  /** The replicas other than this node that a write goes to; refuses when W cannot be had. */
  private replicasToWrite(placement: Placement): readonly Replica[] {
    const { replicas, w, n } = placement;
    const others = replicas.filter((replica) => replica.nodeId !== this.options.nodeId);
    const holders = others.length + 1;
    if (holders < w) {
      this.counters.writeQuorumUnmet++;
      throw unmet(`write ${w} of ${n}: ${holders} up`);
    }
    return others;
  }

  /**
   * A conditional write names the context the client read through R replicas (its cas unique),
   * which this node's replica alone may not hold: siblings written on the other side of a
   * partition reach a read, not necessarily this replica. So the coordinator reads R replicas
   * first and merges what they hold into its own; the write then compares against the context a
   * read sees, and its clock supersedes every sibling the client saw (docs/architecture.md).
   */
  private async learnContext(key: Buffer, placement: Placement): Promise<void> {
    this.counters.contextReads++;
    let versions: Version[];
    try {
      versions = await this.gatherVersions(key, placement, `context read ${placement.r} of ${placement.n}`);
    } catch (error) {
      this.counters.writeQuorumUnmet++;
      throw error;
    }
    if (versions.length > 0) await this.local.store(key, placement.bucket, versions);
  }

  /**
   * Runs the calls in parallel and resolves once `needed` succeed; rejects with KAI_QUORUM_UNMET,
   * its detail from `describe(successes)`, when they cannot or when the timeout passes first.
   */
  private gather<T>(
    calls: readonly (() => Promise<T>)[],
    needed: number,
    describe: (successes: number) => string,
  ): Promise<QuorumState<T>> {
    return new Promise((resolve, reject) => {
      let state = startQuorum<T>(calls.length, needed);
      let settled = false;
      const timer = this.options.env.after(this.options.requestTimeoutMs, () => {
        finish(unmet(`${describe(state.successes.length)} within ${this.options.requestTimeoutMs} ms`));
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
        else if (outcome === 'unmet') finish(unmet(describe(state.successes.length)));
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

  /** kai's own counters for `stats kai`, with the local replica's sibling drops. */
  statistics(): ReadonlyArray<readonly [string, string]> {
    const { counters } = this;
    const local = this.local as Replica & { readonly siblingsDropped?: number };
    const rows: [string, number | string][] = [
      ['conflict_resolution', this.siblingPolicy.conflictResolution],
      ['siblings_max', this.siblingPolicy.siblingsMax],
      ['siblings_dropped', (local.siblingsDropped ?? 0) + counters.siblingsDroppedOnRead],
      ['reads_with_siblings', counters.readsWithSiblings],
      ['writes_forwarded', counters.writesForwarded],
      ['writes_coordinated_for_peers', counters.writesCoordinatedForPeers],
      ['context_reads', counters.contextReads],
      ['read_quorum_unmet', counters.readQuorumUnmet],
      ['write_quorum_unmet', counters.writeQuorumUnmet],
    ];
    return rows.map(([name, value]) => [name, String(value)]);
  }
}
