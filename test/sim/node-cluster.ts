/**
 * A simulated cluster of whole kai nodes: each node is composed by src/server/compose.ts exactly as
 * `kai start` composes it (gossip, coordinator, replica service, hinted handoff, anti-entropy, the
 * reaper), over the simulated network, with a SQLite store on an in-memory database that plays the
 * node's disk. The store commits after a delay of virtual time, so a crash loses what was not yet
 * committed; the disk survives the crash and is handed to the restarted node; a wipe replaces it
 * with an empty one. Clients act through each node's coordinator, so the test sees the clocks and
 * the replicas behind every answer.
 */
import Database from 'better-sqlite3';
import pino from 'pino';
import { defaultSettings, type Settings } from '../../src/config/settings';
import type { Coordinated } from '../../src/coordinator/replica';
import type { ReadResult } from '../../src/coordinator';
import type { SpecKind, SpecOf } from '../../src/coordinator/specs';
import { initialRingState } from '../../src/claimant';
import { ringStateToWire } from '../../src/claimant/wire';
import { isUp } from '../../src/membership';
import { bucketOfKey, preferenceList, type Ring } from '../../src/ring';
import { routeRequests, type RequestRoutes } from '../../src/rpc/router';
import { composeNode, type ComposedNode } from '../../src/server/compose';
import { openInlineStore, type SqliteStore } from '../../src/storage/sqlite';
import type { Version } from '../../src/storage/record';
import { canonicalVersions } from './checkers';
import type { SimNetworkOptions } from './network';
import { SimWorld } from './world';

export interface NodeClusterOptions {
  readonly seed: number;
  readonly addresses: readonly string[];
  /** Settings every node shares, over defaultSettings (quorums, intervals, grace, policy). */
  readonly settings?: Partial<Settings>;
  readonly network?: SimNetworkOptions;
  /** Each commit takes a delay drawn from this range, in virtual ms. */
  readonly commitDelayMs?: { readonly min: number; readonly max: number };
  readonly requestTimeoutMs?: number;
  /** The nodes started at once; by default every address. The others start with `join`. */
  readonly initial?: readonly string[];
}

export interface SimNode {
  readonly address: string;
  readonly node: ComposedNode;
  readonly store: SqliteStore;
}

/** Settings for simulated nodes: fast gossip, and limits that never bind in a small workload. */
export const simSettingsDefault: Partial<Settings> = {
  gossipIntervalMs: 100,
  antiEntropyIntervalMs: 1000,
  siblingsMax: 1000,
  buckets: 64,
};

const silentLog = pino({ level: 'silent' });

export class NodeCluster {
  readonly world: SimWorld;
  readonly settings: Settings;
  readonly nodes = new Map<string, SimNode>();
  /** Each node's disk: it outlives crashes, and a wipe replaces it. */
  private readonly disks = new Map<string, Database.Database>();
  /** Virtual times of each node's wipes: a replica wiped since a write no longer holds it. */
  readonly wipedAtMs = new Map<string, number[]>();
  readonly requestTimeoutMs: number;
  /** The nodes that are members of the cluster: started, and not yet left or removed. */
  private readonly memberAddresses: string[] = [];
  /**
   * The nodes started together start from one ring claimed for all of them, as a cluster whose
   * members were all named at once would agree on; nodes that join later go through a ring change.
   */
  private readonly startingRing = new Map<string, string>();

  constructor(private readonly options: NodeClusterOptions) {
    this.world = new SimWorld({ seed: options.seed, network: options.network });
    this.settings = { ...defaultSettings, ...simSettingsDefault, ...options.settings };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 500;
    const initial = options.initial ?? options.addresses;
    const members = initial.map((id) => ({ id, weight: 1 }));
    for (const address of initial) {
      this.startingRing.set(address, JSON.stringify(ringStateToWire(initialRingState(address, members, this.settings.buckets, initial[0]))));
    }
    for (const address of initial) this.join(address);
  }

  /** The cluster's members: started and not retired. */
  get addresses(): readonly string[] {
    return this.memberAddresses;
  }

  /** Starts a node at one of the cluster's addresses on a new disk; it joins through the others. */
  join(address: string): void {
    if (!this.options.addresses.includes(address) || this.memberAddresses.includes(address)) throw new Error(`cannot join ${address}`);
    this.disks.set(address, new Database(':memory:'));
    this.world.host(address, { clockSkewMs: this.world.scheduler.random.int(-20, 20) });
    this.memberAddresses.push(address);
    this.start(address);
  }

  /** A node that left or was removed: stopped for good and no longer counted as a member. */
  retire(address: string): void {
    if (this.isRunning(address)) this.crash(address);
    this.memberAddresses.splice(this.memberAddresses.indexOf(address), 1);
  }

  /** Composes and starts the node at `address` on its current host and disk. */
  private start(address: string): void {
    const host = this.world.at(address);
    const delay = this.options.commitDelayMs ?? { min: 1, max: 5 };
    const random = host.env.randomSource.fork();
    const store = openInlineStore({
      database: this.disks.get(address)!,
      env: host.env,
      commitDelayMs: () => random.int(delay.min, delay.max),
      buckets: this.settings.buckets,
      hintsPerTargetMax: this.settings.hintsPerTargetMax,
      hintBytesPerTargetMax: this.settings.hintBytesPerTargetMax,
    });
    const startingRing = this.startingRing.get(address);
    if (startingRing !== undefined) {
      store.writeNote('ring', startingRing);
      this.startingRing.delete(address);
    }
    const routes: RequestRoutes = {};
    const settings: Settings = { ...this.settings, seeds: this.memberAddresses.filter((other) => other !== address) };
    const node = composeNode({
      settings,
      nodeId: address,
      env: host.env,
      log: silentLog,
      transport: host.transport,
      store,
      routes,
      requestTimeoutMs: this.requestTimeoutMs,
    });
    void host.transport.serve(routeRequests(routes));
    node.start();
    this.nodes.set(address, { address, node, store });
  }

