/**
 * Ring changes under load, on whole kai nodes over the simulated network: a 3-node cluster grows
 * to 5, one node leaves, a crashed one is removed, and a new node replaces another, while clients
 * write, delete and increment through every node. Without faults every read must see every write
 * acknowledged before it began (N=3, R=2, W=2: the moving buckets' joint quorums keep that true
 * at every moment). With crashes, restarts and partitions during the transfers, a read may miss a
 * write for a while as in any sloppy quorum (a fallback that handed its copy to a primary that
 * then crashed and was removed leaves one copy until the removal re-creates it), so there the
 * cluster is held to its final state: each key on exactly its N owners, with every acknowledged
 * write and no value no client wrote. Each seed prints; a failure replays with KAI_SIM_SEED.
 */
import { applyRingChange } from '../../src/server/ring-changes';
import { isUp } from '../../src/membership';
import { descends } from '../../src/vclock';
import { ClockHistory, assertNoViolations, finalViolations, staleViolations, type CheckContext } from './clock-history';
import { NodeCluster } from './node-cluster';
import { simSeeds, withSeed } from './seed';
import { healEverything, randomFault, runRound, workloadDefault, type FaultKind } from './workload';

const [n1, n2, n3, n4, n5, n6] = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004', 'n5:7005', 'n6:7006'];
const seedCount = 4;
/**
 * Each seed runs four ring changes under load (seconds of CPU): a run asking for many seeds
 * (KAI_SIM_RUNS) takes at most this many, so CI stays within its time.
 */
const seedCountMax = 25;
/** Rounds of client operations one phase runs at most while it waits for its change. */
const phaseRoundsMax = 400;
const convergeMsMax = 120_000;
const workload = { ...workloadDefault, expiringSetChance: 0 };

function contextOf(cluster: NodeCluster): CheckContext {
  return { primariesOf: (key) => cluster.primariesOf(key), wipedAtMs: cluster.wipedAtMs, expiryMarginMs: 100 };
}

/** Reads that missed a write acknowledged before they began, whoever answered them. */
function missedWrites(history: ClockHistory): string[] {
  const writes = history.writes();
  const missed: string[] = [];
  for (const read of history.operations.filter((operation) => operation.kind === 'read' && operation.outcome === 'ok')) {
    for (const write of writes) {
      if (write.key !== read.key || write.completedAtMs! >= read.invokedAtMs) continue;
      if (!(read.readVersions ?? []).some((version) => descends(version.clock, write.written!.clock))) {
        missed.push(`read of ${read.key} via ${read.via} at ${read.invokedAtMs} ms (answered by ${read.answeredBy.join(', ')}) misses the ${write.kind} via ${write.via} acknowledged at ${write.completedAtMs} ms by ${write.acknowledgedBy.join(', ')}`);
      }
    }
  }
  return missed;
}

interface Scenario {
  /** Fault kinds drawn during the changes; none for the strict scenario. */
  readonly faults: readonly FaultKind[];
}

async function runScenario(seed: number, scenario: Scenario): Promise<void> {
  const cluster = new NodeCluster({
    seed,
    addresses: [n1, n2, n3, n4, n5, n6],
    initial: [n1, n2, n3],
    settings: { n: 3, r: 2, w: 2, reapGraceMs: 24 * 60 * 60 * 1000 },
    network: { delayMsMin: 1, delayMsMax: 15, lossProbability: 0 },
    commitDelayMs: { min: 1, max: 8 },
  });
  const seedNote = cluster.world.scheduler.seedNote();
  const history = new ClockHistory(() => cluster.world.scheduler.nowMs());
  const faults: string[] = [];
  const strict = scenario.faults.length === 0;
  await cluster.waitForMembership();

  /** Runs client rounds (and, in the faulty scenario, faults) until `done` holds once healed. */
  const phase = async (what: string, done: () => boolean): Promise<void> => {
    for (let round = 0; round < phaseRoundsMax; round++) {
      if (!strict && round < 30 && cluster.world.scheduler.random.chance(0.2)) {
        faults.push(randomFault(cluster, { crashedMax: 1, kinds: scenario.faults }));
      }
      if (!strict && round === 30) healEverything(cluster);
      await runRound(cluster, history, workload);
      if ((strict || round > 30) && done()) return;
      // Time passes between rounds too, so a phase spans gossip rounds and failure timeouts.
      await cluster.world.runFor(cluster.world.scheduler.random.int(0, 150));
    }
    const rings = cluster.running().map((address) => {
      const { keeper, transfer } = cluster.node(address).node;
      const state = keeper.state;
      return `${address}: ring v${state.version} by ${state.claimant}, owners ${[...new Set(state.owners)].join(',')}, ${state.next === null ? 'no plan' : `planned ${[...new Set(state.next)].join(',')}`}, not ready: ${keeper.notReady() ?? 'no'}, transfers ${JSON.stringify(transfer.progress())}`;
    });
    throw new Error(`${what}: not done within ${phaseRoundsMax} rounds (faults: ${faults.join('; ')})\n${rings.join('\n')}\n${seedNote}`);
  };
  const ask = (via: string, change: Parameters<typeof applyRingChange>[2]): void => {
    const { node } = cluster.node(via);
    applyRingChange(node.gossip, node.keeper, change);
  };

  cluster.join(n4);
  cluster.join(n5);
  await phase('n4 and n5 join', () => cluster.ringOwnedBy([n1, n2, n3, n4, n5]));

  ask(n2, { kind: 'leave' });
  await phase('n2 leaves', () => cluster.ringOwnedBy([n1, n3, n4, n5]));
  cluster.retire(n2);

  // A crashed node that is removed never comes back: retired at once, no fault restarts it.
  cluster.retire(n3);
  await phase('n1 sees n3 down', () => !isUp(cluster.node(n1).node.gossip.membership, n3));
  ask(n1, { kind: 'remove', member: n3 });
  await phase('n3 is removed', () => cluster.ringOwnedBy([n1, n4, n5]));

  cluster.join(n6);
  ask(n1, { kind: 'replace', old: n4, replacement: n6 });
  await phase('n6 replaces n4', () => cluster.ringOwnedBy([n1, n5, n6]));
  cluster.retire(n4);

  const context = contextOf(cluster);
  if (strict) {
    assertNoViolations(missedWrites(history), 'read(s) missed an acknowledged write', seedNote);
    assertNoViolations(staleViolations(history, context, 0), 'read(s) returned a superseded value', seedNote);
  }
  healEverything(cluster);
  await cluster.waitForMembership();
  const keys = [...workload.keys, ...workload.counterKeys];
  if (!(await cluster.world.runUntil(() => cluster.converged(keys), convergeMsMax))) {
    throw new Error(`not converged ${convergeMsMax} ms after the changes:\n${cluster.divergence(keys).join('\n')}\nfaults: ${faults.join('; ')}\n${seedNote}`);
  }
  assertNoViolations(
    finalViolations(history, context, (node, key) => cluster.held(node, key)),
    'acknowledged write(s) lost',
    seedNote,
  );
}

describe('ring changes under load keep every acknowledged write readable', () => {
  for (const seed of simSeeds(seedCount).slice(0, seedCountMax)) {
    test(`join, leave, remove and replace without faults: no read misses an acknowledged write, seed ${seed}`, () =>
      withSeed(seed, () => runScenario(seed, { faults: [] })));
    test(`the same with crashes, restarts and partitions during the transfers, seed ${seed}`, () =>
      withSeed(seed, () => runScenario(seed, { faults: ['crash', 'restart', 'partition', 'heal', 'clog'] })));
  }
});
