/**
 * A simulated kai cluster of coordinators: each node is a LocalReplica over an in-memory store,
 * RemoteReplicas to the others, a Coordinator, a Dispatcher (what memcache clients talk to) and
 * the ReplicaService answering peers, all over the simulated network. The ring is fixed; each
 * node's up-view of the others is set by the test, as the membership would set it.
 */
import { Coordinator } from '../../src/coordinator';
import { RemoteReplica } from '../../src/coordinator/remote-replica';
import { LocalReplica, type Replica } from '../../src/coordinator/replica';
import { isReplicaRequest, ReplicaService } from '../../src/coordinator/replica-service';
import type { SiblingPolicy } from '../../src/coordinator/siblings';
import { KaiError } from '../../src/errors';
import type { Command, Reply } from '../../src/protocol/command';
import { buildRing, type Ring } from '../../src/ring';
import { Dispatcher } from '../../src/server/dispatch';
import { NodeStats } from '../../src/server/stats';
import { reconcile } from '../../src/vclock';
import type { Version } from '../../src/storage/record';
import { MemoryStore } from '../support/memory-store';
import type { SimNetworkOptions } from './network';
import { SimWorld } from './world';

export interface KvClusterOptions {
  readonly seed: number;
  readonly addresses: readonly string[];
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  readonly requestTimeoutMs?: number;
  readonly siblings?: SiblingPolicy;
  readonly network?: SimNetworkOptions;
  readonly valueBytesMax?: number;
}

export interface KvNode {
  readonly address: string;
  readonly local: LocalReplica;
  readonly coordinator: Coordinator;
  readonly dispatcher: Dispatcher;
  readonly stats: NodeStats;
}

/** How long a client call may take in virtual time before the test calls it stuck. */
export const clientCallMsMax = 60_000;
/** How long a client waits for a node's answer, when the test runs clients at once. */
export const clientTimeoutMs = 10_000;

export class KvCluster {
  readonly world: SimWorld;
  readonly ring: Ring;
  readonly nodes = new Map<string, KvNode>();
  /** The disk of each node: it survives a crash and is handed to the restarted node. */
  readonly stores = new Map<string, MemoryStore>();
  /** For each node, the members it believes down. */
  private readonly downViews = new Map<string, Set<string>>();
  readonly requestTimeoutMs: number;

  constructor(private readonly options: KvClusterOptions) {
    this.world = new SimWorld({ seed: options.seed, network: options.network });
    this.ring = buildRing(
      options.addresses.map((id) => ({ id, weight: 1 })),
      { buckets: 64 },
    );
    this.requestTimeoutMs = options.requestTimeoutMs ?? 500;
    for (const address of options.addresses) {
      this.stores.set(address, new MemoryStore());
      this.downViews.set(address, new Set());
      this.world.host(address, { clockSkewMs: this.world.scheduler.random.int(-20, 20) });
      this.start(address);
    }
  }

  /** Builds and serves the node at `address` on its current host (a fresh one after restart). */
  private start(address: string): void {
    const host = this.world.at(address);
    const store = this.stores.get(address)!;
    const valueBytesMax = this.options.valueBytesMax ?? 1024 * 1024;
    const local = new LocalReplica(address, store, host.env, valueBytesMax, this.options.siblings);
    const remotes = new Map<string, Replica>();
    const replicaOf = (id: string): Replica => {
      if (id === address) return local;
      let remote = remotes.get(id);
      if (!remote) {
        remote = new RemoteReplica(id, id, host.transport, { requestTimeoutMs: this.requestTimeoutMs, valueBytesMax, env: host.env });
        remotes.set(id, remote);
      }
      return remote;
    };
    const down = this.downViews.get(address)!;
    const coordinator = new Coordinator({
      nodeId: address,
      env: host.env,
      ring: () => this.ring,
      isUp: (id) => !down.has(id),
      replicaOf,
      quorum: this.options.quorum,
      requestTimeoutMs: this.requestTimeoutMs,
      siblings: this.options.siblings,
    });
    const stats = new NodeStats();
    const dispatcher = new Dispatcher({
      coordinator,
      env: host.env,
      stats,
      version: 'sim',
      flushAll: () => store.removeAll(),
      statistics: () => undefined,
      broadcastFlush: async (deadlineMs) => {
        const others = this.options.addresses.filter((other) => other !== address && !down.has(other));
        await Promise.allSettled(
          others.map((other) => host.transport.request(other, { type: 'flushAll', deadlineMs }, this.requestTimeoutMs)),
        );
      },
    });
    const service = new ReplicaService({
      coordinator,
      local,
      flushUntil: (deadlineMs) => dispatcher.flushUntil(deadlineMs),
      buckets: this.ring.config.buckets,
      env: host.env,
    });
    void host.transport.serve((request) => {
      if (!isReplicaRequest(request)) throw new KaiError('KAI_INTERNAL', `no route for ${request.type}`);
      return service.handleReplicaRequest(request);
    });
    this.nodes.set(address, { address, local, coordinator, dispatcher, stats });
  }

