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
import { effectiveQuorum, type QuorumState } from '../quorum';
import { getFinalAction, getResponse } from '../quorum/get';
import { annotatedPreferenceList, bucketOfKey, type Ring } from '../ring';
import type { MutationSpec } from '../rpc/messages';
import type { Version } from '../storage/record';
import { FlushDeadline } from './flush';
import { gather, type GatherOptions, type ReplicaCall } from './gather';
import { ReadRepairs } from './read-repair';
import type { Coordinated, Replica } from './replica';
import { defaultSiblingPolicy, resolveVersions, type SiblingPolicy } from './siblings';
import { casUniqueOf, mutationOf, type SpecKind, type SpecOf } from './specs';
import { isDigestOf } from './wire';

export interface CoordinatorOptions {
  readonly nodeId: string;
  readonly env: Env;
  /** The current ring; ring changes replace it. */
  readonly ring: () => Ring;
  /**
   * Whether the ring is moving `bucket` to other replicas (src/claimant): writes then go to the
   * old replicas and the new ones, met by each list; reads go to the new ones once they hold it.
   */
  readonly moving?: (bucket: number) => MovingBucket | undefined;
  /** Whether a member takes requests now (the membership's up-view); every member when absent. */
  readonly isUp?: (nodeId: string) => boolean;
  /**
   * Whether this node's own replica takes requests: false once its storage has failed, and the
   * node then coordinates around itself as every peer does. True when absent.
   */
  readonly localServes?: () => boolean;
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
   * Why this node cannot place keys yet, or undefined when it can: a node that has not heard from
   * a seed it was given does not know the whole ring, and keys it placed now could land on nodes
   * that are not their replicas. Requests are refused meanwhile.
   */
  readonly notReady?: () => string | undefined;
  /** Read repairs started per second at most (read-repair.ts). */
  readonly readRepairsPerSecond?: number;
  /** Told how long each quorum took to be met or given up on (the metrics); none when absent. */
  readonly quorumWaits?: QuorumWaitTimer;
}

/** What a quorum waited for: a read, a write's acknowledgements, or the read a write decides on. */
export type QuorumWaitKind = 'read' | 'write' | 'context_read';

/** Where the coordinator reports its quorum waits, by a monotonic clock of its own (src/metrics). */
export interface QuorumWaitTimer {
  start(): number;
  record(kind: QuorumWaitKind, outcome: 'met' | 'unmet', startedAtMs: number): void;
}

/** A bucket on its way to other replicas: the ring it goes to, and whether reads switched to it. */
export interface MovingBucket {
  readonly next: Ring;
  readonly switched: boolean;
}

/** A replica a request goes to, with the primary it stands in for when it is a fallback. */
export interface Target {
  readonly replica: Replica;
  readonly hintFor?: string;
}

interface ListPlacement {
  readonly targets: readonly Target[];
  readonly n: number;
  readonly r: number;
  readonly w: number;
}

interface Placement {
  readonly bucket: number;
  /**
   * The first N up members of the key's extended preference list, in order: the primaries that
   * are up, and fallbacks (with their hint) in place of those that are down (sloppy quorum).
   * Reads go to these; while the bucket moves, those of the list reads use (old, then new).
   */
  readonly targets: readonly Target[];
  readonly n: number;
  readonly r: number;
  readonly w: number;
  /** Where writes go: `targets`, and while the bucket moves the other list's targets too. */
  readonly writeTargets: readonly Target[];
  /** While the bucket moves: each list's targets, each of which must meet its own W. */
  readonly writeGroups?: readonly { readonly nodes: readonly string[]; readonly w: number }[];
}

/** A read's reconciled versions and the replicas whose answers it reconciled. */
export interface ReadResult {
  readonly versions: readonly Version[];
  readonly answeredBy: readonly string[];
}

