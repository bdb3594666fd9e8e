/**
 * Whole kai nodes (src/server/compose.ts) over the simulated network heal themselves: clients
 * write, delete, expire and increment keys through random nodes while nodes crash (losing what
 * they had not committed), restart, are wiped, and the network partitions, clogs and loses
 * messages. Every read is checked against the history with vector clocks (clock-history.ts);
 * once the faults end, the cluster must converge within a bounded simulated time (every primary
 * holds the same versions, every hint is delivered, every fallback copy dropped) and hold every
 * acknowledged write. Each seed prints; a failure replays with KAI_SIM_SEED.
 */
import { ClockHistory, assertNoViolations, finalViolations, readViolations, type CheckContext } from './clock-history';
import { NodeCluster } from './node-cluster';
import { simSeeds, withSeed } from './seed';
import { healEverything, randomFault, runRound, workloadDefault, type FaultKind } from './workload';

const fiveNodes = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004', 'n5:7005'];
const threeNodes = fiveNodes.slice(0, 3);
const seedCount = 8;
/** How long the healed cluster has to converge, in simulated time. */
const convergeMsMax = 120_000;
const rounds = 40;

function contextOf(cluster: NodeCluster): CheckContext {
  return { primariesOf: (key) => cluster.primariesOf(key), wipedAtMs: cluster.wipedAtMs, expiryMarginMs: 100 };
}

interface Scenario {
  readonly addresses: readonly string[];
  readonly settings: ConstructorParameters<typeof NodeCluster>[0]['settings'];
  readonly faults: readonly FaultKind[];
  readonly crashedMax: number;
}

async function runScenario(seed: number, scenario: Scenario): Promise<void> {
  const cluster = new NodeCluster({
    seed,
    addresses: scenario.addresses,
    // A long grace: nothing is reaped here, so every acknowledged write stays checkable.
    settings: { reapGraceMs: 24 * 60 * 60 * 1000, ...scenario.settings },
    network: { delayMsMin: 1, delayMsMax: 15, lossProbability: 0 },
    commitDelayMs: { min: 1, max: 8 },
  });
  const seedNote = cluster.world.scheduler.seedNote();
  await cluster.waitForMembership();
  const history = new ClockHistory(() => cluster.world.scheduler.nowMs());
  const faults: string[] = [];
  for (let round = 0; round < rounds; round++) {
    if (cluster.world.scheduler.random.chance(0.3)) faults.push(randomFault(cluster, { crashedMax: scenario.crashedMax, kinds: scenario.faults }));
    await runRound(cluster, history, workloadDefault);
    await cluster.world.runFor(cluster.world.scheduler.random.int(0, 300));
  }
  assertNoViolations(readViolations(history, contextOf(cluster)), `read(s) broke the history (faults: ${faults.join('; ')})`, seedNote);

  healEverything(cluster);
  await cluster.waitForMembership();
  const keys = [...workloadDefault.keys, ...workloadDefault.counterKeys];
  if (!(await cluster.world.runUntil(() => cluster.converged(keys), convergeMsMax))) {
    throw new Error(`not converged ${convergeMsMax} ms after healing:\n${cluster.divergence(keys).join('\n')}\nfaults: ${faults.join('; ')}\n${seedNote}`);
  }
  assertNoViolations(
    finalViolations(history, contextOf(cluster), (node, key) => cluster.held(node, key)),
    `problem(s) in the healed cluster (faults: ${faults.join('; ')})`,
    seedNote,
  );
  // Reads after healing reach the primaries, which hold everything: check them too.
  for (let round = 0; round < 5; round++) await runRound(cluster, history, { ...workloadDefault, concurrency: 6 });
  assertNoViolations(readViolations(history, contextOf(cluster)), 'read(s) after healing broke the history', seedNote);
}

describe('a cluster of whole nodes heals itself', () => {
  // Five nodes, N=3 R=2 W=2: crashes, wipes, partitions, clogs and loss; sloppy quorum, hints.
  test.each(simSeeds(seedCount))('5 nodes under every fault, siblings, seed %i', (seed) =>
    withSeed(seed, () =>
      runScenario(seed, {
        addresses: fiveNodes,
        settings: { n: 3, r: 2, w: 2 },
        faults: ['crash', 'restart', 'partition', 'heal', 'clog', 'wipe', 'loss'],
        crashedMax: 2,
      }),
    ),
  );

  // Three nodes, N=3 R=1 W=1, last write wins: each side of a partition accepts writes alone.
  test.each(simSeeds(seedCount))('3 nodes, W=1, lww, partitions and crashes, seed %i', (seed) =>
    withSeed(seed, () =>
      runScenario(seed, {
        addresses: threeNodes,
        settings: { n: 3, r: 1, w: 1, conflictResolution: 'lww' },
        faults: ['crash', 'restart', 'partition', 'heal', 'clog'],
        crashedMax: 1,
      }),
    ),
  );
});