  node(address: string): KvNode {
    const node = this.nodes.get(address);
    if (!node) throw new Error(`no node ${address}`);
    return node;
  }

  /** What `viewer` believes: `down` are down, every other member up. */
  setView(viewer: string, down: readonly string[]): void {
    const view = this.downViews.get(viewer)!;
    view.clear();
    for (const member of down) view.add(member);
  }

  /** Every live node believes exactly `down` are down (the crashed ones, say). */
  setViews(down: readonly string[]): void {
    for (const address of this.options.addresses) this.setView(address, down.filter((member) => member !== address));
  }

  crash(address: string): void {
    this.world.crash(address);
  }

  /** Restarts a crashed node with the store it had (its disk). */
  restart(address: string): void {
    this.world.restart(address);
    this.start(address);
  }

  /**
   * Runs a client command through `via` in virtual time, resolving to its reply or rejecting with
   * its error. With `drive` false the caller runs the scheduler (clients running at once).
   */
  async execute(via: string, command: Command, drive = true): Promise<Reply> {
    if (!drive) return this.world.withClientTimeout(via, Promise.resolve(this.node(via).dispatcher.execute(command)), clientTimeoutMs);
    let settled = false;
    const reply = Promise.resolve()
      .then(() => this.node(via).dispatcher.execute(command))
      .finally(() => {
        settled = true;
      });
    // A rejection is handled by the caller; this only keeps the promise from reporting as unhandled meanwhile.
    reply.catch(() => undefined);
    await this.world.runUntil(() => settled, clientCallMsMax);
    if (!settled) throw new Error(`a ${command.op} through ${via} did not finish in ${clientCallMsMax} ms; ${this.world.scheduler.seedNote()}`);
    return reply;
  }

  set(via: string, key: string, value: string, casUnique = 0n, drive = true): Promise<Reply> {
    return this.execute(via, {
      op: 'store',
      mode: casUnique === 0n ? 'set' : 'cas',
      key: Buffer.from(key),
      flags: 0,
      exptime: 0,
      value: Buffer.from(value),
      casUnique,
      noreply: false,
    }, drive);
  }

  /** The values `get` answers (one per sibling), and the cas unique `gets` gives them. */
  async gets(via: string, key: string, drive = true): Promise<{ readonly values: string[]; readonly cas: bigint }> {
    const reply = await this.execute(via, { op: 'get', keys: [Buffer.from(key)], withCas: true }, drive);
    if (reply.kind !== 'items') throw new Error(`get answered ${reply.kind}`);
    return { values: reply.items.map((item) => item.value.toString()).sort(), cas: reply.items[0]?.cas ?? 0n };
  }

  /** Lets every message in flight arrive and every timer due run. */
  async settle(): Promise<void> {
    await this.world.runFor(5 * this.requestTimeoutMs);
  }

  /** Every version any live or crashed node's store holds for the key, reconciled. */
  finalVersions(key: string): Version[] {
    const all: Version[] = [];
    for (const store of this.stores.values()) all.push(...(store.read(Buffer.from(key))?.versions ?? []));
    return reconcile(all);
  }
}