  node(address: string): SimNode {
    const node = this.nodes.get(address);
    if (!node) throw new Error(`no node ${address}`);
    return node;
  }

  isRunning(address: string): boolean {
    return this.world.isUp(address);
  }

  running(): string[] {
    return this.addresses.filter((address) => this.isRunning(address));
  }

  /** The process dies: timers stop, pending requests fail, commits not yet done are lost. */
  crash(address: string): void {
    this.node(address).node.stop();
    this.world.crash(address);
  }

  /** A new process on the same disk. */
  restart(address: string): void {
    this.world.restart(address);
    this.start(address);
  }

  /** The node's disk is replaced by an empty one (it must be crashed); it restarts from nothing. */
  wipe(address: string): void {
    if (this.isRunning(address)) this.crash(address);
    this.disks.get(address)!.close();
    this.disks.set(address, new Database(':memory:'));
    this.wipedAtMs.set(address, [...(this.wipedAtMs.get(address) ?? []), this.world.scheduler.nowMs()]);
    this.restart(address);
  }

  /**
   * Whether every running node sees every running node up and every member confirmed, and holds
   * the same ring, owned by every node, with no ring change in progress.
   */
  membershipSettled(): boolean {
    const running = this.running();
    return running.every((viewer) => {
      const state = this.node(viewer).node.gossip.membership;
      return running.every((member) => isUp(state, member)) && state.members.every((member) => member.confirmed);
    }) && this.ringSettled();
  }

  /** Whether every running node holds one ring, owned by all the cluster's nodes, and no change runs. */
  ringSettled(): boolean {
    return this.ringOwnedBy(this.addresses);
  }

  /** Whether every running node holds one ring, owned by exactly `owners`, and no change runs. */
  ringOwnedBy(owners: readonly string[]): boolean {
    const all = JSON.stringify([...owners].sort());
    const versions = new Set<string>();
    for (const address of this.running()) {
      const state = this.node(address).node.keeper.state;
      if (state.next !== null || JSON.stringify([...new Set(state.owners)].sort()) !== all) return false;
      versions.add(`${state.version}/${state.claimant}`);
    }
    return versions.size <= 1;
  }

  /** Runs until every node sees every running node up, at most `maxMs`. */
  async waitForMembership(maxMs = 30_000): Promise<void> {
    if (!(await this.world.runUntil(() => this.membershipSettled(), maxMs))) {
      throw new Error(`membership did not settle within ${maxMs} ms; ${this.world.scheduler.seedNote()}`);
    }
  }

  /** The ring every node shares once membership settled (no one leaves in these tests). */
  ring(): Ring {
    return this.node(this.addresses[0]).node.ring();
  }

  primariesOf(key: string): readonly string[] {
    const ring = this.ring();
    return preferenceList(ring, bucketOfKey(Buffer.from(key), ring.config.buckets), Math.min(this.settings.n, ring.members.length));
  }

  /**
   * Runs a client call through `via` while the scheduler runs, resolving to its result or
   * rejecting with its error; a call still pending after `clientTimeoutMs` of virtual time fails,
   * as a client's socket timeout would (a node that crashed mid-request never answers).
   */
  call<T>(via: string, action: (node: ComposedNode) => Promise<T>, clientTimeoutMs = 10_000): Promise<T> {
    return this.world.withClientTimeout(via, Promise.resolve().then(() => action(this.node(via).node)), clientTimeoutMs);
  }

  mutate<K extends SpecKind>(via: string, key: string, spec: SpecOf<K>): Promise<Coordinated<K>> {
    return this.call(via, (node) => node.coordinator.mutate(Buffer.from(key), spec));
  }

  read(via: string, key: string): Promise<ReadResult> {
    return this.call(via, (node) => node.coordinator.readWithReplicas(Buffer.from(key)));
  }

  /** What `address`'s store holds for the key (committed or not), read directly. */
  held(address: string, key: string): readonly Version[] {
    return this.node(address).store.read(Buffer.from(key))?.versions ?? [];
  }

  /**
   * Whether the cluster has healed: every key's primaries hold the same versions, no node holds a
   * hint, and no node holds a copy of a key it is not a primary of (fallback copies were handed
   * off and dropped). Every node must be running.
   */
  converged(keys: readonly string[]): boolean {
    return this.divergence(keys).length === 0;
  }

  /** What keeps the cluster from having converged, one line per problem. */
  divergence(keys: readonly string[]): string[] {
    const problems: string[] = [];
    for (const address of this.addresses) {
      const hints = this.node(address).store.hintCounts().filter((count) => count.count > 0);
      if (hints.length > 0) problems.push(`${address} holds hints ${JSON.stringify(hints)}`);
    }
    for (const key of keys) {
      const primaries = this.primariesOf(key);
      const states = new Set(primaries.map((address) => canonicalVersions(this.held(address, key))));
      if (states.size > 1) {
        problems.push(`${key}: ${primaries.map((address) => `${address}=${canonicalVersions(this.held(address, key)) || 'none'}`).join('; ')}`);
      }
      for (const address of this.addresses) {
        if (!primaries.includes(address) && this.held(address, key).length > 0) problems.push(`${key}: ${address} still holds a fallback copy`);
      }
    }
    return problems;
  }
}
