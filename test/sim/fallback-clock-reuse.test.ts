// An acknowledged increment made through a fallback survives the fallback's later writes to the key, after it handed its copy off.
/**
 * A regression test named after the bug it covers. A node that coordinates a write stamps its own
 * clock entry with a counter of at least the write time (LocalReplica.apply), whether or not it
 * still holds the versions its entry already names. A fallback hands its copy off to the primary
 * and drops it; when it later coordinates the key again from a context that lacks its earlier
 * write, its new entry is higher than the one the earlier write carries, and every other entry
 * may be equal: the new version's clock then dominates the earlier one, which reconciliation
 * drops as superseded, though the new write never saw it. A counter loses the increments the
 * dropped version held for that actor (a plain value loses a concurrent write that should have
 * been a sibling). A node now writes a key under a name its record keeps, and takes a new one
 * when the record is gone (StoredRecord.actor, coordinator/replica.ts).
 *
 * The steps, on 4 nodes with N=3 R=2 W=2 (the key's primaries p1, p2, p3; the fourth node f):
 * 1. {p2, f} | {p1, p3}: incr 1500 through f, a fallback, acknowledged by f and p2.
 * 2. {f, the primary f stood in for} | the others alone: f hands its copy off and drops it.
 * 3. {f, p3} | {p1, p2}: incr 1200 through f, acknowledged by f and p3; p3 never saw step 1.
 * 4. Healed, both increments count: the counter reads initial + 2700.
 */
import { arithSpec, storeSpec } from '../../src/coordinator/specs';
import { isUp } from '../../src/membership';
import { NodeCluster } from './node-cluster';
import { simSeeds, withSeed } from './seed';

const addresses = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004'];
const key = 'hits';
const initialValue = 1_000_000n;
/** How long each phase may take, in simulated time. */
const phaseMsMax = 30_000;
const convergeMsMax = 120_000;

async function runScenario(seed: number): Promise<void> {
  const cluster = new NodeCluster({
    seed,
    addresses,
    settings: { n: 3, r: 2, w: 2 },
    network: { delayMsMin: 1, delayMsMax: 5, lossProbability: 0 },
  });
  const { world } = cluster;
  const seedNote = world.scheduler.seedNote();
  const expectWithin = async (what: string, predicate: () => boolean, maxMs = phaseMsMax): Promise<void> => {
    if (!(await world.runUntil(predicate, maxMs))) throw new Error(`not within ${maxMs} ms: ${what}; ${seedNote}`);
  };
  /** Partitions the network and waits until every node sees exactly the others on its side up. */
  const partition = async (...groups: string[][]): Promise<void> => {
    world.network.partition(...groups);
    await expectWithin(`membership follows ${groups.map((group) => group.join(',')).join(' | ')}`, () =>
      groups.every((group) =>
        group.every((viewer) => addresses.every((member) => isUp(cluster.node(viewer).node.gossip.membership, member) === group.includes(member))),
      ),
    );
  };
  const incr = async (via: string, delta: bigint): Promise<string> => {
    let outcome: string | undefined;
    cluster.mutate(via, key, arithSpec({ incr: true, delta })).then(
      (applied) => (outcome = applied.result?.result.outcome === 'OK' ? `acknowledged by ${applied.acknowledgedBy?.join(',')}` : 'refused'),
      (error: unknown) => (outcome = `failed: ${error instanceof Error ? error.message : String(error)}`),
    );
    await expectWithin(`incr ${delta} through ${via} completes`, () => outcome !== undefined);
    return outcome!;
  };
  await cluster.waitForMembership();

  let stored = false;
  const set = storeSpec({ mode: 'set', value: Buffer.from(initialValue.toString()), flags: 0, expiresAtMs: 0, casUnique: 0n });
  void cluster.mutate(addresses[0], key, set).then(() => (stored = true));
  await expectWithin('the set is replicated', () => stored && cluster.converged([key]));
  const [p1, p2, p3] = cluster.primariesOf(key);
  const f = addresses.find((address) => ![p1, p2, p3].includes(address))!;

  await partition([p2, f], [p1, p3]);
  const first = await incr(f, 1500n);
  expect(first).toBe(`acknowledged by ${f},${p2}`);
  const hints = cluster.node(f).store.hintCounts().filter((hint) => hint.count > 0);
  expect(hints.length).toBe(1);
  const standsInFor = hints[0].target;

  const alone = addresses.filter((address) => address !== f && address !== standsInFor);
  await partition([f, standsInFor], ...alone.map((address) => [address]));
  await expectWithin(`${f} hands its copy off to ${standsInFor} and drops it`, () => cluster.held(f, key).length === 0);

  await partition([f, p3], [p1, p2]);
  const second = await incr(f, 1200n);
  expect(second).toBe(`acknowledged by ${f},${p3}`);

  world.network.heal();
  await cluster.waitForMembership();
  await expectWithin('the cluster converges', () => cluster.converged([key]), convergeMsMax);
  const value = BigInt(cluster.held(p1, key)[0].value.toString('latin1').trim());
  if (value !== initialValue + 2700n) {
    throw new Error(
      `the counter reads ${value}, not ${initialValue + 2700n}: an acknowledged increment through ${f} is lost ` +
        `(incr 1500 ${first}; incr 1200 ${second}); ${seedNote}`,
    );
  }
}

describe('a fallback that handed its copy off writes the key again', () => {
  test.each(simSeeds(4))('both acknowledged increments through it count, seed %i', (seed) => withSeed(seed, () => runScenario(seed)));
});