/** kai's own counters, under `stats kai` (docs/protocol.md). */
export interface CoordinatorCounters {
  writesForwarded: number;
  /** Writes this node coordinated for a peer that forwarded them. */
  writesCoordinatedForPeers: number;
  /** Writes that first read the key's other replicas to decide on what a read would see (docs/architecture.md). */
  contextReads: number;
  readQuorumUnmet: number;
  writeQuorumUnmet: number;
  /** Reads that answered more than one version. */
  readsWithSiblings: number;
  /** Siblings dropped for the cap while reconciling a read. */
  siblingsDroppedOnRead: number;
  /** Replicas whose digest named a version the values read lacked, so their values were fetched too. */
  digestMismatches: number;
}

function unmet(detail: string): KaiError {
  return new KaiError('KAI_QUORUM_UNMET', detail);
}

/**
 * Whether a write's answer depends on whether the key is there: every write but a plain set,
 * which stores whatever the replicas hold.
 */
function decidesOnPresence(spec: MutationSpec): boolean {
  return spec.kind !== 'store' || spec.mode !== 'set';
}

/** An mg that may tell its client it won the right to recache the key (coordinator/meta-mutations.ts). */
function handsOutRecache(spec: MutationSpec): boolean {
  return spec.kind === 'fetch' && spec.withoutClaim !== true;
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
    digestMismatches: 0,
  };
  readonly readRepairs: ReadRepairs;
  private readonly siblingPolicy: SiblingPolicy;

  constructor(private readonly options: CoordinatorOptions) {
    this.flushDeadline = options.flushDeadline ?? new FlushDeadline();
    this.siblingPolicy = options.siblings ?? defaultSiblingPolicy;
    this.readRepairs = new ReadRepairs(options.env, options.readRepairsPerSecond);
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** This node's replica, which applies the writes this node coordinates. */
  get local(): Replica {
    return this.options.replicaOf(this.options.nodeId);
  }

  private place(key: Buffer): Placement {
    const notReady = this.options.notReady?.();
    if (notReady !== undefined) throw unmet(notReady);
    const ring = this.options.ring();
    const bucket = bucketOfKey(key, ring.config.buckets);
    const current = this.listIn(ring, bucket);
    const moving = this.options.moving?.(bucket);
    if (moving === undefined) return { bucket, ...current, writeTargets: current.targets };
    const next = this.listIn(moving.next, bucket);
    const read = moving.switched ? next : current;
    const other = moving.switched ? current : next;
    const readNodes = new Set(read.targets.map((target) => target.replica.nodeId));
    const writeTargets = [...read.targets, ...other.targets.filter((target) => !readNodes.has(target.replica.nodeId))];
    const nodesOf = (list: ListPlacement) => list.targets.map((target) => target.replica.nodeId);
    return {
      bucket,
      ...read,
      writeTargets,
      writeGroups: [
        { nodes: nodesOf(current), w: current.w },
        { nodes: nodesOf(next), w: next.w },
      ],
    };
  }

  /** The targets of `bucket` in `ring`, with N, R and W capped at the ring's size. */
  private listIn(ring: Ring, bucket: number): ListPlacement {
    const { n, r, w } = effectiveQuorum(this.options.quorum, ring.members.length);
    const isUp = this.options.isUp ?? (() => true);
    // This node takes its own requests, whatever the membership says of it, while its store serves.
    const localServes = this.options.localServes ?? (() => true);
    const upOrSelf = (nodeId: string): boolean => (nodeId === this.options.nodeId ? localServes() : isUp(nodeId));
    const targets = annotatedPreferenceList(ring, bucket, n, upOrSelf).targets.map(
      (target): Target => ({
        replica: this.options.replicaOf(target.node),
        ...(target.primary ? {} : { hintFor: target.standsInFor }),
      }),
    );
    return { targets, n, r, w };
  }

  /** Whether this node is one of the placement's write targets, and for whom it stands in if a fallback. */
  private localTarget(placement: Placement): Target | undefined {
    return placement.writeTargets.find((target) => target.replica.nodeId === this.options.nodeId);
  }

  /**
   * The reconciled versions of a key, from R of its replicas. When the only replica is this node,
   * the answer is immediate (no promise), which keeps the single-node read path short.
   */
  read(key: Buffer): Promise<readonly Version[]> | readonly Version[] {
    const placement = this.place(key);
    const { targets, r } = placement;
    if (targets.length === 1 && r === 1) {
      const only = targets[0].replica;
      const held = only.fetchNow?.(key);
      if (held) return held.length > 1 ? this.resolveRead(held) : held;
      return only.fetch(key).then((versions) => this.resolveRead(versions));
    }
    return this.readWithReplicas(key, placement).then((result) => result.versions);
  }

  /** A read through R replicas, with which replicas answered: what the simulation's checker needs. */
  async readWithReplicas(key: Buffer, placement: Placement = this.place(key)): Promise<ReadResult> {
    try {
      const answered = await this.gatherVersions(key, placement, 'read', `read ${placement.r} of ${placement.n}`);
      return { versions: this.resolveRead(answered.versions), answeredBy: answered.answeredBy };
    } catch (error) {
      this.counters.readQuorumUnmet++;
      throw error;
    }
  }

  /**
   * Versions from `needed` (by default R) of the placement's targets, reconciled;
   * KAI_QUORUM_UNMET when they cannot answer. Every target is asked; once all have answered (or
   * the request timeout has passed) the read's final action repairs those that answered with less
   * than the others. A stand-in that holds nothing for the key does not count toward the quorum
   * until every target has answered: it knows nothing of writes made before it stood in, so it
   * must not outvote a primary that holds them.
   */
  private async gatherVersions(
    key: Buffer,
    placement: Placement,
    kind: QuorumWaitKind,
    what: string,
    needed = placement.r,
    waitForAll = false,
  ): Promise<ReadResult> {
    const { targets, bucket } = placement;
    if (targets.length < needed) throw unmet(`${what}: ${targets.length} up`);
    const byNode = new Map(targets.map((target) => [target.replica.nodeId, target]));
    // One replica sends the values: this node's own when it is one of them, which costs no trip.
    const full = targets.find((target) => target.replica.nodeId === this.options.nodeId) ?? targets[0];
    let fullAnswer: Promise<readonly Version[]> | undefined;
    const fullRead = (): Promise<readonly Version[]> => (fullAnswer ??= full.replica.fetch(key));
    const state = await this.timedGather(
      kind,
      targets.map((target) => ({
        node: target.replica.nodeId,
        call: target === full ? fullRead : () => this.digestRead(key, target.replica, fullRead()),
        counts: (versions: readonly Version[]) => target.hintFor === undefined || versions.length > 0,
      })),
      {
        env: this.options.env,
        timeoutMs: this.options.requestTimeoutMs,
        needed,
        describe: (answered) => `${what}: ${answered} answered`,
        waitForAll,
        onFinal: (final) => {
          const repairs = getFinalAction(final, this.siblingPolicy).repairs.map((repair) => {
            const target = byNode.get(repair.node)!;
            return { replica: target.replica, versions: repair.versions, hintFor: target.hintFor };
          });
          if (repairs.length > 0) this.readRepairs.repair(key, bucket, repairs);
        },
      },
    );
    return { versions: getResponse(state), answeredBy: state.successes.map((success) => success.node) };
  }

  /** `gather`, with the time its quorum took told to the quorum wait timer. */
  private async timedGather<T>(kind: QuorumWaitKind, calls: readonly ReplicaCall<T>[], options: GatherOptions<T>): Promise<QuorumState<T>> {
    const timer = this.options.quorumWaits;
    if (timer === undefined) return gather(calls, options);
    const startedAtMs = timer.start();
    try {
      const state = await gather(calls, options);
      timer.record(kind, 'met', startedAtMs);
      return state;
    } catch (error) {
      timer.record(kind, 'unmet', startedAtMs);
      throw error;
    }
  }

  /**
   * A digest read (Cassandra's answer to the incast of N replicas sending one value): `replica`
   * sends only what identifies its versions, which are matched with the versions the replica that
   * sent values answered. Only when it holds a version they lack, or they failed, are its values
   * fetched. Its answer is then what it holds, as a fetch would say, so the quorum and the read
   * repair decide as they would on values.
   */
  private async digestRead(key: Buffer, replica: Replica, full: Promise<readonly Version[]>): Promise<readonly Version[]> {
    const [digests, values] = await Promise.all([replica.fetchDigests(key), full.catch(() => undefined)]);
    if (values !== undefined) {
      const matched: Version[] = [];
      for (const digest of digests) {
        const version = values.find((candidate) => isDigestOf(candidate, digest));
        if (version === undefined) break;
        matched.push(version);
      }
      if (matched.length === digests.length) return matched;
    }
    this.counters.digestMismatches++;
    return replica.fetch(key);
  }

  private resolveRead(versions: readonly Version[]): readonly Version[] {
    const resolved = resolveVersions(versions, this.siblingPolicy);
    this.counters.siblingsDroppedOnRead += resolved.dropped;
    if (resolved.versions.length > 1) this.counters.readsWithSiblings++;
    return resolved.versions;
  }

  /**
   * Runs a write described by `spec`: here when this node is in the key's preference list (of up
   * members), else forwarded to the first node of it. A forwarded write is retried on the next node
   * only when it never reached the first: one that may have been applied before its answer was
   * lost is not, as an incr must not run twice.
   */
  async mutate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<Coordinated<K>> {
    const placement = this.place(key);
    const { targets, w, n } = placement;
    const local = this.localTarget(placement);
    // A write that hands out a recache decides on one node, the key's first up replica, so two
    // clients asking through two replicas at once cannot both win.
    const decidedByFirst = handsOutRecache(spec) && targets.length > 0 && targets[0].replica.nodeId !== this.options.nodeId;
    if (local && !decidedByFirst) return this.coordinateHere(key, spec, placement);
    if (targets.length === 0) {
      this.counters.writeQuorumUnmet++;
      throw unmet(`write ${w} of ${n}: 0 up`);
    }
    this.counters.writesForwarded++;
    const timeoutMs = this.options.forwardTimeoutMs ?? 2 * this.options.requestTimeoutMs;
    // The next target is tried only when the write never reached the one before (its connection
    // was refused): one that may have arrived is not sent again, so an incr never runs twice.
    for (const target of targets) {
      const replica = target.replica;
      if (!replica.coordinate) throw new Error(`assertion failed: the replica of ${replica.nodeId} cannot coordinate`);
      try {
        return await replica.coordinate(key, spec, timeoutMs);
      } catch (error) {
        if (!(error instanceof KaiError) || error.code !== 'KAI_PEER_UNREACHABLE') throw error;
        if (error.undelivered && target !== targets[targets.length - 1]) continue;
        this.counters.writeQuorumUnmet++;
        throw unmet(`write ${w} of ${n}: coordinator ${replica.nodeId} unreachable`);
      }
    }
    throw new Error('assertion failed: a forwarded write returns or throws');
  }

  /**
   * Coordinates a write a peer forwarded. Never forwarded again, so a write cannot loop; and
   * refused when this node is not one of the key's replicas by its own view (the two nodes' views
   * of membership differ): it must not count itself toward W for a key it does not replicate.
   */
  async coordinate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>): Promise<Coordinated<K>> {
    const placement = this.place(key);
    if (!this.localTarget(placement)) {
      this.counters.writeQuorumUnmet++;
      throw unmet(`write ${placement.w} of ${placement.n}: forwarded to ${this.options.nodeId}, not a replica of the key in its view`);
    }
    this.counters.writesCoordinatedForPeers++;
    return this.coordinateHere(key, spec, placement);
  }

  /**
   * Applies the write on this node's replica, then sends the written version to the other
   * targets (fallbacks with their hint) and waits until W replicas (this one included) hold it.
   * Fewer than W up replicas fail the write before anything is written.
   */
  private async coordinateHere<K extends SpecKind>(key: Buffer, spec: SpecOf<K>, first: Placement): Promise<Coordinated<K>> {
    const local = this.local;
    if (!local.apply) throw new Error(`assertion failed: the replica of ${this.options.nodeId} cannot apply`);
    let placement = first;
    let others = this.targetsToWrite(first);
    if (others.length > 0) {
      await this.learnContext(key, first, casUniqueOf(spec) !== 0n, decidesOnPresence(spec));
      // The context read waited on peers: membership may have moved meanwhile, so place again.
      placement = this.place(key);
      if (!this.localTarget(placement)) {
        this.counters.writeQuorumUnmet++;
        throw unmet(`write ${placement.w} of ${placement.n}: the key's replicas changed during the write`);
      }
      others = this.targetsToWrite(placement);
    }
    const { bucket, w, n } = placement;
    const hintFor = this.localTarget(placement)?.hintFor;
    const applied = await local.apply(key, bucket, mutationOf(spec, this.flushDeadline.visible), hintFor);
    const written = applied.written;
    if (!written || others.length === 0) return { ...applied, acknowledgedBy: [this.options.nodeId] };
    try {
      const self = this.options.nodeId;
      const state = await this.timedGather(
        'write',
        others.map((target) => ({
          node: target.replica.nodeId,
          call: () => target.replica.store(key, bucket, [written], target.hintFor),
        })),
        {
          env: this.options.env,
          timeoutMs: this.options.requestTimeoutMs,
          needed: w - 1,
          // This node's own copy counts toward each list it is in.
          groups: placement.writeGroups?.map((group) => ({
            members: group.nodes.filter((node) => node !== self),
            needed: group.w - (group.nodes.includes(self) ? 1 : 0),
          })),
          describe: (acknowledged) => `write ${w} of ${n}: ${acknowledged + 1} acknowledged`,
        },
      );
      return { ...applied, acknowledgedBy: [this.options.nodeId, ...state.successes.map((success) => success.node)] };
    } catch (error) {
      this.counters.writeQuorumUnmet++;
      throw error;
    }
  }

  /** The targets other than this node that a write goes to; refuses when W cannot be had. */
  private targetsToWrite(placement: Placement): readonly Target[] {
    const { writeTargets, w, n } = placement;
    const others = writeTargets.filter((target) => target.replica.nodeId !== this.options.nodeId);
    const short = (placement.writeGroups ?? [{ nodes: writeTargets.map((target) => target.replica.nodeId), w }]).find(
      (group) => group.nodes.length < group.w,
    );
    if (short !== undefined) {
      this.counters.writeQuorumUnmet++;
      throw unmet(`write ${short.w} of ${n}: ${short.nodes.length} up`);
    }
    return others;
  }

  /**
   * Before it decides, the coordinator reads the key's other replicas and merges what they hold
   * into its own, so that the write descends from every acknowledged write and decides on what a
   * read would see: this node's replica alone may lack writes made while it was down or cut off,
   * which a set would otherwise leave beside it as a sibling and a delete would not see. A
   * conditional write names the context the client read through R replicas (its cas unique), so
   * it reads R; any other reads N - W + 1, the fewest that overlap every write quorum, capped by
   * the replicas up (docs/architecture.md). A write whose answer depends on whether the key is
   * there (delete, add, replace, incr: `waitForAll`) also waits for every replica asked, up to the
   * request timeout: after a ring change a quorum of the new replicas may hold nothing yet, while
   * one of them holds the key.
   */
  private async learnContext(key: Buffer, placement: Placement, conditional: boolean, waitForAll: boolean): Promise<void> {
    this.counters.contextReads++;
    const { n, w, r, targets } = placement;
    const needed = conditional ? r : Math.min(targets.length, Math.max(1, n - w + 1));
    let versions: readonly Version[];
    try {
      const what = `context read ${needed} of ${n}`;
      versions = (await this.gatherVersions(key, placement, 'context_read', what, needed, waitForAll && !conditional)).versions;
    } catch (error) {
      this.counters.writeQuorumUnmet++;
      throw error;
    }
    if (versions.length > 0) await this.local.store(key, placement.bucket, versions, this.localTarget(placement)?.hintFor);
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
      ['digest_mismatches', counters.digestMismatches],
      ['write_quorum_unmet', counters.writeQuorumUnmet],
      ['read_repairs', this.readRepairs.counters.readRepairs],
      ['read_repairs_skipped', this.readRepairs.counters.readRepairsSkipped],
      ['read_repairs_failed', this.readRepairs.counters.readRepairsFailed],
    ];
    return rows.map(([name, value]) => [name, String(value)]);
  }
}
