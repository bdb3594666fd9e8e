/**
 * Counters across a partition, on real processes, each `bin/kai` node in its own network
 * namespace: five nodes (N=3 R=2 W=2) split {1,2} | {3,4,5} with iptables, clients increment and
 * decrement the same counters through nodes on both sides (sloppy quorum lets each side accept
 * them; a side that holds no copy of a key answers NOT_FOUND and writes nothing), and once the
 * split heals every node reads every counter as its first value plus every acknowledged
 * operation, plus at most those whose answer was lost, with no siblings. Needs root, iproute2 and
 * iptables (test/faults/README.md).
 */
import { delay } from '../support/servers';
import { useFaultSuite } from './fault-suite';
import { withCluster, type HealingCluster } from './healing-cluster';
import { MemcacheConnection, readAll } from './memcache-client';
import { seededRandom } from './workload';

const gossipIntervalMs = 200;
/** Down after 1 s, plus rounds for the mark to spread and a status command to run. */
const detectTimeoutMs = 10_000;
/** A peer connection may sit in its reconnect backoff (at most 5 s) before gossip resumes. */
const upTimeoutMs = 30_000;
/** After the heal, every node must read every counter's final value within this. */
const convergeMsMax = 60_000;
const convergePollMs = 500;
const counters = ['hits:a', 'hits:b', 'hits:c'];
const initial = 1_000_000n;
/** Operations per client; two clients per node. */
const operationsPerClient = 60;

const seed = Number(process.env.KAI_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const suite = useFaultSuite('counters', 5);

beforeAll(() => console.log(`counter fault tests: seed ${seed} (KAI_FAULT_SEED=${seed} replays the random choices)`));

/** What clients did to one counter: the net change acknowledged, and what may or may not have landed. */
interface CounterTally {
  acknowledged: bigint;
  unknownUp: bigint;
  unknownDown: bigint;
  answered: number;
  /**
   * NOT_FOUND: the side of the split the request reached holds no copy of the key (none of its
   * primaries is there, and a fallback knows nothing of it), so nothing was written.
   */
  notFound: number;
  failed: number;
  /** The first few errors, for the report. */
  errors: string[];
}

/**
 * Each client runs its operations on random counters through one node; every answer is tallied.
 * Resolves with the operations acknowledged through these nodes.
 */
async function incrementThrough(cluster: HealingCluster, indexes: readonly number[], tallies: Map<string, CounterTally>, random: () => number): Promise<number> {
  let acknowledged = 0;
  const clients = indexes.flatMap((index) => [0, 1].map(() => new MemcacheConnection(cluster.reachable(index))));
  await Promise.all(
    clients.map(async (client) => {
      try {
        for (let operation = 0; operation < operationsPerClient; operation++) {
          const key = counters[Math.floor(random() * counters.length)];
          const delta = BigInt(1 + Math.floor(random() * 5));
          const incr = random() < 0.7;
          const tally = tallies.get(key)!;
          try {
            const answer = await client.arith(key, delta, incr);
            if (answer === 'NOT_FOUND') {
              tally.notFound++;
              continue;
            }
            tally.acknowledged += incr ? delta : -delta;
            tally.answered++;
            acknowledged++;
          } catch (error) {
            if (tally.errors.length < 3) tally.errors.push(error instanceof Error ? error.message : String(error));
            if (incr) tally.unknownUp += delta;
            else tally.unknownDown += delta;
            tally.failed++;
          }
        }
      } finally {
        client.close();
      }
    }),
  );
  return acknowledged;
}

test('increments on both sides of a partition all count once it heals, and no counter shows siblings', async () => {
  // Proves the PN-counter converges to the exact sum across a real split, on every node.
  const { network, workDir } = suite();
  await withCluster(
    {
      network,
      baseDir: workDir,
      name: 'partition',
      size: 5,
      args: ['--n', '3', '--r', '2', '--w', '2', '--gossip-interval', String(gossipIntervalMs)],
    },
    async (cluster) => {
      const random = seededRandom(seed);
      const first = new MemcacheConnection(cluster.reachable(0));
      try {
        for (const key of counters) expect(await first.set(key, initial.toString())).toBe('STORED');
      } finally {
        first.close();
      }
      const tallies = new Map(counters.map((key): [string, CounterTally] => [key, { acknowledged: 0n, unknownUp: 0n, unknownDown: 0n, answered: 0, notFound: 0, failed: 0, errors: [] }]));

      const minority = [0, 1];
      const majority = [2, 3, 4];
      await network.partition(minority.map((index) => cluster.node(index)), majority.map((index) => cluster.node(index)));
      for (const observer of minority) await cluster.waitForView(observer, { 2: 'down', 3: 'down', 4: 'down' }, detectTimeoutMs);
      for (const observer of majority) await cluster.waitForView(observer, { 0: 'down', 1: 'down' }, detectTimeoutMs);
      // Both sides at once; each must have counted some operations for the test to mean anything.
      const [throughMinority, throughMajority] = await Promise.all([
        incrementThrough(cluster, minority, tallies, random),
        incrementThrough(cluster, majority, tallies, random),
      ]);
      expect([throughMinority > 0, throughMajority > 0]).toEqual([true, true]);
      await network.heal();
      const healedAtMs = Date.now();
      await cluster.waitAllUp(upTimeoutMs);
      console.log(`[counters] every node saw every other up ${Date.now() - healedAtMs} ms after the heal`);

      const expected = new Map([...tallies].map(([key, tally]) => [key, initial + tally.acknowledged]));
      console.log(`[counters] after the partition: ${[...tallies].map(([key, t]) => `${key} acknowledged ${t.answered} (net ${t.acknowledged}), not found ${t.notFound}, unanswered ${t.failed} ${JSON.stringify(t.errors)}`).join('; ')}`);
      const within = (key: string, value: bigint): boolean => {
        const tally = tallies.get(key)!;
        const base = expected.get(key)!;
        return value >= base - tally.unknownDown && value <= base + tally.unknownUp;
      };
      // Every node must read one value per counter, the same everywhere, within what the clients did.
      let last = '';
      let settled = false;
      const deadlineMs = Date.now() + convergeMsMax;
      for (let attempt = 0; !settled && Date.now() < deadlineMs && attempt < convergeMsMax / convergePollMs; attempt++) {
        if (attempt > 0) await delay(convergePollMs);
        const reads = await Promise.all(cluster.indexes().map((index) => readAll(cluster.reachable(index), counters)));
        last = reads.map((found, index) => `node ${index + 1}: ${counters.map((key) => `${key}=${JSON.stringify(found.get(key))}`).join(' ')}`).join('\n');
        settled = counters.every((key) => {
          const seen = reads.map((found) => found.get(key) ?? []);
          return seen.every((values) => values.length === 1 && values[0].trim() === seen[0][0].trim()) && within(key, BigInt(seen[0][0].trim()));
        });
      }
      if (!settled) throw new Error(`counters did not settle on one value within ${convergeMsMax} ms:\n${last}\nexpected ${[...expected].map(([k, v]) => `${k}=${v}`).join(' ')} plus unanswered operations`);
      console.log(`[counters] every node reads:\n${last}`);
    },
  );
}, 240_000);
