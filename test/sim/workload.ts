/**
 * A random client workload and random faults for a NodeCluster, recorded in a ClockHistory. Every
 * choice comes from the simulation's seeded generator, so a run replays from its seed.
 */
import { arithSpec, deleteSpec, storeSpec } from '../../src/coordinator/specs';
import type { Coordinated } from '../../src/coordinator/replica';
import type { SpecKind } from '../../src/coordinator/specs';
import type { ClockHistory, ClockOperation } from './clock-history';
import type { NodeCluster } from './node-cluster';

export interface WorkloadOptions {
  readonly keys: readonly string[];
  /** Keys incremented as counters (created at 0 when missing). */
  readonly counterKeys: readonly string[];
  /** Operations issued at once per round. */
  readonly concurrency: number;
  /** Chance that a set carries a short expiry. */
  readonly expiringSetChance: number;
  /** Expiries are drawn from this range of virtual ms. */
  readonly expiryMs: { readonly min: number; readonly max: number };
}

export const workloadDefault: WorkloadOptions = {
  keys: ['a', 'b', 'c', 'd', 'e', 'f'],
  counterKeys: ['counter'],
  concurrency: 4,
  expiringSetChance: 0.15,
  expiryMs: { min: 50, max: 1500 },
};

function recordMutation<K extends SpecKind>(history: ClockHistory, operation: ClockOperation, call: Promise<Coordinated<K>>): Promise<void> {
  return call.then(
    (applied) => history.wrote(operation, applied.written, applied.acknowledgedBy ?? []),
    (error: unknown) => history.fail(operation, error),
  );
}

/** Starts one random operation through a random running node; resolves when it has completed. */
export function randomOperation(cluster: NodeCluster, history: ClockHistory, options: WorkloadOptions): Promise<void> {
  const random = cluster.world.scheduler.random;
  const running = cluster.running();
  const via = random.pick(running);
  const roll = random.next();
  const nowMs = cluster.world.at(via).env.nowMs();
  if (roll < 0.1 && options.counterKeys.length > 0) {
    const key = random.pick(options.counterKeys);
    const operation = history.invoke(via, 'incr', key);
    const spec = arithSpec({ incr: true, delta: BigInt(random.int(1, 5)), initial: { value: 0n, expiresAtMs: 0 } });
    return recordMutation(history, operation, cluster.mutate(via, key, spec));
  }
  const key = random.pick(options.keys);
  if (roll < 0.45) {
    const operation = history.invoke(via, 'read', key);
    return cluster.read(via, key).then(
      (result) => history.read(operation, result.versions, result.answeredBy),
      (error: unknown) => history.fail(operation, error),
    );
  }
  if (roll < 0.55) {
    const operation = history.invoke(via, 'delete', key);
    return recordMutation(history, operation, cluster.mutate(via, key, deleteSpec(0n)));
  }
  const value = history.uniqueValue(via);
  const operation = history.invoke(via, 'set', key, value);
  const expiresAtMs = random.chance(options.expiringSetChance) ? nowMs + random.int(options.expiryMs.min, options.expiryMs.max) : 0;
  const spec = storeSpec({ mode: 'set', value: Buffer.from(value), flags: 0, expiresAtMs, casUnique: 0n });
  return recordMutation(history, operation, cluster.mutate(via, key, spec));
}

/** Issues `concurrency` operations at once and runs the simulation until all have completed. */
export async function runRound(cluster: NodeCluster, history: ClockHistory, options: WorkloadOptions): Promise<void> {
  let pending = options.concurrency;
  for (let index = 0; index < options.concurrency; index++) {
    void randomOperation(cluster, history, options).finally(() => {
      pending--;
    });
  }
  // A client gives up after its own timeout, so every operation completes within it.
  if (!(await cluster.world.runUntil(() => pending === 0, 60_000))) {
    throw new Error(`client operations still pending after 60 s; ${cluster.world.scheduler.seedNote()}`);
  }
}

export type FaultKind = 'crash' | 'restart' | 'partition' | 'heal' | 'clog' | 'wipe' | 'loss';

export interface FaultOptions {
  /** At most this many nodes crashed at once. */
  readonly crashedMax: number;
  /** The kinds of fault to draw from. */
  readonly kinds: readonly FaultKind[];
}

/** Injects one random fault; returns a line saying what it did. */
export function randomFault(cluster: NodeCluster, options: FaultOptions): string {
  const random = cluster.world.scheduler.random;
  const { network } = cluster.world;
  const crashed = cluster.addresses.filter((address) => !cluster.isRunning(address));
  const kind = random.pick(options.kinds);
  switch (kind) {
    case 'crash': {
      if (crashed.length >= options.crashedMax) return 'no crash: enough are down';
      const victim = random.pick(cluster.running());
      cluster.crash(victim);
      return `crash ${victim}`;
    }
    case 'restart': {
      if (crashed.length === 0) return 'no restart: none is down';
      const back = random.pick(crashed);
      cluster.restart(back);
      return `restart ${back}`;
    }
    case 'wipe': {
      if (crashed.length >= options.crashedMax) return 'no wipe: enough are down';
      const victim = random.pick(cluster.running());
      cluster.wipe(victim);
      return `wipe ${victim}`;
    }
    case 'partition': {
      const shuffled = random.shuffle(cluster.addresses);
      const cut = random.int(1, Math.max(1, Math.floor(shuffled.length / 2)));
      network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      return `partition ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`;
    }
    case 'heal':
      network.heal();
      network.configure({ lossProbability: 0 });
      return 'heal';
    case 'clog': {
      const victim = random.pick(cluster.addresses);
      network.clog(victim, random.int(100, 2000));
      return `clog ${victim}`;
    }
    case 'loss':
      network.configure({ lossProbability: random.pick([0.01, 0.05, 0.1]) });
      return 'loss';
  }
}

/** Ends every fault: crashed nodes restart, the network heals, clogs end, and no message is lost. */
export function healEverything(cluster: NodeCluster): void {
  for (const address of cluster.addresses) if (!cluster.isRunning(address)) cluster.restart(address);
  cluster.world.network.heal();
  // A clog left running would hold a node's messages back past the failure detector's timeout
  // after the cluster counts as healed, and the node would mark every peer down while it runs.
  cluster.world.network.unclogAll();
  cluster.world.network.configure({ lossProbability: 0 });
}
